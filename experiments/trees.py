"""Chain or tree?  Per drafter and prompt category, the best chain arm against the best tree arm
by time (fixed arms, exact from the trace's ranks), with prompt-bootstrap intervals and the
paired difference (``python -m experiments trees``; part of ``figures`` when the trace has
ranks).  Batch size 1; the cost model's tree rule is in ``docs/trace_format.md``.
"""

from __future__ import annotations

import pandas as pd

import traces
from simulator.runner import RunConfig, fixed_frame, resolve
from simulator.stats import mean_ci, ratio_ci, verdict
from traces.trees import load_tree

TREES = ("2x2", "3x2x1", "4x2x2x1", "sparse63")


def chain_vs_tree(trace: str, trees: tuple[str, ...] = TREES, drafters: tuple[str, ...] | None = None,
                  cost_device: str | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per (drafter, category incl. ``overall``): the best chain ``d@1..k_max`` and the
    best tree by total time over the category's prompts, their tokens/s with intervals, and
    the paired per-prompt time difference (tree - chain, ms; negative = the tree is faster)."""
    tr = traces.load(trace)
    names = list(drafters or [d for d in tr.drafter_names if tr.has_ranks(d)])
    if not names:
        raise ValueError(f"{trace}: no drafter has ranks (schema {tr.manifest.get('schema_version')}); tree arms "
                         "need a trace collected with ranks")
    for d in names:
        if not tr.has_ranks(d):
            raise ValueError(f"{trace}: records no ranks for drafter {d!r} (schema "
                             f"{tr.manifest.get('schema_version')}); its tree arms need a trace collected with ranks")
    usable = [t for t in trees if load_tree(t).depth <= tr.k_max]
    if not usable:
        raise ValueError(f"--trees: every tree is deeper than the trace's k_max {tr.k_max}")
    lim = tr.k_limits  # a Medusa checkpoint drafts at most one token per head: its chains and trees stop there
    arms = ",".join(f"{d}@1-{lim[d]}" for d in names) + "," + ",".join(
        f"{d}@tree:{t}" for d in names for t in usable if load_tree(t).depth <= lim[d])
    prep = resolve(RunConfig(trace=trace, setting="replay", policies=("uniform",), runs=1, seed=seed, arms=arms,
                             objective="time", cost_device=cost_device))
    f = fixed_frame(prep)
    f["drafter"] = f["arm"].str.rpartition("@")[0]
    f["is_tree"] = f["arm"].str.contains("@tree:")
    rows = []
    for d in names:
        g = f[f.drafter == d]
        for cat in [*sorted(g.category.unique()), "overall"]:
            s = g if cat == "overall" else g[g.category == cat]
            tot = s.groupby("arm")["time_s"].sum()
            best = {kind: tot[sorted(set(s.loc[s.is_tree == kind, "arm"]))].idxmin() for kind in (False, True)}
            row = {"drafter": d, "category": cat, "prompts": s.prompt_id.nunique(),
                   "best_chain": best[False], "best_tree": best[True]}
            per = {kind: s[s.arm == best[kind]].set_index("prompt_id") for kind in (False, True)}
            order = per[False].index
            for kind, label in ((False, "chain"), (True, "tree")):
                x = per[kind].loc[order]
                row[f"{label}_tps"], row[f"{label}_lo"], row[f"{label}_hi"] = ratio_ci(x.tokens, x.time_s, seed=seed)
            diff = 1000 * (per[True].loc[order, "time_s"].to_numpy() - per[False].loc[order, "time_s"].to_numpy())
            row["tree_minus_chain_ms"], row["diff_lo"], row["diff_hi"] = mean_ci(diff, seed=seed)
            row["verdict"] = verdict(row["diff_lo"], row["diff_hi"]).replace("better", "tree faster").replace(
                "worse", "chain faster")
            rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["cost_device"] = prep.costs.device if prep.costs is not None else None
    return out


def to_markdown(df: pd.DataFrame) -> str:
    lines = ["| drafter | category | best chain (tok/s) | best tree (tok/s) | tree − chain ms/prompt | verdict |",
             "|---|---|---|---|---|---|"]
    for _, r in df.iterrows():
        lines.append(f"| {r.drafter} | {r.category} | {r.best_chain} {r.chain_tps:.1f} [{r.chain_lo:.1f}, "
                     f"{r.chain_hi:.1f}] | {r.best_tree} {r.tree_tps:.1f} [{r.tree_lo:.1f}, {r.tree_hi:.1f}] | "
                     f"{r.tree_minus_chain_ms:+.2f} [{r.diff_lo:+.2f}, {r.diff_hi:+.2f}] | {r.verdict} |")
    return "\n".join(lines) + "\n"

