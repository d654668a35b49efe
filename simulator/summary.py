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

from traces.textout import DEFAULT_WIDTH, Column, interval, num, render, term_width, wrap, wrap_lines

from .costs import timing_verdict
from .stats import mean_ci, per_prompt, ratio_ci, verdict

UNITS = {"rounds": ("regret_rounds", 1.0, "rounds"), "time": ("regret_s", 1000.0, "ms")}


def objective_of(df: pd.DataFrame) -> str:
    return str(df["objective"].iloc[0]) if "objective" in df.columns and len(df) else "rounds"


def best_fixed_arm(fixed: pd.DataFrame, objective: str) -> str:
    """The single arm with the least total rounds (or time) over the prompts."""
    col = "time_s" if objective == "time" else "rounds"
    return str(fixed.groupby("arm")[col].sum().idxmin())


def summarize(df: pd.DataFrame, fixed: pd.DataFrame | None = None, seed: int = 0,
              noise_rel: float = 0.0) -> pd.DataFrame:
    """One row per (setting, policy).

    ``regret`` = mean over prompts of (mean over runs of) the regret in the objective's unit,
    with ``regret_lo``/``regret_hi`` its prompt-bootstrap interval; ``other_regret`` is the other
    objective's.  ``mat`` = tokens per verification round, bonus token included (total tokens /
    total rounds, derived from the stored counts ``tokens`` and ``stopping_time``, as Spec-Bench
    and vLLM's spec-decode metrics report it); ``tokens_per_s`` = total tokens / total time and
    ``speedup`` = total plain-decoding time / total time, each with an interval;
    ``speedup_specbench`` is Spec-Bench's ``evaluation/speed.py`` definition: the mean over
    prompts of tokens/s divided by the mean over prompts of vanilla tokens/s, the vanilla
    tokens counted as speed.py counts them (``fixed`` ``specbench_tokens``; per prompt, where
    Spec-Bench averages per question: the same on single-turn traces).  With the
    stored fixed arms (``fixed.parquet``), ``vs_fixed`` is the paired difference to the best
    single fixed arm in the objective (``vs_fixed_arm``), negative = the policy is better.
    ``noise_rel``: the cost model's relative uncertainty (``simulator.costs.uncertainty_of``);
    under the time objective a verdict whose two totals differ by less says "within timing noise".
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
               "mat": ratio_ci(tok, st, seed=seed)[0]}
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
                           vs_fixed_verdict=verdict(dlo, dhi) if obj != "time" else
                           timing_verdict(verdict(dlo, dhi), val.sum(), ref.sum(), noise_rel))
        row.update(_vs_references(g, fixed, setting, col == "regret_s", order, scale, seed))
        if col == "regret_s" and "vs_vanilla_verdict" in row:
            row["vs_vanilla_verdict"] = timing_verdict(row["vs_vanilla_verdict"], t.sum(), plain.sum(), noise_rel)
        rows.append(row)
    return _with_switcher(pd.DataFrame(rows), df, fixed, seed, noise_rel)


def _objective_values(g: pd.DataFrame, timed: bool, order) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt (in ``order``): the policy's objective value and vanilla decoding's (plain
    decoding: one token per round, ``plain_time_s``)."""
    pid = g["prompt_id"].to_numpy()
    if timed:
        return (per_prompt(g["time_s"].to_numpy(), pid, order), per_prompt(g["plain_time_s"].to_numpy(), pid, order))
    return per_prompt(g["stopping_time"].to_numpy(), pid, order), per_prompt(g["tokens"].to_numpy(), pid, order)


def switcher_values(fixed: pd.DataFrame | None, setting: str, timed: bool, order) -> np.ndarray | None:
    """The per-round switcher's objective value per prompt of ``setting`` (``order``), or None
    where ``fixed.parquet`` has none (folders written before it; NaN = not defined there)."""
    col = "switcher_time_s" if timed else "switcher_rounds"
    if fixed is None or col not in fixed.columns:
        return None
    f = fixed[fixed["setting"] == setting].drop_duplicates("prompt_id").set_index("prompt_id")
    if not len(f) or not set(order) <= set(f.index):
        return None
    v = f.loc[list(order), col].to_numpy(np.float64)
    return None if np.isnan(v).any() else v


