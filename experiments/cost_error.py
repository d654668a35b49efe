"""The cost model's error against the wall clock: per-prompt rows, their summary with prompt
bootstrap intervals, where the error comes from, a figure and a terminal table.

Pure numpy / pandas (no torch): ``experiments.cost_check`` runs the live loop and the simulator
and hands their outputs here.  Units: seconds in the rows, percent in the summary.

A prompt's *predicted* time is the simulator's: the sum over its rounds of the cost model's
round time at the prompt's mean context (``simulator.costs``; no prefill term).  Its *measured*
time is the live loop's wall clock from the first forward to the last token (prefill included).
``measured - predicted`` splits exactly into

* ``prefill``: round 0's measured verify (the whole prompt's forward plus the drafts) minus its
  predicted verify (one ordinary round);
* ``verify``: rounds 1.. measured verify minus predicted;
* ``draft``: measured drafting minus predicted (``k`` draft steps per round);
* ``policy``: the policy's choose and update calls (predicted 0);
* ``other``: the loop's own work outside those timers (predicted 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.stats import B_DEFAULT, LEVEL, bootstrap_indices, ratio_ci

PARTS = ("prefill", "verify", "draft", "policy", "other")
#: diagnostic predictions (``prompt_rows``): the cost model charged per drafted token (``drafted``),
#: and that with round 0 (the prefill) as measured (``drafted_prefill``)
ALTERNATIVES = ("drafted", "drafted_prefill")
#: drafter kinds by family, for the summary's "kind" rows (docs/collecting.md names them)
FAMILY = {"hf": "model", "early": "model", "skip": "model", "quant": "model", "ngram": "n-gram", "pld": "n-gram",
          "rest": "retrieval", "suffix": "retrieval", "plain": "plain"}


def spec_kind(spec: str) -> str:
    """A drafter spec's kind: ``early12=early:12`` -> ``early``."""
    body = spec.partition("=")[2] if "=" in spec.split(":")[0] else spec
    return body.partition(":")[0]


def round_predictions(rounds: pd.DataFrame, cost_s: np.ndarray, verify_s: np.ndarray, prompt_index: dict,
                      arm_index: dict, drafted_s=None) -> pd.DataFrame:
    """``rounds`` (the live log) with each round's predicted ``pred_s`` and ``pred_verify_s``
    (``cost_s``, ``verify_s``: (prompts, arms) seconds of the cost model) and, with
    ``drafted_s(prompt index, arm index, drafted)`` (arrays -> seconds), ``pred_drafted_s``: the
    same cost model charged for the tokens the drafter actually proposed instead of the arm's
    ``k`` (a lookup drafter without a match proposes none)."""
    p = rounds["prompt_id"].map(prompt_index).to_numpy()
    a = rounds["arm"].map(arm_index).to_numpy()
    out = rounds.copy()
    out["pred_s"] = cost_s[p, a]
    out["pred_verify_s"] = verify_s[p, a]
    if drafted_s is not None:
        out["pred_drafted_s"] = drafted_s(p, a, rounds["drafted"].to_numpy())
    return out


def prompt_rows(rounds: pd.DataFrame, wall: pd.DataFrame, predicted: pd.DataFrame, fit: str) -> pd.DataFrame:
    """One row per (policy, prompt): measured and predicted seconds, the error and its parts.

    ``rounds``: ``round_predictions`` output; ``wall``: policy, prompt_id, measured_s, policy_s;
    ``predicted``: policy, prompt_id, predicted_s (the simulator's ``time_s``)."""
    r = rounds.assign(first=rounds["round"] == 0)
    g = r.groupby(["policy", "prompt_id"], sort=False)
    agg = pd.DataFrame({
        "rounds": g.size(), "tokens": g["emitted"].sum(),
        "meas_prefill_s": g.apply(lambda x: x.loc[x["first"], "verify_s"].sum(), include_groups=False),
        "pred_prefill_s": g.apply(lambda x: x.loc[x["first"], "pred_verify_s"].sum(), include_groups=False),
        "meas_verify_s": g.apply(lambda x: x.loc[~x["first"], "verify_s"].sum(), include_groups=False),
        "pred_verify_s": g.apply(lambda x: x.loc[~x["first"], "pred_verify_s"].sum(), include_groups=False),
        "meas_draft_s": g["draft_s"].sum(), "pred_draft_s": (r["pred_s"] - r["pred_verify_s"]).groupby(
            [r["policy"], r["prompt_id"]], sort=False).sum(),
        "pred_rounds_s": g["pred_s"].sum()}).reset_index()
    if "pred_drafted_s" in r:  # diagnostics: charged per drafted token; and with round 0 as measured
        agg["pred_drafted_s"] = g["pred_drafted_s"].sum().to_numpy()
        first = r["first"].to_numpy()
        alt = np.where(first, r["draft_s"] + r["verify_s"], r["pred_drafted_s"])
        agg["pred_drafted_prefill_s"] = pd.Series(alt, index=r.index).groupby(
            [r["policy"], r["prompt_id"]], sort=False).sum().to_numpy()
    df = agg.merge(wall, on=["policy", "prompt_id"], validate="1:1").merge(
        predicted, on=["policy", "prompt_id"], validate="1:1")
    df.insert(0, "cost_fit", fit)
    df["meas_policy_s"] = df["policy_s"]
    df["meas_other_s"] = df["measured_s"] - df[["meas_prefill_s", "meas_verify_s", "meas_draft_s",
                                                "meas_policy_s"]].sum(axis=1)
    df["pred_policy_s"] = df["pred_other_s"] = 0.0
    for part in PARTS:
        df[f"err_{part}_s"] = df[f"meas_{part}_s"] - df[f"pred_{part}_s"]
    df["error_pct"] = 100 * (df["predicted_s"] - df["measured_s"]) / df["measured_s"]
    return df.drop(columns=["policy_s"])


