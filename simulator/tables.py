"""Table-1 analogue (BanditSpec Table 1, Spec-Bench leaderboard layout): for every policy
(fixed arms included) and prompt category, mean accepted tokens per round (bonus included,
MAT) and tokens per second from the cost table, then the overall column.  Ratios are
derived from stored counts: MAT = sum tokens / sum rounds, tokens/s = sum tokens / sum time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def table1(df: pd.DataFrame, setting: str | None = None) -> pd.DataFrame:
    d = df if setting is None else df[df["setting"] == setting]
    cats = sorted(d["category"].unique())
    rows = []
    for pol, g in d.groupby("policy", sort=False):
        row: dict = {"policy": pol}
        for cat in [*cats, "overall"]:
            s = g if cat == "overall" else g[g["category"] == cat]
            mat = s["tokens"].sum() / s["stopping_time"].sum()
            tps = s["tokens"].sum() / s["time_s"].sum() if "time_s" in s else np.nan
            row[cat] = f"{mat:.2f} / {tps:.1f}" if np.isfinite(tps) else f"{mat:.2f}"
        rows.append(row)
    out = pd.DataFrame(rows).set_index("policy")
    out.columns.name = "MAT / tokens/s" if "time_s" in d else "MAT"
    return out


def to_markdown(t: pd.DataFrame) -> str:
    head = "| policy | " + " | ".join(t.columns) + " |"
    sep = "|---" * (len(t.columns) + 1) + "|"
    body = ["| " + str(i) + " | " + " | ".join(str(v) for v in r) + " |" for i, r in t.iterrows()]
    return "\n".join([head, sep, *body]) + "\n"
