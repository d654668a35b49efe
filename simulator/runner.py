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
import pyarrow as pa
from tqdm.auto import tqdm

import traces
from traces import PLAIN, Arm
from traces.manifest import toolkit_version

from . import rng as crng
from .costs import COST_FITS, CostError, CostModel, default_device
from .distributed import single_threaded
from .envs import SETTINGS, Env, make_env
from .headroom import switcher_columns
from .lockstep import State, lockstep
from .policies import Policy, PolicyContext, make_policy
from .policies.base import REWARDS, call_policy
from .policies.plugins import load_module_file, resolve_module

OBJECTIVES = ("rounds", "time")
ENGINES = ("auto", "numpy", "numba")
BACKENDS = ("local", "ray")


class ConfigError(ValueError):
    """An invalid run configuration."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's results (written to ``config.json``).

    ``objective`` is what the run optimises and reports regret in: ``rounds`` (BanditSpec's
    stopping time) or ``time`` (seconds from the cost model).  Default: ``time`` when
    ``reward`` is ``throughput``, else ``rounds``.  ``reward`` is the default reward of the
    learners (a policy's own ``reward=`` overrides it); default: the objective's natural
    reward (rounds -> tokens per round, time -> throughput).  ``free_feedback`` waives the
    cost of scoring unplayed drafters for full-information learners (the papers' idealised
    comparison); by default it is charged.
    """

    trace: str
    setting: str = "replay"
    policies: tuple[str, ...] = ("ucbspec", "exp3spec")
    runs: int = 10
    seed: int = 0
    arms: str | None = None
    objective: str | None = None
    reward: str | None = None
    carry_state: bool = False
    law: str = "empirical"
    stream: str = "recorded"
    cost_device: str | None = None
    cost_fit: str = "raw"  # simulator.costs.COST_FITS
    free_feedback: bool = False
    engine: str = "auto"
    policy_modules: tuple[str, ...] = ()  # files defining user policies (resolved from module names)
    workers: int = field(default=1, compare=False)
    backend: str = field(default="local", compare=False)
    address: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.setting not in SETTINGS:
            raise ConfigError(f"setting: expected one of {list(SETTINGS)}, got {self.setting!r}")
        if self.reward is not None and self.reward not in REWARDS:
            raise ConfigError(f"reward: expected one of {list(REWARDS)}, got {self.reward!r}")
        if self.objective is None:
            object.__setattr__(self, "objective", "time" if self.reward == "throughput" else "rounds")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective: expected one of {list(OBJECTIVES)}, got {self.objective!r}")
        if self.reward is None:
            object.__setattr__(self, "reward", "throughput" if self.objective == "time" else "tokens")
        if not isinstance(self.runs, int) or not 1 <= self.runs <= crng.MAX_RUNS:
            raise ConfigError(f"runs: expected an integer in 1..{crng.MAX_RUNS} (the lane counter holds "
                              f"2^{crng.LANE_SHIFT} runs per prompt), got {self.runs!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed: expected an integer >= 0, got {self.seed!r}")
        if self.engine not in ENGINES:
            raise ConfigError(f"engine: expected one of {list(ENGINES)}, got {self.engine!r}")
        if self.cost_fit not in COST_FITS:
            raise ConfigError(f"cost_fit: expected one of {list(COST_FITS)}, got {self.cost_fit!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend: expected one of {list(BACKENDS)}, got {self.backend!r}")
        if self.workers < 1:
            raise ConfigError(f"workers: expected >= 1, got {self.workers}")
        if not self.policies:
            raise ConfigError("policies: expected at least one policy")
        object.__setattr__(self, "policy_modules", tuple(resolve_module(m) for m in self.policy_modules))
        for path in self.policy_modules:
            load_module_file(path)
        for p in self.policies:
            make_policy(p)  # raises PolicyError with the reason

    def policy_reward(self, policy: Policy) -> str:
        """The reward ``policy`` learns from in this run."""
        if policy.reward or not policy.rewards:
            return policy.reward_for(self.objective)
        return self.reward if self.reward in policy.rewards else policy.rewards[0]


