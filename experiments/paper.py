"""``python -m experiments figures``: every paper-style table and figure from saved traces.

Two stages.  ``compute`` simulates from the trace (never a model) and writes tidy tables under
``OUT/data``; ``render`` reads only those tables and writes ``OUT/*.png|pdf`` and
``OUT/tables/*.csv|md``.  ``--render-only`` redraws from saved data.  One root seed; every
simulation shares it (common random numbers across policies).

Numbering follows the issue ("5. Paper figures"): table1, fig3 batch serving (BanditSpec
Fig. 3), fig_regret_vs_length, fig_normalised_regret (Theorem 4.4), fig5a/fig5b (HedgeSpec
Fig. 5), fig6 pull fractions, fig7 acceptance survival.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import traces
from simulator.policies import make_policy
from simulator.runner import RunConfig, fixed_frame, run_experiment, simulate
from simulator.runner import resolve as resolve_run
from simulator.stats import runs_half_width

# Table 1 rows besides vanilla and the fixed arms (learners with both rewards; oracles by objective)
TABLE1_POLICIES_TIME = ("ucbspec", "ucbspec:reward=tokens", "exp3spec", "exp3spec:reward=tokens", "hedgespec",
                        "smartspec", "oracle", "oracle:rounds")
TABLE1_POLICIES_ROUNDS = ("ucbspec", "exp3spec", "hedgespec", "smartspec", "oracle")
SERVE_POLICIES = ("ucbspec", "banditspec-code", "ucb1", "uniform")
FIGURES_LEGACY = ("data", "tables", "*.png", "*.pdf")  # an OUT written before folders carried a mark


@dataclass(frozen=True)
class FigureConfig:
    """What ``python -m experiments figures`` computes (written to ``OUT/data/config.json``).
    Empty / None fields are derived from the trace (``resolve``), and the choice is printed."""

    trace: str = "builtin:smollm2-greedy"
    drafters: tuple[str, ...] = ()  # default: every drafter of the trace
    k: int = 4  # capped at the trace's k_max
    serve_drafter: str | None = None  # default: highest mean accepted length at K = k
    cost_device: str | None = None  # default: the device with the most measured batch sizes
    runs: int = 20
    policies: tuple[str, ...] = ()  # Table 1's; default TABLE1_POLICIES_TIME (costs) or _ROUNDS
    serve_runs: int = 16
    batch_sizes: tuple[int, ...] = ()  # default: 1..min(max_batch, prompts)
    max_batch: int = 50
    lengths: tuple[int, ...] = (300, 1000, 3000, 10000, 30000, 100000)  # adversarial panel
    curve_grid: tuple[int, ...] = (300, 10**6, 4)  # stochastic panels: log grid (min, max, per decade)
    curve_runs: int = 200
    bound_runs: int = 40
    scaling_runs: int = 5
    scaling_orders: int = 3
    seed: int = 0


@dataclass(frozen=True)
class Resolved:
    """The trace-derived settings of one figures run, with why each was chosen."""

    drafters: list[str]
    k: int
    serve_drafter: str
    cost_device: str | None
    batch_sizes: tuple[int, ...]
    why: dict[str, str]


def resolve(cfg: FigureConfig, tr: traces.Trace) -> Resolved:
    """Fill the defaults of ``cfg`` from the trace; nothing is dropped or clamped silently."""
    names = list(tr.drafter_names)
    why: dict[str, str] = {}
    for d in (*cfg.drafters, *([cfg.serve_drafter] if cfg.serve_drafter else [])):
        if d not in names:
            raise ValueError(f"--drafters/--serve-drafter: {d!r} is not a drafter of {tr.label}; it has {names}")
    drafters = list(cfg.drafters) or names
    why["drafters"] = "as given" if cfg.drafters else f"every drafter of the trace ({len(names)})"
    k = min(cfg.k, tr.k_max)
    why["k"] = f"{k}" + (f" (the trace's k_max; {cfg.k} asked)" if k < cfg.k else "")
    if cfg.serve_drafter:
        serve, why["serve_drafter"] = cfg.serve_drafter, "as given"
    else:
        mat = [np.mean(np.concatenate([np.minimum(a[a >= 0], k) for a in  # logged steps only on a partial trace
                                       (tr.accept[p, i, : tr.output_lens[p]] for p in range(tr.n_prompts))]))
               for i in range(len(names))]
        serve = names[int(np.argmax(mat))]
        why["serve_drafter"] = f"highest mean accepted length at K={k} ({max(mat):.2f})"
    device = None
    if tr.costs is not None and len(tr.costs):
        from simulator.costs import default_device, resolve_device

        if cfg.cost_device:
            device, why["cost_device"] = resolve_device(tr.costs, cfg.cost_device), "as given"
        else:
            device, why["cost_device"] = default_device(tr.costs)
    else:
        why["cost_device"] = "the trace has no cost table: tables in rounds only, no batch serving"
    top = min(cfg.max_batch, tr.n_prompts)
    if cfg.batch_sizes:
        too_big = [b for b in cfg.batch_sizes if b > tr.n_prompts]
        if too_big:
            raise ValueError(f"--batch-sizes: {too_big[0]} exceeds the trace's {tr.n_prompts} prompts")
        sizes, why["batch_sizes"] = tuple(cfg.batch_sizes), "as given"
    else:
        sizes = tuple(range(1, top + 1))
        why["batch_sizes"] = f"1-{top}" + (f" (clamped from 1-{cfg.max_batch}: the trace has {tr.n_prompts} "
                                            f"prompts)" if top < cfg.max_batch else "")
    return Resolved(drafters, k, serve, device, sizes, why)


# ------------------------------------------------------------------------------ compute
def compute(cfg: FigureConfig, data: Path, progress: bool = True) -> dict:
    """Simulate everything the figures need and write it under ``data``; return timings."""
    from simulator.serving import ServeConfig, run_serving
    from theory.lower import lai_robbins_constant

    from .scaling import arms_scaling
    from .theory_validate import Grid, check_exp3, real_instance

    data.mkdir(parents=True, exist_ok=True)
    tr = traces.load(cfg.trace)
    res = resolve(cfg, tr)
    from traces.textout import term_width, wrap

    for key, why in res.why.items():  # wrapped at word boundaries, never cut
        for line in wrap(f"figures: {key} = {getattr(res, key)!s} ({why})", term_width(), "    "):
            print(line, file=sys.stderr, flush=True)
    drafters, serve, device = res.drafters, res.serve_drafter, res.cost_device
    arms = ",".join(f"{d}@{res.k}" for d in drafters)
    times: dict[str, float] = {}
    skipped: dict[str, str] = {}

    def skip(what: str, why: str) -> None:
        skipped[what] = why
        print(f"figures: {what} skipped: {why}", file=sys.stderr, flush=True)

    serve_policies = SERVE_POLICIES if res.k >= 4 else tuple(p for p in SERVE_POLICIES if p != "banditspec-code")
    if res.k < 4:
        skip("banditspec-code in batch serving", f"it needs arms @1..@4 and the trace's k_max is {tr.k_max}")
    if tr.costs is None:
        skip("batch serving", "the trace has no cost table")
    elif tr.manifest["kind"] != "greedy":
        skip("batch serving", f"it replays greedy traces only; this one is {tr.manifest['kind']}")

    start = time.perf_counter()
    stages = ("table1 replay", "trajectories", "batch serving", "regret vs length", "arms scaling",
              "chain vs tree", "survival")

    def lap(name: str, t0: float) -> None:
        times[name] = round(time.perf_counter() - t0, 2)
        if progress:  # one line per stage, on stderr: how long it took and what runs next
            i = stages.index(name)
            nxt = f"; next: {stages[i + 1]}" if i + 1 < len(stages) else ""
            print(f"figures: [{i + 1}/{len(stages)}] {name}: {times[name]:.1f} s "
                  f"(elapsed {time.perf_counter() - start:.1f} s){nxt}", file=sys.stderr, flush=True)

    if progress:
        print(f"figures: [0/{len(stages)}] starting with {stages[0]}", file=sys.stderr, flush=True)

    # table 1 + fig 6 (per category): policies on the recorded positions, objective time when
    # the trace has costs (learners with both rewards, HedgeSpec charged for its feedback);
    # fixed arms come from the exact fixed-arm table
    t0 = time.perf_counter()
    timed = tr.costs is not None
    pols = tuple(cfg.policies) or (TABLE1_POLICIES_TIME if timed else TABLE1_POLICIES_ROUNDS)
    # vanilla decoding is an arm of the time objective: a drafter can be slower than no drafter,
    # and the time oracle must be at least as fast as every fixed arm, plain decoding included
    rc = RunConfig(trace=cfg.trace, setting="replay", policies=pols, runs=cfg.runs, seed=cfg.seed,
                   arms=f"plain@0,{arms}" if timed else arms, objective="time" if timed else "rounds",
                   cost_device=device)
    exp = resolve_run(rc)
    df, conf = run_experiment(exp, progress=False)
    for note in (conf.get("cost_model") or {}).get("notes", []):
        print(f"figures: note: cost model: {note}", file=sys.stderr, flush=True)
    df.drop(columns=["pulls"]).to_parquet(data / "replay_results.parquet", compression="zstd")
    fixed_frame(exp).to_parquet(data / "replay_fixed.parquet", compression="zstd")
    (data / "replay_config.json").write_text(json.dumps(conf, indent=2, default=str) + "\n")
    pulls = np.stack(df["pulls"].to_numpy())
    cat = pd.DataFrame(pulls, columns=conf["arms"])
    cat.insert(0, "category", df["category"].to_numpy())
    cat.insert(0, "policy", df["policy"].to_numpy())
    cat.groupby(["policy", "category"]).sum().reset_index().to_csv(data / "category_pulls.csv", index=False)
    lap("table1 replay", t0)

    # fig 5a + fig 6 (over time): trajectories with every arm's counterfactual per round
    t0 = time.perf_counter()
    steps_df = trajectories(RunConfig(trace=cfg.trace, setting="replay", policies=("ucbspec",), runs=cfg.runs,
                                      seed=cfg.seed, arms=arms),
                            ("ucbspec", "exp3spec", "hedgespec", "uniform"))
    steps_df.to_csv(data / "trajectories.csv", index=False)
    lap("trajectories", t0)

    # fig 3: batch serving
    t0 = time.perf_counter()
    if "batch serving" not in skipped:
        sc = ServeConfig(trace=cfg.trace, arms=f"plain@0,{serve}@1-{res.k}", policies=serve_policies,
                         batch_sizes=res.batch_sizes, runs=cfg.serve_runs, seed=cfg.seed, cost_device=device)
        sdf, sconf = run_serving(sc, progress=False)
        sdf.to_csv(data / "serving.csv", index=False)
        (data / "serving_config.json").write_text(json.dumps(sconf, indent=2, default=str) + "\n")
        for note in sconf["cost_model"]["notes"]:
            print(f"figures: note: batch-serving cost model: {note}", file=sys.stderr, flush=True)
    lap("batch serving", t0)

    # figs regret-vs-length and normalised regret: stochastic (TGD fitted to the trace, plus
    # two textbook instances) and adversarial (piecewise oblivious stream, and the named
    # synthetic streams sqrt-burst and ucb-trap with fitted log-log slopes) settings
    t0 = time.perf_counter()
    rows: list[dict] = []
    curves: list[dict] = []
    grid = Grid(list(cfg.lengths), cfg.bound_runs)
    L = res.k
    p_fit = real_instance(tr, drafters, L)  # fitted to each drafter's rounds at the figures' K
    insts = {f"fitted-{Path(tr.label).name}": p_fit, "tgd-large-gap": np.array([0.45, 0.65, 0.85]),
             "tgd-small-gap": np.array([0.75, 0.8, 0.85])}
    from simulator.envs.stochastic import tgd_pmf

    consts = {}
    for name, p in insts.items():
        pmf = tgd_pmf(p, np.full(len(p), L), L)
        consts[name] = float(lai_robbins_constant(pmf))
        curves += stochastic_curve(name, pmf, L, cfg.curve_grid, cfg.curve_runs, cfg.seed, consts[name])
    piecewise = np.array([[0.85, 0.5, 0.6], [0.5, 0.85, 0.6], [0.6, 0.5, 0.85]])
    check_exp3(rows, curves, "piecewise-oblivious", piecewise, [0.15, 0.15, 0.7], L, grid, cfg.seed,
               "adversarial")
    from simulator.envs.adversarial import STREAMS

    from .theory_validate import check_named

    for s in STREAMS.values():  # the synthetic ones: EXP3Spec's sqrt(len) and UCBSpec's linear trap
        if not s.synthetic:
            continue
        if L < s.k_min:
            skip(f"adversarial stream {s.name}", f"it needs K >= {s.k_min}; the figures use K = {L}")
        else:
            check_named(rows, curves, s.name, L, list(cfg.lengths), cfg.bound_runs, cfg.seed, check="adversarial")
    cdf = pd.DataFrame(curves)
    cdf["c_thm44"] = cdf["setting"].map(consts)
    # the fitted instance comes from the trace; every other panel is a synthetic instance
    cdf["source"] = np.where(cdf["setting"] == f"fitted-{Path(tr.label).name}", f"fitted to {tr.label}",
                             "synthetic instance")
    cdf.to_csv(data / "bounds.csv", index=False)
    lap("regret vs length", t0)

    # fig 5b: regret against the pool size
    t0 = time.perf_counter()
    sdf = arms_scaling(cfg.trace, k=res.k, runs=cfg.scaling_runs, seed=cfg.seed, orders=cfg.scaling_orders,
                       cost_device=device)
    sdf.to_csv(data / "arms_scaling.csv", index=False)
    lap("arms scaling", t0)

    # chain vs tree per category (traces with ranks only)
    t0 = time.perf_counter()
    ranked = [d for d in drafters if tr.has_ranks(d)]
    if not ranked:
        skip("chain-vs-tree table", "no drafter of the figures has recorded ranks (tree arms need them)")
    elif tr.costs is None:
        skip("chain-vs-tree table", "the trace has no cost table")
    else:
        from .trees import chain_vs_tree

        chain_vs_tree(cfg.trace, drafters=tuple(ranked), cost_device=device, seed=cfg.seed).to_csv(
            data / "chain_vs_tree.csv", index=False)
    lap("chain vs tree", t0)

    # fig 7: acceptance survival P(L >= i) per drafter (positions with a full k_max horizon)
    t0 = time.perf_counter()
    from .figures import survival_table

    survival_table(tr.accept, tr.output_lens, list(tr.drafter_names), tr.k_max).to_csv(
        data / "survival.csv", index=False)
    lap("survival", t0)

    meta = dict(asdict(cfg), resolved={k: getattr(res, k) for k in res.why}, why=res.why, skipped=skipped,
                drafters=drafters, trace_drafters=list(tr.drafter_names), trace_kind=tr.manifest.get("kind"),
                serve_drafter=serve, cost_device_used=device, trace_label=tr.label, arms=conf["arms"], timings=times)
    (data / "config.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return times


def stochastic_curve(name: str, pmf: np.ndarray, L: int, grid_spec: tuple[int, ...], runs: int, seed: int,
                     c: float) -> list[dict]:
    """UCBSpec regret at every point of a log grid of lengths, one long run per seed
    (``simulator.curves``): direct regret with its CI, pull-count regret (Eq. 36), Theorem 4.3,
    ``c log(len)`` (Theorem 4.4) and the worst fixed arm's regret (where Theorem 4.3 stops
    being vacuous)."""
    from simulator.curves import log_grid, regret_curve
    from theory.identities import regret_from_pulls
    from theory.upper import ucbspec_regret_bound

    grid = log_grid(*grid_spec)
    cur = regret_curve("ucbspec", pmf, grid, runs, seed, law="tgd-fixed")
    mu = (pmf * np.arange(1, L + 2)).sum(axis=1)
    direct = cur["stopping_time"] - cur["fixed_st"].min(axis=1)[None, :]  # (runs, C)
    pseudo = regret_from_pulls(mu, cur["pulls"]).mean(axis=0)
    upper = ucbspec_regret_bound(mu, grid.astype(float), L)
    worst = cur["fixed_st"].max(axis=1) - cur["fixed_st"].min(axis=1)  # a bound above it is vacuous
    return [dict(check="stochastic", setting=name, policy="ucbspec", n=int(n), regret=float(direct[:, i].mean()),
                 ci95=float(runs_half_width(direct[:, i])), pseudo=float(pseudo[i]),
                 upper=float(upper[i]), lower=float(c * np.log(n)), worst=float(worst[i]))
            for i, n in enumerate(grid)]


def prompt_cluster_band(x: np.ndarray, prompt: np.ndarray, seed: int = 0, b: int = 2000
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over prompts of the per-prompt mean of ``x`` (``(S, lanes)``; lane ``j`` belongs to
    prompt ``prompt[j]``) with its 95% percentile-bootstrap band over prompts: the runs of one
    prompt are one cluster (the replay runs of a deterministic policy are copies of each other,
    so they add no information).  Returns ``(mean, lo, hi)``, each ``(S,)``."""
    from simulator.stats import bootstrap_indices

    keys, ix = np.unique(prompt, return_inverse=True)
    n = len(keys)
    pm = np.stack([np.bincount(ix, weights=row, minlength=n) for row in np.asarray(x, float)]) \
        / np.bincount(ix, minlength=n)  # (S, prompts)
    mean = pm.mean(axis=1)
    if n < 2:
        return mean, np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    idx = bootstrap_indices(n, b, seed)  # (b, n)
    counts = np.zeros((n, b))
    np.add.at(counts, (idx.T, np.arange(b)[None, :]), 1.0)
    boot = pm @ counts / n  # (S, b)
    return mean, np.quantile(boot, 0.025, axis=1), np.quantile(boot, 0.975, axis=1)


