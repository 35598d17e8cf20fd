"""Progress of long steps on a terminal: ``with step("Yosys 7-series"): ...`` shows the step and
its elapsed time on stderr, refreshed twice a second, and clears the line when it ends.  Quiet
when stderr is not a terminal (pipes, CI logs, tests), so output stays parseable."""

from __future__ import annotations

import sys
import threading
import time


class step:
    """A context manager showing ``what ... N s`` while the block runs (terminals only)."""

    def __init__(self, what: str, stream=None, interval: float = 0.5):
        self.what = what
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._width = 0

    @property
    def active(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def _show(self, t0: float) -> None:
        text = f"\r{self.what} ... {time.monotonic() - t0:.0f} s"
        self._width = max(self._width, len(text))
        self.stream.write(text)
        self.stream.flush()

    def _run(self, t0: float) -> None:
        while not self._stop.wait(self.interval):
            self._show(t0)

    def __enter__(self):
        if self.active:
            t0 = time.monotonic()
            self._show(t0)
            self._thread = threading.Thread(target=self._run, args=(t0,), daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
        return False
