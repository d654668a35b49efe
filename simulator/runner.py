"""Run policies on an environment: R runs x prompts x policies from one root seed.

Lanes are independent simulations advanced in lockstep, one round per loop iteration.
By default a lane is one (prompt, run) and the policy learns within the prompt, as both
papers do; with ``carry_state`` a lane is one run that goes through the prompts in order
with the policy state carried across them (a serving deployment).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import traces
from traces import Arm, resolve_arms
from traces.manifest import toolkit_version

from . import rng as crng
from .costs import round_costs_s
from .envs import SETTINGS, Env, make_env
from .policies import Policy, PolicyContext, make_policy

REWARDS = ("tokens", "throughput")
ENGINES = ("auto", "numpy", "numba")
BACKENDS = ("local", "ray")


class ConfigError(ValueError):
    """An invalid run configuration."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's results (written to ``config.json``)."""

    trace: str
    setting: str = "replay"
    policies: tuple[str, ...] = ("ucbspec", "exp3spec")
    runs: int = 10
    seed: int = 0
    arms: str | None = None
    reward: str = "tokens"
    carry_state: bool = False
    law: str = "empirical"
    stream: str = "recorded"
    cost_device: str | None = None
    engine: str = "auto"
    workers: int = field(default=1, compare=False)
    backend: str = field(default="local", compare=False)
    address: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.setting not in SETTINGS:
            raise ConfigError(f"setting: expected one of {list(SETTINGS)}, got {self.setting!r}")
        if self.reward not in REWARDS:
            raise ConfigError(f"reward: expected one of {list(REWARDS)}, got {self.reward!r}")
        if not isinstance(self.runs, int) or self.runs < 1:
            raise ConfigError(f"runs: expected an integer >= 1, got {self.runs!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed: expected an integer >= 0, got {self.seed!r}")
        if self.engine not in ENGINES:
            raise ConfigError(f"engine: expected one of {list(ENGINES)}, got {self.engine!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend: expected one of {list(BACKENDS)}, got {self.backend!r}")
        if self.workers < 1:
            raise ConfigError(f"workers: expected >= 1, got {self.workers}")
        if not self.policies:
            raise ConfigError("policies: expected at least one policy")
        for p in self.policies:
            make_policy(p)  # raises PolicyError with the reason


@dataclass
class Prepared:
    """A configuration resolved against its trace."""

    cfg: RunConfig
    trace: traces.Trace
    arms: list[Arm]
    env: Env
    cost_s: np.ndarray | None
    fixed_st: np.ndarray  # (n_env_prompts, n_arms)
    ctx: PolicyContext


def prepare(cfg: RunConfig) -> Prepared:
    trace = traces.load(cfg.trace)
    arms = resolve_arms(cfg.arms, trace.drafter_names, trace.k_max)
    env = make_env(cfg.setting, trace, arms, seed=cfg.seed, law=cfg.law, stream=cfg.stream)
    cost_s = None
    if trace.costs is not None:
        cost_s = round_costs_s(trace.costs, arms, cfg.cost_device)
    elif cfg.reward == "throughput":
        raise ConfigError(f"reward 'throughput' needs a cost table; {cfg.trace} has none")
    fixed = env.expected_fixed_st()
    L = max(int(env.table.L), 1)
    if cfg.reward == "tokens":
        lo, hi = 1.0, float(L + 1)
    else:
        lo = float(np.min(1.0 / cost_s))
        hi = float(np.max((env.table.k + 1) / cost_s))
    # the oracle's hindsight arm: fewest rounds, or least time under a throughput reward
    best = np.argmin(fixed * cost_s[None, :] if cfg.reward == "throughput" else fixed, axis=1)
    ctx = PolicyContext(
        n_arms=len(arms), arm_names=tuple(a.name for a in arms), L=L, reward_lo=lo,
        reward_hi=hi, hindsight_best=best, drafter_names=trace.drafter_names, arm_cost_s=cost_s,
    )
    return Prepared(cfg, trace, arms, env, cost_s, fixed, ctx)