def kind_rows(rounds: pd.DataFrame, kinds: dict[str, str], fit: str) -> pd.DataFrame:
    """Per (policy, prompt, drafter kind): measured and predicted seconds of the rounds that
    kind's arms played, round 0 (the prefill) left out.  ``kinds``: arm name -> kind."""
    r = rounds[rounds["round"] > 0].assign(kind=lambda x: x["arm"].map(kinds))
    r = r.assign(measured_s=r["draft_s"] + r["verify_s"], predicted_s=r["pred_s"])
    out = r.groupby(["policy", "prompt_id", "kind"], sort=False).agg(
        rounds=("round", "size"), measured_s=("measured_s", "sum"), predicted_s=("predicted_s", "sum")).reset_index()
    out.insert(0, "cost_fit", fit)
    return out


def _median_abs_ci(err: np.ndarray, b: int, seed: int) -> tuple[float, float, float]:
    point = float(np.median(np.abs(err)))
    if len(err) < 2:
        return point, float("nan"), float("nan")
    boot = np.median(np.abs(err)[bootstrap_indices(len(err), b, seed)], axis=1)
    a = (1 - LEVEL) / 2
    return point, float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a))


def error_stats(measured: np.ndarray, predicted: np.ndarray, b: int = B_DEFAULT, seed: int = 0) -> dict:
    """Median absolute per-prompt error and total error (percent), each with its prompt
    bootstrap interval (``simulator.stats``)."""
    measured, predicted = np.asarray(measured, float), np.asarray(predicted, float)
    med = _median_abs_ci(100 * (predicted - measured) / measured, b, seed)
    tot = [100 * (v - 1) for v in ratio_ci(predicted, measured, b, seed)]
    return {"prompts": len(measured), "measured_s": float(measured.sum()), "predicted_s": float(predicted.sum()),
            "median_abs_pct": med[0], "median_abs_lo": med[1], "median_abs_hi": med[2],
            "total_pct": tot[0], "total_lo": tot[1], "total_hi": tot[2]}


def summarise(rows: pd.DataFrame, krows: pd.DataFrame, b: int = B_DEFAULT, seed: int = 0) -> pd.DataFrame:
    """Per cost fit: every policy, every drafter kind and ``all`` (per prompt, summed over the
    policies), each with ``error_stats`` and the error's parts (seconds, summed over prompts)."""
    out = []
    for fit, fr in rows.groupby("cost_fit", sort=False):
        groups = [("policy", pol, g) for pol, g in fr.groupby("policy", sort=False)]
        groups.append(("all", "all", fr.groupby("prompt_id", sort=False).sum(numeric_only=True)))
        for what, name, g in groups:
            row = {"cost_fit": fit, "group": what, "name": name,
                   **error_stats(g["measured_s"].to_numpy(), g["predicted_s"].to_numpy(), b, seed)}
            row.update({f"err_{p}_s": float(g[f"err_{p}_s"].sum()) for p in PARTS})
            for alt in ALTERNATIVES:
                if f"pred_{alt}_s" in g:
                    st = error_stats(g["measured_s"].to_numpy(), g[f"pred_{alt}_s"].to_numpy(), b, seed)
                    row.update({f"{alt}_{k}": v for k, v in st.items() if k.startswith(("median", "total"))})
            out.append(row)
        kr = krows[krows["cost_fit"] == fit]
        for kind, g in kr.groupby("kind", sort=False):
            per = g.groupby("prompt_id", sort=False)[["measured_s", "predicted_s"]].sum()
            row = {"cost_fit": fit, "group": "kind", "name": kind,
                   **error_stats(per["measured_s"].to_numpy(), per["predicted_s"].to_numpy(), b, seed),
                   "rounds": int(g["rounds"].sum())}
            out.append(row)
    return pd.DataFrame(out)


