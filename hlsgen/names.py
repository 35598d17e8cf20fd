"""Names from models and files, made safe for what hlsgen writes.

A layer name or a file name is data: it may hold ``/``, ``..``, ``->``, quotes, newlines or
non-ASCII letters.  Before it becomes a file name, a Verilog or C++ identifier, or text in a
generated comment, it passes through one of these functions.  Identifiers are ASCII
(``[A-Za-z][A-Za-z0-9_]*``), collision-free within a design (:class:`Idents`), and the
original name stays in the plan for messages and reports.
"""

from __future__ import annotations

import json
import keyword

# words Verilog, SystemVerilog, VHDL wrappers or C++ would not take as identifiers
RESERVED = {
    "always", "and", "assign", "begin", "buf", "case", "default", "else", "end", "endcase",
    "endmodule", "for", "function", "generate", "genvar", "if", "initial", "inout", "input",
    "integer", "localparam", "module", "negedge", "not", "or", "output", "parameter",
    "posedge", "reg", "signed", "task", "wire", "xor", "logic", "bit", "int", "class",
    "const", "char", "double", "float", "long", "return", "short", "static", "struct",
    "switch", "typedef", "union", "unsigned", "void", "while", "do", "break", "continue",
    "register", "auto", "enum", "extern", "goto", "sizeof", "volatile", "entity", "in", "out",
}  # fmt: skip


def ident(text, prefix: str = "m_") -> str:
    """An ASCII identifier for ``text``: every other character becomes ``_``; one that does not
    start with a letter, or is a reserved word, gets ``prefix`` in front."""
    s = "".join(ch if (ch.isascii() and ch.isalnum()) else "_" for ch in str(text))
    if not s or not s[0].isalpha() or s.lower() in RESERVED or keyword.iskeyword(s):
        s = prefix + s
    return s


class Idents:
    """Identifiers for the names of one design, each distinct (a clash gets ``_2``, ``_3``, ...);
    ``original`` maps every identifier back to its name (for the report)."""

    def __init__(self, taken=()):
        self.taken = {t.lower() for t in taken}
        self.original: dict[str, str] = {}

    def __call__(self, name, prefix: str = "m_") -> str:
        base = ident(name, prefix)
        if base.lower().startswith(tuple(t + "_" for t in self.taken)):
            base = prefix + base
        s, k = base, 1
        while s.lower() in self.taken:
            k += 1
            s = f"{base}_{k}"
        self.taken.add(s.lower())
        self.original[s] = str(name)
        return s


def comment_text(text) -> str:
    """``text`` for a one-line comment in Verilog, C++, Tcl, YAML or Markdown: printable ASCII
    only (control and non-ASCII characters escaped as in JSON), no comment terminators."""
    s = json.dumps(str(text), ensure_ascii=True)[1:-1]
    return s.replace("*/", "* /").replace("/*", "/ *").replace("`", "'")
