"""Pure figure functions: results DataFrame in, ``matplotlib.figure.Figure`` out.

No I/O and no global style changes here; ``save_all`` is the one place that writes.
Colours and markers come from ``experiments.style``: one per policy and one per drafter,
the same in every figure.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .style import DrafterPalette, policy_color, policy_marker, policy_style  # noqa: E402,F401

MIN_DECODING_SHARE = 0.25  # step curves stop where fewer than this share of prompts is still decoding


def source_line(trace: str, cost: str | None) -> str:
    """What every figure names: the trace and the cost table (or that none is used)."""
    return f"trace {trace}; " + (f"cost table {cost}" if cost else "no cost table (rounds / tokens)")


def source_of(conf: dict) -> str:
    """:func:`source_line` of a results folder's config (``trace_label``, ``cost_device``)."""
    dev = conf.get("cost_device")
    return source_line(conf.get("trace_label", "?"), str(dev).split(" (")[0] if dev else None)


def _with(title: str, default: str) -> str:
    return f"{default}\n{title}" if title else default


def _objective_cols(df: pd.DataFrame) -> tuple[str, str, float, str]:
    """(regret column, comparator column, scale, unit) of the results' objective."""
    from simulator.summary import objective_of

    if objective_of(df) == "time" and "regret_s" in df.columns:
        return "regret_s", "best_time_s", 1000.0, "ms"
    return "regret_rounds", "best_rounds", 1.0, "rounds"


def regret_by_policy(df: pd.DataFrame, title: str = "") -> plt.Figure:
    """Mean regret per policy in the run's objective (rounds or ms per prompt), one panel per
    setting, error bars = 95% prompt-bootstrap interval."""
    from simulator.stats import mean_ci, per_prompt

    col, _, scale, unit = _objective_cols(df)
    settings = list(dict.fromkeys(df["setting"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(3.4 * len(settings), 3.0), squeeze=False)
    for ax, setting in zip(axes[0], settings, strict=True):
        sub = df[df["setting"] == setting]
        pols = list(dict.fromkeys(sub["policy"]))
        stats = np.array([mean_ci(per_prompt(g[col].to_numpy() * scale, g["prompt_id"].to_numpy()))
                          for g in (sub[sub["policy"] == p] for p in pols)])
        y = np.arange(len(pols))
        err = np.nan_to_num(np.abs(stats[:, 1:].T - stats[:, 0]))
        ax.barh(y, stats[:, 0], xerr=err, color=[policy_color(p) for p in pols], capsize=3)
        ax.set_yticks(y, pols)
        ax.invert_yaxis()
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel(f"regret ({unit} / prompt)")
        ax.set_title(setting)
    fig.suptitle(_with(title, f"Regret in {unit} vs best fixed arm per prompt (95% prompt-bootstrap CI)"), fontsize=8)
    fig.tight_layout()
    return fig


def regret_by_category(df: pd.DataFrame, title: str = "") -> plt.Figure:
    """Heatmap of regret (% of the best fixed arm's rounds or time) per policy x category."""
    col, ref, _, unit = _objective_cols(df)
    g = df.groupby(["setting", "policy", "category"]).apply(
        lambda x: 100 * x[col].sum() / x[ref].sum(), include_groups=False)
    tab = g.unstack("category")
    tab.index = [f"{s} / {p}" for s, p in tab.index]
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * tab.shape[1], 0.9 + 0.35 * tab.shape[0]))
    sns.heatmap(tab, annot=True, fmt=".1f", cmap="rocket_r", ax=ax, cbar_kws={"label": "regret %"})
    ax.set_xlabel("category")
    ax.set_ylabel("")
    what = "time" if unit == "ms" else "rounds"
    ax.set_title(_with(title, f"Regret as % of the best fixed arm's {what}"), fontsize=8)
    fig.tight_layout()
    return fig


