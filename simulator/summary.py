"""Per-policy summary tables derived from results (counts stored, ratios derived here).

Every number that averages over prompts has a prompt-bootstrap 95% interval
(``simulator.stats``); policies share prompts and random numbers, so differences are paired.
Units follow the run's objective (``config.json`` ``objective``, results column ``objective``):
regret in rounds or in milliseconds per prompt, the other objective beside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from .stats import mean_ci, per_prompt, ratio_ci, verdict

UNITS = {"rounds": ("regret_rounds", 1.0, "rounds"), "time": ("regret_s", 1000.0, "ms")}


def objective_of(df: pd.DataFrame) -> str:
    return str(df["objective"].iloc[0]) if "objective" in df.columns and len(df) else "rounds"


def best_fixed_arm(fixed: pd.DataFrame, objective: str) -> str:
    """The single arm with the least total rounds (or time) over the prompts."""
    col = "time_s" if objective == "time" else "rounds"
    return str(fixed.groupby("arm")[col].sum().idxmin())


def summarize(df: pd.DataFrame, fixed: pd.DataFrame | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per (setting, policy).

    ``regret`` = mean over prompts of (mean over runs of) the regret in the objective's unit,
    with ``regret_lo``/``regret_hi`` its prompt-bootstrap interval; ``other_regret`` is the other
    objective's.  ``mean_accepted`` = total tokens / total rounds (bonus token included, as
    Spec-Bench and vLLM report it); ``tokens_per_s`` = total tokens / total time and
    ``speedup`` = total plain-decoding time / total time, each with an interval;
    ``speedup_specbench`` is Spec-Bench's ``evaluation/speed.py`` definition: the mean over
    prompts of tokens/s divided by the mean over prompts of vanilla tokens/s, the vanilla
    tokens counted as speed.py counts them (``fixed`` ``specbench_tokens``; per prompt, where
    Spec-Bench averages per question: the same on single-turn traces).  With the
    stored fixed arms (``fixed.parquet``), ``vs_fixed`` is the paired difference to the best
    single fixed arm in the objective (``vs_fixed_arm``), negative = the policy is better.
    """
    rows = []
    for (setting, policy), g in df.groupby(["setting", "policy"], sort=False):
        obj = objective_of(g)
        col, scale, unit = UNITS[obj if obj == "rounds" or "regret_s" in g else "rounds"]
        other = "regret_s" if col == "regret_rounds" and "regret_s" in g else (
            "regret_rounds" if col == "regret_s" else None)
        order = pd.unique(g["prompt_id"])
        pid = g["prompt_id"].to_numpy()
        reg = per_prompt(g[col].to_numpy() * scale, pid, order)
        r, lo, hi = mean_ci(reg, seed=seed)
        tok = per_prompt(g["tokens"].to_numpy(), pid, order)
        st = per_prompt(g["stopping_time"].to_numpy(), pid, order)
        row = {"setting": setting, "policy": policy, "objective": obj, "unit": unit,
               "reward": g["reward"].iloc[0] if "reward" in g else "",
               "prompts": len(order),
               "runs": int(g["runs"].iloc[0]) if "runs" in g else g["run"].nunique(), "stopping_time": float(st.mean()),
               "regret": r, "regret_lo": lo, "regret_hi": hi,
               "regret_pct": 100 * g[col].sum() / g["best_rounds" if col == "regret_rounds" else "best_time_s"].sum(),
               "mean_accepted": ratio_ci(tok, st, seed=seed)[0]}
        if other is not None:
            oscale = 1000.0 if other == "regret_s" else 1.0
            row["other_regret"] = mean_ci(per_prompt(g[other].to_numpy() * oscale, pid, order), seed=seed)[0]
            row["other_unit"] = "ms" if other == "regret_s" else "rounds"
        if "time_s" in g and g["time_s"].notna().all():
            t = per_prompt(g["time_s"].to_numpy(), pid, order)
            plain = per_prompt(g["plain_time_s"].to_numpy(), pid, order)
            row["tokens_per_s"], row["tps_lo"], row["tps_hi"] = ratio_ci(tok, t, seed=seed)
            row["speedup"], row["speedup_lo"], row["speedup_hi"] = ratio_ci(plain, t, seed=seed)
            btok = tok
            if fixed is not None and "specbench_tokens" in fixed:
                f0 = fixed[fixed["setting"] == setting].drop_duplicates("prompt_id").set_index("prompt_id")
                btok = f0.loc[order, "specbench_tokens"].to_numpy(float)
            row["speedup_specbench"] = float(np.mean(tok / t) / np.mean(btok / plain))
            row["feedback_ms"] = 1000 * float(g["feedback_s"].mean()) if "feedback_s" in g else 0.0
        if fixed is not None and len(fixed):
            f = fixed[fixed["setting"] == setting]
            if len(f) and (obj == "rounds" or "time_s" in f):
                arm = best_fixed_arm(f, obj)
                fa = f[f["arm"] == arm].set_index("prompt_id").loc[order]
                val = per_prompt(g["time_s" if obj == "time" else "stopping_time"].to_numpy(), pid, order)
                ref = fa["time_s" if obj == "time" else "rounds"].to_numpy(float)
                d, dlo, dhi = mean_ci((val - ref) * scale, seed=seed)
                row.update(vs_fixed_arm=arm, vs_fixed=d, vs_fixed_lo=dlo, vs_fixed_hi=dhi,
                           vs_fixed_verdict=verdict(dlo, dhi))
        rows.append(row)
    return pd.DataFrame(rows)


