"""Batch serving (BanditSpec Section 6.2 / Figure 3): one draft length per round for a whole batch.

A *sample* is a batch of ``b`` prompts drawn without replacement from the trace.  Every round
the server picks one arm for the whole batch; each unfinished sequence advances by the tokens
that arm emits at its own position (replay), and the round costs the verify + draft time of
that arm at the current number of unfinished sequences (static batching: finished sequences
leave the batch).  Throughput is total tokens / total time.

Round times for a batch of ``n`` come from the one cost model (``simulator.costs``) at the
batch's context, the mean over its prompts of ``prompt_len + output_len / 2``: the same rule
``simulator run`` uses at ``n = 1``.

The policy's reward (``throughput``, the default) is the round's throughput relative to plain
decoding of the same ``n`` sequences, ``(sum of emitted tokens / c(k, n)) / (n / c(0, n))``:
ordering arms within a round exactly as raw throughput does, with per-arm ranges
``[c(0,n)/c(k,n), (K+1) c(0,n)/c(k,n)]`` over every batch size (``serving_context``); with
``reward=tokens``, the tokens per sequence of the round.  Prompts are drawn from
``SeedSequence([seed, sample, run])`` and are the same for every arm and policy (common random
numbers).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import traces
from traces import PLAIN, Arm, resolve_arms

from . import rng as crng
from .costs import CostModel, default_device, prompt_contexts
from .envs.replay import ReplayEnv
from .lockstep import State, lockstep
from .policies import PolicyContext, make_policy
from .policies.base import call_policy


class ServeError(ValueError):
    """Invalid batch-serving configuration."""


@dataclass(frozen=True)
class ServeConfig:
    """A batch-serving experiment (written to ``config.json``)."""

    trace: str
    arms: str = "plain@0,*@1-4"
    policies: tuple[str, ...] = ("ucbspec",)
    batch_sizes: tuple[int, ...] = ()  # default: 1..min(50, prompts), said in config.json
    runs: int = 16
    seed: int = 0
    cost_device: str | None = None
    cost_fit: str = "raw"  # simulator.costs.COST_FITS, as in ``simulator run``
    engine: str = "auto"  # auto | numpy | numba, as in ``simulator run``
    max_memory_gb: float | None = None  # refuse before allocating above this (default: traces.guards.memory_limit)

    def __post_init__(self) -> None:
        if self.engine not in ("auto", "numpy", "numba"):
            raise ServeError(f"engine: expected one of ['auto', 'numpy', 'numba'], got {self.engine!r}")
        if self.batch_sizes and min(self.batch_sizes) < 1:
            raise ServeError(f"batch_sizes: expected integers >= 1, got {self.batch_sizes}")
        if self.runs < 1:
            raise ServeError(f"runs: expected >= 1, got {self.runs}")
        for p in self.policies:
            if make_policy(p).feedback != "bandit":
                raise ServeError(f"policy {p!r}: batch serving gives bandit feedback only")


def batch_round_costs_s(model: CostModel, arms: list[Arm], n_max: int, context: np.ndarray) -> np.ndarray:
    """Seconds per round, shape (len(context), n_max + 1, n_arms): entry ``[l, n]`` is a batch
    of ``n`` sequences at lane ``l``'s context (row 0 unused), from the one cost model."""
    n = np.maximum(np.arange(n_max + 1), 1)
    return model.round_ms(arms, n[None, :], np.asarray(context, float)[:, None]) / 1000.0


def estimate_bytes(batch_sizes: tuple[int, ...], runs: int, n_arms: int, n_policies: int) -> list[tuple[str, float]]:
    """What ``run_serving`` allocates, by part, before it allocates it: the round-cost table
    (lanes x (largest batch + 1) x arms, float64, with its temporaries and the reward ranges),
    the prompt draws and per-sequence state, and the output rows (one per lane and method)."""
    lanes, seqs = float(len(batch_sizes)) * runs, float(sum(batch_sizes)) * runs
    cells = lanes * (max(batch_sizes) + 1)
    return [(f"round costs {len(batch_sizes) * runs} lanes x {max(batch_sizes) + 1} batch sizes x {n_arms} arms",
             cells * (3 * n_arms + 10) * 8),
            (f"{int(seqs)} batch members", seqs * 80 + lanes * 200),
            ("per-lane policy state", lanes * n_arms * 40),
            (f"{int(lanes) * (n_arms + n_policies)} output rows", lanes * (n_arms + n_policies) * 300)]


