"""Mean accepted draft tokens per round of ``d@4`` (bonus excluded) per drafter and category of a
trace, as the markdown table in docs/collecting.md.

    .venv/bin/python docs/scripts/acceptance_by_category.py [--trace builtin:smollm2-greedy] [--k 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

import traces  # noqa: E402
from traces import Arm  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trace", default="builtin:smollm2-greedy")
    ap.add_argument("--k", type=int, default=4)
    a = ap.parse_args()
    tr = traces.load(a.trace)
    cats = sorted(tr.prompts.category.unique())
    print("| drafter | " + " | ".join(cats) + " | all |")
    print("|---" * (len(cats) + 2) + "|")
    for d in tr.drafter_names:
        k = min(a.k, tr.k_limits[d])
        per = {c: [] for c in cats}
        for p in range(tr.n_prompts):
            per[tr.prompts.category[p]].append(tr.accepted(Arm(d, k), p))
        cells = [f"{np.concatenate(per[c]).mean():.2f}" for c in cats]
        allv = np.concatenate([x for c in cats for x in per[c]]).mean()
        print(f"| {d}@{k} | " + " | ".join(cells) + f" | {allv:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
