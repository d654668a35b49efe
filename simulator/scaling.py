"""Regret against the number of arms (HedgeSpec Fig. 5b analogue).

For m = 1..D drafters (trace order) the arm set is the first m drafters at K = 1..k; each
policy's mean stopping-time regret is measured on the same runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import traces

from .runner import RunConfig, run_experiment

POLICIES = ("ucbspec", "exp3spec", "hedgespec", "structured-ucb")


def arms_scaling(trace: str, k: int = 4, runs: int = 10, seed: int = 0, setting: str = "replay",
                 policies: tuple[str, ...] = POLICIES) -> pd.DataFrame:
    tr = traces.load(trace)
    rows = []
    for m in range(1, len(tr.drafter_names) + 1):
        arms = ",".join(f"{d}@1-{k}" for d in tr.drafter_names[:m])
        df, conf = run_experiment(RunConfig(trace=trace, setting=setting, policies=policies, runs=runs,
                                            seed=seed, arms=arms), progress=False)
        for pol, g in df.groupby("policy"):
            per_run = g.groupby("run").regret.mean()
            rows.append(dict(drafters=m, arms=len(conf["arms"]), policy=pol, regret=per_run.mean(),
                             ci95=1.96 * per_run.std(ddof=1) / np.sqrt(len(per_run)),
                             regret_pct=100 * g.regret.sum() / g.best_fixed_st.sum()))
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, out: Path, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .figures import FAMILY_MARKERS, policy_color, save_figure

    sns.set_theme(context="paper", style="whitegrid")
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    for pol, g in df.groupby("policy"):
        ax.errorbar(g["arms"], g["regret"], yerr=g["ci95"], label=pol, color=policy_color(pol),
                    marker=FAMILY_MARKERS.get(pol.split(":")[0], "o"), ms=4, capsize=2)
    ax.set_xlabel("number of arms (drafters x K)")
    ax.set_ylabel("regret (rounds / prompt, 95% CI)")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out, "regret_vs_arms")
