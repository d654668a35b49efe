"""One writer for every output folder: ``simulator run|serve``, ``experiments figures|table|plot|
theory|arms-scaling|survival|chain-vs-tree|export-specbench``, ``traces import|synth|merge`` and
the collector's final write.

The rules (docs/reliability.md, "Output folders"):

* ``--out`` names a folder: ``''``, ``.``, ``/`` and a path through a symbolic link's last step are
  refused;
* one writer at a time: an exclusive ``flock`` on ``PARENT/.NAME.specregret.lock``, taken at once
  or refused in one line (the kernel drops it when the process dies);
* everything is written into a fresh temporary sibling ``PARENT/.NAME.XXXX`` (mode 0700, made by
  ``mkdtemp``: nothing in it can be a link planted beforehand) and moved into place only when
  complete, by one atomic exchange of the two folders (``renameat2(RENAME_EXCHANGE)``; two
  renames where the kernel lacks it), so ``OUT`` is the old folder or the new one, never a mix;
* a folder the toolkit did not write is never replaced or deleted: ``OUT`` may be replaced only when
  every entry in it was written by this toolkit (listed in its mark ``.specregret-out.json``, or a
  sub-folder with its own mark, or an export file with its sidecar), and only by a writer of the
  same kind (``run`` cannot replace a ``serve`` folder);
* a temporary folder left by a killed writer (its mark names a process that is gone) is removed by
  the next write to the same ``OUT``; nothing unmarked is touched.

Lives at the bottom layer so that every package can use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from fnmatch import fnmatch
from pathlib import Path

MARK = ".specregret-out.json"  # in every folder this module wrote: kind, files, time
PARTIAL_MARK = ".specregret-partial"  # in a write's temp folder: the writing process's pid
LOCK_SUFFIX = ".specregret.lock"
SIDECAR = ".specregret.json"  # export-specbench's mark beside each file it wrote


class OutputError(ValueError):
    """An output path that cannot be written as asked (exit 2, one line)."""


# -- the path ---------------------------------------------------------------------------------
def check_out(out: str | os.PathLike[str], flag: str = "--out") -> Path:
    """``out`` as a path that can name an output folder or file, or one line saying why not."""
    text = os.fspath(out)
    if not str(text).strip():
        raise OutputError(f"{flag} '': expected a folder name (an empty path would write into the current "
                          "directory)")
    p = Path(text)
    if p.name in ("", ".", ".."):
        raise OutputError(f"{flag} {text}: expected a folder name, not {text!r} (it would write into an "
                          "existing directory that is not the toolkit's)")
    if p.is_symlink():
        raise OutputError(f"{flag} {text}: is a symbolic link; name the folder itself (writes never follow links)")
    if p.exists() and not p.is_dir():
        raise OutputError(f"{flag} {text}: exists and is not a folder ({_kind(p)})")
    return p


def _kind(p: Path) -> str:
    try:
        m = os.lstat(p).st_mode
    except OSError:
        return "missing"
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
                       (stat.S_ISREG, "a file")):
        if test(m):
            return name
    return "a special file"


# -- one writer at a time ---------------------------------------------------------------------
class FolderLock:
    """An exclusive ``flock`` on ``PARENT/.NAME.specregret.lock``, refused at once when another
    writer holds it (in this process or another)."""

    def __init__(self, out: Path, what: str = "specregret command") -> None:
        import fcntl

        self.path = out.parent / f".{out.name}{LOCK_SUFFIX}"
        self.fd: int | None = None
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{out}: cannot create its folder {out.parent} ({exc.strerror})") from None
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise OutputError(f"{self.path}: cannot create the lock ({exc.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputError(f"{out}: another {what} is writing there (it holds {self.path}); wait for it "
                                  "to finish or choose another --out") from None
            try:  # the holder before us may have removed the file after we opened it: lock the one on disk
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still holding it: the next writer checks the inode
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- whose folder is it -----------------------------------------------------------------------
def read_mark(folder: Path) -> dict | None:
    """The mark of a folder this module wrote, or None (no mark, or not a regular JSON object)."""
    p = folder / MARK
    try:
        if not stat.S_ISREG(os.lstat(p).st_mode):
            return None
        m = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    return m if isinstance(m, dict) and isinstance(m.get("kind"), str) else None


def _ours(entry: Path, listed: set[str], depth: int = 0, globs: tuple[str, ...] = ()) -> bool:
    """True for an entry this toolkit wrote: listed in the folder's mark, a lock or temp folder of
    ours, a marked sub-folder, an export file with its sidecar (or the sidecar), or a folder of
    only such things."""
    name = entry.name
    try:
        mode = os.lstat(entry).st_mode
    except OSError:
        return True  # gone meanwhile
    if stat.S_ISLNK(mode):
        return False
    if name in listed or name == MARK or name.endswith(LOCK_SUFFIX) or any(fnmatch(name, g) for g in globs):
        return True
    if stat.S_ISREG(mode):
        if name.endswith(SIDECAR):
            return True
        return (entry.parent / (name + SIDECAR)).is_file()
    if stat.S_ISDIR(mode) and depth < 4:
        if read_mark(entry) is not None or (entry / PARTIAL_MARK).is_file():
            return True
        try:
            children = list(entry.iterdir())
        except OSError:
            return False
        return bool(children) and all(_ours(c, set(), depth + 1) for c in children)
    return False


def foreign_entries(out: Path, legacy: Iterable[str] = ()) -> tuple[str | None, list[str]]:
    """(the folder's kind or None, entries the toolkit did not write).  ``legacy``: names (glob
    patterns) that a folder written before marks existed may hold (used only when it has no mark)."""
    mark = read_mark(out)
    kind = mark["kind"] if mark else None
    listed = set(mark.get("files", [])) if mark and isinstance(mark.get("files"), list) else set()
    globs = () if mark else tuple(legacy)
    try:
        entries = sorted(out.iterdir())
    except OSError as exc:
        raise OutputError(f"{out}: cannot list the folder ({exc.strerror})") from None
    return kind, [e.name for e in entries if not _ours(e, {str(x) for x in listed}, globs=globs)]


def check_replaceable(out: Path, kind: str, kinds: Iterable[str] = (), legacy: Iterable[str] = (),
                      legacy_ok: bool = False, what: str = "") -> None:
    """Refuse, in one line, to replace ``out`` unless it is absent, empty, or a folder this toolkit
    wrote for the same kind of output (``kinds``: other kinds it may replace)."""
    if not out.exists():
        return
    mark_kind, foreign = foreign_entries(out, legacy)
    try:
        empty = not any(out.iterdir())
    except OSError:
        empty = False
    if empty:
        return
    ok_kinds = {kind, *kinds}
    if mark_kind is not None and mark_kind not in ok_kinds:
        raise OutputError(f"{out}: holds the output of {_KIND_NAMES.get(mark_kind, mark_kind)}; "
                          f"{what or _KIND_NAMES.get(kind, kind)} does not replace it: choose another --out")
    if mark_kind is None and not legacy_ok:
        raise OutputError(f"{out}: exists and was not written by {what or _KIND_NAMES.get(kind, kind)} (no "
                          f"{MARK}); it is left alone: choose another --out")
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise OutputError(f"{out}: holds {', '.join(foreign[:3])}{more}, not written by this toolkit; it is left "
                          "alone: choose another --out")


_KIND_NAMES = {"run": "`simulator run`", "serve": "`simulator serve`", "figures": "`experiments figures`",
               "table": "`experiments table`", "plot": "`experiments plot`", "theory": "`experiments theory`",
               "arms-scaling": "`experiments arms-scaling`", "survival": "`experiments survival`",
               "chain-vs-tree": "`experiments chain-vs-tree`", "trace": "a trace writer"}


# -- temp folders and the swap ----------------------------------------------------------------
def remove_stale_temps(out: Path) -> None:
    """Remove the temp folders of earlier writes to ``out`` whose process is gone (a SIGKILL
    leaves one next to ``out``).  Only folders holding our mark with a dead pid are touched."""
    for d in out.parent.glob(f".{out.name}.*"):
        mark = d / PARTIAL_MARK
        try:
            pid = int(mark.read_text()) if d.is_dir() and not d.is_symlink() and mark.is_file() else None
        except (OSError, ValueError):
            continue
        if pid is None or pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass  # alive under another user: not ours to judge


def make_temp(out: Path) -> Path:
    """A fresh temp sibling of ``out`` marked with this process's pid."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        (tmp / PARTIAL_MARK).write_text(str(os.getpid()))
    except OSError as exc:
        raise OutputError(f"{out.parent}: cannot write ({exc.strerror})") from None
    return tmp


