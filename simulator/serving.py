"""Batch serving (BanditSpec Section 6.2 / Figure 3): one draft length per round for a whole batch.

A *sample* is a batch of ``b`` prompts drawn without replacement from the trace.  Every round
the server picks one arm for the whole batch; each unfinished sequence advances by the tokens
that arm emits at its own position (replay), and the round costs the verify + draft time of
that arm at the current number of unfinished sequences (static batching: finished sequences
leave the batch).  Throughput is total tokens / total time.

Round times for a batch of ``n`` come from the trace's cost table: verify times are linear
interpolations in ``n`` between measured batch sizes and linear extrapolation past the largest
(the memory-to-compute transition makes verify time affine in batch tokens there); a
drafter's per-token cost, measured at batch 1, scales with the target's ``k = 0`` verify time
(a smaller model of the same shape family).  ``docs/reproducing.md`` states this model.

The policy's reward is the round's throughput relative to plain decoding of the same ``n``
sequences, ``(sum of emitted tokens / c(k, n)) / (n / c(0, n))``: ordering arms within a round
exactly as raw throughput does, with one range ``[c(0,n)/c(k,n), L + 1]`` whatever the batch
size, so one confidence radius fits every lane.  Prompts are drawn from
``SeedSequence([seed, sample, run])`` and are the same for every arm and policy (common random
numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import traces
from traces import PLAIN, Arm, resolve_arms

from . import rng as crng
from .costs import CostError
from .envs.replay import ReplayEnv
from .policies import PolicyContext, make_policy


class ServeError(ValueError):
    """Invalid batch-serving configuration."""


@dataclass(frozen=True)
class ServeConfig:
    """A batch-serving experiment (written to ``config.json``)."""

    trace: str
    arms: str = "plain@0,*@1-4"
    policies: tuple[str, ...] = ("ucbspec",)
    batch_sizes: tuple[int, ...] = tuple(range(1, 51))
    runs: int = 16
    seed: int = 0
    cost_device: str | None = None

    def __post_init__(self) -> None:
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ServeError(f"batch_sizes: expected integers >= 1, got {self.batch_sizes}")
        if self.runs < 1:
            raise ServeError(f"runs: expected >= 1, got {self.runs}")
        for p in self.policies:
            if make_policy(p).feedback != "bandit":
                raise ServeError(f"policy {p!r}: batch serving gives bandit feedback only")


def batch_round_costs_s(costs: pd.DataFrame | None, arms: list[Arm], device: str | None,
                        n_max: int) -> np.ndarray:
    """Seconds per round, shape (n_max + 1, n_arms): row ``n`` is a batch of ``n`` sequences.

    Uses the smallest context length the table has for the device.
    """
    if costs is None or len(costs) == 0:
        raise CostError("batch serving needs a cost table (costs.parquet); the trace has none")
    devices = sorted(costs["device"].unique())
    dev = device or devices[0]
    match = [d for d in devices if d == dev] or [d for d in devices if d.startswith(dev)]
    if len(match) != 1:
        raise CostError(f"cost device {dev!r} not in the trace (or not a unique prefix); it has {devices}")
    c = costs[costs["device"] == match[0]]
    ver = c[c["kind"] == "verify"]
    ver = ver[ver["context_len"] == ver["context_len"].min()]
    tab = ver.groupby(["batch_size", "k"])["ms"].median().unstack("k")  # (batch sizes, k)
    ks = tab.columns.to_numpy(float)
    bs = tab.index.to_numpy(float)
    n = np.arange(n_max + 1, dtype=float)
    per_b = np.array([[np.interp(a.k, ks, tab.loc[b].to_numpy(float)) for a in arms] for b in tab.index])
    if len(bs) == 1:
        verify = np.broadcast_to(per_b[0], (len(n), len(arms))).copy()
    else:
        verify = np.empty((len(n), len(arms)))
        for j in range(len(arms)):
            slope = (per_b[-1, j] - per_b[-2, j]) / (bs[-1] - bs[-2])
            verify[:, j] = np.where(n <= bs[-1], np.interp(n, bs, per_b[:, j]),
                                    per_b[-1, j] + slope * (n - bs[-1]))
    v0 = np.array([np.interp(0, ks, tab.loc[b].to_numpy(float)) for b in tab.index])
    scale = (np.where(n <= bs[-1], np.interp(n, bs, v0), v0[-1] + (n - bs[-1]) *
                      ((v0[-1] - v0[-2]) / (bs[-1] - bs[-2]) if len(bs) > 1 else 0.0)) / v0[0])
    drf = c[(c["kind"] == "draft") & (c["batch_size"] == c["batch_size"].min())].groupby("drafter")["ms"].median()
    out = verify.copy()
    for j, a in enumerate(arms):
        if a.drafter == PLAIN or a.k == 0:
            continue
        if a.drafter not in drf.index:
            raise CostError(f"cost table for {match[0]!r} has no draft cost for drafter {a.drafter!r}")
        out[:, j] += a.k * float(drf[a.drafter]) * scale
    return np.maximum(out, 1e-9) / 1000.0


def _draw_batches(seed: int, batch_sizes: tuple[int, ...], runs: int, n_prompts: int) -> list[np.ndarray]:
    """Prompt indices per (sample, run), sample-major; the same for every arm and policy."""
    out = []
    for s, b in enumerate(batch_sizes):
        if b > n_prompts:
            raise ServeError(f"batch size {b} exceeds the trace's {n_prompts} prompts")
        for r in range(runs):
            rng = np.random.default_rng(np.random.SeedSequence([seed, s, r]))
            out.append(rng.choice(n_prompts, size=b, replace=False))
    return out


def _simulate(env: ReplayEnv, batches: list[np.ndarray], cost: np.ndarray, spec: str | None,
              fixed_arm: int | None, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokens, seconds and rounds per lane (one lane per batch) for a policy or a fixed arm."""
    n_lanes = len(batches)
    lane = np.concatenate([np.full(len(b), i) for i, b in enumerate(batches)])
    prompt = np.concatenate(batches).astype(np.int64)
    N = env.lengths[prompt]
    pos = np.zeros(len(prompt), dtype=np.int64)
    tokens = np.zeros(n_lanes)
    time_s = np.zeros(n_lanes)
    rounds = np.zeros(n_lanes, dtype=np.int64)
    A = env.n_arms
    policy = None
    if spec is not None:
        policy = make_policy(spec)
        L = int(env.table.L)
        ratio = cost[1:, :1] / cost[1:]  # c(0, n)/c(k, n): the reward range's lower end
        ctx = PolicyContext(n_arms=A, arm_names=tuple(a.name for a in env.table.arms), L=L,
                            reward_lo=float(min(ratio.min(), 1.0)), reward_hi=float(L + 1),
                            drafter_names=env.trace.drafter_names)
        policy.reset(n_lanes, ctx)
        key = crng.stream_key(seed, "serve:" + policy.spec())
        j = np.arange(max(policy.n_random, 1))
    while True:
        alive = pos < N
        n_act = np.bincount(lane[alive], minlength=n_lanes)
        active = n_act > 0
        if not active.any():
            break
        if policy is None:
            arms = np.full(n_lanes, fixed_arm, dtype=np.int64)
        else:
            u = crng.uniform(key, np.arange(n_lanes)[:, None], rounds[:, None], j[None, :])
            arms = np.asarray(policy.select(u), dtype=np.int64)
        idx = np.flatnonzero(alive)  # finished sequences have left the batch
        zero = np.zeros(len(idx), dtype=np.int64)
        e = np.zeros(len(prompt), dtype=np.int64)
        e[idx] = env.emit(prompt[idx], zero, zero, pos[idx], arms[lane[idx]])
        emitted = np.bincount(lane, weights=e, minlength=n_lanes)
        c = cost[n_act, arms]
        if policy is not None:
            reward = np.where(active, (emitted / c) / np.maximum(n_act / cost[n_act, 0], 1e-300), 0.0)
            policy.update(arms, reward, active)
        pos += e
        tokens += emitted
        time_s += np.where(active, c, 0.0)
        rounds += active
    return tokens, time_s, rounds