def simulate(prep: Prepared, policy: Policy, prompts: np.ndarray, runs: np.ndarray,
             record: bool = False) -> dict:
    """Simulate ``policy`` on env prompts ``prompts`` x ``runs``.

    Returns arrays indexed ``[i_prompt, i_run]``: ``stopping_time``, ``time_s`` and
    ``pulls`` (with a trailing arms axis); with ``record``, also ``history``: per round the
    (position, arm, tokens emitted, environment prompt) of every lane (position and arm -1
    once a lane is done), for conformance checks and exports.
    """
    if not record and kernel_applies(prep, policy):
        return _simulate_kernel(prep, policy, prompts, runs)
    full = policy.feedback == "full"
    if full and not hasattr(prep.env, "gamma"):
        raise ConfigError(f"policy {policy.spec()} declares feedback 'full', which only the replay setting "
                          f"provides (per-position acceptance of every drafter); got {prep.env.name!r}")
    if policy.feedback not in ("bandit", "full"):
        raise ConfigError(f"policy {policy.spec()}: unknown feedback type {policy.feedback!r}")
    W = int(prep.env.table.L) + 1
    env, cfg = prep.env, prep.cfg
    A = env.n_arms
    P, R = len(prompts), len(runs)
    carry = cfg.carry_state
    if carry:
        n_lanes = R
        lane_run = runs.astype(np.int64)
        lane_slot = np.zeros(n_lanes, dtype=np.int64)  # index into ``prompts``
        pkey = crng.stream_key(cfg.seed, "policy:carry")
        lane_key = lane_run
    else:
        n_lanes = P * R
        lane_run = np.tile(runs, P).astype(np.int64)
        lane_slot = np.repeat(np.arange(P), R)
        pkey = crng.stream_key(cfg.seed, "policy")
        lane_key = prompts[lane_slot] * np.int64(1 << 20) + lane_run
    lane_r_idx = np.tile(np.arange(R), P) if not carry else np.arange(R)
    cur = prompts[lane_slot]
    N = env.lengths
    pos = np.zeros(n_lanes, dtype=np.int64)
    rnd = np.zeros(n_lanes, dtype=np.int64)
    grnd = np.zeros(n_lanes, dtype=np.int64)
    pulls = np.zeros((n_lanes, A), dtype=np.int64)
    tsum = np.zeros(n_lanes)
    active = np.ones(n_lanes, dtype=bool)
    out_st = np.zeros((P, R), dtype=np.int64)
    out_time = np.zeros((P, R))
    out_pulls = np.zeros((P, R, A), dtype=np.int64)
    cost = prep.cost_s if prep.cost_s is not None else np.ones(A)
    throughput = cfg.reward == "throughput"

    policy.reset(n_lanes, prep.ctx)
    policy.on_prompt_start(np.arange(n_lanes), cur)
    j = np.arange(max(policy.n_random, 1))
    history: list[tuple[np.ndarray, ...]] = []
    while active.any():
        u = crng.uniform(pkey, lane_key[:, None], grnd[:, None], j[None, :])
        arms = np.asarray(policy.select(u), dtype=np.int64)
        if arms.shape != (n_lanes,) or arms.min() < 0 or arms.max() >= A:
            raise RuntimeError(f"policy {policy.spec()} returned invalid arms {arms[:8]}")
        e = np.where(active, env.emit(cur, lane_run, rnd, pos, arms), 0)
        if record:
            history.append((np.where(active, pos, -1), np.where(active, arms, -1), e, cur.copy()))
        reward = e / cost[arms] if throughput else e.astype(np.float64)
        if full:
            where = pos[:, None] + np.arange(W)[None, :]
            verified = np.arange(W)[None, :] < e[:, None]
            policy.update_full(arms, reward, active, where, verified, env.gamma(cur, where))
        else:
            policy.update(arms, reward, active)
        act = np.flatnonzero(active)
        pulls[act, arms[act]] += 1
        tsum[act] += cost[arms[act]]
        pos += e
        rnd += active
        grnd += active
        finished = np.flatnonzero(active & (pos >= N[cur]))
        if len(finished):
            s, r = lane_slot[finished], lane_r_idx[finished]
            out_st[s, r] = rnd[finished]
            out_time[s, r] = tsum[finished]
            out_pulls[s, r] = pulls[finished]
            if carry:
                more = finished[lane_slot[finished] + 1 < P]
                done = finished[lane_slot[finished] + 1 >= P]
                active[done] = False
                if len(more):
                    lane_slot[more] += 1
                    cur[more] = prompts[lane_slot[more]]
                    pos[more] = 0
                    rnd[more] = 0
                    pulls[more] = 0
                    tsum[more] = 0.0
                    policy.on_prompt_start(more, cur[more])
            else:
                active[finished] = False
    out = {"stopping_time": out_st, "time_s": out_time, "pulls": out_pulls}
    if record:
        out["history"] = history
    return out


