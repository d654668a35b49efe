"""Marginal end-to-end throughput of ``python -m simulator run`` (issue "12."): policy-rounds
per second between a small and a large sweep of the whole command line on the bundled trace,
so start-up (imports, trace loading, compilation from cache) cancels, measured side by side.

    .venv/bin/python benchmarks/cli_throughput.py [--small 1000] [--large 4000] [--quick]

A policy-round is one select + emit + update of one (prompt, run) lane.  Rounds are read from
the written results (sum of ``stopping_time``), times are wall-clock seconds of the command.
Arms: the trace's 16 drafters at K = 4 (``*@4``, UCBSpec K = 16).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
CASES = [  # (policy, setting, extra flags)
    ("ucbspec", "replay", []),
    ("ucbspec", "stochastic", []),
    ("ucbspec", "adversarial", []),
    ("hedgespec", "replay", []),
    ("thompson", "replay", []),
    ("exp3spec", "replay", []),
    ("ucbspec", "replay", ["--carry-state"]),
]


def run(policy: str, setting: str, extra: list[str], runs: int, out: Path) -> tuple[float, int]:
    cmd = [sys.executable, "-m", "simulator", "run", "--trace", "builtin:smollm2-greedy", "--policy", policy,
           "--setting", setting, "--arms", "*@4", "--runs", str(runs), "--out", str(out), "--quiet", *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    rounds = int(pq.read_table(out / "results.parquet", columns=["stopping_time"]).column(0).to_numpy().sum())
    return dt, rounds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--large", type=int, default=4000)
    ap.add_argument("--quick", action="store_true", help="100 and 400 runs, UCBSpec replay only")
    a = ap.parse_args()
    cases = CASES[:1] if a.quick else CASES
    small, large = (100, 400) if a.quick else (a.small, a.large)
    print(f"{'policy':<10} {'setting':<12} {'flags':<14} {'rounds':>12} {'s(' + str(small) + ')':>8} "
          f"{'s(' + str(large) + ')':>8} {'marginal M rounds/s':>20}")
    with tempfile.TemporaryDirectory() as tmp:
        for pol, setting, extra in cases:
            run(pol, setting, extra, 10, Path(tmp) / "warm")  # compile into numba's cache first
            t1, n1 = run(pol, setting, extra, small, Path(tmp) / "a")
            t2, n2 = run(pol, setting, extra, large, Path(tmp) / "b")
            rate = (n2 - n1) / max(t2 - t1, 1e-9) / 1e6
            print(f"{pol:<10} {setting:<12} {' '.join(extra):<14} {n2 - n1:>12} {t1:8.2f} {t2:8.2f} {rate:20.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