def run_serving(cfg: ServeConfig, progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Simulate every fixed arm and every policy on the same batches.

    Returns one row per (sample, run, method) with ``tokens``, ``time_s``, ``rounds``,
    ``throughput`` (tokens/s) and ``improvement`` over the ``k = 0`` arm of the same batch
    (plain decoding at the same batch size: the arm ``plain@0`` is always simulated).
    """
    tr = traces.load(cfg.trace)
    arms = resolve_arms(cfg.arms, tr.drafter_names, tr.k_max)
    if not any(a.k == 0 for a in arms):
        arms = [Arm(PLAIN, 0), *arms]
    env = ReplayEnv(tr, arms, seed=cfg.seed)
    if env.sampling:
        raise ServeError(f"{cfg.trace}: batch serving replays greedy traces only")
    cost = batch_round_costs_s(tr.costs, arms, cfg.cost_device, max(cfg.batch_sizes))
    batches = _draw_batches(cfg.seed, cfg.batch_sizes, cfg.runs, tr.n_prompts)
    sample = np.repeat(np.arange(len(cfg.batch_sizes)), cfg.runs)
    bsz = np.repeat(np.asarray(cfg.batch_sizes), cfg.runs)
    run = np.tile(np.arange(cfg.runs), len(cfg.batch_sizes))
    methods = [(a.name, None, i) for i, a in enumerate(arms)] + [(make_policy(p).spec(), p, None)
                                                                 for p in cfg.policies]
    frames = []
    plain_tp = None
    for name, spec, arm in tqdm(methods, desc="serving", unit="method", disable=not progress):
        tok, t, rounds = _simulate(env, batches, cost, spec, arm, cfg.seed)
        tp = tok / t
        if arm is not None and arms[arm].k == 0 and plain_tp is None:
            plain_tp = tp
        frames.append(pd.DataFrame(dict(sample=sample, batch_size=bsz, run=run, method=name,
                                        kind="policy" if spec else "arm", k=-1 if spec else arms[arm].k,
                                        tokens=tok, time_s=t, rounds=rounds, throughput=tp)))
    df = pd.concat(frames, ignore_index=True)
    df["improvement"] = df["throughput"] / np.tile(plain_tp, len(methods))
    conf = dict(trace=cfg.trace, trace_label=tr.label, arms=[a.name for a in arms], policies=list(cfg.policies),
                batch_sizes=list(cfg.batch_sizes), runs=cfg.runs, seed=cfg.seed,
                cost_device=str(cfg.cost_device), setting="batch-serving")
    return df, conf


def hindsight_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per sample: mean improvement (over runs) of every method, plus the best and worst
    speculative arm in hindsight (``k >= 1``); rows sorted by the best arm's improvement."""
    m = df.groupby(["sample", "batch_size", "method"])["improvement"].mean().unstack("method")
    spec_arms = sorted(df.loc[(df["kind"] == "arm") & (df["k"] >= 1), "method"].unique())
    m["best arm"] = m[spec_arms].max(axis=1)
    m["worst arm"] = m[spec_arms].min(axis=1)
    m["best arm name"] = m[spec_arms].idxmax(axis=1)
    return m.sort_values("best arm").reset_index()