def trajectories(rc: RunConfig, policies: tuple[str, ...]) -> pd.DataFrame:
    """Per policy and decoding step s (round), over all (prompt, run) lanes: the fraction of
    active lanes on each arm (``frac:ARM``), the share of active lanes whose prompt's best fixed
    arm (fewest rounds) is each arm (``best:ARM``, the survivor-corrected reference: which
    prompts are still decoding changes with s), how many lanes and prompts are still decoding
    (``active`` lanes; ``prompts_active``: prompts still decoding, each counted by the share of
    its runs still decoding, of ``n_prompts``), and the
    mean cumulative full-information regret

    ``R(s) = sum_{r <= s} [y_{i*}(t_r) - y_{a_r}(t_r)]``,

    tokens the best fixed arm ``i*`` (in hindsight, on the lane's own trajectory) would have
    emitted at the positions ``t_r`` the policy verified, minus what the policy emitted: the
    regret HedgeSpec's analysis bounds (Not-a-Bandit Sec. 4).  Lanes that finished keep their
    final value.  ``lo``/``hi``: 95% bootstrap band with prompts as clusters
    (:func:`prompt_cluster_band`).
    """
    prep = resolve_run(rc)
    env = prep.env
    P, R, A = env.n_prompts, rc.runs, env.n_arms
    names = [a.name for a in prep.arms]
    lane_prompt = np.repeat(np.arange(P), R)  # simulate's lane order: prompt-major
    prompt_best = prep.hindsight_best()["rounds"][lane_prompt]  # (lanes,)
    rows = []
    for spec in policies:
        res = simulate(prep, make_policy(spec), np.arange(P), np.arange(R), record=True)
        hist = res["history"]
        S = len(hist)
        n_lanes = P * R
        run = np.tile(np.arange(R), P)
        gain_all = np.zeros((S, n_lanes, A))
        gain_pol = np.zeros((S, n_lanes))
        frac = np.zeros((S, A))
        best_share = np.zeros((S, A))
        n_act = np.zeros(S, dtype=np.int64)
        p_act = np.zeros(S)
        for s, (pos, arm, e, cur) in enumerate(hist):
            act = pos >= 0
            if act.any():
                ea = env.emit_all(cur[act], run[act], np.zeros(act.sum(), np.int64), pos[act])
                gain_all[s, act] = ea
                gain_pol[s, act] = e[act]
                frac[s] = np.bincount(arm[act], minlength=A) / act.sum()
                best_share[s] = np.bincount(prompt_best[act], minlength=A) / act.sum()
            n_act[s] = act.sum()
            p_act[s] = act.sum() / R  # a prompt weighs by the share of its runs still decoding
        cum_all = gain_all.cumsum(axis=0)
        best = cum_all[-1].argmax(axis=1)
        reg = cum_all[:, np.arange(n_lanes), best] - gain_pol.cumsum(axis=0)  # (S, lanes)
        mean, lo, hi = prompt_cluster_band(reg, lane_prompt, seed=rc.seed)
        pol = make_policy(spec).spec()
        for s in range(S):
            row = dict(policy=pol, step=s + 1, active=int(n_act[s]), prompts_active=float(p_act[s]), n_prompts=P,
                       cum_regret=float(mean[s]), lo=float(lo[s]), hi=float(hi[s]))
            row.update({f"frac:{a}": float(frac[s, j]) for j, a in enumerate(names)})
            row.update({f"best:{a}": float(best_share[s, j]) for j, a in enumerate(names)})
            rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ render