@dataclass
class Experiment:
    """One request resolved once (:func:`resolve`): the configuration, its trace, the arms
    (parsed once), the environment, every fixed arm's ``E[ST]``, the cost model and its
    per-prompt costs.  It computes the reward scale (:meth:`reward_scale`) and decides the
    engine (:meth:`compiled`); ``run``, the figures, the tables and the exports receive it
    explicitly (:func:`stream_experiment`, :func:`run_experiment`, :func:`fixed_frame`, ...).

    Cost arrays are per environment prompt and arm (seconds); ``None`` without a cost table.
    """

    cfg: RunConfig
    trace: traces.Trace | None
    arms: list[Arm]
    env: Env
    fixed_st: np.ndarray  # (n_env_prompts, n_arms): E[ST(ALG_i)]
    cost_s: np.ndarray | None = None
    plain_s: np.ndarray | None = None  # (n_env_prompts,): one plain-decoding round
    feedback_s: np.ndarray | None = None  # scoring every other drafter, per arm played
    costs: CostModel | None = None
    arms_note: str = ""  # what the arm selection says (an engine log's logged configurations), or ""

    @property
    def fixed_time_s(self) -> np.ndarray | None:
        return None if self.cost_s is None else self.fixed_st * self.cost_s

    def hindsight_best(self) -> dict[str, np.ndarray]:
        out = {"rounds": np.argmin(self.fixed_st, axis=1)}
        if self.cost_s is not None:
            out["time"] = np.argmin(self.fixed_time_s, axis=1)
        return out

    def context(self, policy: Policy) -> PolicyContext:
        """What ``policy`` may know: the arms, its reward's kind and range, hindsight for oracles."""
        kind = self.cfg.policy_reward(policy)
        k = self.env.table.k.astype(float)
        L = max(int(self.env.table.L), 1)
        if kind == "throughput":
            if self.cost_s is None:
                raise ConfigError(f"policy {policy.spec()}: reward 'throughput' needs a cost table; "
                                  f"{self.cfg.trace} has none")
            rel = self.reward_scale(kind)  # (P, A): c0 / c_a
            arm_lo, arm_hi = rel.min(axis=0), ((k + 1)[None, :] * rel).max(axis=0)
        else:
            arm_lo, arm_hi = np.ones(len(k)), k + 1
        return PolicyContext(
            n_arms=self.env.n_arms, arm_names=tuple(a.name for a in self.arms), L=L,
            reward_lo=float(arm_lo.min()), reward_hi=float(arm_hi.max()), reward_kind=kind,
            objective=self.cfg.objective,
            arm_lo=arm_lo, arm_hi=arm_hi, hindsight_best=self.hindsight_best(),
            drafter_names=self.trace.drafter_names if self.trace is not None else (),
            arm_cost_s=None if self.cost_s is None else self.cost_s.mean(axis=0))

    def charges_feedback(self, policy: Policy) -> bool:
        return policy.feedback == "full" and self.feedback_s is not None and not self.cfg.free_feedback

    def reward_scale(self, kind: str) -> np.ndarray:
        """(P, A): what one emitted token is worth under reward ``kind``, the one place it is
        computed: ``throughput`` -> ``c0 / c_a`` (plain decoding's round over the arm's, so a
        round's reward is its throughput relative to plain decoding), else 1."""
        if kind == "throughput":
            return self.plain_s[:, None] / self.cost_s
        return np.ones((self.env.n_prompts, self.env.n_arms))

    def round_costs(self, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
        """(P, A) seconds of a round of each arm (1 without a cost table) and of the feedback
        ``policy`` is charged for (0 unless it is charged)."""
        cost = self.cost_s if self.cost_s is not None else np.ones((self.env.n_prompts, self.env.n_arms))
        return cost, (self.feedback_s if self.charges_feedback(policy) else np.zeros_like(cost))

    def compiled(self, policy: Policy) -> bool:
        """Whether the compiled engine runs ``policy`` here (:func:`engine_refusal`); with
        ``engine="numba"`` where it cannot, a ``ConfigError`` saying why."""
        why = engine_refusal(self.cfg.engine, policy, self.env)
        if self.cfg.engine == "numba" and why:
            raise ConfigError(f"engine 'numba': {why}; use --engine auto or numpy")
        return why is None


def engine_refusal(engine: str, policy: Policy | None, env: Env) -> str | None:
    """The one engine decision: ``None`` when the compiled engine (``simulator.kernels``) runs
    ``policy`` (``None``: a fixed arm) on ``env`` under ``engine`` (auto, numba, numpy), else why
    the numpy engine runs it: ``engine="numpy"``, numba missing, a policy class without its own
    ``kernel`` or an environment class without its own compiled form (``Env.has_compiled_form``)."""
    from . import kernels
    from .kernels.learners import has_kernel

    if engine == "numpy":
        return "engine 'numpy' asked for"
    if not kernels.AVAILABLE:
        return "numba is not installed"
    if policy is not None and not has_kernel(policy):
        return f"policy {policy.spec()!r} has no kernel (see `python -m simulator policies`)"
    if not env.has_compiled_form():  # the class's own compiled form (a subclass: its own, or numpy)
        return f"environment {type(env).__name__} has no compiled emission"
    return None


def resolve(cfg: RunConfig, trace: traces.Trace | None = None) -> Experiment:
    """Resolve ``cfg`` against its trace, once: the :class:`Experiment` every step of the request
    receives.  ``trace``: the already loaded ``cfg.trace`` (the settings of one request share it)."""
    trace = traces.load(cfg.trace) if trace is None else trace
    arms, arms_note = trace.select_arms(cfg.arms)  # resolve_arms, or a log's logged configurations
    env = make_env(cfg.setting, trace, arms, seed=cfg.seed, law=cfg.law, stream=cfg.stream)
    prep = Experiment(cfg, trace, arms, env, env.expected_fixed_st(), arms_note=arms_note or "")
    if trace.costs is not None and len(trace.costs):
        model = CostModel.for_trace(trace, cfg.cost_device, cfg.cost_fit)
        model.why = "as given" if cfg.cost_device else default_device(trace.costs)[1]
        ctx = env.context_lens
        try:
            cost_s = model.round_ms(arms, 1, ctx[:, None])[:, 0, :] / 1000.0
        except CostError:  # an engine log's arm without a measured step: rounds only
            if cfg.objective == "time" or cfg.reward == "throughput":
                raise
            return prep
        prep.costs = model
        prep.cost_s = cost_s
        prep.plain_s = model.round_ms([Arm(PLAIN, 0)], 1, ctx)[:, 0] / 1000.0
        scored = list(dict.fromkeys(a.drafter for a in arms if a.drafter != PLAIN))
        prep.feedback_s = model.feedback_ms(arms, scored, 1, ctx[:, None])[:, 0, :] / 1000.0
    elif cfg.objective == "time" or cfg.reward == "throughput":
        raise ConfigError(f"objective 'time' and reward 'throughput' need a cost table; {cfg.trace} has none")
    return prep




def simulate_env(env: Env, spec: str, runs: int, seed: int = 0, engine: str = "auto") -> dict:
    """Simulate one policy on a bare environment (no trace, no costs; tokens reward): the
    results of :func:`simulate` plus ``fixed_st``, E[ST] of every fixed arm (P, A).  ``engine``
    as in :class:`RunConfig` (``numba`` refuses an environment without its own compiled form)."""
    cfg = RunConfig(trace="-", setting="stochastic", policies=(spec,), runs=runs, seed=seed, engine=engine)
    prep = Experiment(cfg, None, env.table.arms, env, env.expected_fixed_st())
    res = simulate(prep, make_policy(spec), np.arange(env.n_prompts), np.arange(runs))
    res["fixed_st"] = prep.fixed_st
    return res


def simulate(prep: Experiment, policy: Policy, prompts: np.ndarray, runs: np.ndarray,
             record: bool = False) -> dict:
    """Simulate ``policy`` on env prompts ``prompts`` x ``runs``.

    Returns arrays indexed ``[i_prompt, i_run]``: ``stopping_time``, ``time_s`` (feedback
    included), ``feedback_s`` (the part spent scoring unplayed drafters) and ``pulls`` (with a
    trailing arms axis); with ``record``, also ``history``: per round the (position, arm,
    tokens emitted, environment prompt) of every lane (position and arm -1 once a lane is
    done), for conformance checks and exports.
    """
    full = policy.feedback == "full"
    if full and not prep.env.full_information:
        raise ConfigError(f"policy {policy.spec()} declares feedback 'full', which only the replay setting "
                          f"provides (per-position acceptance of every drafter); got {prep.env.name!r}")
    if policy.feedback not in ("bandit", "full"):
        raise ConfigError(f"policy {policy.spec()}: unknown feedback type {policy.feedback!r}")
    if not record and prep.compiled(policy):
        return _simulate_kernel(prep, policy, prompts, runs)
    ctx = prep.context(policy)
    env, cfg = prep.env, prep.cfg
    A = env.n_arms
    P, R = len(prompts), len(runs)
    carry = cfg.carry_state
    if carry:  # a lane is one run through the prompts in order, its policy state carried along
        lane_run = runs.astype(np.int64)
        lane_slot = np.zeros(R, dtype=np.int64)  # index into ``prompts``
        lane_key = lane_run
        lane_r_idx = np.arange(R)
    else:  # a lane is one (prompt, run); the policy learns within the prompt
        lane_run = np.tile(runs, P).astype(np.int64)
        lane_slot = np.repeat(np.arange(P), R)
        lane_key = crng.lane_key(prompts[lane_slot], lane_run)
        lane_r_idx = np.tile(np.arange(R), P)
    n_lanes = len(lane_run)
    state = State(np.arange(n_lanes), prompts[lane_slot].astype(np.int64), lane_run, n_lanes, A)
    out = {"stopping_time": np.zeros((P, R), dtype=np.int64), "time_s": np.zeros((P, R)),
           "feedback_s": np.zeros((P, R)), "pulls": np.zeros((P, R, A), dtype=np.int64)}
    cost, fb_cost = prep.round_costs(policy)
    rscale = prep.reward_scale(ctx.reward_kind)

    def round_cost(st: State, arms: np.ndarray, n_act: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return cost[st.prompt, arms], fb_cost[st.prompt, arms]

    def reward(st: State, arms: np.ndarray, emitted: np.ndarray, n_act: np.ndarray, c: np.ndarray) -> np.ndarray:
        return emitted * rscale[st.prompt, arms]

    def on_finish(st: State, finished: np.ndarray) -> None:
        s, r = lane_slot[finished], lane_r_idx[finished]
        out["stopping_time"][s, r] = st.rnd[finished]
        out["time_s"][s, r] = st.time_s[finished]
        out["feedback_s"][s, r] = st.feedback_s[finished]
        out["pulls"][s, r] = st.pulls[finished]
        if carry:  # the lane goes on with its next prompt, the policy keeps its state
            more = finished[lane_slot[finished] + 1 < P]
            if len(more):
                lane_slot[more] += 1
                st.prompt[more] = prompts[lane_slot[more]]
                st.pos[more] = 0
                st.rnd[more] = 0
                st.pulls[more] = 0
                st.time_s[more] = 0.0
                st.feedback_s[more] = 0.0
                st.alive[more] = True
                call_policy(policy, "on_prompt_start", more, st.prompt[more])

    call_policy(policy, "reset", n_lanes, ctx)
    call_policy(policy, "on_prompt_start", np.arange(n_lanes), state.prompt.copy())
    history: list | None = [] if record else None
    lockstep(env, state, round_cost, policy=policy, reward=reward, key=crng.policy_key(cfg.seed, carry=carry),
             lane_key=lane_key, on_finish=on_finish, history=history)
    if record:
        out["history"] = history
    return out


def kernel_applies(prep: Experiment, policy: Policy) -> bool:
    """Whether the compiled engine runs ``policy`` in ``prep`` (:meth:`Experiment.compiled`)."""
    return prep.compiled(policy)


def _simulate_kernel(prep: Experiment, policy: Policy, prompts: np.ndarray, runs: np.ndarray) -> dict:
    from .kernels.learners import learner_args
    from .kernels.loops import run_lanes

    env, cfg = prep.env, prep.cfg
    ctx = prep.context(policy)
    la = learner_args(policy, ctx)
    cost, fb_cost = prep.round_costs(policy)
    rscale = prep.reward_scale(ctx.reward_kind)
    # full information: the experts' losses at every position, the same for every lane
    F = policy.expert_losses(_gamma_table(env)) if policy.feedback == "full" else np.zeros((1, 1, 1))
    st, tm, fb, pulls = run_lanes(
        *la.args(), *env.kernel_arrays().args(), F, np.ascontiguousarray(cost, np.float64),
        np.ascontiguousarray(fb_cost, np.float64), np.ascontiguousarray(rscale, np.float64),
        np.asarray(prompts, np.int64), np.asarray(runs, np.int64), bool(cfg.carry_state),
        crng.policy_key(cfg.seed, carry=cfg.carry_state))
    return {"stopping_time": st, "time_s": tm, "feedback_s": fb, "pulls": pulls}


def _gamma_table(env: Env) -> np.ndarray:
    """``env.gamma`` at every position of every prompt, (P, D, T): what full-information
    learners are shown at verified positions (0 past the output)."""
    T = env.accept.shape[2]
    P = env.n_prompts
    pos = np.broadcast_to(np.arange(T), (P, T))
    return np.ascontiguousarray(env.gamma(np.arange(P), pos).transpose(0, 2, 1), np.float64)


CHUNK_CELLS = 1 << 17  # (prompt, run) cells per task: bounds a task's arrays and frame (~100 MB)


def _tasks(prep: Experiment, workers: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split (prompts, runs) into chunks in (prompt, run) order, each at most ``CHUNK_CELLS``
    cells; results never depend on the split."""
    P, R = prep.env.n_prompts, prep.cfg.runs
    if prep.cfg.carry_state:
        n = max(min(R, max(workers, 1)), -(-P * R // CHUNK_CELLS))
        return [(np.arange(P), c) for c in np.array_split(np.arange(R), n) if len(c)]
    if R > CHUNK_CELLS:  # one prompt per task, its runs split
        n = -(-R // CHUNK_CELLS)
        return [(np.array([p]), c) for p in range(P) for c in np.array_split(np.arange(R), n)]
    n_chunks = max(min(P, max(workers, 1) * 4) if workers > 1 else 1, -(-P * R // CHUNK_CELLS))
    return [(c, np.arange(R)) for c in np.array_split(np.arange(P), min(n_chunks, P)) if len(c)]


def _task(prep: Experiment, job: tuple[RunConfig, str, np.ndarray, np.ndarray]) -> tuple:
    cfg, spec, prompts, runs = job
    return spec, prompts, runs, simulate(prep, make_policy(spec), prompts, runs)


# a worker process (``--workers N``, Ray) is handed the configuration, not the parent's
# Experiment (its arrays would be copied into every task): it resolves it once, here
_WORKER_EXPERIMENT: dict[RunConfig, Experiment] = {}


def _worker(job: tuple[RunConfig, str, np.ndarray, np.ndarray]) -> tuple:
    cfg = job[0]
    if cfg not in _WORKER_EXPERIMENT:
        for path in cfg.policy_modules:  # a fresh worker process has not seen the user's policies
            load_module_file(path)
        _WORKER_EXPERIMENT.clear()
        _WORKER_EXPERIMENT[cfg] = resolve(cfg)
    return _task(_WORKER_EXPERIMENT[cfg], job)


def check_request(cfg: RunConfig | Experiment, trace: traces.Trace | None = None) -> Experiment:
    """Resolve ``cfg`` (:func:`resolve`; an :class:`Experiment` is taken as it is) and check that
    every policy can run in its setting (reward available, feedback provided), before any work
    starts; returns the experiment."""
    prep = cfg if isinstance(cfg, Experiment) else resolve(cfg, trace)
    cfg = prep.cfg
    for spec in cfg.policies:
        pol = make_policy(spec)
        ctx = prep.context(pol)
        if pol.feedback == "full" and not prep.env.full_information:
            raise ConfigError(f"policy {pol.spec()} needs full-information feedback, which setting "
                              f"{cfg.setting!r} does not provide (only replay does)")
        call_policy(pol, "reset", 1, ctx)  # a policy that cannot use these arms says so now, not mid-run
    return prep


def run_experiment(cfg: RunConfig | Experiment, *, progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Run every policy of ``cfg`` (a configuration, resolved here, or an :class:`Experiment`);
    return the tidy results table and resolved config."""
    tables: list[pa.Table] = []
    conf = stream_experiment(cfg, tables.append, progress=progress)
    return pa.concat_tables(tables).to_pandas(), conf


def stream_experiment(cfg: RunConfig | Experiment, sink, *, progress: bool = True) -> dict:
    """Run every policy of ``cfg`` (a configuration, resolved here, or an :class:`Experiment`,
    checked by :func:`check_request`), handing ``sink`` the results table (``pa.Table``, the
    columns of ``results_table``) of each task as it
    completes, in (policy, prompt, run) order whatever the workers or backend; memory holds one
    task at a time (``CHUNK_CELLS``).  Returns the resolved config."""
    prep = check_request(cfg)
    cfg = prep.cfg
    n_split = max(cfg.workers, 2) if cfg.backend == "ray" else cfg.workers
    jobs = [(cfg, spec, p, r) for spec in cfg.policies for p, r in _tasks(prep, n_split)]
    bar = tqdm(total=len(jobs), desc=f"{cfg.setting}", unit="task", disable=not progress)

    def take(out) -> None:
        spec, prompts, runs, res = out
        sink(results_table(prep, spec, res, prompts, runs))
        bar.update()

    if cfg.backend == "ray":
        from .distributed import ray_map

        pending: dict[int, tuple] = {}
        done_upto = 0
        for out in ray_map(_indexed_worker, list(enumerate(jobs)), cfg.address):
            pending[out[0]] = out[1]
            while done_upto in pending:  # completion order -> task order
                take(pending.pop(done_upto))
                done_upto += 1
    elif cfg.workers > 1:
        # spawn: forking after numba / OpenMP threads have started is unsafe
        with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=single_threaded) as ex:
            for out in ex.map(_worker, jobs):
                take(out)
    else:
        for job in jobs:
            take(_task(prep, job))
    bar.close()
    return resolved_config(prep)


def _indexed_worker(args: tuple[int, tuple]) -> tuple[int, tuple]:
    return args[0], _worker(args[1])


def resolved_config(prep: Experiment) -> dict:
    cfg = prep.cfg
    # how the work was spread (workers, backend, address) does not change a result: left out,
    # so config.json is the same for every worker count and backend
    d = {k: v for k, v in asdict(cfg).items() if k not in ("workers", "backend", "address")}
    pols = [make_policy(p) for p in cfg.policies]
    d["policies"] = [p.spec() for p in pols]
    d.update(
        trace_label=prep.trace.label,
        trace_synthetic=prep.trace.is_synthetic,
        trace_path=str(prep.trace.path),
        trace_manifest_created=prep.trace.manifest.get("created_utc"),
        arms=[a.name for a in prep.arms],
        L=int(max(prep.env.table.L, 1)),
        rewards={p.spec(): _reward_info(prep, p) for p in pols if p.rewards},
        policy_parameters={p.spec(): call_policy(p, "resolved", prep.context(p)) for p in pols},
        policy_notes={p.spec(): list(call_policy(p, "notes")) for p in pols if call_policy(p, "notes")},
        feedback_cost={p.spec(): ("charged" if prep.charges_feedback(p) else "free") for p in pols
                       if p.feedback == "full"},
        cost_model=None if prep.costs is None else dict(prep.costs.describe(), context=_context_info(prep)),
        env=prep.env.describe(),
        seed_entropy=int(np.random.SeedSequence(cfg.seed).entropy),
        toolkit_version=toolkit_version(),
    )
    return d


def _reward_info(prep: Experiment, policy: Policy) -> dict:
    ctx = prep.context(policy)
    lo, hi = ctx.arm_range()
    return {"kind": ctx.reward_kind, "range": [ctx.reward_lo, ctx.reward_hi],
            "arm_range": {a: [float(x), float(y)] for a, x, y in zip(ctx.arm_names, lo, hi, strict=True)}}


def _context_info(prep: Experiment) -> dict:
    c = prep.env.context_lens
    return {"rule": "prompt_len + output_len / 2 per prompt", "min": float(c.min()), "max": float(c.max())}


def fixed_frame(prep: Experiment) -> pd.DataFrame:
    """Every fixed arm on every prompt: ``E[ST]`` (``rounds``) and, with costs, ``time_s``; the
    comparators of regret, stored so tables can show every fixed arm without simulating it.
    Beside them, repeated on each arm's row, the prompt's per-round switcher
    (``simulator.headroom``: ``switcher_rounds`` and, with costs, ``switcher_time_s``,
    ``switcher_rounds_time_s``, ``switcher_time_rounds``; NaN where it is not defined)."""
    env = prep.env
    P, A = prep.fixed_st.shape
    d = {"setting": prep.cfg.setting, "prompt_id": np.repeat(np.asarray(env.prompt_ids, dtype=object), A),
         "category": np.repeat(np.asarray(env.categories, dtype=object), A),
         "arm": np.tile(np.array([a.name for a in prep.arms], dtype=object), P),
         "tokens": np.repeat(env.lengths, A), "rounds": prep.fixed_st.ravel()}
    if prep.cost_s is not None:
        d["time_s"] = prep.fixed_time_s.ravel()
        d["plain_time_s"] = np.repeat(env.lengths * prep.plain_s, A)
        d["specbench_tokens"] = np.repeat(specbench_tokens(prep), A)
    # headroom: the clairvoyant per-round switcher per prompt (NaN outside the greedy replay)
    for col, v in switcher_columns(env, prep.cost_s).items():
        d[col] = np.repeat(v, A)
    return pd.DataFrame(d)


def specbench_tokens(prep: Experiment) -> np.ndarray:
    """Per env prompt, the vanilla answer's tokens as Spec-Bench's ``evaluation/speed.py``
    counts them: ``len(tokenizer(answer).input_ids) - 1`` (the trace's ``answer_tokens`` - 1;
    the -1 drops the BOS a Llama tokenizer adds).  The generated length where the trace has no
    ``answer_tokens`` (synthetic traces, older collections)."""
    n = np.asarray(prep.env.lengths, np.int64)
    tr = prep.trace
    if tr is None or "answer_tokens" not in tr.prompts.columns:
        return n
    by_id = dict(zip(tr.prompts["prompt_id"], tr.prompts["answer_tokens"], strict=True))
    return np.array([int(by_id[p]) - 1 if p in by_id else n[i] for i, p in enumerate(prep.env.prompt_ids)], np.int64)


def _strings(names, idx: np.ndarray) -> pa.Array:
    """``names[idx]`` as a large-string column, gathered by arrow (10x faster than objects)."""
    return pa.array([str(n) for n in names], pa.large_string()).take(pa.array(idx))


def results_table(prep: Experiment, spec: str, res: dict, prompts: np.ndarray | None = None,
                  runs: np.ndarray | None = None) -> pa.Table:
    """One row per (prompt, run) of env prompts ``prompts`` x ``runs`` (default all) for policy
    ``spec``, built column by column from the result arrays (no per-row objects).  Each regret
    column has its own comparator, the best fixed arm per prompt in that objective:
    ``regret_rounds`` (BanditSpec Eq. 1/12) and ``regret_s`` (time); ``config.json``'s
    ``objective`` says which one the run optimises."""
    env, cfg = prep.env, prep.cfg
    prompts = np.arange(env.n_prompts) if prompts is None else np.asarray(prompts)
    runs = np.arange(cfg.runs) if runs is None else np.asarray(runs)
    P, R = len(prompts), len(runs)
    n = P * R
    best = {k: v[prompts] for k, v in prep.hindsight_best().items()}
    best_st = prep.fixed_st[prompts, best["rounds"]]
    arm_names = [a.name for a in prep.arms]
    pol = make_policy(spec)
    st = np.asarray(res["stopping_time"], np.int64)
    tokens = np.repeat(env.lengths[prompts][:, None], R, axis=1).astype(np.int64)
    row_prompt = np.repeat(prompts, R)
    const = np.zeros(n, np.int32)
    d = {
        "setting": _strings([cfg.setting], const),
        "objective": _strings([cfg.objective], const),
        "policy": _strings([pol.spec()], const),
        "reward": _strings([cfg.policy_reward(pol) if pol.rewards else ""], const),
        "prompt_id": _strings(env.prompt_ids, row_prompt),
        "category": _strings(env.categories, row_prompt),
        "run": np.tile(runs, P).astype(np.int64),
        "stopping_time": st.ravel(),
        "tokens": tokens.ravel(),
        "regret_rounds": (st - best_st[:, None]).ravel().astype(np.float64),
        "best_arm_rounds": _strings(arm_names, np.repeat(best["rounds"], R)),
        "best_rounds": np.repeat(best_st, R).astype(np.float64),
    }
    if prep.cost_s is not None:
        t = res["time_s"]
        # plain decoding costs one verification of one token per token, arm set or not
        plain_time = (env.lengths * prep.plain_s)[prompts]
        best_t = prep.fixed_time_s[prompts, best["time"]]
        d["time_s"] = t.ravel()
        d["feedback_s"] = res["feedback_s"].ravel()
        d["plain_time_s"] = np.repeat(plain_time, R)
        d["speedup"] = (plain_time[:, None] / t).ravel()
        d["regret_s"] = (t - best_t[:, None]).ravel()
        d["best_arm_time"] = _strings(arm_names, np.repeat(best["time"], R))
        d["best_time_s"] = np.repeat(best_t, R)
    flat = np.ascontiguousarray(res["pulls"], np.int64).reshape(-1)
    K = flat.size // n if n else 0
    offsets = pa.array(np.arange(0, n * K + 1, max(K, 1), dtype=np.int32)[: n + 1])
    d["pulls"] = pa.ListArray.from_arrays(offsets, pa.array(flat))
    return pa.table({k: (v if isinstance(v, pa.Array) else pa.array(np.asarray(v, np.float64)
                                                                  if v.dtype.kind == "f" else v))
                     for k, v in d.items()})


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))
