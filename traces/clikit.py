"""One CLI grammar for ``python -m traces | simulator | experiments | gpu_collect``.

* the same flag names for the same things: ``--trace`` (a trace directory or ``builtin:NAME``)
  to read a trace, ``--results DIR`` to read a results folder, ``--out DIR`` to write one,
  ``--seed``, ``--runs``, ``--quiet``;
* one list syntax: comma-separated items, integers also as ranges ``A-B``
  (``--batch-sizes 1-16,32``); flags whose items contain commas themselves (``--policy``,
  ``--drafter``) are repeated instead;
* exit codes: 0 success, 1 a check that ran and failed, 2 bad input (argparse's own usage
  errors included), 130 interrupted; every error is one line on stderr, never a traceback;
* ``--help`` lists every verb, and every flag has help text (tested).

Lives at the bottom layer so that every package's CLI can use it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, what a shell reports for a process killed by it


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, Slurm, Kubernetes) raised as an interrupt, so that everything that
    cleans up after Ctrl-C (temp folders, partial files, locks) does so after SIGTERM too."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def handle_sigterm() -> None:
    """Turn SIGTERM into :class:`Terminated` in this (main) thread."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def interrupted(message: str = "error: interrupted") -> int:
    """Print ``message`` for a Ctrl-C that was caught and return 130.

    CPython (3.10 to 3.13, checked) flags a ``KeyboardInterrupt`` raised inside ``exec`` of a string as
    unhandled even when it is then caught, and at exit kills the process by SIGINT (return code
    -2) instead of returning the exit code.  dataclasses build their methods with such an
    ``exec``, so a Ctrl-C while torch imports hits it.  Every string ``exec`` clears the flag
    first (``run_eval_code_obj``), so an empty one undoes it.
    """
    exec("")  # noqa: S102 -- a constant string: clears the flag described above
    print(message, file=sys.stderr)
    return EXIT_INTERRUPTED


class UsageError(ValueError):
    """Bad command-line input (exit 2)."""


def int_list(text: str) -> tuple[int, ...]:
    """``"1-4,8"`` -> ``(1, 2, 3, 4, 8)``: comma-separated integers and ``A-B`` ranges."""
    out: list[int] = []
    for item in (s.strip() for s in str(text).split(",")):
        if not item:
            continue
        lo, dash, hi = item.partition("-")
        try:
            a, b = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected integers or ranges A-B, comma-separated; got {item!r}") from None
        if b < a:
            raise argparse.ArgumentTypeError(f"range {item!r}: expected A <= B")
        out.extend(range(a, b + 1))
    if not out:
        raise argparse.ArgumentTypeError(f"expected at least one integer, got {text!r}")
    return tuple(out)


def float_list(text: str) -> tuple[float, ...]:
    """``"0.8,0.6"`` -> ``(0.8, 0.6)``."""
    try:
        out = tuple(float(s) for s in str(text).split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not out:
        raise argparse.ArgumentTypeError(f"expected at least one number, got {text!r}")
    return out


def str_list(text: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``."""
    out = tuple(s.strip() for s in str(text).split(",") if s.strip())
    if not out:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return out


def _int_at_least(lo: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {v}")
        return v

    return parse


positive_int = _int_at_least(1)
nonneg_int = _int_at_least(0)


def positive_float(text: str) -> float:
    """A finite number > 0 (``nan``, ``inf``, 0 and negatives are refused)."""
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return v


def check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail fast with one line when ``address`` (``host:port`` or ``ray://host:port``) does not
    accept connections; Ray itself retries for minutes.  ``None`` and ``auto`` pass."""
    import socket

    if not address or address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address: expected HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UsageError(f"--address {address}: cannot connect ({exc.strerror or exc})") from None



# -- the common flags -------------------------------------------------------------------------
def add_trace(p: argparse.ArgumentParser, required: bool = True, default: str | None = None) -> None:
    p.add_argument("--trace", required=required and default is None, default=default,
                   help="trace directory or builtin:NAME (python -m traces list)"
                        + (f"; default {default}" if default else ""))


def add_out(p: argparse.ArgumentParser, what: str = "results folder to write", required: bool = True) -> None:
    p.add_argument("--out", required=required, help=what)


def add_results(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", required=True, help="results folder written by `simulator run` (or serve)")


def add_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=nonneg_int, default=0, help="root seed of every random number (default 0)")


def add_runs(p: argparse.ArgumentParser, default: int) -> None:
    p.add_argument("--runs", type=positive_int, default=default,
                   help=f"independent runs per prompt (default {default})")


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars or tables on stdout")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2 (its default too, kept explicit)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message}\n")


def make_parser(prog: str, description: str) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    ap = _Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="VERB", parser_class=_Parser)
    return ap, sub


def finish(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """List every verb with its help in ``--help`` (after all verbs were added)."""
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    width = max(len(v) for v in sub.choices)
    ap.epilog = "verbs:\n" + "\n".join(f"  {v:<{width}}  {helps.get(v, '')}" for v in sub.choices)
    return ap


def run(ap: argparse.ArgumentParser, argv: Sequence[str] | None, errors: tuple[type[BaseException], ...],
        check_failed: Callable[[BaseException], bool] | None = None) -> int:
    """Parse ``argv``, run the verb, and map failures to one line and an exit code: ``errors``
    (bad input) -> 2, ``OSError`` -> 2 with the path, Ctrl-C -> 130, SIGTERM -> 143, a worker
    process that died -> 1."""
    from concurrent.futures.process import BrokenProcessPool

    handle_sigterm()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # usage errors (2) and --help (0), returned like any other exit
        return int(exc.code or 0)
    try:
        return int(args.fn(args))
    except BrokenPipeError:  # e.g. `... | head`
        return EXIT_OK
    except Terminated:
        interrupted("error: terminated (SIGTERM)")
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        return interrupted()
    except BrokenProcessPool:
        print("error: a worker process died (killed by a signal, e.g. the out-of-memory killer); nothing was "
              "written: rerun with fewer --workers or --runs", file=sys.stderr)
        return EXIT_CHECK_FAILED
    except errors as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_CHECK_FAILED if check_failed and check_failed(exc) else EXIT_BAD_INPUT
    except OSError as exc:  # unwritable or impossible path, disk full, ...
        msg = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split("\n")).strip() or type(exc).__name__
