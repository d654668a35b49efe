"""``python -m theory validate [--quick] --out DIR``: hold measured regret against the bounds.

Checks (each a row of ``checks.csv``; ``report.md`` explains them):

1. UCBSpec on truncated-geometric instances (two gap sizes, L in {4, 8}), output lengths on
   a log grid: regret below Theorem 4.3 and, past burn-in, above the Theorem 4.4 constant
   times ``log(len)``; slope of regret against ``log(len)``.
2. EXP3Spec on oblivious adversarial streams (piecewise-stationary, UCB-hard): regret below
   Theorem 5.3; log-log slope against ``len``.
3. The same on instances fitted from the bundled real SmolLM2 trace (and its real
   category-switch stream).
4. Identities on every run: Proposition 3.1 (``len/(L+1) <= ST <= len``), Wald (Eq. 30/34)
   and Eq. 36 (direct regret vs. pull-count regret), tolerances from the Monte Carlo error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import traces
from simulator.envs import AdversarialEnv
from simulator.envs.stochastic import StochasticEnv, fit_tgd_rate, tgd_pmf
from simulator.policies import PolicyContext, make_policy
from simulator.runner import Prepared, RunConfig, simulate
from traces import Arm

from .identities import regret_from_pulls, stopping_time_range, wald_expected_length
from .instance import tgd_mean
from .lower import lai_robbins_constant
from .upper import exp3spec_regret_bound, ucbspec_regret_bound

Z = 1.96


@dataclass
class Grid:
    lengths: list[int]
    runs: int


def _run(env, spec: str, runs: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stopping times (P, R), pulls (P, R, A) and E[ST] of every fixed arm (P, A)."""
    L = int(env.table.L)
    ctx = PolicyContext(n_arms=env.n_arms, arm_names=tuple(a.name for a in env.table.arms), L=L,
                        reward_lo=1.0, reward_hi=L + 1.0)
    cfg = RunConfig(trace="-", setting="stochastic", policies=(spec,), runs=runs, seed=seed)
    fixed = env.expected_fixed_st()
    prep = Prepared(cfg, None, env.table.arms, env, None, fixed, ctx)  # type: ignore[arg-type]
    res = simulate(prep, make_policy(spec), np.arange(env.n_prompts), np.arange(runs))
    return res["stopping_time"], res["pulls"], fixed


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.polyfit(x, y, 1)[0]) if len(x) > 1 else float("nan")


def _identities(rows, name, env_mu, lengths, st, pulls, fixed, L, policy):
    """Check 4 on every run: Prop. 3.1 exactly; Wald and Eq. 36 within MC error."""
    lo, hi = stopping_time_range(lengths[:, None], L)
    ok31 = bool(((st >= lo - 1e-9) & (st <= hi)).all())
    rows.append(dict(check="4-prop3.1", setting=name, policy=policy, n=int(lengths.max()), passed=ok31,
                     value=float(st.min()), bound=float(lo.min()),
                     detail="len/(L+1) <= ST <= len on every run"))
    if env_mu is None:
        return
    for p, n in enumerate(lengths):
        w = wald_expected_length(env_mu[p], pulls[p])  # per run
        se = w.std(ddof=1) / np.sqrt(len(w))
        ok = n - 3 * se <= w.mean() <= n + L + 3 * se
        rows.append(dict(check="4-wald", setting=name, policy=policy, n=int(n), passed=bool(ok),
                         value=float(w.mean()), bound=float(n), ci95=float(Z * se),
                         detail="sum_i mu_i E[n_i] in [len, len + L] (last round truncated)"))
        direct = st[p] - fixed[p].min()
        pseudo = regret_from_pulls(env_mu[p], pulls[p])
        sed = direct.std(ddof=1) / np.sqrt(len(direct))
        tol = 3 * sed + L / env_mu[p].max() + 1e-9
        rows.append(dict(check="4-eq36", setting=name, policy=policy, n=int(n),
                         passed=bool(abs(direct.mean() - pseudo.mean()) <= tol), value=float(direct.mean()),
                         bound=float(pseudo.mean()), ci95=float(Z * sed),
                         detail=f"direct regret vs sum (Delta_i/mu*) n_i; tolerance 3 SE + L/mu* = {tol:.2f}"))