def kernel_applies(prep: Prepared, policy: Policy) -> bool:
    """Whether the compiled engine (``simulator.kernels``) runs this simulation: greedy replay,
    per-prompt learning, UCBSpec or EXP3Spec.  ``engine="numba"`` demands it."""
    from . import kernels
    from .envs.replay import ReplayEnv
    from .policies.exp3spec import EXP3Spec
    from .policies.ucbspec import UCBSpec

    cfg = prep.cfg
    ok = (cfg.engine != "numpy" and kernels.AVAILABLE and type(prep.env) is ReplayEnv
          and not prep.env.sampling and not cfg.carry_state and type(policy) in (UCBSpec, EXP3Spec))
    if cfg.engine == "numba" and not ok:
        raise ConfigError(f"engine 'numba' runs ucbspec / exp3spec on greedy replay without --carry-state"
                          f"{'' if kernels.AVAILABLE else ' and needs numba installed'}; got policy "
                          f"{policy.spec()!r}, setting {prep.env.name!r}")
    return ok


def _simulate_kernel(prep: Prepared, policy: Policy, prompts: np.ndarray, runs: np.ndarray) -> dict:
    from . import kernels

    env = prep.env
    cost = prep.cost_s if prep.cost_s is not None else np.ones(env.n_arms)
    param = policy.delta if policy.name == "ucbspec" else policy.eta_scale
    return kernels.replay(policy.name, param, env._acc, env.lengths, env.table.drafter_idx, env.table.k, cost,
                          np.asarray(prompts), np.asarray(runs), crng.stream_key(prep.cfg.seed, "policy"),
                          prep.ctx.reward_lo, prep.ctx.reward_hi, prep.cfg.reward == "throughput")


def _tasks(prep: Prepared, workers: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split (prompts, runs) into chunks; results never depend on the split."""
    P, R = prep.env.n_prompts, prep.cfg.runs
    if prep.cfg.carry_state:
        chunks = np.array_split(np.arange(R), min(R, max(workers, 1)))
        return [(np.arange(P), c) for c in chunks if len(c)]
    n_chunks = min(P, max(workers, 1) * 4) if workers > 1 else 1
    return [(c, np.arange(R)) for c in np.array_split(np.arange(P), n_chunks) if len(c)]


def _single_threaded() -> None:
    """Worker processes use one thread each (the processes are the parallelism)."""
    from . import kernels

    if kernels.AVAILABLE:
        import numba

        numba.set_num_threads(1)


def _worker(args: tuple[RunConfig, str, np.ndarray, np.ndarray]) -> tuple:
    cfg, spec, prompts, runs = args
    prep = _prepare_cached(cfg)
    return spec, prompts, runs, simulate(prep, make_policy(spec), prompts, runs)


_CACHE: dict[RunConfig, Prepared] = {}


def _prepare_cached(cfg: RunConfig) -> Prepared:
    if cfg not in _CACHE:
        _CACHE.clear()
        _CACHE[cfg] = prepare(cfg)
    return _CACHE[cfg]


def run_experiment(cfg: RunConfig, *, progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Run every policy of ``cfg``; return the tidy results table and resolved config."""
    prep = _prepare_cached(cfg)
    env = prep.env
    P, R, A = env.n_prompts, cfg.runs, env.n_arms
    results = {
        spec: {"stopping_time": np.zeros((P, R), np.int64), "time_s": np.zeros((P, R)),
               "pulls": np.zeros((P, R, A), np.int64)}
        for spec in cfg.policies
    }
    n_split = max(cfg.workers, 2) if cfg.backend == "ray" else cfg.workers
    jobs = [(cfg, spec, p, r) for spec in cfg.policies for p, r in _tasks(prep, n_split)]
    bar = tqdm(total=len(jobs), desc=f"{cfg.setting}", unit="task", disable=not progress)
    if cfg.backend == "ray":
        from .distributed import ray_map

        for spec, prompts, runs, res in ray_map(_worker, jobs, cfg.address):
            _store(results[spec], prompts, runs, res)
            bar.update()
    elif cfg.workers > 1:
        # spawn: forking after numba / OpenMP threads have started is unsafe
        with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_single_threaded) as ex:
            outs = ex.map(_worker, jobs)
            for spec, prompts, runs, res in outs:
                _store(results[spec], prompts, runs, res)
                bar.update()
    else:
        for job in jobs:
            spec, prompts, runs, res = _worker(job)
            _store(results[spec], prompts, runs, res)
            bar.update()
    bar.close()
    df = _to_frame(prep, results)
    return df, resolved_config(prep)