def check_memory(cfg: ServeConfig, sizes: tuple[int, ...], n_arms: int) -> None:
    """Refuse, in one line, a serving run whose arrays would not fit (before any is made)."""
    from traces.guards import memory_limit, memory_problem

    lim = memory_limit() if cfg.max_memory_gb is None else (int(cfg.max_memory_gb * 1e9), "--max-memory")
    shown = ",".join(map(str, sizes)) if len(sizes) <= 8 else f"{min(sizes)}..{max(sizes)} ({len(sizes)} sizes)"
    msg = memory_problem(f"--runs {cfg.runs} x --batch-sizes {shown}", estimate_bytes(sizes, cfg.runs, n_arms,
                                                                                       len(cfg.policies)),
                         doing="batch serving", limit=lim,
                         hint="use fewer --runs, batch sizes or arms, or raise --max-memory")
    if msg:
        raise ServeError(msg)


def draw_batches(seed: int, batch_sizes: tuple[int, ...], runs: int, n_prompts: int) -> list[np.ndarray]:
    """Prompt indices per (sample, run), sample-major; the same for every arm and policy."""
    out = []
    for s, b in enumerate(batch_sizes):
        if b > n_prompts:
            raise ServeError(f"batch size {b} exceeds the trace's {n_prompts} prompts")
        for r in range(runs):
            rng = np.random.default_rng(np.random.SeedSequence([seed, s, r]))
            out.append(rng.choice(n_prompts, size=b, replace=False))
    return out


