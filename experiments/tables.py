"""Table-1 analogue (BanditSpec Table 1, Spec-Bench leaderboard layout).

Rows: vanilla decoding (``plain@0``), every fixed arm of the arm set, every policy that was
run (learners labelled with the reward they learnt from), and the oracles.  For every row and
prompt category: MAT (mean accepted tokens per round, bonus included) and tokens/s, each
``sum over prompts / sum over prompts`` of per-prompt means over runs, with a 95%
prompt-bootstrap interval (``simulator.stats``); overall, also the speedup over vanilla
(plain-decoding time / time).  Fixed arms come from ``fixed.parquet`` (exact ``E[ST]``), so no
run of them is needed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.stats import ratio_ci

VANILLA = "vanilla (plain@0)"


def _label(policy: str, reward: str, objective: str) -> str:
    """Learners say what they learnt from; a bare ``oracle`` says which objective it is best in."""
    if policy == "oracle":
        return f"oracle [{objective}]"
    return f"{policy} [{reward}]" if reward and "reward=" not in policy else policy


def _per_prompt(g: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return g.groupby("prompt_id", sort=False)[cols].mean()


def table1_tidy(df: pd.DataFrame, fixed: pd.DataFrame | None = None, setting: str | None = "replay",
                seed: int = 0) -> pd.DataFrame:
    """One row per (method, category incl. ``overall``) with MAT, tokens/s and speedup and
    their interval bounds (``*_lo``, ``*_hi``); time columns only when the results have costs."""
    d = df if setting is None else df[df["setting"] == setting]
    timed = "time_s" in d.columns and d["time_s"].notna().all()
    cats = sorted(d["category"].unique())
    cat_of = d.drop_duplicates("prompt_id").set_index("prompt_id")["category"]
    methods: list[tuple[str, str, pd.DataFrame]] = []  # (label, kind, per-prompt frame)
    first = _per_prompt(d[d["policy"] == d["policy"].iloc[0]], ["tokens", "plain_time_s"] if timed else ["tokens"])
    if timed:
        van = first.assign(rounds=first["tokens"], time_s=first["plain_time_s"])
        methods.append((VANILLA, "vanilla", van))
    shown = set()
    if fixed is not None and len(fixed):
        f = fixed if setting is None else fixed[fixed["setting"] == setting]
        for arm, g in f.groupby("arm", sort=False):
            if arm == "plain@0" and timed:
                continue
            cols = ["tokens", "rounds"] + (["time_s", "plain_time_s"] if timed else [])
            methods.append((f"fixed:{arm}", "fixed", g.set_index("prompt_id")[cols]))
            shown.add(f"fixed:{arm}")
    if "reward" not in d.columns:
        d = d.assign(reward="")
    for (pol, rew), g in d.groupby(["policy", "reward"], sort=False):
        if pol in shown:
            continue
        kind = "oracle" if pol.startswith("oracle") else ("fixed" if pol.startswith("fixed:") else "policy")
        cols = ["tokens", "stopping_time"] + (["time_s", "plain_time_s"] if timed else [])
        pp = _per_prompt(g, cols).rename(columns={"stopping_time": "rounds"})
        methods.append((_label(pol, rew, str(g["objective"].iloc[0]) if "objective" in g else "rounds"), kind, pp))
    order = {"vanilla": 0, "fixed": 1, "policy": 2, "oracle": 3}
    methods.sort(key=lambda m: order[m[1]])
    rows = []
    for label, kind, pp in methods:
        for cat in [*cats, "overall"]:
            s = pp if cat == "overall" else pp[cat_of.reindex(pp.index).to_numpy() == cat]
            row = {"method": label, "kind": kind, "category": cat, "prompts": len(s)}
            row["mat"], row["mat_lo"], row["mat_hi"] = ratio_ci(s["tokens"], s["rounds"], seed=seed)
            if timed:
                row["tps"], row["tps_lo"], row["tps_hi"] = ratio_ci(s["tokens"], s["time_s"], seed=seed)
                row["speedup"], row["speedup_lo"], row["speedup_hi"] = ratio_ci(s["plain_time_s"], s["time_s"],
                                                                                seed=seed)
            rows.append(row)
    return pd.DataFrame(rows)


def table1(df: pd.DataFrame, fixed: pd.DataFrame | None = None, setting: str | None = "replay",
           seed: int = 0) -> pd.DataFrame:
    """The display table: one row per method, a ``MAT / tokens/s [interval]`` cell per category,
    then overall MAT, tokens/s and speedup with intervals."""
    t = table1_tidy(df, fixed, setting, seed)
    timed = "tps" in t.columns
    out: dict[str, dict[str, str]] = {}
    for _, r in t.iterrows():
        row = out.setdefault(r["method"], {})
        if r["category"] == "overall":
            row["MAT"] = f"{r['mat']:.2f} [{r['mat_lo']:.2f}, {r['mat_hi']:.2f}]"
            if timed:
                row["tokens/s"] = f"{r['tps']:.1f} [{r['tps_lo']:.1f}, {r['tps_hi']:.1f}]"
                row["speedup"] = f"{r['speedup']:.2f}x [{r['speedup_lo']:.2f}, {r['speedup_hi']:.2f}]"
        else:
            row[r["category"]] = (f"{r['mat']:.2f} / {r['tps']:.1f} [{r['tps_lo']:.1f}, {r['tps_hi']:.1f}]"
                                  if timed else f"{r['mat']:.2f} [{r['mat_lo']:.2f}, {r['mat_hi']:.2f}]")
    tab = pd.DataFrame.from_dict(out, orient="index")
    tab.index.name = "method"
    tab.columns.name = "MAT / tokens/s [95% CI]" if timed else "MAT [95% CI]"
    return tab


def caption(manifest: dict, config: dict, n_prompts: int | str = "?") -> str:
    """Where the numbers come from, read from the trace's manifest and the run's config."""
    tgt = manifest.get("target") or {}
    target = tgt.get("id") or tgt.get("alias") or "unknown target"
    hw = (manifest.get("hardware") or {}).get("device", "unknown device")
    temp = (manifest.get("decoding") or {}).get("temperature", 0.0)
    decoding = "greedy" if not temp else f"temperature {temp}"
    cm = config.get("cost_model") or {}
    timing = f"cost table {cm['device']}" if cm else "none (no cost table)"
    fb = config.get("feedback_cost") or {}
    fb_s = "; full-information feedback " + ", ".join(f"{k} {v}" for k, v in fb.items()) if fb else ""
    synthetic = " SYNTHETIC trace;" if manifest.get("synthetic") else ""
    if config.get("setting") not in (None, "replay", "multi"):
        fb_s += (f"; setting {config['setting']}: fixed-arm rows are exact expectations, policy and oracle rows "
                 f"Monte Carlo means over runs")
    return (f"{synthetic} acceptance: {target}, {decoding}, on {hw}; timing: {timing}; objective: "
            f"{config.get('objective', 'rounds')}{fb_s}; intervals: 95% prompt bootstrap over "
            f"{n_prompts} prompts (runs averaged per prompt, {config.get('runs', '?')} runs)."
            ).strip()


def to_markdown(t: pd.DataFrame) -> str:
    head = "| " + (t.index.name or "policy") + " | " + " | ".join(t.columns) + " |"
    sep = "|---" * (len(t.columns) + 1) + "|"
    body = ["| " + str(i) + " | " + " | ".join("" if (isinstance(v, float) and np.isnan(v)) else str(v)
                                              for v in r) + " |" for i, r in t.iterrows()]
    return "\n".join([head, sep, *body]) + "\n"