SUMMED = ("stopping_time", "tokens", "regret_rounds", "best_rounds", "time_s", "feedback_s", "plain_time_s",
          "regret_s", "best_time_s")
KEPT = ("objective", "reward", "category")
KEYS = ("setting", "policy", "prompt_id")


class PerPrompt:
    """Per-(setting, policy, prompt) means of the columns ``summarize`` reads, accumulated
    chunk by chunk: ``summarize(acc.frame())`` is the summary of all the rows without holding
    them (every prompt has the same number of runs, so means of means are the means)."""

    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def add(self, rows: pd.DataFrame | pa.Table) -> None:
        if isinstance(rows, pd.DataFrame):
            rows = pa.Table.from_pandas(rows.drop(columns=["pulls"], errors="ignore"), preserve_index=False)
        cols = [c for c in SUMMED if c in rows.column_names]
        kept = [c for c in KEPT if c in rows.column_names]
        # arrow's grouping, single-threaded: groups in order of appearance, sums in row order
        g = rows.group_by(list(KEYS), use_threads=False).aggregate(
            [(c, "sum") for c in cols] + [("run", "count")] + [(c, "first") for c in kept]).to_pandas()
        part = pd.DataFrame({c: g[f"{c}_sum"] for c in cols})
        part["n_rows"] = g["run_count"]
        for c in kept:
            part[c] = g[f"{c}_first"]
        part.index = pd.MultiIndex.from_frame(g[list(KEYS)])
        self.parts.append(part)

    def frame(self) -> pd.DataFrame:
        a = pd.concat(self.parts)
        g = a.groupby(level=[0, 1, 2], sort=False)
        cols = [c for c in SUMMED if c in a.columns]
        n = g["n_rows"].sum()
        out = g[cols].sum().div(n, axis=0)
        out["runs"] = n
        out = pd.concat([out, g[[c for c in KEPT if c in a.columns]].first()], axis=1)
        return out.reset_index()


def paired_difference(df: pd.DataFrame, a: str, b: str, setting: str | None = None,
                      seed: int = 0) -> tuple[float, float, float]:
    """Mean over prompts of (policy ``a`` - policy ``b``) in the objective's regret unit, with
    the paired prompt-bootstrap interval (same resampled prompts for both)."""
    d = df if setting is None else df[df["setting"] == setting]
    obj = objective_of(d)
    col, scale, _ = UNITS[obj if obj == "rounds" or "regret_s" in d else "rounds"]
    ga, gb = d[d["policy"] == a], d[d["policy"] == b]
    if ga.empty or gb.empty:
        raise ValueError(f"paired difference: policy {a if ga.empty else b!r} not in the results")
    order = pd.unique(ga["prompt_id"])
    va = per_prompt(ga[col].to_numpy() * scale, ga["prompt_id"].to_numpy(), order)
    vb = per_prompt(gb[col].to_numpy() * scale, gb["prompt_id"].to_numpy(), order)
    return mean_ci(va - vb, seed=seed)


