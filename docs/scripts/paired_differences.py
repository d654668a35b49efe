"""The numbers docs/reproducing.md quotes beside its tables that no table holds: paired
differences between two policies, and the runs its prose names as re-measurements.

Writes four CSVs (one row per quoted quantity: ``name, value, lo, hi``; ``lo``/``hi`` the 95%
interval where there is one) into OUT:

* ``table1_pairs.csv``: replay, time objective on the cuda table, 20 runs, seed 0, Table 1's
  arm set: UCBSpec - EXP3Spec and HedgeSpec - UCBSpec (ms/prompt, from the figures' saved
  replay results) and ``ucbspec:width=per-arm`` (its own run) against ``suffix@4``;
* ``draft_length.csv``: ``make demo``'s second command (``plain@0,eagle@1-4``, state carried,
  50 runs) with ``ucbspec:width=per-arm`` added: tokens/s per fixed arm and policy, paired
  differences (ms/prompt) and the share of rounds on ``plain@0``;
* ``serving_pairs.csv``: Figure 3's batch serving (``plain@0,eagle@1-4``, batches 1..50, 16
  runs) with ``ucbspec:width=per-arm`` added: mean over batch sizes of throughput / plain,
  paired differences (bootstrap over runs), the best arm per batch size in hindsight, and how
  many batch sizes lie above the cost table's largest measured one (extrapolated verify costs);
* ``tree_serving.csv``: "Which tree for which batch size" (chain and tree arms of ``rtn4`` and
  ``eagle``, UCBSpec, batches 1..50 on a coarse grid): mean throughput / plain per arm and size.

Prompt-level intervals: runs averaged per prompt, prompts resampled (``simulator.stats``);
serving intervals: each run's mean over batch sizes, runs resampled.

    .venv/bin/python docs/scripts/paired_differences.py RESULTS_FIGURES_DATA OUT
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.runner import RunConfig, fixed_frame, resolve, run_experiment
from simulator.serving import ServeConfig, run_serving
from simulator.stats import mean_ci, ratio_ci

TRACE = "builtin:smollm2-greedy"


def _per_prompt(df: pd.DataFrame, policy: str) -> pd.DataFrame:
    return df[df["policy"] == policy].groupby("prompt_id")[["tokens", "time_s"]].mean().sort_index()


def _row(name: str, ci: tuple[float, float, float]) -> dict:
    return {"name": name, "value": ci[0], "lo": ci[1], "hi": ci[2]}


def _diff(a: pd.Series, b: pd.Series, name: str) -> dict:
    return _row(name, mean_ci(1000.0 * (a - b.reindex(a.index)).to_numpy(float)))


def table1_pairs(replay: pd.DataFrame) -> pd.DataFrame:
    t = {p: _per_prompt(replay, p)["time_s"] for p in ("ucbspec", "exp3spec", "hedgespec")}
    cfg = RunConfig(trace=TRACE, setting="replay", policies=("ucbspec:width=per-arm",), runs=20, seed=0,
                    arms="plain@0,pld@4,rest@4,suffix@4,eagle@4,medusa@4", objective="time", cost_device="cuda")
    exp = resolve(cfg)
    df, _ = run_experiment(exp, progress=False)
    fixed = fixed_frame(exp)
    suf = fixed[fixed["arm"] == "suffix@4"].set_index("prompt_id")["time_s"]
    pa = _per_prompt(df, "ucbspec:width=per-arm")
    rows = [_diff(t["ucbspec"], t["exp3spec"], "ucbspec - exp3spec"),
            _diff(t["hedgespec"], t["ucbspec"], "hedgespec - ucbspec"),
            _diff(pa["time_s"], suf, "ucbspec:width=per-arm - suffix@4"),
            _row("ucbspec:width=per-arm speedup", ratio_ci(df.groupby("prompt_id")["plain_time_s"].mean().sort_index(),
                                                           pa["time_s"]))]
    return pd.DataFrame(rows)


def draft_length() -> pd.DataFrame:
    pols = ("ucbspec", "exp3spec", "banditspec-code", "ucb1", "uniform", "oracle", "ucbspec:width=per-arm")
    cfg = RunConfig(trace=TRACE, setting="replay", policies=pols, runs=50, seed=0, arms="plain@0,eagle@1-4",
                    objective="time", cost_device="cuda", carry_state=True)
    exp = resolve(cfg)
    df, conf = run_experiment(exp, progress=False)
    fixed = fixed_frame(exp)
    rows = []
    arm_t = {}
    for arm, g in fixed.groupby("arm"):
        g = g.set_index("prompt_id").sort_index()
        arm_t[arm] = g["time_s"]
        rows.append(_row(f"{arm} tps", (g["tokens"].sum() / g["time_s"].sum(), np.nan, np.nan)))
    pp = {p: _per_prompt(df, p) for p in pols}
    for p in pols:
        rows.append(_row(f"{p} tps", ratio_ci(pp[p]["tokens"].to_numpy(), pp[p]["time_s"].to_numpy())))
        pulls = np.stack(df.loc[df["policy"] == p, "pulls"].to_numpy()).sum(axis=0)
        rows.append(_row(f"{p} share plain@0", (100.0 * pulls[conf["arms"].index("plain@0")] / pulls.sum(),
                                                np.nan, np.nan)))
    t = {p: pp[p]["time_s"] for p in pols}
    for a, b in (("ucbspec", "uniform"), ("ucbspec", "ucbspec:width=per-arm"), ("ucbspec", "banditspec-code"),
                 ("banditspec-code", "uniform")):
        rows.append(_diff(t[a], t[b], f"{a} - {b}"))
    rows.append(_diff(t["banditspec-code"], arm_t["eagle@1"], "banditspec-code - eagle@1"))
    return pd.DataFrame(rows)


def serving() -> pd.DataFrame:
    pols = ("ucbspec", "ucbspec:width=per-arm", "banditspec-code", "ucb1", "uniform")
    cfg = ServeConfig(trace=TRACE, arms="plain@0,eagle@1-4", policies=pols, runs=16, seed=0, cost_device="cuda")
    df, conf = run_serving(cfg, progress=False)
    per_run = df.groupby(["method", "run"])["improvement"].mean().unstack("method")  # mean over batch sizes
    rows = [_row(f"{m} mean", (per_run[m].mean(), np.nan, np.nan)) for m in per_run.columns]
    for a, b in (("ucbspec", "uniform"), ("ucbspec", "eagle@1"), ("banditspec-code", "eagle@1"),
                 ("eagle@1", "plain@0"), ("ucbspec:width=per-arm", "uniform")):
        rows.append(_row(f"{a} - {b}", mean_ci((per_run[a] - per_run[b]).to_numpy(float))))
    arms = sorted(df.loc[df["kind"] == "arm", "method"].unique())
    by_size = df[df["method"].isin(arms)].groupby(["batch_size", "method"])["improvement"].mean().unstack("method")
    best = by_size.idxmax(axis=1)
    above = int((df["batch_size"].drop_duplicates() > max(conf["measured_batch_sizes"])).sum())
    rows.append(_row("batch sizes above the measured table", (above, np.nan, np.nan)))
    rows.append(_row("best arm in hindsight mean", (by_size.max(axis=1).mean(), np.nan, np.nan)))
    rows.append(_row("best arm is plain@0 at sizes", ((best == "plain@0").sum(), np.nan, np.nan)))
    rows += [_row(f"eagle@1 best at size #{i}", (int(b), np.nan, np.nan))
             for i, b in enumerate(best.index[best == "eagle@1"], start=1)]
    rows.append(_row("eagle@1 best at sizes", ((best == "eagle@1").sum(), np.nan, np.nan)))
    return pd.DataFrame(rows)


def tree_serving() -> pd.DataFrame:
    """"Which tree for which batch size": batch serving with chain and tree arms of ``rtn4``
    and ``eagle``, UCBSpec, batches 1, 2, 4, 8, 16, 32, 50; mean throughput / plain per arm and
    batch size (``batch_size`` 0: the mean over the batch sizes)."""
    out = []
    for d in ("rtn4", "eagle"):
        arms = f"plain@0,{d}@1-4,{d}@tree:2x2,{d}@tree:3x2x1,{d}@tree:4x2x2x1"
        cfg = ServeConfig(trace=TRACE, arms=arms, policies=("ucbspec",), batch_sizes=(1, 2, 4, 8, 16, 32, 50),
                          runs=16, seed=0, cost_device="cuda")
        df, _ = run_serving(cfg, progress=False)
        m = df.groupby(["method", "batch_size"])["improvement"].mean().reset_index()
        mean = m.groupby("method")["improvement"].mean().reset_index().assign(batch_size=0)
        out.append(pd.concat([m, mean]).assign(drafter=d))
    return pd.concat(out)[["drafter", "method", "batch_size", "improvement"]]


def main() -> int:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    table1_pairs(pd.read_parquet(src / "replay_results.parquet")).to_csv(out / "table1_pairs.csv", index=False)
    draft_length().to_csv(out / "draft_length.csv", index=False)
    serving().to_csv(out / "serving_pairs.csv", index=False)
    tree_serving().to_csv(out / "tree_serving.csv", index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
