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

from simulator.costs import uncertainty_of, within_timing_noise
from simulator.stats import mean_ci, ratio_ci, verdict
from simulator.summary import SWITCHER, best_fixed_arm, objective_of

VANILLA = "vanilla (plain@0)"


def method_label(policy: str, reward: str, objective: str) -> str:
    """Learners say what they learnt from; a bare ``oracle`` says which objective it is best in."""
    if policy == "oracle":
        return f"oracle [{objective}]"
    return f"{policy} [{reward}]" if reward and "reward=" not in policy else policy


def _per_prompt(g: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return g.groupby("prompt_id", sort=False)[cols].mean()


def degenerate_ids(trace) -> list[str]:
    """Prompt ids the trace flags ``degenerate`` (repetitive outputs; ``prompts.parquet``'s
    optional column, ``docs/collecting.md``); empty where it has none."""
    pr = getattr(trace, "prompts", None)
    if pr is None or "degenerate" not in pr.columns:
        return []
    return [str(p) for p in pr.loc[pr["degenerate"].fillna(False).astype(bool), "prompt_id"]]


def _methods(d: pd.DataFrame, f: pd.DataFrame | None, timed: bool, obj: str,
             order) -> list[tuple[str, str, pd.DataFrame]]:
    """(label, kind, per-prompt frame with ``tokens``, ``rounds`` and, timed, ``time_s``,
    ``plain_time_s``; indexed by prompt in ``order``) for every row of the table."""
    tcols = ["time_s", "plain_time_s"] if timed else []
    first = _per_prompt(d[d["policy"] == d["policy"].iloc[0]], ["tokens", *(["plain_time_s"] if timed else [])])
    van = first.assign(rounds=first["tokens"], **({"time_s": first["plain_time_s"]} if timed else {}))
    methods: list[tuple[str, str, pd.DataFrame]] = [(VANILLA, "vanilla", van)]
    shown = set()
    if f is not None and len(f):
        for arm, g in f.groupby("arm", sort=False):
            if arm != "plain@0":
                methods.append((f"fixed:{arm}", "fixed", g.set_index("prompt_id")[["tokens", "rounds", *tcols]]))
            shown.add(f"fixed:{arm}")
        sw = f.drop_duplicates("prompt_id").set_index("prompt_id")
        rc, tc = ("switcher_time_rounds", "switcher_time_s") if obj == "time" else ("switcher_rounds",
                                                                                   "switcher_rounds_time_s")
        if rc in sw and sw[rc].notna().all() and (not timed or (tc in sw and sw[tc].notna().all())):
            pp = pd.DataFrame({"tokens": sw["tokens"], "rounds": sw[rc]})
            if timed:
                pp["time_s"], pp["plain_time_s"] = sw[tc], sw["plain_time_s"]
            methods.append((f"{SWITCHER} [{obj}]", "reference", pp))
    if "reward" not in d.columns:
        d = d.assign(reward="")
    for (pol, rew), g in d.groupby(["policy", "reward"], sort=False):
        if pol in shown:
            continue
        kind = "oracle" if pol.startswith("oracle") else ("fixed" if pol.startswith("fixed:") else "policy")
        pp = _per_prompt(g, ["tokens", "stopping_time", *tcols]).rename(columns={"stopping_time": "rounds"})
        methods.append((method_label(pol, rew, obj), kind, pp))
    order_of = {"vanilla": 0, "fixed": 1, "policy": 2, "oracle": 3, "reference": 4}
    methods.sort(key=lambda m: order_of[m[1]])
    return [(lab, kind, pp.reindex(order)) for lab, kind, pp in methods]


def _verdict_words(lo: float, hi: float, ref: str, obj: str, noise: bool = False) -> str:
    """``noise``: the two times differ by less than the cost model's uncertainty
    (``simulator.costs.within_timing_noise``): no winner is named."""
    v = verdict(lo, hi)
    if noise and v in ("better", "worse"):
        return f"within timing noise of {ref}"
    if v == "better":
        return f"{'faster' if obj == 'time' else 'fewer rounds'} than {ref}"
    if v == "worse":
        return f"{'slower' if obj == 'time' else 'more rounds'} than {ref}"
    if v == "no interval":
        return f"vs {ref}: n=1, no interval"
    return f"no difference shown from {ref}"


def _deltas(val: np.ndarray, ref: np.ndarray, van: np.ndarray, sw: np.ndarray | None, scale: float,
            seed: int) -> dict:
    """Paired differences (per prompt, bootstrapped over prompts) to the best fixed arm and to
    vanilla, in the objective's unit, and the share of the vanilla -> switcher gain captured."""
    row = {}
    row["d_fixed"], row["d_fixed_lo"], row["d_fixed_hi"] = mean_ci((val - ref) * scale, seed=seed)
    row["d_vanilla"], row["d_vanilla_lo"], row["d_vanilla_hi"] = mean_ci((val - van) * scale, seed=seed)
    if sw is not None and (van - sw).sum() > 0:
        c = ratio_ci(van - val, van - sw, seed=seed)
        row["gain_pct"], row["gain_pct_lo"], row["gain_pct_hi"] = (100 * x for x in c)
    return row


def table1_tidy(df: pd.DataFrame, fixed: pd.DataFrame | None = None, setting: str | None = "replay",
                seed: int = 0, config: dict | None = None, degenerate=None) -> pd.DataFrame:
    """One row per (method, category incl. ``overall``) with MAT, tokens/s and speedup and their
    interval bounds (``*_lo``, ``*_hi``; NaN where a cell has one prompt), time columns only when
    the results have costs and the objective is time or the run named its cost table
    (``config``'s ``cost_device``).  On the ``overall`` rows (and ``overall w/o degenerate``,
    where ``degenerate`` prompt ids are among the results): ``d_fixed`` / ``d_vanilla``, paired
    differences to the best single fixed arm (``ref_arm``) and to vanilla decoding in the
    objective's unit (``unit``: ms or rounds per prompt, negative = better), ``gain_pct`` (share
    of the vanilla -> per-round switcher gain captured) and ``verdict``."""
    d = df if setting is None else df[df["setting"] == setting]
    obj = objective_of(d)
    has_time = "time_s" in d.columns and d["time_s"].notna().all()
    named = config is None or bool(config.get("cost_device")) or obj == "time"
    timed = has_time and named
    cats = sorted(d["category"].unique())
    order = pd.unique(d["prompt_id"])
    cat_of = d.drop_duplicates("prompt_id").set_index("prompt_id")["category"].reindex(order).to_numpy()
    f = None if fixed is None or not len(fixed) else (fixed if setting is None else fixed[fixed["setting"] == setting])
    methods = _methods(d, f, has_time, obj, order)
    key = "time_s" if obj == "time" else "rounds"
    scale, unit = (1000.0, "ms") if obj == "time" else (1.0, "rounds")
    rel = uncertainty_of(config) if obj == "time" else 0.0  # the cost model's: "within timing noise" below it
    van = methods[0][2][key].to_numpy(float)
    sw = next((pp[key].to_numpy(float) for _, k, pp in methods if k == "reference"), None)
    deg = set(degenerate or ()) & set(order)
    groups = [(c, cat_of == c) for c in cats] + [("overall", np.ones(len(order), bool))]
    if deg:
        groups.append(("overall w/o degenerate", ~np.isin(order, list(deg))))
    refs = {}
    if f is not None:
        for name, m in groups[len(cats):]:
            fs = f[f["prompt_id"].isin(order[m])]
            arm = best_fixed_arm(fs, obj)
            refs[name] = (arm, fs[fs["arm"] == arm].set_index("prompt_id")[key].reindex(order).to_numpy(float))
    rows = []
    for label, kind, pp in methods:
        for cat, m in groups:
            s = pp[m]
            row = {"method": label, "kind": kind, "category": cat, "prompts": int(m.sum()), "objective": obj,
                   "unit": unit}
            row["mat"], row["mat_lo"], row["mat_hi"] = ratio_ci(s["tokens"], s["rounds"], seed=seed)
            if timed:
                row["tps"], row["tps_lo"], row["tps_hi"] = ratio_ci(s["tokens"], s["time_s"], seed=seed)
                row["speedup"], row["speedup_lo"], row["speedup_hi"] = ratio_ci(s["plain_time_s"], s["time_s"],
                                                                                seed=seed)
            if cat.startswith("overall"):
                val = pp[key].to_numpy(float)[m]
                ref_arm, ref = refs.get(cat, (None, None))
                row["ref_arm"] = ref_arm or ""
                row["noise_fixed"] = ref is not None and within_timing_noise(val.sum(), ref[m].sum(), rel)
                row["noise_vanilla"] = within_timing_noise(val.sum(), van[m].sum(), rel)
                row.update(_deltas(val, val if ref is None else ref[m], van[m], None if sw is None else sw[m],
                                   scale, seed))
                if ref is None:
                    row["d_fixed"] = row["d_fixed_lo"] = row["d_fixed_hi"] = np.nan
                row["verdict"] = _row_verdict(label, kind, row, obj)
            rows.append(row)
    return pd.DataFrame(rows)


def _row_verdict(label: str, kind: str, row: dict, obj: str) -> str:
    if kind == "vanilla":
        return "reference (vanilla)"
    parts = []
    if row["ref_arm"]:
        parts.append("reference (best fixed arm)" if label == f"fixed:{row['ref_arm']}" else
                     _verdict_words(row["d_fixed_lo"], row["d_fixed_hi"], row["ref_arm"], obj,
                                    row.get("noise_fixed", False)))
    parts.append(_verdict_words(row["d_vanilla_lo"], row["d_vanilla_hi"], "vanilla", obj,
                                row.get("noise_vanilla", False)))
    return "; ".join(parts)


def _ci_cell(v: float, lo: float, hi: float, p: int, n: int, suffix: str = "", signed: bool = False) -> str:
    """``v [lo, hi]``, or ``v (n=1)`` where one prompt gives no interval."""
    fmt = f"{{:{'+' if signed else ''}.{p}f}}"
    if n < 2 or not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{fmt.format(v)}{suffix} (n={n})"
    return f"{fmt.format(v)}{suffix} [{fmt.format(lo)}, {fmt.format(hi)}]"


def table1(df: pd.DataFrame, fixed: pd.DataFrame | None = None, setting: str | None = "replay",
           seed: int = 0, config: dict | None = None, degenerate=None,
           tidy: pd.DataFrame | None = None) -> pd.DataFrame:
    """The display table: one row per method, a cell per category (time objective:
    ``MAT / tokens/s [interval]``; rounds: ``MAT [interval]``), then overall MAT, tokens/s and
    speedup (time objective; a rounds run whose cost table was named shows tokens/s labelled as
    not its objective), the paired differences to the best fixed arm and to vanilla, the share
    of the vanilla -> per-round switcher gain, a verdict and, where the trace flags degenerate
    prompts, the objective's rate without them.  A cell of one prompt says ``n=1``.  ``tidy``:
    ``table1_tidy`` of the same arguments, where the caller has it already (it is not recomputed)."""
    t = table1_tidy(df, fixed, setting, seed, config, degenerate) if tidy is None else tidy
    timed = "tps" in t.columns
    obj = str(t["objective"].iloc[0])
    unit = str(t["unit"].iloc[0])
    out: dict[str, dict[str, str]] = {}
    ov = t[t["category"] == "overall"]
    ref_arm = next((a for a in ov.get("ref_arm", pd.Series(dtype=str)) if a), "")
    n_all = int(ov["prompts"].iloc[0])
    dev = (config or {}).get("cost_device") or "named"
    tps_head = "tokens/s" if obj == "time" else f"tokens/s (cost table {dev}; not the objective)"
    for _, r in t.iterrows():
        row = out.setdefault(r["method"], {})
        n = int(r["prompts"])
        if r["category"] == "overall":
            row["MAT"] = _ci_cell(r["mat"], r["mat_lo"], r["mat_hi"], 2, n)
            if timed:
                row[tps_head] = _ci_cell(r["tps"], r["tps_lo"], r["tps_hi"], 1, n)
                if obj == "time":
                    row["speedup"] = _ci_cell(r["speedup"], r["speedup_lo"], r["speedup_hi"], 2, n, "x")
            if ref_arm:
                row[f"Δ vs best fixed {ref_arm} ({unit}/prompt)"] = (
                    "reference" if r["method"] == f"fixed:{ref_arm}" else
                    _ci_cell(r["d_fixed"], r["d_fixed_lo"], r["d_fixed_hi"], 1, n, signed=True))
            row[f"Δ vs vanilla ({unit}/prompt)"] = ("reference" if r["kind"] == "vanilla" else _ci_cell(
                r["d_vanilla"], r["d_vanilla_lo"], r["d_vanilla_hi"], 1, n, signed=True))
            if "gain_pct" in r and pd.notna(r["gain_pct"]):
                row["gain% of headroom"] = _ci_cell(r["gain_pct"], r["gain_pct_lo"], r["gain_pct_hi"], 0, n)
            row["verdict"] = r["verdict"]
        elif r["category"] == "overall w/o degenerate":
            head = f"w/o {n_all - n} degenerate: " + ("tokens/s" if obj == "time" else "MAT")
            row[head] = (_ci_cell(r["tps"], r["tps_lo"], r["tps_hi"], 1, n) if obj == "time"
                         else _ci_cell(r["mat"], r["mat_lo"], r["mat_hi"], 2, n))
            row["w/o degenerate: verdict"] = r["verdict"]
        else:
            row[r["category"]] = (f"{r['mat']:.2f} / " + _ci_cell(r["tps"], r["tps_lo"], r["tps_hi"], 1, n)
                                  if timed and obj == "time" else _ci_cell(r["mat"], r["mat_lo"], r["mat_hi"], 2, n))
    tab = pd.DataFrame.from_dict(out, orient="index")
    tab.index.name = "method"
    tab.columns.name = ("MAT / tokens/s [95% CI]" if timed and obj == "time" else "MAT [95% CI]")
    return tab


def notes(df: pd.DataFrame, setting: str | None = "replay", degenerate=None, excluded: int = 0,
          fixed: pd.DataFrame | None = None) -> str:
    """What a reader needs beside the caption: the Δ columns, the switcher row (where ``fixed``
    holds it for ``setting``), and how many prompts are flagged degenerate and what share of
    the tokens they carry."""
    d = df if setting is None else df[df["setting"] == setting]
    obj = objective_of(d)
    unit = "ms" if obj == "time" else "rounds"
    f = None if fixed is None or setting is None else fixed[fixed["setting"] == setting]
    has_sw = f is not None and "switcher_rounds" in f and len(f) and f["switcher_rounds"].notna().all()
    out = [f"Δ columns: paired per-prompt differences in {unit}/prompt (negative = better), 95% prompt bootstrap."]
    if has_sw:
        out.append(f"'gain% of headroom': share of the vanilla -> {SWITCHER} gain captured; {SWITCHER}: "
                   f"clairvoyant, may change arm every round (the cheapest path through the replay; a reference, "
                   f"not a policy).")
    else:
        why = ("not in this folder's fixed.parquet" if f is None or "switcher_rounds" not in f
               else "defined on the greedy replay only")
        out.append(f"{SWITCHER}: n/a ({why}).")
    tok = d.drop_duplicates("prompt_id").set_index("prompt_id")["tokens"]
    deg = sorted(set(degenerate or ()) & set(tok.index))
    if deg:
        out.append(f"{len(deg)} of {len(tok)} prompts are flagged degenerate (repetitive output) and carry "
                   f"{100 * tok.loc[deg].sum() / tok.sum():.0f}% of the tokens; the 'w/o degenerate' columns "
                   f"leave them out (`--exclude-degenerate`: the whole table without them).")
    elif excluded:
        out.append(f"{excluded} prompts flagged degenerate (repetitive output) are excluded (--exclude-degenerate).")
    return " ".join(out)


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