def better_fit(summary: pd.DataFrame) -> str:
    """Which cost fit predicts the wall clock better over every prompt (``all``): the smaller
    median absolute error, where the two intervals do not overlap; otherwise a sentence that
    says they are not told apart."""
    a = summary[summary["group"] == "all"].set_index("cost_fit")
    if len(a) < 2:
        return f"one cost fit measured ({', '.join(a.index)})"
    best, other = a["median_abs_pct"].idxmin(), a["median_abs_pct"].idxmax()
    mb, mo = a.loc[best, "median_abs_pct"], a.loc[other, "median_abs_pct"]
    if a.loc[best, "median_abs_hi"] < a.loc[other, "median_abs_lo"]:
        return f"{best} (median abs error {mb:.1f}% vs {other} {mo:.1f}%)"
    return f"neither: median abs error {best} {mb:.1f}% vs {other} {mo:.1f}%, intervals overlap"


def table_lines(summary: pd.DataFrame, width: int = 100) -> list[str]:
    """The summary as two terminal tables (``traces.textout``): the errors with their intervals,
    then where the error comes from (seconds over every prompt, measured minus predicted)."""
    from traces.textout import Column, interval, num, render

    cols = [Column("fit", "", left=True), Column("group", "", left=True), Column("name", "", left=True),
            Column("n", "prompts"), Column("measured", "s"), Column("predicted", "s"),
            Column("median |err|", "% [95% CI]"), Column("total err", "% [95% CI]")]
    parts = [Column("fit", "", left=True), Column("group", "", left=True), Column("name", "", left=True),
             Column("error", "s"), Column("prefill", "s"), Column("verify", "s"), Column("draft", "s"),
             Column("policy", "s"), Column("other", "s")]
    for _, r in summary.iterrows():
        head = [r["cost_fit"], r["group"], str(r["name"])[:18]]
        vals = head + [str(int(r["prompts"])), num(r["measured_s"]), num(r["predicted_s"]),
                       interval(r["median_abs_pct"], r["median_abs_lo"], r["median_abs_hi"], r["prompts"], ".1f"),
                       interval(r["total_pct"], r["total_lo"], r["total_hi"], r["prompts"], "+.1f")]
        for c, v in zip(cols, vals, strict=True):
            c.cells.append(v)
        if r["group"] != "kind":
            vals = head + [num(r["measured_s"] - r["predicted_s"], "+.2f")]
            vals += [num(r.get(f"err_{p}_s", np.nan), "+.2f", "-") for p in PARTS]
            for c, v in zip(parts, vals, strict=True):
                c.cells.append(v)
    diag = [Column("fit", "", left=True), Column("group", "", left=True), Column("name", "", left=True),
            Column("per drafted token", "median |err| %"), Column("", "total err %"),
            Column("+ measured prefill", "median |err| %"), Column(" ", "total err %")]
    for _, r in summary[summary["group"] != "kind"].iterrows():
        if f"{ALTERNATIVES[0]}_median_abs_pct" not in r or not np.isfinite(r[f"{ALTERNATIVES[0]}_median_abs_pct"]):
            continue
        vals = [r["cost_fit"], r["group"], str(r["name"])[:18]]
        for alt in ALTERNATIVES:
            vals += [num(r[f"{alt}_median_abs_pct"], ".1f"), num(r[f"{alt}_total_pct"], "+.1f")]
        for c, v in zip(diag, vals, strict=True):
            c.cells.append(v)
    lines, dropped = render(cols, width)
    lines2, dropped2 = render(parts, width)
    if diag[0].cells:
        lines2 += ["", "the same cost table charged per drafted token (not the arm's k), then with the prefill "
                   "round as measured:"] + render(diag, width)[0]
    lines += ["", "where the error comes from: measured - predicted seconds, summed over prompts"] + lines2
    if dropped or dropped2:
        lines.append(f"(left out for width: {', '.join(dropped + dropped2)})")
    return lines


def figure(rows: pd.DataFrame, path) -> None:
    """Measured vs predicted seconds per prompt, one panel per cost fit, one colour per policy
    (``experiments.style``), the diagonal and a +-5 % band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.markers import MarkerStyle

    from .style import policy_style

    fits = list(dict.fromkeys(rows["cost_fit"]))
    fig, axes = plt.subplots(1, len(fits), figsize=(4.2 * len(fits), 4), squeeze=False)
    lo = float(min(rows["measured_s"].min(), rows["predicted_s"].min())) * 0.9
    hi = float(max(rows["measured_s"].max(), rows["predicted_s"].max())) * 1.1
    for ax, fit in zip(axes[0], fits, strict=True):
        xs = np.array([lo, hi])
        ax.fill_between(xs, xs * 0.95, xs * 1.05, color="0.9", label="±5 %")
        ax.plot(xs, xs, color="0.4", lw=0.8)
        for pol, g in rows[rows["cost_fit"] == fit].groupby("policy", sort=False):
            st = policy_style(pol)
            hollow = st.hollow and MarkerStyle(st.marker).is_filled()  # an "x" has no face to leave white
            kw = {"facecolors": "white", "edgecolors": st.color} if hollow else {"color": st.color}
            ax.scatter(g["measured_s"], g["predicted_s"], s=18, marker=st.marker, label=pol, **kw)
        ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="measured wall clock per prompt (s)",
               ylabel="simulated time per prompt (s)", title=f"cost model: {fit}")
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
