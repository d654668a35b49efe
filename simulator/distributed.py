"""Ray backend for simulator sweeps (``python -m simulator run ... --backend ray``).

The runner splits work into (policy, prompt chunk, run chunk) tasks whose random numbers are
fixed by the root seed and the counters (prompt, run, round) before any splitting
(``simulator/rng.py``), so a task's result does not depend on where or in which order it
runs: a Ray sweep is bit-identical to a local one (tested).  Workers load the trace
themselves: use ``builtin:`` traces or a path every node can read (shared filesystem), and
have ``specregret`` installed on every node (``docs/scaling.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from traces.clikit import UsageError, check_reachable


class BackendError(RuntimeError):
    """Ray is missing or the cluster cannot be reached."""


def _init(address: str | None) -> Any:
    try:
        import ray
    except ImportError:
        raise BackendError("backend 'ray' needs ray: pip install 'specregret[cluster]' (or ray>=2.9)") from None
    if not ray.is_initialized():
        try:
            check_reachable(address)
        except UsageError as exc:
            raise BackendError(str(exc)) from None
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BackendError(f"ray: cannot connect to {address or 'a local instance'}: {exc}") from None
    return ray


def single_threaded() -> None:
    """Worker processes use one thread each (the processes are the parallelism)."""
    from . import kernels

    if kernels.AVAILABLE:
        import numba

        numba.set_num_threads(1)


def _call_single_threaded(fn: Callable, job: Any) -> Any:
    single_threaded()
    return fn(job)


def ray_map(fn: Callable, jobs: Iterable, address: str | None = None, num_cpus: float = 1) -> Iterator:
    """Yield ``fn(job)`` for every job, computed as Ray tasks, in completion order."""
    ray = _init(address)
    task = ray.remote(num_cpus=num_cpus)(_call_single_threaded)
    pending = [task.remote(fn, j) for j in jobs]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])
