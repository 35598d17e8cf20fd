"""Aligned text tables for the command line's summaries."""

from __future__ import annotations


def format_table(rows, cols) -> str:
    """Rows of dicts as aligned text columns (missing keys print empty)."""
    w = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(w[c]) for c in cols)]
    lines += ["  ".join(str(r.get(c, "")).ljust(w[c]) for c in cols) for r in rows]
    return "\n".join(lines)
