"""Per-policy summary tables derived from results (counts stored, ratios derived here)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (setting, policy).

    ``regret`` is the mean over prompts and runs of ``ST - E[ST(best fixed arm)]``; the
    95% CI half-width treats runs as the independent unit (prompt-averaged per run).
    ``mean_accepted`` = total tokens / total rounds (bonus token included, as Spec-Bench
    and vLLM report it); ``speedup`` = total plain-decoding time / total time.
    """
    rows = []
    for (setting, policy), g in df.groupby(["setting", "policy"], sort=False):
        per_run = g.groupby("run")["regret"].mean()
        half = 1.96 * per_run.std(ddof=1) / np.sqrt(len(per_run)) if len(per_run) > 1 else np.nan
        row = {
            "setting": setting,
            "policy": policy,
            "prompts": g["prompt_id"].nunique(),
            "runs": g["run"].nunique(),
            "stopping_time": g["stopping_time"].mean(),
            "regret": g["regret"].mean(),
            "regret_ci95": half,
            "regret_pct": 100 * g["regret"].sum() / g["best_fixed_st"].sum(),
            "mean_accepted": g["tokens"].sum() / g["stopping_time"].sum(),
        }
        if "time_s" in g and g["time_s"].notna().all():
            row["speedup"] = g["plain_time_s"].sum() / g["time_s"].sum()
            row["time_regret_ms"] = 1000 * g["time_regret_s"].mean()
        rows.append(row)
    return pd.DataFrame(rows)


def format_summary(s: pd.DataFrame) -> str:
    lines = []
    has_speed = "speedup" in s.columns
    head = (f"{'setting':<12} {'policy':<28} {'ST':>8} {'regret':>9} {'±95%':>7} "
            f"{'regret%':>8} {'acc/round':>9}")
    if has_speed:
        head += f" {'speedup':>8} {'t-regret ms':>10}"
    lines.append(head)
    lines.append("-" * len(head))
    for _, r in s.iterrows():
        line = (f"{r['setting']:<12} {r['policy']:<28} {r['stopping_time']:8.2f} "
                f"{r['regret']:9.2f} {r['regret_ci95']:7.2f} {r['regret_pct']:7.1f}% "
                f"{r['mean_accepted']:9.3f}")
        if has_speed:
            sp = r.get("speedup", np.nan)
            line += f" {sp:7.3f}x" if pd.notna(sp) else f" {'':>8}"
            tr = r.get("time_regret_ms", np.nan)
            line += f" {tr:10.1f}" if pd.notna(tr) else ""
        lines.append(line)
    return "\n".join(lines)
