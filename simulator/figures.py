"""Pure figure functions: results DataFrame in, ``matplotlib.figure.Figure`` out.

No I/O and no global style changes here; ``save_all`` is the one place that writes.
Colours are fixed per policy family (colour-blind palette) across every figure.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

_CB = sns.color_palette("colorblind", 10)
FAMILY_COLORS = {
    "ucbspec": _CB[0], "exp3spec": _CB[1], "hedgespec": _CB[2], "oracle": _CB[7],
    "uniform": _CB[5], "fixed": _CB[4], "banditspec-code": _CB[3], "structured-ucb": _CB[8],
    "smartspec": _CB[6], "heuristic": _CB[9], "heuristic_transient": _CB[9], "ucb1": _CB[0],
    "klucb": _CB[0], "thompson": _CB[3], "epsilon-greedy": _CB[5], "exp3-ix": _CB[1],
    "tsallis-inf": _CB[4], "sw-ucb": _CB[8],
}
# families sharing a colour differ by marker
FAMILY_MARKERS = {"ucbspec": "o", "exp3spec": "s", "hedgespec": "D", "oracle": "*", "uniform": "v",
                  "fixed": "x", "structured-ucb": "^", "smartspec": "P", "heuristic": "<",
                  "heuristic_transient": ">", "ucb1": "p", "klucb": "h", "thompson": "X",
                  "epsilon-greedy": "d", "exp3-ix": "8", "tsallis-inf": "H", "sw-ucb": "1",
                  "banditspec-code": "+"}


def policy_color(policy: str):
    fam = policy.split(":")[0]
    return FAMILY_COLORS.get(fam, _CB[9])


def _ci(g: pd.DataFrame, col: str) -> tuple[float, float]:
    per_run = g.groupby("run")[col].mean()
    half = 1.96 * per_run.std(ddof=1) / np.sqrt(len(per_run)) if len(per_run) > 1 else 0.0
    return float(per_run.mean()), float(half)


def regret_by_policy(df: pd.DataFrame, title: str = "") -> plt.Figure:
    """Mean stopping-time regret per policy (rounds per prompt), one panel per setting,
    error bars = 95% CI over runs."""
    settings = list(dict.fromkeys(df["setting"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(3.4 * len(settings), 3.0), squeeze=False)
    for ax, setting in zip(axes[0], settings, strict=True):
        sub = df[df["setting"] == setting]
        pols = list(dict.fromkeys(sub["policy"]))
        stats = [_ci(sub[sub["policy"] == p], "regret") for p in pols]
        y = np.arange(len(pols))
        ax.barh(y, [s[0] for s in stats], xerr=[s[1] for s in stats],
                color=[policy_color(p) for p in pols], capsize=3)
        ax.set_yticks(y, pols)
        ax.invert_yaxis()
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel("regret (rounds / prompt)")
        ax.set_title(setting)
    fig.suptitle(title or "Stopping-time regret vs best fixed arm per prompt (95% CI over runs)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def regret_by_category(df: pd.DataFrame) -> plt.Figure:
    """Heatmap of mean regret (% of the best fixed arm's rounds) per policy x category."""
    d = df.copy()
    g = d.groupby(["setting", "policy", "category"]).apply(
        lambda x: 100 * x["regret"].sum() / x["best_fixed_st"].sum(), include_groups=False)
    tab = g.unstack("category")
    tab.index = [f"{s} / {p}" for s, p in tab.index]
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * tab.shape[1], 0.9 + 0.35 * tab.shape[0]))
    sns.heatmap(tab, annot=True, fmt=".1f", cmap="rocket_r", ax=ax, cbar_kws={"label": "regret %"})
    ax.set_xlabel("category")
    ax.set_ylabel("")
    ax.set_title("Regret as % of best-fixed-arm rounds", fontsize=9)
    fig.tight_layout()
    return fig


def pull_fractions(df: pd.DataFrame, arm_names: list[str], top: int = 8) -> plt.Figure:
    """Fraction of rounds each policy gave to each arm (top arms, rest pooled)."""
    settings = list(dict.fromkeys(df["setting"]))
    sub = df[df["setting"] == settings[0]]
    pols = list(dict.fromkeys(sub["policy"]))
    frac = np.array([np.sum(np.stack(sub.loc[sub["policy"] == p, "pulls"].to_numpy()), axis=0)
                     for p in pols], dtype=float)
    frac /= frac.sum(axis=1, keepdims=True)
    order = np.argsort(-frac.sum(axis=0))[:top]
    cols = [arm_names[i] for i in order]
    tab = pd.DataFrame(frac[:, order], index=pols, columns=cols)
    tab["other"] = 1 - tab.sum(axis=1)
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.35 * len(pols)))
    tab.plot.barh(stacked=True, ax=ax, color=sns.color_palette("colorblind", tab.shape[1]),
                  width=0.8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"fraction of rounds ({settings[0]})")
    ax.legend(ncol=1, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="arm")
    fig.tight_layout()
    return fig


def acceptance_survival(accept: np.ndarray, lens: np.ndarray, drafters: list[str], k_max: int,
                        title: str = "") -> plt.Figure:
    """``P(L_d(t) >= i)`` for i = 1..k_max per drafter, over all positions with a full
    ``k_max`` horizon (vLLM's per-position acceptance convention)."""
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    pal = sns.color_palette("colorblind", len(drafters))
    i = np.arange(1, k_max + 1)
    for d_i, d in enumerate(drafters):
        vals = np.concatenate([accept[p, d_i, : max(int(lens[p]) - k_max + 1, 0)] for p in range(len(lens))])
        if len(vals) == 0:
            continue
        surv = (vals[:, None] >= i[None, :]).mean(axis=0)
        ax.plot(i, surv, marker="o", ms=3, color=pal[d_i], label=d,
                linestyle="-" if d_i < 10 else "--")
    ax.set_xlabel("draft position i")
    ax.set_ylabel("P(accepted length >= i)")
    ax.set_ylim(0, 1)
    ax.set_title(title or "Acceptance survival per drafter", fontsize=8)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, out: str | Path, name: str, dpi: int = 150) -> list[Path]:
    """Write ``fig`` as ``out/name.png`` and ``out/name.pdf`` and close it; the one place
    figures are written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        p = out / f"{name}.{ext}"
        fig.savefig(p, dpi=dpi, bbox_inches="tight")
        paths.append(p)
    plt.close(fig)
    return paths


def save_all(df: pd.DataFrame, arm_names: list[str], out_dir: str | Path, title: str = "") -> list[Path]:
    """Write every figure as PNG and PDF into ``out_dir``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sns.set_theme(context="paper", style="whitegrid")
    matplotlib.rcParams["pdf.fonttype"] = 42
    figs = {
        "regret_by_policy": regret_by_policy(df, title),
        "regret_by_category": regret_by_category(df),
        "pull_fractions": pull_fractions(df, arm_names),
    }
    return [p for name, fig in figs.items() for p in save_figure(fig, out, name)]
