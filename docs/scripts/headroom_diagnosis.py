"""Why the learners lose to the best fixed arm, and how much a per-round choice could gain
(docs/reproducing.md, "Diagnosis: headroom and why the learners lose").

Replay on the bundled greedy trace, the demo's arm set, time objective on the cuda cost table
and rounds objective, policies learning per prompt and with their state carried across the
prompts.  Prints, per objective: the references (vanilla, best fixed arm, per-prompt oracle,
per-round switcher), rounds per prompt under the best arm, the share of each learner's rounds
on the best arm, UCBSpec's radius against the per-prompt gap between the best and second arm,
and per learner the paired difference to the best fixed arm, to vanilla, and its gain%.

    .venv/bin/python docs/scripts/headroom_diagnosis.py [RUNS]      # default 20
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from simulator.policies.ucbspec import ucbspec_radius
from simulator.runner import RunConfig, fixed_frame, resolve, run_experiment
from simulator.summary import SWITCHER, best_fixed_arm, summarize

TRACE, ARMS = "builtin:smollm2-greedy", "pld@4,rest@4,suffix@4,eagle@4,medusa@4"
POLICIES = ("ucbspec", "exp3spec", "hedgespec", "uniform", "oracle")


def _q(x: np.ndarray) -> str:
    a, b, c = np.percentile(x, [25, 50, 75])
    return f"median {b:.0f} (IQR {a:.0f}-{c:.0f})"


def run(objective: str, carry: bool, runs: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    cfg = RunConfig(trace=TRACE, setting="replay", policies=POLICIES, runs=runs, seed=0, arms=ARMS,
                    objective=objective, cost_device="cuda", carry_state=carry)
    exp = resolve(cfg)
    df, conf = run_experiment(exp, progress=False)
    return df, fixed_frame(exp), conf


def references(fixed: pd.DataFrame, objective: str) -> None:
    f0 = fixed.drop_duplicates("prompt_id")
    tok = f0["tokens"].sum()
    best = best_fixed_arm(fixed, objective)
    per = fixed.pivot_table(index="prompt_id", columns="arm", values=["rounds", "time_s"])
    if objective == "time":
        rate = {"vanilla": tok / f0["plain_time_s"].sum(), f"best fixed arm {best}":
                tok / fixed.loc[fixed.arm == best, "time_s"].sum(),
                "per-prompt oracle": tok / per["time_s"].min(axis=1).sum(),
                "per-round switcher": tok / f0["switcher_time_s"].sum()}
        print("  tokens/s: " + ", ".join(f"{k} {v:.1f}" for k, v in rate.items()))
    else:
        rate = {"vanilla": 1.0, f"best fixed arm {best}": tok / fixed.loc[fixed.arm == best, "rounds"].sum(),
                "per-prompt oracle": tok / per["rounds"].min(axis=1).sum(),
                "per-round switcher": tok / f0["switcher_rounds"].sum()}
        print("  MAT (tokens/round): " + ", ".join(f"{k} {v:.3f}" for k, v in rate.items()))
    r = fixed.loc[fixed.arm == best, "rounds"].to_numpy()
    print(f"  rounds per prompt under {best}: {_q(r)}; per arm (5 arms): {_q(r / 5)}")


def gaps_and_radius(fixed: pd.DataFrame) -> None:
    """Per prompt, mean tokens per round of the best and second arm (rounds objective, tokens
    reward: UCBSpec's units) against UCBSpec's Eq. 6 radius at the end of the prompt."""
    mat = fixed.assign(mat=fixed.tokens / fixed.rounds).pivot(index="prompt_id", columns="arm", values="mat")
    srt = np.sort(mat.to_numpy(), axis=1)
    gap = srt[:, -1] - srt[:, -2]
    rounds = fixed.groupby("prompt_id").rounds.min().loc[mat.index].to_numpy()
    n = np.maximum(rounds / mat.shape[1], 1)
    rad = ucbspec_radius(n, rounds, mat.shape[1], 4.0, 0.5)  # tokens reward in [1, 5]: width L = 4
    print(f"  per-prompt gap best - second arm (tokens/round): median {np.median(gap):.2f} (IQR "
          f"{np.percentile(gap, 25):.2f}-{np.percentile(gap, 75):.2f}); UCBSpec radius at the prompt's end with "
          f"equal pulls: median {np.median(rad):.2f} tokens; gap > radius on {int((gap > rad).sum())} of {len(gap)}")


def pulls_on_best(df: pd.DataFrame, fixed: pd.DataFrame, arms: list[str], objective: str) -> None:
    best = best_fixed_arm(fixed, objective)
    col = "time_s" if objective == "time" else "rounds"
    per_best = fixed.loc[fixed.groupby("prompt_id")[col].idxmin()].set_index("prompt_id")["arm"]
    out = []
    for pol, g in df.groupby("policy", sort=False):
        if pol == "oracle":
            continue
        p = np.stack(g["pulls"].to_numpy())
        on_best = p[:, arms.index(best)].sum() / p.sum()
        own = np.array([arms.index(per_best[x]) for x in g["prompt_id"]])
        on_own = p[np.arange(len(p)), own].sum() / p.sum()
        out.append(f"{pol} {100 * on_best:.0f}% ({100 * on_own:.0f}%)")
    print(f"  share of rounds on {best} (on each prompt's own best arm): " + ", ".join(out))


def verdicts(df: pd.DataFrame, fixed: pd.DataFrame) -> None:
    s = summarize(df, fixed)
    for _, r in s.iterrows():
        if r["policy"] in ("oracle", SWITCHER):
            continue
        gain = f"; gain% {r['captured']:.1f} [{r['captured_lo']:.1f}, {r['captured_hi']:.1f}]" \
            if pd.notna(r.get("captured", np.nan)) else ""
        print(f"  {r['policy']:<10} vs {r['vs_fixed_arm']}: {r['vs_fixed']:+.2f} {r['unit']}/prompt "
              f"[{r['vs_fixed_lo']:+.2f}, {r['vs_fixed_hi']:+.2f}] -> {r['vs_fixed_verdict']}; vs vanilla "
              f"{r['vs_vanilla']:+.2f} [{r['vs_vanilla_lo']:+.2f}, {r['vs_vanilla_hi']:+.2f}]{gain}")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    for objective in ("time", "rounds"):
        for carry in (False, True):
            df, fixed, conf = run(objective, carry, runs)
            print(f"== objective {objective}, {'state carried across prompts' if carry else 'learning per prompt'}, "
                  f"{runs} runs")
            if not carry:
                references(fixed, objective)
                if objective == "rounds":
                    gaps_and_radius(fixed)
            pulls_on_best(df, fixed, conf["arms"], objective)
            verdicts(df, fixed)


if __name__ == "__main__":
    main()