def render(data: Path, out: Path) -> list[Path]:
    """Draw every table and figure from the tables ``compute`` wrote; return written paths."""
    from . import figures as F
    from .tables import caption, degenerate_ids, notes, table1, table1_tidy, to_markdown

    F.set_style()
    meta = json.loads((data / "config.json").read_text())
    label = meta["trace_label"]
    paths: list[Path] = []
    tdir = out / "tables"
    tdir.mkdir(parents=True, exist_ok=True)
    res = pd.read_parquet(data / "replay_results.parquet")
    fixed = pd.read_parquet(data / "replay_fixed.parquet")
    rconf = json.loads((data / "replay_config.json").read_text())
    seed = int(meta.get("seed", 0))
    tr1 = traces.load(meta["trace"])
    deg = degenerate_ids(tr1)
    table1_tidy(res, fixed, "replay", seed, rconf, deg).to_csv(tdir / "table1.csv", index=False)
    t = table1(res, fixed, "replay", seed, rconf, deg)
    cap = f"{caption(tr1.manifest, rconf, res['prompt_id'].nunique())} {notes(res, 'replay', deg, fixed=fixed)}"
    (tdir / "table1.md").write_text(f"Trace: {label}. {cap}\nCells: {t.columns.name}\n\n" + to_markdown(t))
    paths += [tdir / "table1.csv", tdir / "table1.md"]
    if (data / "chain_vs_tree.csv").exists():
        from .trees import to_markdown as trees_md

        (tdir / "chain_vs_tree.md").write_text("Best chain vs best tree arm by time per category (batch 1; 95% "
                                               "prompt-bootstrap intervals)\n\n"
                                               + trees_md(pd.read_csv(data / "chain_vs_tree.csv")))
        paths.append(tdir / "chain_vs_tree.md")
    paths += render_figures(data, out, meta)
    return paths


