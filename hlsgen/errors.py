"""The one error type users see: one line naming the file and the layer."""

from __future__ import annotations


class HlsgenError(Exception):
    """A problem with the user's model, file or options (not a bug in hlsgen).

    ``str(err)`` is a single line: ``FILE: layer 'NAME' (TYPE): what is wrong; what to do``.
    The CLI prints it on stderr and exits with status 2.
    """

    def __init__(self, message: str, file: str | None = None, layer: str | None = None, layer_type: str | None = None):
        self.message = " ".join(str(message).split())
        self.file = str(file) if file is not None else None
        self.layer = layer
        self.layer_type = layer_type
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}:")
        if self.layer:
            parts.append(f"layer '{self.layer}'" + (f" ({self.layer_type}):" if self.layer_type else ":"))
        parts.append(self.message)
        return " ".join(parts)

    def located(self, file=None, layer=None, layer_type=None) -> HlsgenError:
        """The same error with the file/layer filled in where still unknown."""
        return HlsgenError(self.message, self.file or file, self.layer or layer, self.layer_type or layer_type)
