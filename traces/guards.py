"""Guards shared by every reader of a trace: strict JSON, regular files and the memory limit.

* :func:`strict_json_loads` parses JSON like ``json.loads`` but refuses an object with the
  same key twice (``{"k_max": 4, "k_max": 100}``: the standard parser keeps the last one
  silently).  Every trace JSON file (``manifest.json``, tree files) goes through it.
* :func:`memory_limit` is what a reader may allocate: 80 % of the smallest of this machine's
  memory, the cgroup's memory limit and what ``ulimit -v`` leaves to this process.  Readers
  estimate the size of their arrays *before* allocating them and refuse, in one line, what
  would not fit (:func:`memory_problem`), instead of dying with a ``MemoryError`` traceback.
* :func:`read_regular` / :func:`open_regular` / :func:`check_regular` are the one place that checks a file is a
  regular file (not a FIFO, which would block, nor a device such as ``/dev/zero``, which would
  never end) of at most ``limit`` bytes; they raise :class:`FileGuardError` and each caller
  words its own one-line message from it.

Lives at the bottom layer (no pandas, no numpy) so that trees, traces and the simulator can
use it.
"""

from __future__ import annotations

import json
import os
import resource
import stat
from pathlib import Path
from typing import Any, BinaryIO

#: the share of the available memory a reader may plan to use
MEMORY_FRACTION = 0.8
#: tests (and embedding code) may set a fixed limit in bytes here; ``None``: from the machine
MAX_MEMORY_BYTES: int | None = None


class DuplicateKeyError(ValueError):
    """A JSON object holds the same key twice (``key``: that key)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}"[:200])
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


def strict_json_loads(text: str | bytes) -> Any:
    """``json.loads`` that raises :class:`DuplicateKeyError` on a repeated object key.

    Raises
    ------
    DuplicateKeyError
        A key appears twice in one object (a ``ValueError``).
    json.JSONDecodeError, RecursionError
        As ``json.loads``.
    """
    return json.loads(text, object_pairs_hook=_no_duplicates)


class FileGuardError(ValueError):
    """``path`` is not a regular file (``kind`` says what it is, ``size`` is ``None``) or holds
    more than ``limit`` bytes (``size``: its size, or ``limit + 1`` when only that much was read)."""

    def __init__(self, path: Path, limit: int, kind: str | None = None, size: int | None = None) -> None:
        super().__init__(f"{path}: " + (f"not a regular file ({kind})" if kind else f"{size} bytes, over {limit}"))
        self.path, self.limit, self.kind, self.size = path, limit, kind, size


def file_kind(mode: int) -> str:
    """What a non-regular ``st_mode`` is, in words (``"a FIFO"``, ``"a directory"``, ...)."""
    return ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
            "a special file")


def _check_stat(path: Path, st: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise FileGuardError(path, limit, kind=file_kind(st.st_mode))
    if st.st_size > limit:
        raise FileGuardError(path, limit, size=st.st_size)


def check_regular(path: Path, limit: int) -> int:
    """The size of ``path`` (links followed) when it is a regular file of at most ``limit``
    bytes, for a caller that streams it.

    Raises
    ------
    FileGuardError
        Not a regular file, or larger than ``limit``.
    OSError
        As ``os.stat`` (``FileNotFoundError`` included).
    """
    st = os.stat(path)
    _check_stat(path, st, limit)
    return st.st_size


def open_regular(path: Path, limit: int | None = None) -> BinaryIO:
    """A binary file object on ``path`` when it is a regular file (of at most ``limit`` bytes
    when given).  Opened without blocking and checked again on the open descriptor, so a file
    swapped for a FIFO after the first check cannot block the reader.

    Raises
    ------
    FileGuardError
        Not a regular file, or larger than ``limit``.
    OSError
        As ``os.stat`` / ``os.open`` (``FileNotFoundError`` included).
    """
    cap = (1 << 62) if limit is None else limit
    _check_stat(path, os.stat(path), cap)  # first: a socket cannot even be opened
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        _check_stat(path, os.fstat(fd), cap)  # before fdopen, which refuses a directory itself
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of ``path`` when it is a regular file of at most ``limit`` bytes
    (:func:`open_regular`); never more than ``limit + 1`` bytes are read.

    Raises
    ------
    FileGuardError
        Not a regular file, or larger than ``limit``.
    OSError
        As ``os.open`` (``FileNotFoundError`` included).
    """
    with open_regular(path, limit) as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # grew after the check
        raise FileGuardError(path, limit, size=len(data))
    return data


def _vm_size() -> int:
    """Bytes of address space this process maps now (0 where ``/proc`` cannot tell)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cgroup_limit() -> int | None:
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(f).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # cgroup v1 says "no limit" with a huge number
            return int(text)
    return None


def memory_limit() -> tuple[int, str]:
    """``(bytes, why)``: what a reader may allocate and where that number comes from."""
    if MAX_MEMORY_BYTES is not None:
        return int(MAX_MEMORY_BYTES), "the limit set in traces.guards.MAX_MEMORY_BYTES"
    found = [(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine's memory")]
    cg = _cgroup_limit()
    if cg is not None:
        found.append((cg, "the cgroup's memory limit"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        found.append((max(soft - _vm_size(), 0), "what `ulimit -v` leaves to this process"))
    size, why = min(found)
    return int(MEMORY_FRACTION * size), f"{MEMORY_FRACTION:.0%} of {why}"


def memory_problem(what: str, parts: list[tuple[str, float]], doing: str = "loading it",
                   limit: tuple[int, str] | None = None, hint: str = "") -> str | None:
    """One line when the estimated ``parts`` (``(description, bytes)``) exceed the limit
    (default :func:`memory_limit`), else ``None``.  ``what`` names the file (or flag)."""
    need = float(sum(b for _, b in parts))
    lim, why = limit or memory_limit()
    if need <= lim:
        return None
    big = sorted(parts, key=lambda p: -p[1])[:3]
    detail = "; ".join(f"{d}: {_gb(b)}" for d, b in big if b > 0)
    return (f"{what}: {doing} would need about {_gb(need)} of memory ({detail}), over the {_gb(lim)} limit ({why})"
            + (f"; {hint}" if hint else ""))


def _gb(b: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= scale:
            return f"{b / scale:.2f} {unit}"
    return f"{b:.0f} bytes"
