"""Which draft-length rule for which workload (``python -m experiments engine-rules``).

The serving engines' own adaptive rules, discovered generically (every registered policy class
with a ``tuning = (KNOB, GRID)`` attribute), each at its default setting and at a tuned setting,
against UCBSpec, EXP3Spec, the best fixed arm and the oracles, on the draft-length arms of one
drafter (``plain@0,DRAFTER@1..K``), time objective:

* **single-request decoding** (``simulator run --carry-state``): one lane per run goes through
  the prompts in trace order with the policy state carried across them;
* **batch serving** by batch size (``simulator serve``'s loop and cost rule): one arm per round
  for the whole batch.

Tuning is a clean split: the prompts are split in two halves by a permutation drawn from
``SeedSequence([seed, SPLIT_TAG])``; each rule's knob value (over its ``tuning`` grid) is the
one with the least total time (single request) or the highest mean throughput over batch sizes
and runs (serving) on the *tune* half, and every reported number comes from a separate
simulation on the *report* half (state starts fresh there), which the choice never reads.
The fixed arm tuned the same way is reported beside the best fixed arm in hindsight.

Intervals: single request, Table 1's (``experiments.tables.table1_tidy``): prompt bootstrap,
paired differences per prompt; serving, each run's mean over batch sizes (each run a fresh
sample of report-half prompts per batch size), runs resampled (``simulator.stats.mean_ci``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import traces
from simulator.costs import NOISE_VERDICT, uncertainty_of, within_timing_noise
from simulator.policies import REGISTRY, PolicyError, make_policy
from simulator.policies.base import call_policy
from simulator.runner import RunConfig, fixed_frame, resolve, resolved_config, results_table, simulate
from simulator.stats import mean_ci

from .style import policy_style

SPLIT_TAG = 0x7475_6E65  # "tune": the split's own random stream, apart from every policy's
LEARNERS = ("ucbspec", "exp3spec")
SERVE_SIZES = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class EngineRulesConfig:
    """What ``engine-rules`` computes (written to ``config.json``); empty fields are derived
    from the trace and the choice is said."""

    trace: str = "builtin:smollm2-greedy"
    drafter: str | None = None  # default: the highest mean accepted length at its largest K
    k: int = 8  # the arms DRAFTER@1..k (capped at the drafter's largest K)
    batch_sizes: tuple[int, ...] = ()  # default: SERVE_SIZES up to the report half's size
    runs: int = 10  # runs of randomised policies (deterministic ones run once) and of serving
    seed: int = 0
    cost_device: str | None = None  # default: the trace's (most measured batch sizes)
    rules: tuple[str, ...] = ()  # default: every registered policy with a ``tuning`` attribute
    learners: tuple[str, ...] = LEARNERS


# ------------------------------------------------------------------------------ choices
def engine_rules() -> list[str]:
    """Names of the registered policies that declare ``tuning = (knob, grid)``, sorted."""
    return sorted(n for n, cls in REGISTRY.items() if getattr(cls, "tuning", None))


def rule_specs(name: str, drafter: str) -> tuple[str, str, list[tuple[object, str]]]:
    """``(default spec, knob, [(value, spec) per candidate])`` of rule ``name`` on ``drafter``
    (``drafter=`` set where the policy has such a field); specs are canonical (``Policy.spec``).
    The candidates are the class's grid and, where the grid leaves it out, the default value
    (last): a tuned setting is never one the default beats on the tune half."""
    cls = REGISTRY[name]
    knob, grid = cls.tuning
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    if knob not in fields:
        raise PolicyError(f"policy {name!r}: tuning knob {knob!r} is not one of its parameters {sorted(fields)}")
    extra = [f"drafter={drafter}"] if "drafter" in fields else []

    def spec(*items: str) -> str:
        body = ",".join([*items, *extra])
        return make_policy(f"{name}:{body}" if body else name).spec()

    cands = [(v, spec(f"{knob}={v}")) for v in grid]
    if spec() not in {s for _, s in cands}:
        cands.append((getattr(make_policy(spec()), knob), spec()))
    return spec(), knob, cands


def split_prompts(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(tune, report)`` env prompt indices, each in trace order: a permutation from
    ``SeedSequence([seed, SPLIT_TAG])``, its first ``n // 2`` the tune half."""
    if n < 4:
        raise ValueError(f"engine-rules: the trace has {n} prompts; a tune / report split needs at least 4")
    perm = np.random.default_rng(np.random.SeedSequence([seed, SPLIT_TAG])).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