def _vs_references(g: pd.DataFrame, fixed: pd.DataFrame | None, setting: str, timed: bool, order, scale: float,
                   seed: int) -> dict:
    """``vs_vanilla`` (paired difference to plain decoding, objective units, negative = faster)
    and ``captured`` (% of the vanilla -> per-round switcher gain the policy realises,
    ``sum(vanilla - policy) / sum(vanilla - switcher)`` over prompts, paired interval)."""
    if timed and not ("time_s" in g and g["time_s"].notna().all()):
        return {}
    val, van = _objective_values(g, timed, order)
    d, lo, hi = mean_ci((val - van) * scale, seed=seed)
    out = {"vs_vanilla": d, "vs_vanilla_lo": lo, "vs_vanilla_hi": hi, "vs_vanilla_verdict": verdict(lo, hi)}
    sw = switcher_values(fixed, setting, timed, order)
    if sw is not None and (van - sw).sum() > 0:
        c, clo, chi = ratio_ci(van - val, van - sw, seed=seed)
        out.update(captured=100 * c, captured_lo=100 * clo, captured_hi=100 * chi)
    return out


SWITCHER = "[per-round switcher]"


def _with_switcher(s: pd.DataFrame, df: pd.DataFrame, fixed: pd.DataFrame | None, seed: int,
                   noise_rel: float = 0.0) -> pd.DataFrame:
    """Insert, after each setting's policies, the clairvoyant per-round switcher's row
    (``simulator.headroom``: the fewest-rounds or fastest path through the replay, no feedback
    cost) where ``fixed.parquet`` holds it for that setting."""
    if not len(s) or fixed is None:
        return s
    parts = []
    for setting, so in s.groupby("setting", sort=False):
        parts.append(so)
        r0 = so.iloc[0]
        timed = r0["unit"] == "ms"
        g = df[(df["setting"] == setting) & (df["policy"] == r0["policy"])]
        order = pd.unique(g["prompt_id"])
        sw = switcher_values(fixed, setting, timed, order)
        if sw is None:
            continue
        f = fixed[fixed["setting"] == setting]
        f0 = f.drop_duplicates("prompt_id").set_index("prompt_id").loc[order]
        rounds = f0["switcher_time_rounds" if timed else "switcher_rounds"].to_numpy(np.float64)
        tok = f0["tokens"].to_numpy(np.float64)
        best = f.pivot_table(index="prompt_id", columns="arm", values="time_s" if timed else "rounds").min(axis=1)
        best = best.loc[order].to_numpy(np.float64)
        scale = 1000.0 if timed else 1.0
        r, lo, hi = mean_ci((sw - best) * scale, seed=seed)
        row = {"setting": setting, "policy": SWITCHER, "objective": r0["objective"], "unit": r0["unit"],
               "reward": "", "prompts": len(order), "runs": 1, "stopping_time": float(rounds.mean()),
               "regret": r, "regret_lo": lo, "regret_hi": hi, "regret_pct": 100 * (sw - best).sum() / best.sum(),
               "mat": float(tok.sum() / rounds.sum())}
        if "other_unit" in so and pd.notna(r0.get("other_unit")):
            row["other_unit"] = r0["other_unit"]
        timecol = "switcher_time_s" if timed else "switcher_rounds_time_s"
        if timecol in f0 and "plain_time_s" in f0:
            t = f0[timecol].to_numpy(np.float64)
            plain = f0["plain_time_s"].to_numpy(np.float64)
            row["tokens_per_s"], row["tps_lo"], row["tps_hi"] = ratio_ci(tok, t, seed=seed)
            row["speedup"], row["speedup_lo"], row["speedup_hi"] = ratio_ci(plain, t, seed=seed)
        if "vs_fixed_arm" in so and pd.notna(r0.get("vs_fixed_arm")):
            arm = r0["vs_fixed_arm"]
            ref = f[f["arm"] == arm].set_index("prompt_id").loc[order, "time_s" if timed else "rounds"]
            ref = ref.to_numpy(np.float64)
            d, dlo, dhi = mean_ci((sw - ref) * scale, seed=seed)
            row.update(vs_fixed_arm=arm, vs_fixed=d, vs_fixed_lo=dlo, vs_fixed_hi=dhi,
                       vs_fixed_verdict=timing_verdict(verdict(dlo, dhi), sw.sum(), ref.sum(), noise_rel * timed))
        van = f0["plain_time_s" if timed else "tokens"].to_numpy(np.float64) if (not timed or "plain_time_s" in f0) \
            else None
        if van is not None:
            d, dlo, dhi = mean_ci((sw - van) * scale, seed=seed)
            row.update(vs_vanilla=d, vs_vanilla_lo=dlo, vs_vanilla_hi=dhi,
                       vs_vanilla_verdict=timing_verdict(verdict(dlo, dhi), sw.sum(), van.sum(), noise_rel * timed),
                       captured=100.0, captured_lo=100.0, captured_hi=100.0)
            if "vs_fixed_arm" in row and (van - sw).sum() > 0:
                row["best_arm_captured"] = 100 * float((van - ref).sum() / (van - sw).sum())
        parts.append(pd.DataFrame([row]))
    return pd.concat(parts, ignore_index=True)


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


