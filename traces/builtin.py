"""Bundled traces: ``builtin:NAME`` resolves to ``traces/data/NAME``."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
PREFIX = "builtin:"


def names() -> list[str]:
    """Names of the bundled traces."""
    return sorted(p.name for p in DATA_DIR.iterdir() if (p / "manifest.json").is_file())


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """Map ``builtin:NAME`` to its directory; any other value is returned as a Path."""
    s = os.fspath(path)
    if not s.startswith(PREFIX):
        return Path(s)
    name = s[len(PREFIX):]
    p = DATA_DIR / name
    if not (p / "manifest.json").is_file():
        raise FileNotFoundError(f"{s}: no bundled trace named {name!r}; bundled: {names()}")
    return p
