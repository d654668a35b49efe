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
    from .figures import regret_vs_pool, save_figure, set_style

    set_style()
    return save_figure(regret_vs_pool(df, title), out, "regret_vs_arms")
