"""What moves the best draft length in batch serving (docs/reproducing.md, Figure 3).

Prints, per batch size 1..50, the best k of the simulation, the k the relative cost curve
predicts (MAT_k / c(k, n) at the full batch size), and the best k when every round is billed
at the full batch size (no departures of finished sequences).

    .venv/bin/python docs/scripts/serving_best_k.py [DRAFTER]     # default eagle (the figure's)
"""

from __future__ import annotations

import sys

import numpy as np

import traces
from simulator import serving as S
from simulator.costs import CostModel, prompt_contexts
from simulator.envs.replay import ReplayEnv
from traces import Arm

TRACE, RUNS, SIZES = "builtin:smollm2-greedy", 16, tuple(range(1, 51))


def main() -> None:
    tr = traces.load(TRACE)
    model = CostModel.for_trace(tr, "cuda")
    drafter = sys.argv[1] if len(sys.argv) > 1 else "eagle"
    arms = [Arm("plain", 0)] + [Arm(drafter, k) for k in range(1, 5)]
    env = ReplayEnv(tr, arms)
    ctxs = prompt_contexts(tr.prompts["prompt_len"].to_numpy(float), tr.output_lens)
    batches = S.draw_batches(0, SIZES, RUNS, tr.n_prompts)
    cost = S.batch_round_costs_s(model, arms, max(SIZES), np.array([ctxs[b].mean() for b in batches]))
    held = cost.copy()
    for lane, b in enumerate(batches):
        held[lane] = cost[lane, len(b)][None, :]
    bsz = np.repeat(np.asarray(SIZES), RUNS)
    for name, cc in (("simulation", cost), ("no departures", held)):
        tp = np.array([np.divide(*S.simulate_batches(env, batches, cc, None, a, 0)[:2]) for a in range(len(arms))])
        imp = tp[1:] / tp[0]
        print(f"{name:>14}: " + "".join(str(1 + int(np.argmax(imp[:, bsz == b].mean(axis=1)))) for b in SIZES))
    mat = np.array([tr.output_lens.sum() / sum(len(tr.fixed_arm_rounds(a, p)) for p in range(tr.n_prompts))
                    for a in arms[1:]])
    c = model.round_ms(arms, np.asarray(SIZES, float), ctxs.mean())
    print(f"{'cost curve':>14}: " + "".join(str(1 + int(k)) for k in np.argmax(mat / c[:, 1:], axis=1)))
    for n in (1, 16, 50):
        rel = np.r_[1.0, mat] * c[n - 1, 0] / c[n - 1]
        print(f"  n = {n:2d}: MAT_k c0 / c_k for k = 0..4: {np.round(rel, 3).tolist()}")


if __name__ == "__main__":
    main()