def check_ucb(rows, curves, name: str, p: np.ndarray, L: int, grid: Grid, seed: int, check: str,
              law: str = "tgd"):
    """UCBSpec on TGD arms with acceptance rates ``p`` (each arm drafts L tokens);
    ``law="autocorrelated"`` adds block-autocorrelated spread with the same means."""
    lengths = np.array(grid.lengths)
    pmf = np.broadcast_to(tgd_pmf(p, np.full(len(p), L), L), (len(lengths), len(p), L + 1)).copy()
    env = StochasticEnv.from_laws(pmf, lengths, [f"a{i}@{L}" for i in range(len(p))], seed=seed, law=law)
    st, pulls, fixed = _run(env, "ucbspec", grid.runs, seed)
    mu = tgd_mean(p, np.full(len(p), L))
    c = lai_robbins_constant(pmf[0])
    pseudo = np.array([regret_from_pulls(mu, pulls[i]).mean() for i in range(len(lengths))])
    direct = st.mean(axis=1) - fixed.min(axis=1)
    ci = Z * st.std(axis=1, ddof=1) / np.sqrt(grid.runs)
    upper = ucbspec_regret_bound(mu, lengths.astype(float), L)
    lower = c * np.log(lengths)
    burn = lengths >= np.sort(lengths)[len(lengths) // 2]
    for i, n in enumerate(lengths):
        curves.append(dict(check=check, setting=name, policy="ucbspec", n=int(n), regret=direct[i],
                           ci95=ci[i], pseudo=pseudo[i], upper=upper[i], lower=lower[i]))
        rows.append(dict(check=f"{check}-upper", setting=name, policy="ucbspec", n=int(n),
                         passed=bool(direct[i] - ci[i] <= upper[i]), value=float(direct[i]),
                         bound=float(upper[i]), ci95=float(ci[i]), detail="regret <= Theorem 4.3"))
        if burn[i]:
            rows.append(dict(check=f"{check}-lower", setting=name, policy="ucbspec", n=int(n),
                             passed=bool(pseudo[i] >= lower[i]), value=float(pseudo[i]), bound=float(lower[i]),
                             detail=f"pull-count regret >= c log(len), c = {c:.3f} (Theorem 4.4)"))
    s = _slope(np.log(lengths), pseudo)
    rows.append(dict(check=f"{check}-slope", setting=name, policy="ucbspec", n=int(lengths.max()),
                     passed=bool(s >= c), value=s, bound=c,
                     detail="slope of regret vs log(len) against the Lai-Robbins constant c"))
    _identities(rows, name, np.broadcast_to(mu, (len(lengths), len(mu))), lengths, st, pulls, fixed, L,
                "ucbspec")


def phase_stream(p_phases: np.ndarray, fractions: np.ndarray, n: int, L: int, seed: int):
    """An oblivious stream indexed by round: in phase j (the same rounds for every arm)
    arm i emits TGD(p_phases[j, i], L) draws.  Phase ``j`` lasts ``fractions[j] * n / mu_max``
    rounds, the last phase runs to the end.  Fixed before any policy runs (Assumption 5.1)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, n]))
    P_ph, A = p_phases.shape
    S = n + 1  # a round emits >= 1 token
    mu_max = tgd_mean(p_phases, np.full(p_phases.shape, L)).max()
    bounds = np.r_[0, np.cumsum(np.round(np.asarray(fractions) * n / mu_max)).astype(int)]
    phase = np.searchsorted(bounds[1:], np.arange(S), side="right").clip(0, P_ph - 1)
    pmf = tgd_pmf(p_phases, np.full(p_phases.shape, L), L)  # (phases, arms, L+1)
    u = rng.random((A, S))
    cdf = np.cumsum(pmf, axis=2)[phase.clip(0, P_ph - 1)].transpose(1, 0, 2)  # (A, S, L+1)
    Y = 1 + (cdf[..., :-1] <= u[..., None]).sum(axis=2)
    return AdversarialEnv.from_sequences(Y[None], np.array([n]), [f"a{i}@{L}" for i in range(A)])


def check_exp3(rows, curves, name: str, p_phases: np.ndarray, fractions, L: int, grid: Grid, seed: int,
               check: str, policies=("exp3spec", "ucbspec")):
    """EXP3Spec (and UCBSpec for comparison) on an oblivious round-indexed stream."""
    for pol in policies:
        reg, ns, bounds = [], [], []
        for n in grid.lengths:
            env = phase_stream(np.asarray(p_phases), np.asarray(fractions), n, L, seed)
            st, pulls, fixed = _run(env, pol, grid.runs, seed)
            r = st[0] - fixed[0].min()
            ci = Z * r.std(ddof=1) / np.sqrt(len(r))
            b = float(exp3spec_regret_bound(env.lengths[0], fixed[0].min(), L, env.n_arms))
            curves.append(dict(check=check, setting=name, policy=pol, n=int(env.lengths[0]), regret=r.mean(),
                               ci95=ci, upper=b, lower=np.nan, pseudo=np.nan))
            if pol == "exp3spec":
                rows.append(dict(check=f"{check}-upper", setting=name, policy=pol, n=int(env.lengths[0]),
                                 passed=bool(r.mean() - ci <= b), value=float(r.mean()), bound=b,
                                 ci95=float(ci), detail="regret <= Theorem 5.3"))
            _identities(rows, name, None, env.lengths, st, pulls, fixed, L, pol)
            reg.append(r.mean())
            ns.append(env.lengths[0])
            bounds.append(b)
        reg = np.array(reg)
        if (reg > 0).all():
            s = _slope(np.log(ns), np.log(reg))
            detail = "log-log slope of regret vs len (sqrt growth: 0.5; pass if <= 0.75)"
        else:
            s = float("nan")
            detail = ("regret <= 0 at some length: switching arms beats every fixed arm on this "
                      "stream, so no growth rate is defined")
        rows.append(dict(check=f"{check}-slope", setting=name, policy=pol, n=int(max(ns)),
                         passed=bool(not s > 0.75) if pol == "exp3spec" else True, value=s, bound=0.5,
                         detail=detail))


def real_instance(trace: traces.Trace, drafters: list[str], K: int) -> np.ndarray:
    """Acceptance rates fitted (TGD, pooled over prompts) for the named drafters."""
    out = []
    for d in drafters:
        i = trace.drafter_index(d)
        vals = np.concatenate([trace.accept[p, i, : trace.output_lens[p]] for p in range(trace.n_prompts)])
        out.append(fit_tgd_rate(float(vals.mean()), trace.k_max))
    return np.array(out)


def run_validate(out: str | Path, quick: bool = False, seed: int = 0) -> pd.DataFrame:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    grid = Grid([300, 1000, 3000, 10000], 40) if quick else Grid([1000, 3000, 10000, 30000, 100000], 100)
    rows: list[dict] = []
    curves: list[dict] = []
    for L in (4, 8):
        check_ucb(rows, curves, f"tgd-large-gap-L{L}", np.array([0.45, 0.65, 0.85]), L, grid, seed, "1")
        check_ucb(rows, curves, f"tgd-small-gap-L{L}", np.array([0.75, 0.8, 0.85]), L, grid, seed, "1")
    # three phases, each arm best in one, arm 2's phase the longest
    piecewise = np.array([[0.85, 0.5, 0.6], [0.5, 0.85, 0.6], [0.6, 0.5, 0.85]])
    check_exp3(rows, curves, "piecewise-L4", piecewise, [0.15, 0.15, 0.7], 4, grid, seed, "2")
    # arm 0 is clearly best while UCB commits, then worst; arm 1 is the best fixed arm
    ucb_hard = np.array([[0.9, 0.6], [0.3, 0.85]])
    check_exp3(rows, curves, "ucb-hard-L4", ucb_hard, [0.25, 0.75], 4, grid, seed, "2")
    real = traces.load("builtin:smollm2-greedy")
    names = ["pld", "skip5-24", "rtn4", "hf-rtn3", "early28"]
    p = real_instance(real, names, 4)
    check_ucb(rows, curves, "smollm2-fitted-tgd-L4", p, 4, grid, seed, "3")
    check_ucb(rows, curves, "smollm2-fitted-autocorrelated-L4", p, 4, grid, seed, "3", law="autocorrelated")
    env = AdversarialEnv(real, [Arm(d, 4) for d in names], stream="category-switch")
    for pol in ("exp3spec", "ucbspec"):
        st, pulls, fixed = _run(env, pol, max(10, grid.runs // 4), seed)
        r = st[0] - fixed[0].min()
        b = float(exp3spec_regret_bound(env.lengths[0], fixed[0].min(), 4, env.n_arms))
        ci = Z * r.std(ddof=1) / np.sqrt(len(r))
        rows.append(dict(check="3-upper", setting="smollm2-category-switch", policy=pol, n=int(env.lengths[0]),
                         passed=bool(r.mean() - ci <= b) if pol == "exp3spec" else True, value=float(r.mean()),
                         bound=b, ci95=float(ci), detail="regret vs Theorem 5.3 on the real stream"))
        _identities(rows, "smollm2-category-switch", None, env.lengths, st, pulls, fixed, 4, pol)
    checks = pd.DataFrame(rows)
    for col in ("ci95", "detail"):
        if col not in checks:
            checks[col] = np.nan
    checks.to_csv(out / "checks.csv", index=False)
    curves_df = pd.DataFrame(curves)
    curves_df.to_csv(out / "curves.csv", index=False)
    elapsed = time.perf_counter() - t0
    _figures(curves_df, out)
    _report(checks, curves_df, out, quick, elapsed, dict(zip(names, p.round(3), strict=True)))
    return checks


def _figures(curves: pd.DataFrame, out: Path) -> None:
    import matplotlib.pyplot as plt

    from simulator.figures import policy_color, save_figure, set_style  # selects the Agg backend

    set_style()

    for check, sub in curves.groupby("check"):
        settings = list(dict.fromkeys(sub["setting"]))
        fig, axes = plt.subplots(1, len(settings), figsize=(3.2 * len(settings), 2.8), squeeze=False)
        for ax, s in zip(axes[0], settings, strict=True):
            g = sub[sub["setting"] == s]
            for pol, gp in g.groupby("policy"):
                ax.errorbar(gp["n"], gp["regret"], yerr=gp["ci95"], marker="o", ms=3, capsize=2,
                            label=f"{pol} (mean ± 95% CI)", color=policy_color(pol))
            first = g[g["policy"] == g["policy"].iloc[0]]
            ax.plot(first["n"], first["upper"], "k--", lw=1, label="upper bound")
            if first["lower"].notna().any():
                ax.plot(first["n"], first["lower"], "k:", lw=1, label="c log(len) (Thm 4.4)")
            ax.set_xscale("log")
            if check == "2":
                ax.set_yscale("log")
            ax.set_xlabel("output length (tokens)")
            ax.set_title(s, fontsize=8)
        axes[0][0].set_ylabel("stopping-time regret (rounds)")
        axes[0][0].legend(fontsize=6)
        fig.tight_layout()
        save_figure(fig, out, f"check{check}_regret_vs_length", dpi=140)


def _report(checks: pd.DataFrame, curves: pd.DataFrame, out: Path, quick: bool, elapsed: float,
            fitted: dict) -> None:
    lines = ["# Theory validation report", "",
             f"Mode: {'quick' if quick else 'full'}; {len(checks)} checks, "
             f"{int(checks['passed'].sum())} passed, {int((~checks['passed']).sum())} failed; "
             f"wall time {elapsed:.0f} s.", "",
             "Regret is stopping-time regret in rounds (BanditSpec Eq. 1/12): mean over runs of "
             "ST(policy) - E[ST(best fixed arm)], with 95% CI (1.96 SE over runs).  The lower-bound "
             "check uses the pull-count regret of Eq. 36 (low variance).", "",
             f"Real-trace instance (check 3): TGD rates fitted to smollm2-greedy, pooled: {fitted}.", ""]
    for check, g in checks.groupby(checks["check"].str.split("-").str[0]):
        lines += [f"## Check {check}", "", "| check | setting | policy | len | value | bound | ±95% | pass |",
                  "|---|---|---|---|---|---|---|---|"]
        for _, r in g.iterrows():
            ci = "" if pd.isna(r.get("ci95")) else f"{r['ci95']:.2f}"
            lines.append(f"| {r['check']} | {r['setting']} | {r['policy']} | {r['n']} | {r['value']:.3f} | "
                         f"{r['bound']:.3f} | {ci} | {'pass' if r['passed'] else '**FAIL**'} |")
        lines.append("")
    failed = checks[~checks["passed"]]
    lines += ["## Findings", ""]
    if failed.empty:
        lines.append("Every check passed.")
    for _, r in failed.iterrows():
        lines.append(f"* {r['check']} on {r['setting']} ({r['policy']}, len {r['n']}): value {r['value']:.3f} "
                     f"vs bound {r['bound']:.3f}. {r['detail']}.")
    if failed["check"].str.endswith("lower").any() or failed["check"].str.endswith("slope").any():
        lines.append("")
        lines.append("The Theorem 4.4 bound is asymptotic (liminf as len -> infinity) and holds for consistent "
                     "policies; at finite lengths UCBSpec's radius (scaled by L/2 and a log of K t^2) keeps it "
                     "exploring, and its regret can sit below c log(len) before the asymptotic regime, or grow "
                     "with a slope set by the radius rather than by c.  These rows are findings about finite "
                     "horizons, not errors in the simulator.")
    (out / "report.md").write_text("\n".join(lines) + "\n")
