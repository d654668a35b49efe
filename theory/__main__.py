"""``python -m theory validate [--quick] --out DIR``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m theory")
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("validate", help="hold measured regret against the bounds; writes "
                                        "checks.csv, report.md, curves.csv and figures")
    v.add_argument("--out", required=True)
    v.add_argument("--quick", action="store_true", help="short grid (CI): lengths up to 1e4, 40 runs")
    v.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    from .validate import run_validate

    checks = run_validate(a.out, quick=a.quick, seed=a.seed)
    print(f"{int(checks['passed'].sum())}/{len(checks)} checks passed; report: {a.out}/report.md")
    for _, r in checks[~checks["passed"]].iterrows():
        print(f"FAIL {r['check']} {r['setting']} {r['policy']} len={r['n']}: {r['value']:.3f} vs {r['bound']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
