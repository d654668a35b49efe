"""Wall time of the whole figure set from the bundled traces (issue "5. Paper figures").

Target: at most 120 s on 2 cores.  Run: ``python benchmarks/figures_runtime.py [--out DIR]``.
Prints each stage's time (simulation stages, then rendering) and the total against the target.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from experiments.paper import FigureConfig, make_figures

TARGET_S = 120.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="figure directory (default: a temporary one)")
    ap.add_argument("--trace", default="builtin:smollm2-greedy")
    a = ap.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="specregret-figs-")
    t0 = time.perf_counter()
    paths, times = make_figures(FigureConfig(trace=a.trace), out, progress=False)
    wall = time.perf_counter() - t0
    print(f"figures from {a.trace} on {os.cpu_count()} cores -> {out} ({len(paths)} files)")
    for k, v in times.items():
        if k != "total":
            print(f"  {k:<18} {v:7.1f} s")
    print(f"  {'total':<18} {wall:7.1f} s   target <= {TARGET_S:.0f} s: {'met' if wall <= TARGET_S else 'NOT met'}")
    return 0 if wall <= TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