def _store(dst: dict, prompts: np.ndarray, runs: np.ndarray, res: dict) -> None:
    for k in dst:
        dst[k][np.ix_(prompts, runs)] = res[k]


def resolved_config(prep: Prepared) -> dict:
    cfg = prep.cfg
    d = asdict(cfg)
    d["policies"] = [make_policy(p).spec() for p in cfg.policies]
    d.update(
        trace_label=prep.trace.label,
        trace_synthetic=prep.trace.is_synthetic,
        trace_path=str(prep.trace.path),
        trace_manifest_created=prep.trace.manifest.get("created_utc"),
        arms=[a.name for a in prep.arms],
        L=prep.ctx.L,
        reward_range=[prep.ctx.reward_lo, prep.ctx.reward_hi],
        env=prep.env.describe(),
        seed_entropy=int(np.random.SeedSequence(cfg.seed).entropy),
        toolkit_version=toolkit_version(),
    )
    return d


def _to_frame(prep: Prepared, results: dict) -> pd.DataFrame:
    env, cfg = prep.env, prep.cfg
    P, R = env.n_prompts, cfg.runs
    best = np.argmin(prep.fixed_st, axis=1)
    best_st = prep.fixed_st[np.arange(P), best]
    arm_names = np.array([a.name for a in prep.arms], dtype=object)
    plain_time = fixed_time_best = None
    if prep.cost_s is not None:
        # plain decoding costs one verification of one token per token, arm set or not
        c_plain = round_costs_s(prep.trace.costs, [Arm("plain", 0)], cfg.cost_device)[0]
        plain_time = env.lengths.astype(float) * c_plain
        fixed_time = prep.fixed_st * prep.cost_s[None, :]
        fixed_time_best = fixed_time.min(axis=1)
        best_time_arm = arm_names[fixed_time.argmin(axis=1)]
    frames = []
    for spec, res in results.items():
        st = res["stopping_time"]
        tokens = np.repeat(env.lengths[:, None], R, axis=1)
        d = {
            "setting": cfg.setting,
            "policy": make_policy(spec).spec(),
            "prompt_id": np.repeat(np.asarray(env.prompt_ids, dtype=object), R),
            "category": np.repeat(np.asarray(env.categories, dtype=object), R),
            "run": np.tile(np.arange(R), P),
            "stopping_time": st.ravel(),
            "tokens": tokens.ravel(),
            "mean_accepted": (tokens / st).ravel(),
            "regret": (st - best_st[:, None]).ravel(),
            "best_fixed_arm": np.repeat(arm_names[best], R),
            "best_fixed_st": np.repeat(best_st, R),
        }
        if prep.cost_s is not None:
            t = res["time_s"]
            d["time_s"] = t.ravel()
            d["plain_time_s"] = np.repeat(plain_time, R)
            d["speedup"] = (plain_time[:, None] / t).ravel()
            d["time_regret_s"] = (t - fixed_time_best[:, None]).ravel()
            d["best_time_arm"] = np.repeat(best_time_arm, R)
        d["pulls"] = list(res["pulls"].reshape(P * R, -1))
        frames.append(pd.DataFrame(d))
    return pd.concat(frames, ignore_index=True)


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))