def _reference_lines(so: pd.DataFrame, unit: str, width: int = DEFAULT_WIDTH) -> list[str]:
    """Per learner (and the switcher): paired difference to the best fixed arm and to vanilla
    (lines wrapped at ``width``)."""
    out = []
    for _, r in so.iterrows():
        if str(r["policy"]).startswith(("fixed:", "oracle")):
            continue
        out.append(f"  {r['setting']} / {r['policy']}:")
        who = "   "
        if pd.notna(r.get("vs_fixed_arm", np.nan)):
            out.append(f"{who} vs best fixed arm {r['vs_fixed_arm']}: {num(r['vs_fixed'], '+.2f')} {unit}/prompt "
                       f"{_ival(r['vs_fixed_lo'], r['vs_fixed_hi'], r['prompts'])} -> {r['vs_fixed_verdict']}")
        if pd.notna(r.get("vs_vanilla", np.nan)):
            g = r.get("captured", np.nan)
            gain = (f"; gain% {num(g, '.1f')} {_ival(r['captured_lo'], r['captured_hi'], r['prompts'], '.1f')}"
                    if pd.notna(g) and r["policy"] != SWITCHER else "")
            if r["policy"] == SWITCHER and pd.notna(r.get("best_arm_captured", np.nan)):
                gain = f"; the best fixed arm's gain% {num(r['best_arm_captured'], '.1f')}"
            iv = _ival(r["vs_vanilla_lo"], r["vs_vanilla_hi"], r["prompts"])
            out.append(f"{who} vs vanilla: {num(r['vs_vanilla'], '+.2f')} {unit}/prompt {iv} -> "
                       f"{r['vs_vanilla_verdict']}{gain}")
    return [""] + wrap_lines(out, width, "    ") if out else []


def _ival(lo: float, hi: float, n, fmt: str = "+.2f") -> str:
    """``[lo, hi]``, or ``(n=1)`` where a single prompt gives no interval (``(no CI)`` otherwise)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "(n=1)" if n == 1 else "(no CI)"
    return f"[{num(lo, fmt)}, {num(hi, fmt)}]"


def _learners_reward(so: pd.DataFrame) -> str | None:
    """The learners' reward when every row that has one shares it, else None (a column then)."""
    vals = {str(v) for v in so["reward"] if isinstance(v, str) and v} if "reward" in so else set()
    return next(iter(vals)) if len(vals) == 1 else ("" if not vals else None)


def _summary_columns(so: pd.DataFrame, obj: str, unit: str, other_unit: str, has_speed: bool, has_gain: bool,
                     specbench: bool, reward_col: bool) -> list[Column]:
    """The summary table's columns for one objective (units on the second header line); the
    optional ones (tokens/s interval, the other objective's regret, reward) go first when narrow."""
    rows = [r for _, r in so.iterrows()]
    cols = [Column("setting", "", [str(r["setting"]) for r in rows], left=True),
            Column("policy", "", [str(r["policy"]) for r in rows], left=True)]
    if reward_col:
        cols.append(Column("reward", "", [str(r["reward"] or "") for r in rows], left=True, drop=2))
    cols += [Column("ST", "rounds", [num(r["stopping_time"]) for r in rows]),
             Column("regret", f"{unit} [95% CI]",
                    [interval(r["regret"], r["regret_lo"], r["regret_hi"], r["prompts"]) for r in rows]),
             Column("regret%", "of best", [num(r["regret_pct"], ".1f") for r in rows]),
             Column("MAT", "tok/rnd", [num(r["mat"], ".3f") for r in rows])]
    if other_unit:
        cols.append(Column("regret", other_unit, [num(r.get("other_regret"), ".2f", "") for r in rows], drop=3))
    tps_drop = 1 if obj == "time" else 4
    if has_speed:
        timed = [pd.notna(r.get("speedup", np.nan)) for r in rows]
        cols.append(Column("tokens/s", "tok/s [95% CI]" + ("" if obj == "time" else "*"),
                           [interval(r["tokens_per_s"], r["tps_lo"], r["tps_hi"], r["prompts"], ".1f") if t else ""
                            for r, t in zip(rows, timed, strict=True)], drop=tps_drop))
        cols.append(Column("speedup", "x [95% CI]", [interval(r["speedup"], r.get("speedup_lo"), r.get("speedup_hi"),
                                                              r["prompts"], ".3f") if t else ""
                                                     for r, t in zip(rows, timed, strict=True)]))
        if specbench:
            cols.append(Column("SB-spd", "x", [num(r.get("speedup_specbench"), ".3f", "") if t else ""
                                               for r, t in zip(rows, timed, strict=True)]))
    if has_gain:
        cols.append(Column("gain%", "% [95% CI]", [interval(r.get("captured"), r.get("captured_lo"),
                                                            r.get("captured_hi"), r["prompts"], ".1f")
                                                   if pd.notna(r.get("captured", np.nan)) else num(np.nan)
                                                   for r in rows]))
    return cols