def choose_drafter(tr: traces.Trace, k: int) -> tuple[str, str]:
    """The drafter with the highest mean accepted length at its largest K (<= ``k``), and why."""
    names = list(tr.drafter_names)
    mat = []
    for i, d in enumerate(names):
        kd = min(k, tr.k_limits[d])
        vals = np.concatenate([tr.accept[p, i, : tr.output_lens[p]] for p in range(tr.n_prompts)])
        vals = vals[vals >= 0]  # an engine log: its logged steps only
        mat.append(float(np.minimum(vals, kd).mean()) if len(vals) else -1.0)
    best = int(np.argmax(mat))
    return names[best], f"highest mean accepted length at its largest K <= {k}: {mat[best]:.2f}"


def _say(msg: str, progress: bool) -> None:
    if progress:
        print(f"engine-rules: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ single request
def _stochastic(spec: str, prep) -> bool:
    """Whether runs differ: the policy draws uniforms, or the environment samples."""
    return make_policy(spec).n_random > 0 or bool(getattr(prep.env, "sampling", True))


def _simulate(prep, spec: str, prompts: np.ndarray, runs: int, half: str) -> pd.DataFrame:
    r = np.arange(runs if _stochastic(spec, prep) else 1)
    res = simulate(prep, make_policy(spec), prompts, r)
    return results_table(prep, spec, res, prompts, r).to_pandas().drop(columns=["pulls"]).assign(half=half)


def _usable(prep, specs: list[str], ctx_of) -> tuple[list[str], dict[str, str]]:
    """The specs whose policy accepts the arm set (``reset``), and why each other one does not."""
    ok, why = [], {}
    for s in specs:
        try:
            pol = make_policy(s)
            call_policy(pol, "reset", 1, ctx_of(pol))
            ok.append(s)
        except (PolicyError, ValueError) as exc:
            why[s] = str(exc)
    return ok, why


def _tune_single(tune_df: pd.DataFrame, grid: list[tuple[object, str]]) -> tuple[object, str, dict]:
    """The grid value with the least total time over the tune half (mean over runs per prompt;
    ties: the first in the grid), and every value's total."""
    tot = {}
    for _v, s in grid:
        g = tune_df[tune_df["policy"] == s]
        tot[s] = float(g.groupby("prompt_id")["time_s"].mean().sum())
    best = min(range(len(grid)), key=lambda i: tot[grid[i][1]])
    return grid[best][0], grid[best][1], tot


def single_request(cfg: EngineRulesConfig, prep, tune: np.ndarray, report: np.ndarray,
                   rules: dict[str, tuple[str, str, list]], progress: bool) -> dict:
    """Every rule's grid on the tune half, the choices, and on the report half the defaults,
    the tuned settings, the learners and the oracle (``prep``: carried state, time objective);
    the fixed arms from the exact table."""
    fixed = fixed_frame(prep)
    ids = np.asarray(prep.env.prompt_ids, dtype=object)
    tune_ids, report_ids = set(ids[tune]), set(ids[report])
    frames, choices = [], []
    for name, (default, knob, grid) in rules.items():
        t0 = time.perf_counter()
        tdf = pd.concat([_simulate(prep, s, tune, cfg.runs, "tune") for _, s in grid], ignore_index=True)
        value, spec, tot = _tune_single(tdf, grid)
        frames.append(tdf)
        for v, s in grid:
            choices.append(dict(mode="single", rule=name, knob=knob, value=str(v), spec=s, default=default,
                                in_grid=v in REGISTRY[name].tuning[1],
                                tune_objective=tot[s], objective="total time over the tune half (s)",
                                chosen=s == spec))
        _say(f"single request: {name} {knob}={value} chosen on the tune half ({time.perf_counter() - t0:.1f} s)",
             progress)
    ft = fixed[fixed["prompt_id"].isin(tune_ids)]
    tuned_arm = str(ft.groupby("arm")["time_s"].sum().idxmin())
    tuned = {c["rule"]: c["spec"] for c in choices if c["chosen"]}
    specs = list(dict.fromkeys([*(d for d, _, _ in rules.values()), *tuned.values(), *cfg.learners, "oracle"]))
    rdf = pd.concat([_simulate(prep, s, report, cfg.runs, "report") for s in specs], ignore_index=True)
    return dict(prep=prep, results=pd.concat([*frames, rdf], ignore_index=True), choices=choices,
                fixed=fixed, tune_ids=tune_ids, report_ids=report_ids, tuned=tuned, tuned_arm=tuned_arm)


def _fixed_label(arm: str) -> str:
    """Table 1's row of a fixed arm (plain decoding is its vanilla row)."""
    from .tables import VANILLA

    return VANILLA if arm == "plain@0" else f"fixed:{arm}"


def single_table(sr: dict, rules: dict, seed: int, learners: tuple[str, ...]) -> pd.DataFrame:
    """Table 1's tidy rows (``table1_tidy``, overall, report half) for the methods compared,
    with their role, and the paired difference tuned − default (ms/prompt)."""
    from .tables import VANILLA, method_label, table1_tidy

    res = sr["results"]
    d = res[res["half"] == "report"].drop(columns=["half"])
    f = sr["fixed"][sr["fixed"]["prompt_id"].isin(sr["report_ids"])]
    conf = resolved_config(sr["prep"])
    t = table1_tidy(d, f, "replay", seed, conf)
    rel = uncertainty_of(conf)  # the cost model's: two times closer than this name no winner
    t = t[t["category"] == "overall"].set_index("method")
    reward = d.drop_duplicates("policy").set_index("policy")["reward"]
    obj = "time"
    label = {s: method_label(s, reward[s], obj) for s in reward.index}
    best_arm = str(t["ref_arm"].iloc[0])
    per = d.groupby(["policy", "prompt_id"])["time_s"].mean()
    rows = []

    def add(method: str, role: str, knob: str = "", value: str = "", vs: str | None = None) -> None:
        r = t.loc[method].to_dict()
        r.update(method=method, role=role, knob=knob, value=value)
        if vs is not None:
            a, b = per[method_spec[method]], per[vs]
            r["d_default"], r["d_default_lo"], r["d_default_hi"] = mean_ci(
                1000.0 * (a - b.reindex(a.index)).to_numpy(float), seed=seed)
            r["noise_default"] = within_timing_noise(float(a.sum()), float(b.reindex(a.index).sum()), rel)
        r["noise_rel"] = rel
        rows.append(r)

    method_spec = {v: k for k, v in label.items()}
    add(VANILLA, "vanilla")
    add(_fixed_label(best_arm), "best fixed arm (hindsight, report half)")
    add(_fixed_label(sr["tuned_arm"]), "fixed arm tuned on the tune half")
    for name, (default, knob, _grid) in rules.items():
        dv = getattr(make_policy(default), knob)
        add(label[default], "engine rule, default", knob, str(dv))
        tv = getattr(make_policy(sr["tuned"][name]), knob)
        add(label[sr["tuned"][name]], "engine rule, tuned on the tune half", knob, str(tv), vs=default)
    for s in learners:
        add(label[make_policy(s).spec()], "learner")
    add(label["oracle"], "oracle (best arm per prompt)")
    sw = [m for m in t.index if t.loc[m, "kind"] == "reference"]
    for m in sw:
        add(m, "oracle (per-round switcher)")
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ batch serving
def _serve_setup(cfg: EngineRulesConfig, arms_spec: str):
    from simulator.costs import CostModel
    from simulator.envs.replay import ReplayEnv
    from traces import PLAIN, Arm, resolve_arms

    tr = traces.load(cfg.trace)
    arms = [Arm(PLAIN, 0), *(a for a in resolve_arms(arms_spec, tr.drafter_names, tr.k_limits) if a.k != 0)]
    return tr, arms, ReplayEnv(tr, arms, seed=cfg.seed), CostModel.for_trace(tr, cfg.cost_device, "raw")


def _serve_half(cfg: EngineRulesConfig, setup, half: np.ndarray, sizes: tuple[int, ...], specs: list[str],
                name: str) -> pd.DataFrame:
    """``simulator serve``'s loop on batches drawn from the prompts ``half`` only: one row per
    (batch size, run, method) with the throughput relative to plain decoding of that batch."""
    from simulator.costs import prompt_contexts
    from simulator.serving import batch_round_costs_s, draw_batches, simulate_batches

    tr, arms, env, model = setup
    batches = [half[b] for b in draw_batches(cfg.seed, sizes, cfg.runs, len(half))]
    ctx = prompt_contexts(tr.prompts["prompt_len"].to_numpy(float), tr.output_lens)
    cost = batch_round_costs_s(model, arms, max(sizes), np.array([ctx[b].mean() for b in batches]))
    bsz, run = np.repeat(np.asarray(sizes), cfg.runs), np.tile(np.arange(cfg.runs), len(sizes))
    methods = [(a.name, None, i) for i, a in enumerate(arms)] + [(s, s, None) for s in specs]
    out, plain = [], None
    for m, spec, arm in methods:
        tok, t, _ = simulate_batches(env, batches, cost, spec, arm, cfg.seed, "auto")
        tp = tok / t
        plain = tp if plain is None else plain  # arm 0 is plain decoding
        out.append(pd.DataFrame(dict(half=name, batch_size=bsz, run=run, method=m,
                                     kind="arm" if spec is None else "policy", throughput=tp, improvement=tp / plain)))
    return pd.concat(out, ignore_index=True)


def serving(cfg: EngineRulesConfig, arms: str, tune: np.ndarray, report: np.ndarray, sizes: tuple[int, ...],
            rules: dict[str, tuple[str, str, list]], progress: bool) -> dict:
    """Tune every rule's knob on batches of tune-half prompts (highest mean throughput over
    batch sizes and runs), then every method on batches of report-half prompts."""
    setup = _serve_setup(cfg, arms)
    grid_specs = [s for _, _, grid in rules.values() for _, s in grid]
    t0 = time.perf_counter()
    tdf = _serve_half(cfg, setup, tune, sizes, list(dict.fromkeys(grid_specs)), "tune")
    mean = tdf.groupby("method")["improvement"].mean()
    choices, tuned = [], {}
    for name, (default, knob, grid) in rules.items():
        best = max(range(len(grid)), key=lambda i: (mean[grid[i][1]], -i))
        tuned[name] = grid[best][1]
        for v, s in grid:
            choices.append(dict(mode="serving", rule=name, knob=knob, value=str(v), spec=s, default=default,
                                in_grid=v in REGISTRY[name].tuning[1],
                                tune_objective=float(mean[s]), chosen=s == tuned[name],
                                objective="mean throughput / plain over batch sizes and runs, tune half"))
    arm_mean = mean[tdf.loc[tdf["kind"] == "arm", "method"].unique()]
    tuned_arm = str(arm_mean.idxmax())
    specs = list(dict.fromkeys([*(d for d, _, _ in rules.values()), *tuned.values(), *cfg.learners]))
    rdf = _serve_half(cfg, setup, report, sizes, specs, "report")
    _say(f"batch serving: tuned and reported in {time.perf_counter() - t0:.1f} s", progress)
    return dict(results=pd.concat([tdf, rdf], ignore_index=True), choices=choices, tuned=tuned,
                tuned_arm=tuned_arm, measured=setup[3].batch_sizes.astype(int).tolist(),
                rel=float(setup[3].uncertainty_rel))


def serving_table(sv: dict, rules: dict, learners: tuple[str, ...], seed: int, rel: float = 0.0) -> pd.DataFrame:
    """One row per method on the report half: mean throughput / plain per batch size, the mean
    over batch sizes with its interval and the paired difference to the best fixed arm (each
    run's mean over batch sizes; runs resampled), for the rules, learners, fixed arms and the
    hindsight references (best arm per batch size; best arm per batch).  ``rel``: the cost model's
    relative uncertainty; a Δ whose two throughputs differ by less is marked ``noise_*`` (no winner)."""
    r = sv["results"][sv["results"]["half"] == "report"]
    per = r.pivot_table(index=["batch_size", "run"], columns="method", values="improvement")
    arms = list(r.loc[r["kind"] == "arm", "method"].unique())
    size_mean = per.groupby(level="batch_size").mean()
    best_arm = str(size_mean[arms].mean().idxmax())
    best_by_size = size_mean[arms].idxmax(axis=1)
    per["best arm per batch size (hindsight)"] = [per.loc[(b, u), best_by_size[b]] for b, u in per.index]
    per["best arm per batch (hindsight)"] = per[arms].max(axis=1)
    run_mean = per.groupby(level="run").mean()  # each run's mean over batch sizes
    rows = []

    def add(method: str, role: str, knob: str = "", value: str = "", vs: str | None = None) -> None:
        row = dict(method=method, role=role, knob=knob, value=value)
        for b, v in per[method].groupby(level="batch_size").mean().items():
            row[f"bs{int(b)}"] = float(v)
        row["mean"], row["mean_lo"], row["mean_hi"] = mean_ci(run_mean[method].to_numpy(float), seed=seed)
        row["d_fixed"], row["d_fixed_lo"], row["d_fixed_hi"] = mean_ci(
            (run_mean[method] - run_mean[best_arm]).to_numpy(float), seed=seed)
        row["noise_fixed"] = within_timing_noise(row["mean"], float(run_mean[best_arm].mean()), rel)
        if vs is not None:
            row["d_default"], row["d_default_lo"], row["d_default_hi"] = mean_ci(
                (run_mean[method] - run_mean[vs]).to_numpy(float), seed=seed)
            row["noise_default"] = within_timing_noise(row["mean"], float(run_mean[vs].mean()), rel)
        row["ref_arm"], row["noise_rel"] = best_arm, rel
        rows.append(row)

    add("plain@0", "vanilla")
    add(best_arm, "best fixed arm (hindsight, report half)")
    add(sv["tuned_arm"], "fixed arm tuned on the tune half")
    for name, (default, knob, _) in rules.items():
        add(default, "engine rule, default", knob, str(getattr(make_policy(default), knob)))
        s = sv["tuned"][name]
        add(s, "engine rule, tuned on the tune half", knob, str(getattr(make_policy(s), knob)), vs=default)
    for s in learners:
        add(make_policy(s).spec(), "learner")
    add("best arm per batch size (hindsight)", "oracle (best arm per batch size)")
    add("best arm per batch (hindsight)", "oracle (best arm per batch)")
    return pd.DataFrame(rows)


def winners(single: pd.DataFrame, serve: pd.DataFrame | None) -> pd.DataFrame:
    """The best engine rule setting (default or tuned) in each setting: single request (least
    time; ``value`` = Δ vs the best fixed arm, ms/prompt) and serving overall and per batch size
    (``value`` = throughput / plain), beside the best fixed arm's value there.  Where another rule
    setting is within the cost model's timing noise of the best (``within_timing_noise``: times, or
    throughputs, closer than ``noise_rel``), ``ties`` lists them and no winner is named; ``noise_fixed``:
    the best is within timing noise of the best fixed arm."""
    rows = []
    rs = single[single["role"].str.startswith("engine rule")]
    if len(rs):
        r = rs.loc[rs["d_fixed"].idxmin()]
        rel = float(r.get("noise_rel", 0.0))
        ties = [m for m, tps in zip(rs["method"], rs["tps"], strict=True) if m != r["method"]
                and within_timing_noise(1.0 / tps, 1.0 / r["tps"], rel)]  # equal tokens: time is 1 / tokens/s
        rows.append(dict(mode="single", batch_size="all", method=r["method"], role=r["role"], value=r["d_fixed"],
                         lo=r["d_fixed_lo"], hi=r["d_fixed_hi"], best_fixed=0.0, unit="ms/prompt vs best fixed arm",
                         ties=";".join(dict.fromkeys(ties)), noise_fixed=bool(r.get("noise_fixed", False))))
    if serve is not None:
        rv = serve[serve["role"].str.startswith("engine rule")]
        ref = serve[serve["role"] == "best fixed arm (hindsight, report half)"].iloc[0]
        for col in ["mean", *(c for c in serve.columns if c.startswith("bs"))]:
            r = rv.loc[rv[col].idxmax()]
            rel = float(r.get("noise_rel", 0.0))
            ties = [m for m, v in zip(rv["method"], rv[col], strict=True) if m != r["method"]
                    and within_timing_noise(float(v), float(r[col]), rel)]
            rows.append(dict(mode="serving", batch_size="all" if col == "mean" else col[2:], method=r["method"],
                             role=r["role"], value=r[col], lo=r["mean_lo"] if col == "mean" else np.nan,
                             hi=r["mean_hi"] if col == "mean" else np.nan, best_fixed=ref[col],
                             unit="throughput / plain", ties=";".join(dict.fromkeys(ties)),
                             noise_fixed=within_timing_noise(float(r[col]), float(ref[col]), rel)))
    return pd.DataFrame(rows)


def winners_markdown(w: pd.DataFrame) -> str:
    lines = []
    for _, r in w.iterrows():
        where = ("single request" if r["mode"] == "single" else
                 "serving, mean over batch sizes" if r["batch_size"] == "all" else f"serving, batch {r['batch_size']}")
        val = (f"{r['value']:+.1f} ms/prompt vs the best fixed arm" if r["mode"] == "single" else
               f"{r['value']:.3f}x plain (best fixed arm {r['best_fixed']:.3f}x)")
        ties = [m for m in str(r.get("ties", "") or "").split(";") if m and m != "nan"]
        if _flag(r.get("noise_fixed")):
            val += f", {NOISE_VERDICT} of the best fixed arm"
        if ties:
            lines.append(f"* {where}: {NOISE_VERDICT}: {', '.join([r['method'], *ties])} (no winner named); {val}")
        else:
            lines.append(f"* {where}: {r['method']} ({r['role'].removeprefix('engine rule, ')}): {val}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ rendering
def _ci(v: float, lo: float, hi: float, fmt: str) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{v:{fmt}}"
    return f"{v:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def _noise(r: pd.Series, col: str) -> str:
    """A Δ cell's suffix where its two times differ by less than the cost model's uncertainty."""
    return f" ({NOISE_VERDICT})" if _flag(r.get(col)) else ""


def _flag(v: object) -> bool:
    """A True flag (a table's missing flag is NaN)."""
    return isinstance(v, (bool, np.bool_)) and bool(v)


def _md(head: list[str], body: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|---" * len(head) + "|",
                      *("| " + " | ".join(r) + " |" for r in body)]) + "\n"


def single_markdown(t: pd.DataFrame) -> str:
    ref = str(t["ref_arm"].iloc[0])
    head = ["method", "role", "tokens/s [95% CI]", "speedup [95% CI]",
            f"Δ vs best fixed {ref} (ms/prompt)", "Δ tuned − default (ms/prompt)"]
    body = []
    for _, r in t.iterrows():
        role = r["role"] + (f" ({r['knob']}={r['value']})" if r["knob"] else "")
        dd = _ci(r["d_default"], r["d_default_lo"], r["d_default_hi"], "+.1f") if pd.notna(r.get("d_default")) else ""
        dd += _noise(r, "noise_default") if dd else ""
        df_ = ("reference" if r["method"] == _fixed_label(ref) else
               _ci(r["d_fixed"], r["d_fixed_lo"], r["d_fixed_hi"], "+.1f") + _noise(r, "noise_fixed"))
        body.append([r["method"], role, _ci(r["tps"], r["tps_lo"], r["tps_hi"], ".1f"),
                     _ci(r["speedup"], r["speedup_lo"], r["speedup_hi"], ".3f") + "x", df_, dd])
    return _md(head, body)


def serving_markdown(t: pd.DataFrame) -> str:
    sizes = [c for c in t.columns if c.startswith("bs")]
    ref = str(t["ref_arm"].iloc[0])
    head = ["method", "role", *(f"b={c[2:]}" for c in sizes), "mean [95% CI]", f"Δ vs {ref} [95% CI]",
            "Δ tuned − default"]
    body = []
    for _, r in t.iterrows():
        role = r["role"] + (f" ({r['knob']}={r['value']})" if r["knob"] else "")
        dd = _ci(r["d_default"], r["d_default_lo"], r["d_default_hi"], "+.3f") if pd.notna(r.get("d_default")) else ""
        dd += _noise(r, "noise_default") if dd else ""
        body.append([r["method"], role, *(f"{r[c]:.3f}" for c in sizes), _ci(r["mean"], r["mean_lo"], r["mean_hi"],
                                                                             ".3f"),
                     "reference" if r["method"] == ref else
                     _ci(r["d_fixed"], r["d_fixed_lo"], r["d_fixed_hi"], "+.3f") + _noise(r, "noise_fixed"),
                     dd])
    return _md(head, body)


REF_STYLES = {"best fixed arm (hindsight, report half)": dict(color="k", ls=":", marker="."),
              "fixed arm tuned on the tune half": dict(color="0.45", ls=(0, (1, 1)), marker="x"),
              "oracle (best arm per batch size)": dict(color="k", ls="--", marker=""),
              "oracle (best arm per batch)": dict(color="k", ls="-.", marker="")}


ROLE_SHORT = {"vanilla": "vanilla", "best fixed arm (hindsight, report half)": "best fixed arm, hindsight",
              "fixed arm tuned on the tune half": "fixed arm, tuned", "engine rule, default": "default",
              "engine rule, tuned on the tune half": "tuned", "learner": "learner",
              "oracle (best arm per prompt)": "oracle", "oracle (per-round switcher)": "oracle",
              "oracle (best arm per batch size)": "oracle", "oracle (best arm per batch)": "oracle"}


def _short(method: str, role: str) -> str:
    return f"{method.split(' [')[0][:52]} ({ROLE_SHORT.get(role, role)})"


def _style(method: str, role: str) -> dict:
    """Plot keywords: the policy family's colour and marker (``experiments.style``); an engine
    rule's default dashed with hollow markers, its tuned setting solid; references in black."""
    if role in REF_STYLES:
        return dict(REF_STYLES[role])
    st = policy_style(method.split(" [")[0].split(":")[0])
    kw = dict(color=st.color, marker=st.marker, ls="-")
    if role.endswith("default"):
        kw.update(ls=(0, (4, 2)), markerfacecolor="white")
    return kw


def figure(single: pd.DataFrame, serve: pd.DataFrame | None, title: str):
    """Left: single request, Δ time vs the best fixed arm per method (ms/prompt, paired 95% CI,
    report half; a rule's default hatched).  Right: batch serving, throughput / plain against
    the batch size (a rule's default dashed, its tuned setting solid)."""
    import textwrap

    from .figures import plt

    n = 2 if serve is not None else 1
    fig, axes = plt.subplots(1, n, figsize=(6.2 * n, 0.9 + 0.26 * len(single)), squeeze=False)
    ax = axes[0][0]
    s = single[~single["role"].isin(["vanilla"])].reset_index(drop=True)
    y = np.arange(len(s))
    err = np.nan_to_num(np.abs(s[["d_fixed_lo", "d_fixed_hi"]].to_numpy(float).T - s["d_fixed"].to_numpy(float)))
    for i, r in s.iterrows():
        kw = _style(r["method"], r["role"])
        ax.barh(i, 0.0 if pd.isna(r["d_fixed"]) else r["d_fixed"], xerr=err[:, i:i + 1], capsize=2,
                color=kw["color"], hatch="///" if r["role"].endswith("default") else None,
                alpha=0.55 if r["role"].endswith("default") else 1.0, edgecolor="k", lw=0.3)
    ax.set_yticks(y, [_short(m, r) for m, r in zip(s["method"], s["role"], strict=True)], fontsize=5.5)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel(f"time − best fixed arm {s['ref_arm'].iloc[0]} (ms / prompt, paired 95% CI; negative = faster)",
                  fontsize=7)
    ax.set_title("single request, state carried across prompts (report half)", fontsize=7)
    if serve is not None:
        ax = axes[0][1]
        sizes = [c for c in serve.columns if c.startswith("bs")]
        x = [int(c[2:]) for c in sizes]
        for _, r in serve.iterrows():
            if r["role"] != "vanilla":
                ax.plot(x, [r[c] for c in sizes], lw=1.1, ms=3, **_style(r["method"], r["role"]),
                        label=_short(r["method"], r["role"]))
        ax.axhline(1.0, color="0.5", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [str(b) for b in x])
        ax.set_xlabel("batch size (prompts served together)")
        ax.set_ylabel("throughput / plain decoding")
        ax.set_title("batch serving (report half; mean over runs)", fontsize=7)
        ax.legend(fontsize=4.8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("\n".join(textwrap.wrap(title, 160)), fontsize=6.5)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ the command
def run_engine_rules(cfg: EngineRulesConfig, out: Path, progress: bool = True) -> dict:
    """Compute everything into ``out`` (a folder the caller stages): ``single.csv``,
    ``serving.csv`` (tables), ``winners.csv`` (the best rule setting per workload),
    ``tuning.csv`` (every candidate's tune-half objective and the choice),
    ``single_results.csv`` / ``serving_results.csv`` (per prompt / batch),
    ``engine_rules.md``, ``engine_rules.png|pdf`` and ``config.json``; returns the metadata."""
    from .figures import save_figure, set_style

    t_start = time.perf_counter()
    tr = traces.load(cfg.trace)
    if tr.costs is None or not len(tr.costs):
        raise ValueError(f"{cfg.trace}: engine-rules compares rules by time and needs a cost table; the trace has none")
    why: dict[str, str] = {}
    if cfg.drafter:
        if cfg.drafter not in tr.drafter_names:
            raise ValueError(f"--drafter {cfg.drafter!r}: not a drafter of {tr.label}; it has {list(tr.drafter_names)}")
        drafter, why["drafter"] = cfg.drafter, "as given"
    else:
        drafter, why["drafter"] = choose_drafter(tr, cfg.k)
    k = min(cfg.k, tr.k_limits[drafter])
    arms = f"plain@0,{drafter}@1-{k}"
    why["arms"] = arms + (f" (K capped at {drafter}'s largest K)" if k < cfg.k else "")
    tune, report = split_prompts(tr.n_prompts, cfg.seed)
    why["split"] = (f"{len(tune)} tune / {len(report)} report prompts, permutation from "
                    f"SeedSequence([{cfg.seed}, SPLIT_TAG])")
    names = list(cfg.rules) or engine_rules()
    unknown = [n for n in names if n not in REGISTRY or not getattr(REGISTRY[n], "tuning", None)]
    if unknown:
        raise ValueError(f"--rules: {unknown} are not policies with a tuning grid; expected some of {engine_rules()}")
    rules, skipped = {}, {}
    rc = RunConfig(trace=cfg.trace, setting="replay", policies=("oracle",), runs=1, seed=cfg.seed, arms=arms,
                   objective="time", carry_state=True, cost_device=cfg.cost_device)
    prep = resolve(rc)
    for n in names:
        default, knob, grid = rule_specs(n, drafter)
        ok, bad = _usable(prep, [default, *(s for _, s in grid)], prep.context)
        if bad:
            skipped[n] = next(iter(bad.values()))
            continue
        rules[n] = (default, knob, grid)
    why["cost_device"] = prep.costs.device if prep.costs is not None else "none"
    for key, w in why.items():
        _say(f"{key}: {w}", progress)
    for n, w in skipped.items():
        _say(f"{n} skipped: {w}", progress)
    if not rules:
        raise ValueError(f"engine-rules: no engine rule can run on arms {arms} ({skipped or 'none registered'})")
    timings = {}
    t0 = time.perf_counter()
    sr = single_request(cfg, prep, tune, report, rules, progress)
    single = single_table(sr, rules, cfg.seed, cfg.learners)
    timings["single request"] = round(time.perf_counter() - t0, 2)
    serve, sv = None, None
    if tr.manifest.get("kind") != "greedy" or tr.partial:
        skipped["batch serving"] = "it replays complete greedy traces only"
    else:
        sizes = cfg.batch_sizes or tuple(b for b in SERVE_SIZES if b <= len(tune))
        if max(sizes) > len(tune):
            raise ValueError(f"--batch-sizes: {max(sizes)} exceeds the {len(tune)} prompts of a half")
        why["batch_sizes"] = ",".join(map(str, sizes)) + ("" if cfg.batch_sizes else " (default, up to a half's size)")
        t0 = time.perf_counter()
        sv = serving(cfg, arms, tune, report, sizes, rules, progress)
        serve = serving_table(sv, rules, cfg.learners, cfg.seed, sv["rel"])
        timings["batch serving"] = round(time.perf_counter() - t0, 2)
    title = (f"trace {tr.label}; arms {arms}; cost table {why['cost_device']}; knobs tuned on {len(tune)} prompts, "
             f"reported on the other {len(report)}")
    single.to_csv(out / "single.csv", index=False)
    sr["results"].to_csv(out / "single_results.csv", index=False)
    choices = pd.DataFrame(sr["choices"] + (sv["choices"] if sv else []))
    choices.to_csv(out / "tuning.csv", index=False)
    md = [f"# Which rule for which workload\n\n{title}; drafter {drafter} ({why['drafter']}); time objective; "
          f"tuned: each rule's knob over its grid and its default. Intervals: 95% bootstrap; single "
          f"request over report-half prompts (paired per prompt), serving over runs (each run's mean over batch "
          f"sizes, paired).\n\n## Single request, state carried across prompts\n\n" + single_markdown(single)]
    if serve is not None:
        serve.to_csv(out / "serving.csv", index=False)
        sv["results"].to_csv(out / "serving_results.csv", index=False)
        md.append(f"\n## Batch serving (throughput / plain decoding, {cfg.runs} runs per batch size)\n\n"
                  + serving_markdown(serve))
    win = winners(single, serve)
    win.to_csv(out / "winners.csv", index=False)
    md.append("\n## Best engine rule setting per workload (report half)\n\n" + winners_markdown(win))
    if skipped:
        md.append("\nSkipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()) + "\n")
    (out / "engine_rules.md").write_text("".join(md))
    set_style()
    save_figure(figure(single, serve, title), out, "engine_rules")
    timings["total"] = round(time.perf_counter() - t_start, 2)
    meta = dict(asdict(cfg), drafter_used=drafter, arms_used=arms, why=why, rules_run=list(rules), skipped=skipped,
                tune_prompts=[str(p) for p in np.asarray(prep.env.prompt_ids, dtype=object)[tune]],
                report_prompts=[str(p) for p in np.asarray(prep.env.prompt_ids, dtype=object)[report]],
                trace_label=tr.label, timings=timings)
    (out / "config.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return meta