def pull_fractions(df: pd.DataFrame, arm_names: list[str], top: int = 8,
                   palette: DrafterPalette | None = None, title: str = "") -> plt.Figure:
    """Fraction of rounds each policy gave to each arm (top arms, rest pooled); arm colours
    from ``palette`` (default: the arms' drafters in order)."""
    palette = palette or DrafterPalette([a.partition("@")[0] for a in arm_names])
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
    tab.plot.barh(stacked=True, ax=ax, color=[*palette.arm_colors(cols).values(), (0.85, 0.85, 0.85)],
                  width=0.8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"fraction of rounds ({settings[0]})")
    ax.set_title(_with(title, "Fraction of rounds on each arm"), fontsize=8)
    ax.legend(ncol=1, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="arm")
    fig.tight_layout()
    return fig


def survival_table(accept: np.ndarray, lens: np.ndarray, drafters: list[str], k_max: int) -> pd.DataFrame:
    """``P(L_d(t) >= i)`` for i = 1..k_max per drafter, over all positions with a full
    ``k_max`` horizon (vLLM's per-position acceptance convention)."""
    rows = []
    i = np.arange(1, k_max + 1)
    for d_i, d in enumerate(drafters):
        vals = np.concatenate([accept[p, d_i, : max(int(lens[p]) - k_max + 1, 0)] for p in range(len(lens))])
        vals = vals[vals >= 0]  # an engine log (partial trace): its logged steps only
        if len(vals):
            for ii, sv in zip(i, (vals[:, None] >= i[None, :]).mean(axis=0), strict=True):
                rows.append(dict(drafter=d, i=int(ii), survival=float(sv), n_positions=len(vals)))
    return pd.DataFrame(rows)


def acceptance_survival(accept: np.ndarray, lens: np.ndarray, drafters: list[str], k_max: int,
                        title: str = "") -> plt.Figure:
    """Figure 7 straight from a trace's arrays (see :func:`survival_table`)."""
    return survival_from_table(survival_table(accept, lens, drafters, k_max), title)


def _serve_arm_colors(df: pd.DataFrame, palette: DrafterPalette | None) -> dict[str, tuple]:
    arms = list(df.loc[df["kind"] == "arm"].drop_duplicates("method").sort_values("k")["method"])
    palette = palette or DrafterPalette([a.partition("@")[0] for a in arms if not a.startswith("plain")])
    return palette.arm_colors(arms)