def render_figures(data: Path, out: Path, meta: dict) -> list[Path]:
    """Every figure from the tables under ``data``.  One drafter palette for the run (the trace's
    drafter list), one style per policy (``experiments.style``); each title names the trace and
    the cost table the figure used (or that it used none)."""
    from . import figures as F
    from .style import DrafterPalette

    label = meta["trace_label"]
    surv = pd.read_csv(data / "survival.csv")
    # the figures' drafters take the first (darkest, most distinct) colours; fig 7's other drafters follow
    palette = DrafterPalette([*meta.get("drafters", []), *(meta.get("trace_drafters") or surv["drafter"])])
    device = meta.get("cost_device_used")
    timed = F.source_line(label, str(device).split(" (")[0] if device else None)
    untimed = F.source_line(label, None)
    paths: list[Path] = []
    if (data / "serving.csv").exists():
        sconf = json.loads((data / "serving_config.json").read_text())
        sdf = pd.read_csv(data / "serving.csv")
        paths += F.save_figure(F.batch_serving(sdf, timed, sconf.get("measured_batch_sizes"), palette), out,
                               "fig3_batch_serving")
        paths += F.save_figure(F.batch_serving_sorted(sdf, timed, palette), out, "fig3b_batch_serving_sorted")
    bounds = pd.read_csv(data / "bounds.csv")
    if "source" not in bounds:  # data from before panels carried their source
        bounds["source"] = np.where(bounds["setting"].str.startswith("fitted-"), f"fitted to {label}",
                                    "synthetic instance")
    paths += F.save_figure(F.regret_vs_length(bounds, untimed), out, "fig_regret_vs_length")
    paths += F.save_figure(F.normalised_regret(bounds, untimed), out, "fig_normalised_regret")
    traj = pd.read_csv(data / "trajectories.csv")
    paths += F.save_figure(F.cumulative_regret_steps(traj, untimed), out, "fig5a_cumulative_regret")
    scal = pd.read_csv(data / "arms_scaling.csv")
    paths += F.save_figure(F.regret_vs_pool(scal, timed if "tps" in scal else untimed), out, "fig5b_regret_vs_pool")
    paths += F.save_figure(F.pulls_over_time(traj, untimed, palette), out, "fig6a_pulls_over_time")
    paths += F.save_figure(F.category_heatmap(pd.read_csv(data / "category_pulls.csv"), timed if device else untimed),
                           out, "fig6b_pulls_by_category")
    paths += F.save_figure(F.survival_from_table(surv, untimed, palette), out, "fig7_acceptance_survival")
    return paths


def make_figures(cfg: FigureConfig, out: str | Path, render_only: bool = False, progress: bool = True
                 ) -> tuple[list[Path], dict]:
    """Compute (unless ``render_only``) and render into ``out`` as a whole: everything is written
    into a temporary sibling that replaces ``out`` only when complete (``traces.outdir``), so an
    interrupted rerun leaves the old figures and data, never a mix of two runs."""
    from traces.outdir import check_out, staged_folder

    out = check_out(out)
    if render_only and not (out / "data" / "config.json").is_file():
        raise FileNotFoundError(f"{out / 'data'}/config.json: no saved data; run without --render-only first")
    times: dict = {}
    t0 = time.perf_counter()
    with staged_folder(out, "figures", legacy=FIGURES_LEGACY, legacy_ok=True,
                       seed_from=("data",) if render_only else ()) as tmp:
        if not render_only:
            times = compute(cfg, tmp / "data", progress)
        t1 = time.perf_counter()
        paths = [out / p.relative_to(tmp) for p in render(tmp / "data", tmp)]
    times["render"] = round(time.perf_counter() - t1, 2)
    times["total"] = round(time.perf_counter() - t0, 2)
    return paths, times