def simulate_batches(env: ReplayEnv, batches: list[np.ndarray], cost: np.ndarray, spec: str | None,
              fixed_arm: int | None, seed: int, engine: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokens, seconds and rounds per lane (one lane per batch) for a policy or a fixed arm;
    ``cost`` (lanes, n_max + 1, arms) in seconds.  The loop is ``simulator.lockstep``'s, or
    its compiled twin ``simulator.kernels.loops.serve_lanes`` (same results)."""
    from .runner import engine_refusal  # the one engine decision, as ``simulator run``'s

    why = engine_refusal(engine, None if spec is None else make_policy(spec), env)
    if engine == "numba" and why:
        raise ServeError(f"engine 'numba': {why}; use --engine auto or numpy")
    compiled = why is None
    if compiled:
        return _simulate_kernel(env, batches, cost, spec, fixed_arm, seed)
    n_lanes = len(batches)
    seq_lane = np.concatenate([np.full(len(b), i) for i, b in enumerate(batches)]).astype(np.int64)
    prompt = np.concatenate(batches).astype(np.int64)
    state = State(seq_lane, prompt, np.zeros(len(prompt), dtype=np.int64), n_lanes, env.n_arms)
    lanes = np.arange(n_lanes)
    no_feedback = np.zeros(n_lanes)

    def round_cost(st: State, arms: np.ndarray, n_act: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return cost[lanes, n_act, arms], no_feedback  # finished sequences have left the batch

    policy, reward = None, None
    if spec is not None:
        policy = make_policy(spec)
        policy.reset(n_lanes, serving_context(env, cost, policy))
        throughput = policy.reward_for("time") == "throughput"

        def reward(st: State, arms: np.ndarray, emitted: np.ndarray, n_act: np.ndarray, c: np.ndarray) -> np.ndarray:
            per_seq = emitted / np.maximum(n_act, 1)  # tokens per sequence this round
            r = per_seq * cost[lanes, n_act, 0] / c if throughput else per_seq
            return np.where(n_act > 0, r, 0.0)

    key = crng.serve_key(seed, policy.spec()) if policy is not None else None
    lockstep(env, state, round_cost, policy=policy, fixed_arm=fixed_arm, reward=reward, key=key, lane_key=lanes)
    return state.tokens, state.time_s, state.grnd


def _simulate_kernel(env: ReplayEnv, batches: list[np.ndarray], cost: np.ndarray, spec: str | None,
                     fixed_arm: int | None, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from .kernels.learners import LearnerArgs, learner_args
    from .kernels.loops import serve_lanes
    from .policies.fixed import Fixed

    if spec is None:  # the learner ``fixed`` on arm ``fixed_arm``
        la = LearnerArgs(Fixed.kernel, np.zeros(2), np.array([int(fixed_arm)], np.int64), np.zeros(1), 1, 1)
        key, throughput = 0, False
    else:
        policy = make_policy(spec)
        la = learner_args(policy, serving_context(env, cost, policy))
        key, throughput = crng.serve_key(seed, policy.spec()), policy.reward_for("time") == "throughput"
    start = np.concatenate([[0], np.cumsum([len(b) for b in batches])]).astype(np.int64)
    return serve_lanes(*la.args(), *env.kernel_arrays().args(), np.ascontiguousarray(cost, np.float64),
                       np.concatenate(batches).astype(np.int64), start, throughput, np.uint64(key))


def serving_context(env: ReplayEnv, cost: np.ndarray, policy) -> PolicyContext:
    """The arms and reward ranges of batch serving (arm 0 is plain decoding): per arm,
    tokens per sequence in ``[1, K+1]``, or throughput relative to plain decoding of the same
    batch, ``[c0/c_k, (K+1) c0/c_k]`` over every batch size and lane."""
    k = env.table.k.astype(float)
    if policy.reward_for("time") == "throughput":
        rel = (cost[:, 1:, :1] / cost[:, 1:, :]).reshape(-1, len(k))
        lo, hi = rel.min(axis=0), ((k + 1)[None, :] * rel).max(axis=0)
        kind = "throughput"
    else:
        lo, hi, kind = np.ones(len(k)), k + 1, "tokens"
    return PolicyContext(n_arms=env.n_arms, arm_names=tuple(a.name for a in env.table.arms),
                         L=int(env.table.L), reward_lo=float(lo.min()),
                         reward_hi=float(hi.max()),
                         reward_kind=kind, objective="time", arm_lo=lo, arm_hi=hi,
                         drafter_names=env.trace.drafter_names,
                         arm_cost_s=cost[:, 1, :].mean(axis=0))


def run_serving(cfg: ServeConfig, progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Simulate every fixed arm and every policy on the same batches.

    Returns one row per (sample, run, method) with ``tokens``, ``time_s``, ``rounds``,
    ``throughput`` (tokens/s) and ``improvement`` over the ``k = 0`` arm of the same batch
    (plain decoding at the same batch size: the arm ``plain@0`` is always simulated).
    """
    tr = traces.load(cfg.trace)
    if tr.partial:
        raise ServeError(f"{cfg.trace}: an engine log (partial information) cannot be replayed in batches: a batch "
                         "member's trajectory would leave the logged steps; use `simulator run --setting stochastic`")
    # plain decoding is arm 0: every reward and improvement is relative to it
    arms = [Arm(PLAIN, 0), *(a for a in resolve_arms(cfg.arms, tr.drafter_names, tr.k_limits) if a.k != 0)]
    env = ReplayEnv(tr, arms, seed=cfg.seed)
    if env.sampling:
        raise ServeError(f"{cfg.trace}: batch serving replays greedy traces only")
    model = CostModel.for_trace(tr, cfg.cost_device, cfg.cost_fit)
    model.why = "as given" if cfg.cost_device else default_device(tr.costs)[1]
    sizes, sizes_why = cfg.batch_sizes, "as given"
    if not sizes:
        top = min(50, tr.n_prompts)
        sizes = tuple(range(1, top + 1))
        sizes_why = f"1-{top}" + (f" (1-50 clamped: the trace has {tr.n_prompts} prompts)" if top < 50 else "")
    if max(sizes) <= tr.n_prompts:  # else draw_batches says which size is too large
        check_memory(cfg, sizes, len(arms))
    batches = draw_batches(cfg.seed, sizes, cfg.runs, tr.n_prompts)
    ctx = prompt_contexts(tr.prompts["prompt_len"].to_numpy(float), tr.output_lens)
    cost = batch_round_costs_s(model, arms, max(sizes), np.array([ctx[b].mean() for b in batches]))
    for p in cfg.policies:  # a policy that cannot use these arms says so before any simulation
        pol = make_policy(p)
        call_policy(pol, "reset", 1, serving_context(env, cost[:1], pol))
    sample = np.repeat(np.arange(len(sizes)), cfg.runs)
    bsz = np.repeat(np.asarray(sizes), cfg.runs)
    run = np.tile(np.arange(cfg.runs), len(sizes))
    methods = [(a.name, None, i) for i, a in enumerate(arms)] + [(make_policy(p).spec(), p, None)
                                                                 for p in cfg.policies]
    frames = []
    plain_tp = None
    t0 = time.perf_counter()
    for name, spec, arm in tqdm(methods, desc="serving", unit="method", disable=not progress, leave=False):
        tok, t, rounds = simulate_batches(env, batches, cost, spec, arm, cfg.seed, cfg.engine)
        tp = tok / t
        if arm is not None and arms[arm].k == 0 and plain_tp is None:
            plain_tp = tp
        frames.append(pd.DataFrame(dict(sample=sample, batch_size=bsz, run=run, method=name,
                                        kind="policy" if spec else "arm", k=-1 if spec else arms[arm].k,
                                        tokens=tok, time_s=t, rounds=rounds, throughput=tp)))
    if progress:  # the bar is cleared when done: one line stays
        print(f"serving: {len(methods)} methods x {len(sizes)} batch sizes x {cfg.runs} runs in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    df = pd.concat(frames, ignore_index=True)
    df["improvement"] = df["throughput"] / np.tile(plain_tp, len(methods))
    conf = dict(trace=cfg.trace, trace_label=tr.label, arms=[a.name for a in arms], policies=list(cfg.policies),
                batch_sizes=list(sizes), batch_sizes_chosen=sizes_why, runs=cfg.runs, seed=cfg.seed, objective="time",
                rewards={make_policy(p).spec(): make_policy(p).reward_for("time") for p in cfg.policies},
                policy_parameters={pol.spec(): call_policy(pol, "resolved", serving_context(env, cost, pol))
                                   for pol in map(make_policy, cfg.policies)},
                policy_notes={pol.spec(): list(call_policy(pol, "notes")) for pol in map(make_policy, cfg.policies)
                              if call_policy(pol, "notes")},
                cost_device=model.device, cost_fit=cfg.cost_fit, cost_model=dict(model.describe(), context=(
                    "per batch: mean over its prompts of prompt_len + output_len / 2")),
                measured_batch_sizes=model.batch_sizes.astype(int).tolist(), setting="batch-serving")
    return df, conf


def hindsight_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per sample: mean improvement (over runs) of every method, plus the best and worst
    speculative arm in hindsight (``k >= 1``); rows sorted by the best arm's improvement."""
    m = df.groupby(["sample", "batch_size", "method"])["improvement"].mean().unstack("method")
    spec_arms = sorted(df.loc[(df["kind"] == "arm") & (df["k"] >= 1), "method"].unique())
    m["best arm"] = m[spec_arms].max(axis=1)
    m["worst arm"] = m[spec_arms].min(axis=1)
    m["best arm name"] = m[spec_arms].idxmax(axis=1)
    second = m[spec_arms].apply(lambda row: row.nlargest(2), axis=1)
    m["runner-up arm"] = second.min(axis=1) if len(spec_arms) > 1 else np.nan
    m["runner-up name"] = second.idxmin(axis=1) if len(spec_arms) > 1 else ""
    return m.sort_values("best arm").reset_index()


def format_serving(df: pd.DataFrame, width: int = 100, rel: float = 0.0) -> str:
    """``serve``'s terminal table: one row per batch size, the mean over runs of every method's
    throughput relative to plain decoding at that batch size (x), and the best and worst
    speculative arm in hindsight; arm columns are left out (and named) when too wide.  Where the
    best and the runner-up arm differ by less than the cost model's relative uncertainty ``rel``
    (``simulator.costs.within_timing_noise``), the table names both ("a ~ b"), not a winner."""
    from traces.textout import Column, num, render, wrap

    from .costs import within_timing_noise

    m = hindsight_summary(df).sort_values("batch_size")
    runs = int(df["run"].nunique())
    pols = [p for p in m.columns if p in set(df.loc[df["kind"] == "policy", "method"])]
    arms = [a for a in m.columns if a in set(df.loc[df["kind"] == "arm", "method"]) and a not in pols]
    cols = [Column("batch", "size", [str(int(b)) for b in m["batch_size"]])]
    cols += [Column(p, "x", [num(v, ".3f") for v in m[p]]) for p in pols]
    tie = [within_timing_noise(b, r, rel) for b, r in zip(m["best arm"], m["runner-up arm"], strict=True)]
    which = [f"{a} ~ {b}" if t else str(a) for a, b, t in zip(m["best arm name"], m["runner-up name"], tie,
                                                                strict=True)]
    cols += [Column("best arm", "x", [num(v, ".3f") for v in m["best arm"]]),
             Column("(which)", "", which, left=True, drop=1),
             Column("worst arm", "x", [num(v, ".3f") for v in m["worst arm"]])]
    cols += [Column(a, "x", [num(v, ".3f") for v in m[a]], drop=2) for a in arms if a != "plain@0"]
    table, dropped = render(cols, width)
    lines = wrap(f"throughput relative to plain decoding at the same batch size (x), mean over {runs} run(s) per "
                 f"batch size; best / worst arm: the best and worst fixed speculative arm in hindsight"
                 + (f"; a ~ b: the best two arms differ by less than the cost table's timing noise "
                    f"({100 * rel:.1f} %), neither is named the winner" if any(tie) else ""), width)
    lines += table
    if dropped:
        lines += wrap(f"left out to fit {width} columns: {', '.join(dropped)} (--wide shows them; every value is "
                      "in serving.csv)", width)
    return "\n".join(lines)