def _fmt_ci(v: float, lo: float, hi: float, w: int = 7, p: int = 2) -> str:
    v, lo, hi = (0.0 if abs(x) < 1e-9 else x for x in (v, lo, hi))  # no "-0.00" from float sums
    if not np.isfinite(lo):
        return f"{v:{w}.{p}f} {'':>17}"
    return f"{v:{w}.{p}f} [{lo:7.{p}f},{hi:7.{p}f}]"


def policy_notes(policies, notes: dict | None = None) -> list[str]:
    """``note: SPEC: LINE`` for every note of every policy: which variant ran and, for an option
    outside the paper's analysis, ``not the paper's guarantee`` (``Policy.notes``).  ``notes``
    is ``config.json``'s ``policy_notes``; without it (older folders) each spec is rebuilt, and a
    spec that no longer builds (a plug-in not loaded) has none."""
    from .policies import PolicyError, make_policy

    out = []
    for spec in dict.fromkeys(str(p) for p in policies):
        if notes is not None:
            lines = notes.get(spec, [])
        else:
            try:
                lines = make_policy(spec).notes()
            except PolicyError:
                lines = ()
        out += [f"note: {spec}: {line}" for line in lines]
    return out


def format_summary(s: pd.DataFrame, notes: dict | None = None) -> str:
    """The table ``simulator run`` / ``summary`` print, then one line per learner saying
    whether it beats the best fixed arm, with the paired interval, then the policies' notes
    (``policy_notes``; ``notes``: ``config.json``'s ``policy_notes``)."""
    lines = []
    has_speed = "speedup" in s.columns
    for obj, so in s.groupby("objective", sort=False):
        unit = so["unit"].iloc[0]
        other_unit = so["other_unit"].iloc[0] if "other_unit" in so and so["other_unit"].notna().any() else ""
        lines.append(f"objective: {obj} (regret in {unit} per prompt vs the best fixed arm per prompt; "
                     f"[95% prompt-bootstrap interval])")
        head = (f"{'setting':<12} {'policy':<26} {'reward':<10} {'ST':>7} {'regret (' + unit + ')':>34} "
                f"{'regret%':>8} {'MAT':>6}")
        if other_unit:
            head += f" {'(' + other_unit + ')':>9}"
        if has_speed:
            head += f" {'tokens/s':>32} {'speedup':>8} {'SB-spd':>7}"
        lines += [head, "-" * len(head)]
        for _, r in so.iterrows():
            line = (f"{r['setting']:<12} {r['policy']:<26} {str(r['reward']):<10} {r['stopping_time']:7.2f} "
                    f"{_fmt_ci(r['regret'], r['regret_lo'], r['regret_hi'], 9):>34} {r['regret_pct']:7.1f}% "
                    f"{r['mean_accepted']:6.3f}")
            if other_unit:
                line += f" {r.get('other_regret', np.nan):9.2f}"
            if has_speed and pd.notna(r.get("speedup", np.nan)):
                line += (f" {_fmt_ci(r['tokens_per_s'], r['tps_lo'], r['tps_hi'], 8, 1):>32} {r['speedup']:7.3f}x"
                         f" {r['speedup_specbench']:6.3f}x")
            lines.append(line)
        if "vs_fixed_arm" in so.columns:
            lines.append("")
            for _, r in so.iterrows():
                if pd.isna(r.get("vs_fixed_arm")) or str(r["policy"]).startswith(("fixed:", "oracle")):
                    continue
                lines.append(f"  {r['setting']:<12} {r['policy']:<26} vs best fixed arm {r['vs_fixed_arm']}: "
                             f"{r['vs_fixed']:+.2f} {unit}/prompt [{r['vs_fixed_lo']:+.2f}, {r['vs_fixed_hi']:+.2f}]"
                             f" -> {r['vs_fixed_verdict']}")
        lines.append("")
    lines += policy_notes(s["policy"], notes) if "policy" in s.columns else []
    return "\n".join(lines).rstrip()
