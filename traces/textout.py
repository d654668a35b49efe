"""Terminal text that fits: tables with a unit under every column, numbers without ``nan`` or
``-0.0``, free text wrapped at word boundaries.

The default width is 100 columns, or the terminal's when it is wider (``shutil``); ``--wide``
lifts the limit.  A table too wide for the width drops its optional columns (each says how
important it is) and says which, so nothing is cut mid-word or mid-number.
"""

from __future__ import annotations

import math
import re
import shutil
import textwrap
from dataclasses import dataclass, field

DEFAULT_WIDTH = 100
UNLIMITED = 10_000


def term_width(wide: bool = False) -> int:
    """Columns for terminal output: 100, or the terminal's width when wider; unlimited when ``wide``."""
    if wide:
        return UNLIMITED
    return max(DEFAULT_WIDTH, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)


def num(v, fmt: str = ".2f", missing: str = "n/a") -> str:
    """``v`` formatted by ``fmt``; ``missing`` for None / NaN / inf, and never ``-0.00``."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return missing
    if not math.isfinite(x):
        return missing
    s = format(x, fmt)
    return s.replace("-", "+" if "+" in fmt else "", 1) if "-" in s and not re.search(r"[1-9]", s) else s


def interval(v, lo, hi, n=None, fmt: str = ".2f") -> str:
    """``v [lo, hi]``; ``v (n=1)`` where one prompt gives no interval, ``v (no CI)`` otherwise."""
    head = num(v, fmt)
    if math.isfinite(_f(lo)) and math.isfinite(_f(hi)):
        return f"{head} [{num(lo, fmt)}, {num(hi, fmt)}]"
    if head == "n/a":
        return head
    return f"{head} (n=1)" if n is not None and _f(n) == 1 else f"{head} (no CI)"


def _f(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


@dataclass
class Column:
    """One table column: ``name`` on the first header line, ``unit`` on the second (``""`` for
    text columns), cells already formatted; ``drop`` > 0 marks a column that may be left out
    when the table is too wide (the highest first)."""

    name: str
    unit: str
    cells: list[str] = field(default_factory=list)
    left: bool = False
    drop: int = 0

    def width(self) -> int:
        return max([len(self.name), len(self.unit)] + [len(c) for c in self.cells])


def render(cols: list[Column], width: int = DEFAULT_WIDTH) -> tuple[list[str], list[str]]:
    """The table's lines (names, units, rule, rows) within ``width`` where the kept columns
    allow it, and the names of the columns left out to get there."""
    cols = list(cols)
    dropped = []
    while sum(c.width() + 1 for c in cols) - 1 > width and any(c.drop for c in cols):
        worst = max((c for c in cols if c.drop), key=lambda c: c.drop)
        cols.remove(worst)
        dropped.append(f"{worst.name} ({worst.unit})" if worst.unit else worst.name)
    ws = [c.width() for c in cols]

    def line(vals: list[str]) -> str:
        return " ".join(v.ljust(w) if c.left else v.rjust(w) for v, w, c in zip(vals, ws, cols, strict=True)).rstrip()

    out = [line([c.name for c in cols]), line([c.unit for c in cols])]
    out.append("-" * max(len(out[0]), len(out[1])))
    n = max((len(c.cells) for c in cols), default=0)
    out += [line([c.cells[i] if i < len(c.cells) else "" for c in cols]) for i in range(n)]
    return out, dropped


def wrap(text: str, width: int = DEFAULT_WIDTH, indent: str = "  ") -> list[str]:
    """``text`` broken at spaces into lines of at most ``width`` (continuations indented);
    a word longer than the width stays whole rather than being cut."""
    if width >= UNLIMITED or len(text) <= width:
        return [text]
    lead = text[: len(text) - len(text.lstrip(" "))]
    return textwrap.wrap(text, width=width, initial_indent="", subsequent_indent=lead + indent,
                         break_long_words=False, break_on_hyphens=False, drop_whitespace=True) or [text]


def wrap_lines(lines: list[str], width: int = DEFAULT_WIDTH, indent: str = "  ") -> list[str]:
    """Every line of ``lines`` wrapped (``wrap``); empty lines kept."""
    out: list[str] = []
    for ln in lines:
        out += wrap(ln, width, indent) if ln else [ln]
    return out