def format_summary(s: pd.DataFrame, notes: dict | None = None, specbench: bool = False,
                   width: int | None = None) -> str:
    """The table ``simulator run`` / ``summary`` print, then per learner whether it beats the
    best fixed arm and vanilla decoding, with the paired intervals, then the policies' notes
    (``policy_notes``; ``notes``: ``config.json``'s ``policy_notes``).  One speedup (total
    plain-decoding time / total time); ``specbench`` adds Spec-Bench's (``SB-spd``).  ``gain%``
    is the share of the vanilla -> per-round switcher gain a policy captures.  Every column has
    its unit under its name and a legend line explains the abbreviations; lines fit ``width``
    (default ``textout.term_width()``: 100, or a wider terminal's), optional columns left out
    first (and said)."""
    width = term_width() if width is None else width
    lines = []
    has_speed = "speedup" in s.columns
    has_gain = "captured" in s.columns
    for obj, so in s.groupby("objective", sort=False):
        unit = so["unit"].iloc[0]
        other_unit = so["other_unit"].iloc[0] if "other_unit" in so and so["other_unit"].notna().any() else ""
        reward = _learners_reward(so)
        lines += wrap(f"objective: {obj} (regret in {unit} per prompt vs the best fixed arm per prompt, "
                      f"[95% prompt-bootstrap interval])" + (f"; learners' reward: {reward}" if reward else ""),
                      width)
        cols = _summary_columns(so, obj, unit, other_unit, has_speed, has_gain, specbench, reward is None)
        table, dropped = render(cols, width)
        for c in cols:  # too wide: the ratios' intervals go first (the paired verdicts below keep them)
            if dropped and c.name in ("speedup", "gain%"):
                c.unit, c.cells = c.unit.replace(" [95% CI]", ""), [x.split(" ")[0] for x in c.cells]
                table, dropped = render(cols, width)
        if any(d.startswith("tokens/s") for d in dropped):  # then without its interval
            tps = next(c for c in cols if c.name == "tokens/s")
            tps.unit, tps.cells = tps.unit.replace(" [95% CI]", ""), [c.split(" ")[0] for c in tps.cells]
            table, dropped = render(cols, width)
        lines += table
        lines += _reference_lines(so, unit, width)
        legend = ["ST = stopping time (verification rounds per prompt); MAT = mean accepted tokens per verification "
                  "round (bonus token included); regret% = total regret / the best fixed arms' total, in %"
                  + (f"; regret ({other_unit}): the same runs' regret in the other objective's unit"
                     if other_unit and f"regret ({other_unit})" not in dropped else "")
                  + ("; * tokens/s is not the objective" if has_speed and obj != "time" and
                     not any(d.startswith("tokens/s") for d in dropped) else "") + "."]
        if dropped:
            rw = ", ".join(f"{p}={w}" for p, w in zip(so["policy"], so["reward"], strict=True) if w)
            legend.append(f"left out to fit {width} columns: {', '.join(dropped)} (--wide shows them)"
                          + (f"; learners' reward: {rw}" if "reward" in dropped else ""))
        lines += [""] + wrap_lines(legend, width)
        lines.append("")
    if has_gain:
        lines += wrap(f"gain% = share of the gain from vanilla decoding to the {SWITCHER[1:-1]} that a row captures "
                      f"(over all prompts; n/a outside the greedy replay).", width)
        lines += wrap(f"{SWITCHER}: clairvoyant, may change arm every round: the cheapest path through the replay "
                      "(dynamic programme over positions, no feedback cost); no policy can beat it.", width)
    elif "setting" in s.columns and (s["setting"] == "replay").any():
        lines += wrap(f"{SWITCHER}: n/a (not in this folder's fixed.parquet, written before it was stored; rerun "
                      f"`simulator run` to get it).", width)
    if specbench and has_speed:
        lines += wrap("SB-spd: Spec-Bench's speedup (evaluation/speed.py: mean of per-answer tokens/s over mean "
                      "vanilla tokens/s, vanilla tokens re-tokenised); speedup: total plain time / total time.", width)
    pols = [p for p in s["policy"] if p != SWITCHER] if "policy" in s.columns else []
    lines += wrap_lines(policy_notes(pols, notes), width) if pols else []
    return "\n".join(lines).rstrip()
