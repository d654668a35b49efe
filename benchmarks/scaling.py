"""Speed-up of a simulator sweep from 1 to 2 workers, local processes and Ray, side by side.

    .venv/bin/python benchmarks/scaling.py [--runs 20]

The sweep is numpy-path work (HedgeSpec, Thompson sampling and structured UCB over 40 arms on
the bundled SmolLM2 trace), the kind the compiled kernels do not cover.  Each configuration is
timed end to end (worker start-up included) and checked to give the same table as 1 local
worker.  Ray runs on a local instance started with ``num_cpus`` = the worker count.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator.runner import RunConfig, run_experiment  # noqa: E402


def timed(cfg: RunConfig):
    t0 = time.perf_counter()
    df, _ = run_experiment(cfg, progress=False)
    return df, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200)
    a = ap.parse_args()
    cfg = RunConfig(trace="builtin:smollm2-greedy", setting="replay", runs=a.runs, seed=0,
                    arms="pld@1-8,rtn4@1-8,skip5-24@1-8,early28@1-8,hf-rtn3@1-8",
                    policies=("hedgespec", "thompson", "structured-ucb"))
    ref, t1 = timed(cfg)
    rounds = int(ref["stopping_time"].sum())
    print(f"sweep: 3 policies x 40 arms x 84 prompts x {a.runs} runs = {rounds:,} policy-rounds")
    print(f"local, 1 worker : {t1:6.1f} s")
    df, t2 = timed(replace(cfg, workers=2))
    assert df.drop(columns="pulls").equals(ref.drop(columns="pulls"))
    print(f"local, 2 workers: {t2:6.1f} s   speed-up x{t1 / t2:.2f}   identical results")
    try:
        import ray
    except ImportError:
        print("ray not installed: Ray rows skipped")
        return 0
    times = {}
    for n in (1, 2):
        ray.init(num_cpus=n, include_dashboard=False, log_to_driver=False, configure_logging=False)
        timed(replace(cfg, backend="ray", workers=n, runs=1))  # start the workers
        df, times[n] = timed(replace(cfg, backend="ray", workers=n))
        ray.shutdown()
        assert df.drop(columns="pulls").equals(ref.drop(columns="pulls"))
        print(f"ray, {n} CPU{'s' if n > 1 else ' '}   : {times[n]:6.1f} s" +
              (f"   speed-up x{times[1] / times[2]:.2f} over 1 CPU, x{t1 / times[2]:.2f} over local 1 worker"
               if n == 2 else "") + "   identical results")
    return 0


if __name__ == "__main__":
    sys.exit(main())
