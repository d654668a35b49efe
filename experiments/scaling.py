"""Regret and throughput against the number of drafters (HedgeSpec Fig. 5b analogue).

For a drafter order and ``m = 2..D``, the arm set is the first ``m`` drafters, each at the
same draft length ``k``: every policy chooses among the same actions (HedgeSpec's experts are
exactly these arms).  Results are averaged over ``orders`` random drafter orders (order 0 is
the trace's), so no pool size is flattered by which drafters happen to come first.  Regret is
in rounds (BanditSpec Eq. 1), against the best of the ``m`` arms per prompt; tokens/s uses
the cost model with full-information feedback charged.  Intervals: prompt bootstrap over the
per-prompt means (over orders and runs).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import traces
from simulator.runner import RunConfig, run_experiment
from simulator.stats import mean_ci, ratio_ci

POLICIES = ("ucbspec", "exp3spec", "hedgespec", "uniform")


def drafter_orders(drafters: tuple[str, ...], orders: int, seed: int) -> list[list[str]]:
    """Order 0 is the trace's; the others are permutations from ``SeedSequence([seed, o])``."""
    out = [list(drafters)]
    for o in range(1, orders):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7919, o]))
        out.append([drafters[i] for i in rng.permutation(len(drafters))])
    return out


def arms_scaling(trace: str, k: int = 4, runs: int = 10, seed: int = 0, setting: str = "replay",
                 policies: tuple[str, ...] = POLICIES, orders: int = 3, cost_device: str | None = None,
                 max_drafters: int | None = None, progress: bool = False) -> pd.DataFrame:
    """One row per (drafters m, policy): regret (rounds / prompt) and, with costs, tokens/s,
    each with a 95% prompt-bootstrap interval, averaged over ``orders`` drafter orders
    (``progress``: one stderr line per order with the time spent and an estimate of the rest)."""
    tr = traces.load(trace)
    names = tuple(tr.drafter_names)
    if len(names) < 2:
        raise ValueError(f"{trace}: arms scaling needs >= 2 drafters, the trace has {list(names)}")
    if not 1 <= k <= tr.k_max:
        raise ValueError(f"k: expected 1..{tr.k_max} (the trace's k_max), got {k}")
    short = [d for d in names if tr.k_limits[d] < k]
    if short:  # said, not clamped: their arms at K would be other arms
        print(f"arms-scaling: leaving out {short}: they draft fewer than K = {k} tokens (max_depth)", file=sys.stderr)
        names = tuple(d for d in names if d not in short)
    D = min(len(names), max_drafters or len(names))
    frames = []
    t0 = time.perf_counter()
    for o, order in enumerate(drafter_orders(names, orders, seed)):
        for m in range(2, D + 1):
            arms = ",".join(f"{d}@{k}" for d in order[:m])
            df, _ = run_experiment(RunConfig(trace=trace, setting=setting, policies=policies, runs=runs, seed=seed,
                                             arms=arms, objective="rounds", cost_device=cost_device), progress=False)
            frames.append(df.drop(columns=["pulls"]).assign(order=o, drafters=m))
        if progress:
            spent = time.perf_counter() - t0
            print(f"arms-scaling: drafter order {o + 1}/{orders} (pools of 2..{D} drafters) done, {spent:.1f} s; "
                  f"~{spent / (o + 1) * (orders - o - 1):.0f} s left", file=sys.stderr, flush=True)
    d = pd.concat(frames, ignore_index=True)
    rows = []
    timed = "time_s" in d.columns
    for (m, pol), g in d.groupby(["drafters", "policy"], sort=False):
        pp = g.groupby("prompt_id")[["regret_rounds", "tokens"] + (["time_s"] if timed else [])].mean()
        row = dict(drafters=int(m), arms=int(m), policy=pol, orders=orders, runs=runs)
        row["regret"], row["regret_lo"], row["regret_hi"] = mean_ci(pp["regret_rounds"].to_numpy(), seed=seed)
        row["ci95"] = (row["regret_hi"] - row["regret_lo"]) / 2
        row["regret_pct"] = 100 * g["regret_rounds"].sum() / g["best_rounds"].sum()
        if timed:
            row["tps"], row["tps_lo"], row["tps_hi"] = ratio_ci(pp["tokens"], pp["time_s"], seed=seed)
        rows.append(row)
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, out: Path, title: str) -> list[Path]:
    from .figures import regret_vs_pool, save_figure, set_style

    set_style()
    return save_figure(regret_vs_pool(df, title), out, "regret_vs_arms")
