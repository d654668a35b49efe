"""Sharded collection on a Ray cluster: one collector per GPU, merged into one trace.

    python gpu_collect/ray_collect.py --shards 8 [--address ray://head:10001] [--num-gpus 1] \\
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

    from gpu_collect.collect_traces import main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"shard-{index}"
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main([*args, "--shard", f"{index}/{count}", "--out", str(out), "--quiet"])
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
        from simulator.distributed import check_reachable

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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--" in argv:
        k = argv.index("--")
        argv, rest = argv[:k], argv[k + 1 :]
    ap = argparse.ArgumentParser(prog="ray_collect.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=int, required=True, help="number of shards (one Ray task each)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--address", default=None, help="Ray cluster address (default: a local instance)")
    ap.add_argument("--num-gpus", type=float, default=1, help="GPUs per task (0 for CPU collection)")
    ap.add_argument("--num-cpus", type=float, default=1, help="CPUs per task")
    a = ap.parse_args(argv)
    if not rest:
        ap.error("collector arguments go after '--' (see collect_traces.py --help)")
    if any(x in rest for x in ("--out", "--shard", "--resume")):
        ap.error("--out, --shard and --resume are set by the launcher")
    try:
        out = run(a.shards, Path(a.out), rest, a.address, a.num_gpus, a.num_cpus)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"error: {str(exc).splitlines()[-1] if str(exc) else exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
