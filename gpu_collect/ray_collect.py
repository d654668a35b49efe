"""Sharded collection on a Ray cluster: one collector per GPU, merged into one trace.

    python -m gpu_collect ray --shards 8 [--address ray://head:10001] [--num-gpus 1] \\
        --out traces/my-trace -- --target smollm2-135m --drafter pld --drafter early:24 \\
        --prompts question.jsonl --max-new-tokens 256 --k-max 8

Everything after ``--`` is passed to ``collect_traces.py`` unchanged, plus ``--shard I/N`` and
a per-task output directory.  Each Ray task asks for ``--num-gpus`` GPUs (Ray sets
``CUDA_VISIBLE_DEVICES``, so ``--device auto`` picks the task's GPU), collects its shard into
a local temporary directory and returns the shard's files as bytes, so nodes need no shared
filesystem for outputs.  The driver writes them under ``OUT.shards/``, merges with
``traces.merge_shards`` and writes a validated trace to ``OUT``.  A failed shard fails the
run with its error line; finished shards stay in ``OUT.shards/`` and are reused by a rerun.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def collect_shard(args: list[str], index: int, count: int) -> dict[str, bytes]:
    """Run one collector shard in a temporary directory; return its trace files."""
    import contextlib
    import io
    import tempfile

    from gpu_collect.collect_cmd import add_collect_arguments, run_collect
    from gpu_collect.errors import CollectError
    from traces import TraceError
    from traces import clikit as ck

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"shard-{index}"
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            ap = argparse.ArgumentParser(prog=f"collect shard {index}/{count}")
            add_collect_arguments(ap)
            ap.set_defaults(fn=run_collect)
            rc = ck.run(ap, [*args, "--shard", f"{index}/{count}", "--out", str(out), "--quiet"],
                        (CollectError, TraceError, ValueError))
        if rc != 0:
            raise RuntimeError(f"shard {index}/{count}: " + (err.getvalue().strip().splitlines() or ["failed"])[-1])
        return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def run(shards: int, out: Path, collector_args: list[str], address: str | None = None, num_gpus: float = 1,
        num_cpus: float = 1) -> Path:
    import ray

    import traces
    from traces.merge import merge_shards

    parts = Path(f"{out}.shards")
    parts.mkdir(parents=True, exist_ok=True)
    if not ray.is_initialized():
        from traces.clikit import check_reachable

        check_reachable(address)
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    task = ray.remote(num_gpus=num_gpus, num_cpus=num_cpus, max_retries=0)(collect_shard)
    todo = [i for i in range(shards) if not (parts / str(i) / "manifest.json").exists()]
    refs = {task.remote(collector_args, i, shards): i for i in todo}
    while refs:
        done, _ = ray.wait(list(refs), num_returns=1)
        i = refs.pop(done[0])
        files = ray.get(done[0])
        d = parts / str(i)
        d.mkdir(exist_ok=True)
        for name, blob in files.items():
            (d / name).write_bytes(blob)
        print(f"shard {i}/{shards} done", file=sys.stderr)
    merged = merge_shards([traces.load(parts / str(i)) for i in range(shards)])
    traces.write(merged, out, overwrite=True)
    return out


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--shards", type=int, required=True, help="number of shards (one Ray task each)")
    ap.add_argument("--out", required=True, help="trace directory of the merged result")
    ap.add_argument("--address", default=None, help="Ray cluster address (default: a local instance)")
    ap.add_argument("--num-gpus", type=float, default=1, help="GPUs per task (0 for CPU collection)")
    ap.add_argument("--num-cpus", type=float, default=1, help="CPUs per task")
    ap.add_argument("collector_args", nargs=argparse.REMAINDER,
                    help="after '--': the arguments of `python -m gpu_collect collect` (no --out/--shard/--resume)")


def run_cli(a: argparse.Namespace) -> int:
    from traces.clikit import UsageError

    rest = list(a.collector_args)
    if rest and rest[0] == "--":
        rest = rest[1:]
    if not rest:
        raise UsageError("ray: collector arguments go after '--' (see python -m gpu_collect collect --help)")
    if any(x in rest for x in ("--out", "--shard", "--resume")):
        raise UsageError("ray: --out, --shard and --resume are set by the launcher")
    try:
        out = run(a.shards, Path(a.out), rest, a.address, a.num_gpus, a.num_cpus)
    except RuntimeError as exc:  # Ray's errors carry the worker's traceback: keep its last line
        raise UsageError(str(exc).splitlines()[-1] if str(exc) else type(exc).__name__) from None
    print(f"wrote {out}")
    return 0