def batch_serving(df: pd.DataFrame, title: str = "", measured: list[int] | None = None,
                  palette: DrafterPalette | None = None) -> plt.Figure:
    """Throughput improvement over plain decoding against the batch size: mean over runs (each
    run a different prompt sample, the same for every method) with a 95% bootstrap band over
    runs; every fixed ``k``, the best arm per batch size in hindsight (plain decoding, ``k = 0``,
    included: not drafting is an action) and each policy.  Batch sizes past the largest
    measured one (``measured``) use extrapolated costs and are shaded."""
    from simulator.stats import mean_ci

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    bs = np.sort(df["batch_size"].unique())
    colors = _serve_arm_colors(df, palette)

    def band(method: str) -> np.ndarray:
        g = df[df["method"] == method]
        return np.array([mean_ci(g.loc[g.batch_size == b, "improvement"].to_numpy()) for b in bs])

    arms = df[df["kind"] == "arm"].drop_duplicates("method").sort_values("k")
    for name, k in zip(arms["method"], arms["k"], strict=True):
        v = band(name)
        col = colors[name]
        ax.plot(bs, v[:, 0], color=col, lw=1, ls="-" if k > 0 else ":", zorder=3,  # above the policies
                label=f"k = {k}" + (" (plain)" if k == 0 else f" ({name})"))
        if k > 0:
            ax.fill_between(bs, v[:, 1], v[:, 2], color=col, alpha=0.12, lw=0)
    means = df[df.kind == "arm"].groupby(["batch_size", "method"])["improvement"].mean().unstack()
    best = means.max(axis=1)
    n_plain = int((means.idxmax(axis=1).map(dict(zip(arms["method"], arms["k"], strict=True))) == 0).sum())
    ax.plot(bs, best.loc[bs], color="k", lw=2.0, ls=(0, (1, 2)),
            label=f"best arm per batch size, hindsight (k = 0 included; plain best at {n_plain}/{len(bs)})")
    for pol in df.loc[df["kind"] == "policy", "method"].unique():
        v = band(pol)
        st = policy_style(pol)
        ax.plot(bs, v[:, 0], **st.kw(), ms=3, lw=1.4, label=pol, markevery=max(len(bs) // 10, 1))
        ax.fill_between(bs, v[:, 1], v[:, 2], color=st.color, alpha=0.18, lw=0)
    if measured and bs.max() > max(measured):
        ax.axvspan(max(measured) + 0.5, bs.max() + 0.5, color="0.85", alpha=0.5, lw=0, zorder=0)
        ax.text(max(measured) + 1, ax.get_ylim()[0], f" verify cost extrapolated past batch {max(measured)}",
                fontsize=6, va="bottom", color="0.3")
    ax.set_xlabel("batch size (prompts served together, static batching)")
    ax.set_ylabel("throughput / plain decoding")
    ax.set_title(_with(title, "Batch serving"), fontsize=7)
    ax.legend(fontsize=5.5, ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title=f"{df['run'].nunique()} runs per batch size;\nbands: 95% CI over runs", title_fontsize=6)
    fig.tight_layout()
    return fig


def batch_serving_sorted(df: pd.DataFrame, title: str = "", palette: DrafterPalette | None = None) -> plt.Figure:
    """BanditSpec Fig. 3 layout: throughput improvement over ``k = 0`` per batch sample
    (mean over runs), samples sorted by the best speculative arm's improvement; one curve per
    fixed arm (plain decoding is the line at 1), best and worst speculative arm (``k >= 1``) in
    hindsight, and each policy."""
    from simulator.serving import hindsight_summary

    m = hindsight_summary(df)
    x = np.arange(len(m))
    colors = _serve_arm_colors(df, palette)
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    arms = df[df["kind"] == "arm"].drop_duplicates("method").sort_values("k")
    for name, k in zip(arms["method"], arms["k"], strict=True):
        ax.plot(x, m[name], color=colors[name], lw=1, zorder=3,
                ls="-" if k > 0 else ":", label=f"k = {k}" + (" (plain)" if k == 0 else f" ({name})"))
    ax.plot(x, m["best arm"], color="k", lw=2.2, ls=(0, (1, 2)), label="best speculative arm, k >= 1 (hindsight)",
            zorder=1)
    ax.plot(x, m["worst arm"], color="k", lw=2.2, ls=(0, (4, 3)), alpha=0.5,
            label="worst speculative arm, k >= 1 (hindsight)", zorder=1)
    for pol in df.loc[df["kind"] == "policy", "method"].unique():
        ax.plot(x, m[pol], **policy_style(pol).kw(), ms=3, lw=1.4, label=pol)
    ax.set_xlabel("batch sample (sorted by the best speculative arm's improvement)")
    ax.set_ylabel("throughput / plain decoding")
    runs = df["run"].nunique()
    ax.set_title(_with(title, "Batch serving, samples sorted"), fontsize=7)
    ax.legend(fontsize=5.5, ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title=f"batch sizes {df.batch_size.min()}-{df.batch_size.max()}, {runs} runs", title_fontsize=6)
    fig.tight_layout()
    return fig


def regret_vs_length(curves: pd.DataFrame, title: str = "") -> plt.Figure:
    """Regret against output length (log x), mean ± 95% CI over runs, one panel per (check,
    setting) in order of appearance, with the upper bound (Theorem 4.3 where the rows carry
    the Theorem 4.4 curve ``c log(len)``, else Theorem 5.3) and, where given (column
    ``worst``), the worst fixed arm's regret: a bound above it is vacuous.  Where the rows
    carry a fitted log-log slope (``slope``, ``slope_lo``, ``slope_hi``, ``fit_from``), the
    fitted power law is drawn over its window and the slope with its 95% interval labelled.
    Where the rows carry ``source`` (``figures``: the instance fitted to the trace, or
    "synthetic instance"), each panel's title says it."""
    groups = list(dict.fromkeys(zip(curves["check"], curves["setting"], strict=True)))
    ncol = 3 if len(groups) in (6, 9) else min(len(groups), 4)  # full rows for the paper's six panels
    nrow = -(-len(groups) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.9 * ncol, 2.9 * nrow), squeeze=False)
    for ax, (check, s) in zip(axes.flat, groups, strict=False):
        g = curves[(curves["check"] == check) & (curves["setting"] == s)]
        for pol, gp in g.groupby("policy", sort=False):
            col = policy_color(pol)
            label = f"{pol} (mean ± 95% CI)"
            if "slope" in gp and np.isfinite(gp["slope"].iloc[0]):
                b, lo, hi = gp[["slope", "slope_lo", "slope_hi"]].iloc[0]
                w = gp[(gp["n"] >= gp["fit_from"].iloc[0]) & (gp["regret"] > 0)]
                x, y = np.log(w["n"].to_numpy(float)), np.log(w["regret"].to_numpy(float))
                ax.plot(w["n"], np.exp(y.mean() + b * (x - x.mean())), color=col, lw=2.5, alpha=0.35)
                label = f"{pol}: slope {b:.2f} [{lo:.2f}, {hi:.2f}]"
            ax.errorbar(gp["n"], gp["regret"], yerr=gp["ci95"], marker=policy_marker(pol), ms=3, capsize=2,
                        color=col, label=label)
        first = g[g["policy"] == g["policy"].iloc[0]]
        stochastic = first["lower"].notna().any()
        ax.plot(first["n"], first["upper"], "k--", lw=1,
                label="upper bound (Thm 4.3)" if stochastic else "upper bound (Thm 5.3)")
        if stochastic:
            ax.plot(first["n"], first["lower"], "k:", lw=1, label="c log(len) (Thm 4.4)")
        if "worst" in first and first["worst"].notna().any():
            ax.plot(first["n"], first["worst"], color="0.55", ls="-.", lw=1, label="worst fixed arm")
        ax.set_xscale("log")
        if (g["regret"] > 0).all():
            ax.set_yscale("log")
        else:  # a switching policy can beat every fixed arm on an adversarial stream
            ax.set_yscale("symlog", linthresh=10)
        ax.set_xlabel("output length (tokens)")
        src = f"\n[{g['source'].iloc[0]}]" if "source" in g and isinstance(g["source"].iloc[0], str) else ""
        ax.set_title(f"{check}: {s}{src}", fontsize=7)
        ax.legend(fontsize=5.5)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("stopping-time regret (rounds)")
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def normalised_regret(curves: pd.DataFrame, title: str = "") -> plt.Figure:
    """``R / log(len)`` for UCBSpec on the stochastic instances against the Theorem 4.4
    constant ``c`` (horizontal line): the ratio approaches a constant >= c for a
    logarithmic-regret policy."""
    g = curves[(curves.check == "stochastic") & (curves.policy == "ucbspec")]
    fig, ax = plt.subplots(figsize=(4.4, 3.0))
    pal = sns.color_palette("colorblind", g.setting.nunique())
    for (s, gs), col in zip(g.groupby("setting", sort=False), pal, strict=True):
        y = gs["pseudo"] / np.log(gs["n"])
        src = f" [{gs['source'].iloc[0]}]" if "source" in gs and isinstance(gs["source"].iloc[0], str) else ""
        ax.plot(gs["n"], y, marker="o", ms=3, color=col, label=f"{s}{src}")
        ax.axhline(float(gs["c_thm44"].iloc[0]), color=col, ls=":", lw=1.2)
    ax.set_xscale("log")
    ax.set_xlabel("output length (tokens)")
    ax.set_ylabel("UCBSpec regret / log(len)")
    ax.set_title(_with(title, "Normalised regret; dotted: Thm 4.4 constant c per instance"), fontsize=7)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def decoding_steps(g: pd.DataFrame, share: float = MIN_DECODING_SHARE) -> pd.DataFrame:
    """The rows of one policy's trajectory up to the last step at which at least ``share`` of
    the prompts is still decoding (``prompts_active`` of ``n_prompts``, a prompt counted by the
    share of its runs still decoding; lanes in older data)."""
    if "prompts_active" in g:
        keep = g["prompts_active"] >= share * g["n_prompts"]
    else:
        keep = g["active"] >= share * g["active"].max()
    return g[g["step"] <= (g.loc[keep, "step"].max() if keep.any() else 0)]


def cumulative_regret_steps(traj: pd.DataFrame, title: str = "", share: float = MIN_DECODING_SHARE
                            ) -> plt.Figure:
    """HedgeSpec Fig. 5a analogue: mean cumulative full-information regret (tokens) against
    decoding step, with a 95% bootstrap band over prompts (the runs of a prompt are one
    cluster: ``lo``/``hi`` of ``trajectories``), each curve cut after the last step at which at
    least ``share`` of the prompts is still decoding."""
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    banded = {"lo", "hi"} <= set(traj.columns)
    for pol, g in traj.groupby("policy", sort=False):
        g = decoding_steps(g, share)
        st = policy_style(pol)
        ax.plot(g["step"], g["cum_regret"], **st.kw(), label=pol, ms=3, markevery=max(len(g) // 8, 1))
        if banded:
            ax.fill_between(g["step"], g["lo"], g["hi"], color=st.color, alpha=0.2, lw=0)
    ax.set_xlabel("decoding step (verification round)")
    ax.set_ylabel("cumulative regret (tokens)")
    band = ("band: 95% bootstrap over prompts (runs of a prompt are one cluster)" if banded else
            "no band (data from an older version: rerun without --render-only)")
    ax.set_title(_with(title, "Cumulative regret vs best fixed drafter"), fontsize=7)
    ax.legend(fontsize=6, title=f"{band};\ncut where < {share:.0%} of prompts still decode", title_fontsize=5.5)
    fig.tight_layout()
    return fig


def regret_vs_pool(df: pd.DataFrame, title: str = "") -> plt.Figure:
    """HedgeSpec Fig. 5b analogue: regret (rounds / prompt) and, if measured, tokens/s against
    the number of drafters, every policy on the same arms (each drafter at one K), averaged
    over drafter orders; bands: 95% prompt-bootstrap intervals."""
    timed = "tps" in df.columns and df["tps"].notna().any()
    fig, axes = plt.subplots(1, 2 if timed else 1, figsize=(8.4 if timed else 4.4, 3.0), squeeze=False)
    panels = [("regret", "regret (rounds / prompt)")] + ([("tps", "tokens/s (feedback charged)")] if timed else [])
    for ax, (col, ylabel) in zip(axes[0], panels, strict=True):
        for pol, g in df.groupby("policy", sort=False):
            st = policy_style(pol)
            c = st.color
            ax.plot(g["drafters"], g[col], label=pol, **st.kw(), ms=4)
            ax.fill_between(g["drafters"], g[f"{col}_lo"], g[f"{col}_hi"], color=c, alpha=0.15, lw=0)
        ax.set_xlabel("number of drafters (each at the same K)")
        ax.set_ylabel(ylabel)
    orders = int(df["orders"].iloc[0]) if "orders" in df else 1
    fig.suptitle(_with(title, f"Regret against the number of drafters (mean over {orders} drafter orders)"),
                 fontsize=7)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def pulls_over_time(traj: pd.DataFrame, title: str = "", palette: DrafterPalette | None = None,
                    share: float = MIN_DECODING_SHARE) -> plt.Figure:
    """Per policy (one panel each), at each decoding step among the prompts still decoding:
    the share of lanes on each arm (solid) against the share of those lanes whose prompt's best
    fixed arm is that arm (dashed, ``best:ARM`` of ``trajectories``).  Which prompts are still
    decoding changes with the step (short prompts finish first), so a rising pull share is
    learning only where it rises above the dashed line.  Grey: share of prompts still decoding;
    steps after it falls below ``share`` are cut."""
    pols = list(dict.fromkeys(traj["policy"]))
    arms = [c[5:] for c in traj.columns if c.startswith("frac:")]
    colors = (palette or DrafterPalette([a.partition("@")[0] for a in arms])).arm_colors(arms)
    corrected = all(f"best:{a}" in traj.columns for a in arms)
    ncol = min(len(pols), 2)
    nrow = -(-len(pols) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol + 1.6, 2.8 * nrow), squeeze=False, sharey=True)
    for ax, pol in zip(axes.flat, pols, strict=False):
        g = decoding_steps(traj[traj["policy"] == pol], share)
        for a in arms:
            ax.plot(g["step"], g[f"frac:{a}"], color=colors[a], lw=1.4, label=f"{a}: pulls")
            if corrected:
                ax.plot(g["step"], g[f"best:{a}"], color=colors[a], lw=1.1, ls=(0, (3, 2)),
                        label=f"{a}: best arm of the prompts still decoding")
        if "prompts_active" in g:
            ax.plot(g["step"], g["prompts_active"] / g["n_prompts"], color="0.6", lw=0.9, ls=(0, (1, 1)),
                    label="share of prompts still decoding")
        ax.set_xlim(1, max(int(g["step"].max()), 2))
        ax.set_ylim(0, 1)
        ax.set_title(pol, fontsize=8)
        ax.set_xlabel("decoding step")
    for ax in axes.flat[len(pols):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("share of still-decoding lanes")
    what = ("solid: share of lanes pulling each arm; dashed: share of them whose prompt's best fixed arm it is"
            if corrected else "share of lanes pulling each arm (no survivor reference in these data)")
    fig.suptitle(_with(title, f"Arm choice per decoding step among the prompts still decoding\n{what};\n"
                              f"steps with < {share:.0%} of prompts still decoding cut"), fontsize=7)
    axes[0][-1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def category_heatmap(pulls: pd.DataFrame, title: str = "", ncol: int = 4) -> plt.Figure:
    """Per policy (one panel each, ``ncol`` panels a row), the fraction of rounds spent on each
    arm in each prompt category."""
    pols = [p for p in dict.fromkeys(pulls["policy"]) if not p.startswith("fixed")]
    arms = [c for c in pulls.columns if c not in ("policy", "category")]
    ncol = min(ncol, len(pols))
    nrow = -(-len(pols) // ncol)
    ncat = pulls["category"].nunique()
    fig, axes = plt.subplots(nrow, ncol, figsize=(1.2 + 0.62 * len(arms) * ncol, 0.6 + (1.1 + 0.3 * ncat) * nrow),
                             squeeze=False, sharey=True)
    for ax, pol in zip(axes.flat, pols, strict=False):
        g = pulls[pulls["policy"] == pol].set_index("category")[arms].astype(float)
        g = g.div(g.sum(axis=1), axis=0)
        sns.heatmap(g, ax=ax, vmin=0, vmax=1, cmap="mako_r", annot=True, fmt=".2f", annot_kws={"size": 6},
                    cbar=False)
        ax.set_title(pol, fontsize=8)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize=6)
        ax.tick_params(axis="x", labelrotation=45)
    for ax in axes.flat[len(pols):]:
        ax.set_visible(False)
    fig.suptitle(_with(title, "Fraction of rounds on each arm per category"), fontsize=8)
    fig.tight_layout()
    fig.colorbar(axes[0][0].collections[0], ax=axes.ravel().tolist(), fraction=0.02, pad=0.01,
                 label="fraction of rounds")
    return fig


def survival_from_table(surv: pd.DataFrame, title: str = "", palette: DrafterPalette | None = None) -> plt.Figure:
    """Figure 7 from its saved table (same drawing as :func:`acceptance_survival`): one curve per
    drafter in its own colour / marker / line style, the legend outside the axes."""
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    drafters = list(dict.fromkeys(surv["drafter"]))
    palette = palette or DrafterPalette(drafters)
    for d in drafters:
        g = surv[surv["drafter"] == d]
        ax.plot(g["i"], g["survival"], ms=3.5, lw=1.2, label=d, **palette.drafter(d).kw())
    ax.set_xlabel("draft position i")
    ax.set_ylabel("P(accepted length >= i)")
    ax.set_ylim(0, 1)
    ax.set_title(_with(title, "Acceptance survival per drafter"), fontsize=7)
    ax.legend(fontsize=6, ncol=1 if len(drafters) <= 12 else 2, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title="drafter", title_fontsize=6)
    fig.tight_layout()
    return fig


def set_style() -> None:
    """The paper style every figure is drawn in (seaborn paper context, TrueType in PDFs)."""
    sns.set_theme(context="paper", style="whitegrid")
    matplotlib.rcParams["pdf.fonttype"] = 42


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
    set_style()
    figs = {
        "regret_by_policy": regret_by_policy(df, title),
        "regret_by_category": regret_by_category(df, title),
        "pull_fractions": pull_fractions(df, arm_names, title=title),
    }
    return [p for name, fig in figs.items() for p in save_figure(fig, out, name)]