_RENAME_EXCHANGE = 2
_libc = None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with ``renameat2(RENAME_EXCHANGE)``; False where unsupported."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _libc.renameat2  # noqa: B018 -- missing on old C libraries
        except (OSError, AttributeError):
            _libc = False
    if not _libc:
        return False
    at_fdcwd = -100
    rc = _libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_mark(folder: Path, kind: str, extra: dict | None = None) -> None:
    files = sorted(e.name for e in folder.iterdir() if e.name not in (MARK, PARTIAL_MARK))
    body = {"kind": kind, "files": files, "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(extra or {})}
    (folder / MARK).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def install(tmp: Path, out: Path) -> None:
    """Move the complete ``tmp`` into place as ``out`` (the old ``out``, if any, is then removed)."""
    (tmp / PARTIAL_MARK).unlink(missing_ok=True)
    os.chmod(tmp, 0o777 & ~_umask())  # private while written (mkdtemp's 0700), then as any new folder
    if out.exists():
        if _exchange(tmp, out):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
            return
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        (old / PARTIAL_MARK).write_text(str(os.getpid()))
        os.replace(out, old / "old")
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike[str], kind: str, *, replace: bool = True, kinds: Iterable[str] = (),
                  legacy: Iterable[str] = (), legacy_ok: bool = False, seed_from: Iterable[str] = (),
                  flag: str = "--out", what: str = "", locked: bool = False) -> Iterator[Path]:
    """Write an output folder as a whole: yields a temp folder to write into; on success it gets
    a mark and replaces ``out`` in one step; on any failure (Ctrl-C and SIGTERM included) it is
    removed and ``out`` is left as it was.

    Parameters
    ----------
    kind : the kind of output (``run``, ``serve``, ``figures``, ``trace`` ...), recorded in the mark.
    replace : False refuses an existing, non-empty ``out`` (a trace writer without --overwrite).
    kinds : other kinds this writer may replace.
    legacy, legacy_ok : a folder without a mark may be replaced when ``legacy_ok`` and every entry
        is named in ``legacy`` (outputs written before marks existed).
    seed_from : names copied from the old ``out`` into the temp folder first (``--render-only``
        redraws from the saved ``data/``).
    locked : the caller already holds ``out``'s :class:`FolderLock` (the collector, for its run).
    """
    p = check_out(out, flag)
    with contextlib.nullcontext() if locked else FolderLock(p):
        if p.exists() and not replace and any(p.iterdir()):
            raise OutputError(f"{p}: already exists (pass --overwrite to replace a folder this toolkit wrote)")
        check_replaceable(p, kind, kinds, legacy, legacy_ok, what)
        remove_stale_temps(p)
        tmp = make_temp(p)
        try:
            for name in seed_from:
                src = p / name
                if src.is_dir() and not src.is_symlink():
                    shutil.copytree(src, tmp / name, symlinks=True)
            try:
                yield tmp
                write_mark(tmp, kind)
                install(tmp, p)
            except OSError as exc:  # a full disk: say where, and that nothing was replaced
                if exc.filename and str(exc.filename).startswith(str(p.parent)) and exc.strerror:
                    raise OutputError(f"{p}: cannot write ({exc.strerror}); {p} is left as it was") from None
                if not exc.filename:
                    raise OutputError(f"{p}: cannot write ({exc.strerror or exc}); {p} is left as it was") from None
                raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


# -- single files (export-specbench) ----------------------------------------------------------
@contextlib.contextmanager
def staged_file(path: str | os.PathLike[str], flag: str = "--out") -> Iterator[Path]:
    """Yield a fresh temp path beside ``path`` to write a file into; it replaces ``path`` by one
    rename when the block completes (a link at ``path`` is replaced, never written through), and
    is removed otherwise.  A folder or special file at ``path`` is refused."""
    p = Path(path)
    if not str(path).strip() or p.name in ("", ".", ".."):
        raise OutputError(f"{flag} {str(path)!r}: expected a file name")
    if p.exists() and not p.is_symlink() and not p.is_file():
        raise OutputError(f"{flag} {p}: exists and is not a file ({_kind(p)})")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 while written, then as any new file
        os.replace(tmp, p)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def write_file_atomic(path: Path, body: str) -> None:
    """Write ``body`` to ``path`` through a fresh temp file in the same folder (``O_EXCL``: never
    a planted link) and one rename; the rename replaces a link itself, never what it points to."""
    with staged_file(path) as tmp:
        tmp.write_text(body, encoding="utf-8")
