"""Marginal end-to-end throughput of ``python -m simulator run`` (issue "12."): policy-rounds
per second between a small and a large sweep of the whole command line on the bundled trace,
so start-up (imports, trace loading, compilation from cache) cancels, measured side by side.

    .venv/bin/python benchmarks/cli_throughput.py [--small 1000] [--large 4000] [--repeat 3] [--quick] [--only POLICY]
        [--plugin] [--trace builtin:smollm2-greedy] [--arms '*@4']

``--plugin``: built-in UCBSpec and the same learner as a plug-in in the compiled form
(``benchmarks/compiled_plugin.py``, loaded with ``--policy-module``) in replay, stochastic and
adversarial, side by side in one run, with the plug-in's share of the built-in's rate.

A policy-round is one select + emit + update of one (prompt, run) lane.  Rounds are read from
the written results (sum of ``stopping_time``), times are wall-clock seconds of the command.
Arms: by default every drafter of the trace at K = 4 (``*@4``; the bundled trace: K = 16).
Each size runs ``--repeat`` times, alternating, and the fastest of each is kept: this machine
is shared, and the minimum is the least disturbed estimate of what the command costs.
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
PLUGIN = ["--policy-module", str(ROOT / "benchmarks" / "compiled_plugin.py")]
PLUGIN_CASES = [c for s in ("replay", "stochastic", "adversarial")
                for c in (("ucbspec", s, []), ("ucbspec-plugin", s, PLUGIN))]


def run(policy: str, setting: str, extra: list[str], runs: int, out: Path, trace: str,
        arms: str) -> tuple[float, int]:
    cmd = [sys.executable, "-m", "simulator", "run", "--trace", trace, "--policy", policy,
           "--setting", setting, "--arms", arms, "--runs", str(runs), "--out", str(out), "--quiet", *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    rounds = int(pq.read_table(out / "results.parquet", columns=["stopping_time"]).column(0).to_numpy().sum())
    return dt, rounds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--large", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each size; the fastest is kept")
    ap.add_argument("--trace", default="builtin:smollm2-greedy")
    ap.add_argument("--arms", default="*@4")
    ap.add_argument("--quick", action="store_true", help="100 and 400 runs, UCBSpec replay only")
    ap.add_argument("--only", metavar="POLICY", help="only the cases of this policy")
    ap.add_argument("--plugin", action="store_true", help="UCBSpec built in vs as a compiled plug-in, 3 settings")
    a = ap.parse_args()
    cases = PLUGIN_CASES if a.plugin else CASES[:1] if a.quick else [c for c in CASES if a.only in (None, c[0])]
    rates: dict[tuple[str, str], float] = {}
    small, large = (100, 400) if a.quick else (a.small, a.large)
    print(f"{'policy':<10} {'setting':<12} {'flags':<14} {'rounds':>12} {'s(' + str(small) + ')':>8} "
          f"{'s(' + str(large) + ')':>8} {'marginal M rounds/s':>20}")
    with tempfile.TemporaryDirectory() as tmp:
        for pol, setting, extra in cases:
            run(pol, setting, extra, 10, Path(tmp) / "warm", a.trace, a.arms)  # compile into numba's cache
            t1 = t2 = float("inf")
            for _ in range(max(a.repeat, 1)):
                dt, n1 = run(pol, setting, extra, small, Path(tmp) / "a", a.trace, a.arms)
                t1 = min(t1, dt)
                dt, n2 = run(pol, setting, extra, large, Path(tmp) / "b", a.trace, a.arms)
                t2 = min(t2, dt)
            rate = (n2 - n1) / max(t2 - t1, 1e-9) / 1e6
            rates[pol, setting] = rate
            flags = "--policy-module" if extra == PLUGIN else " ".join(extra)
            print(f"{pol:<10} {setting:<12} {flags:<14} {n2 - n1:>12} {t1:8.2f} {t2:8.2f} {rate:20.2f}", flush=True)
    for (pol, setting), rate in rates.items():
        if pol == "ucbspec-plugin" and ("ucbspec", setting) in rates:
            print(f"plug-in / built-in, {setting}: {rate / rates['ucbspec', setting]:.0%}")


if __name__ == "__main__":
    main()
