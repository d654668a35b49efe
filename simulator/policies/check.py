"""``check_policy``: conformance checks for a bare policy object (Gymnasium's ``check_env``
idea): no runner, no trace, a synthetic context and synthetic feedback.  Raises
``AssertionError`` whose message says what to fix.  The tests run it over the registry."""

from __future__ import annotations

import copy

import numpy as np

from .base import REWARDS, Policy, PolicyContext, PolicyError, make_policy, select_arms

ARMS = ("plain@0", "a@1", "a@2", "a@3", "a@4", "b@2", "b@4")


def synthetic_context(reward_kind: str = "tokens") -> PolicyContext:
    """Plain decoding and two drafters (``a`` at every K in 1..4, ``b`` at 2 and 4), with costs."""
    k = np.array([0, 1, 2, 3, 4, 2, 4], float)
    cost = 0.010 + 0.002 * k
    if reward_kind == "throughput":
        lo, hi = cost[0] / cost, (k + 1) * cost[0] / cost
    else:
        lo, hi = np.ones(len(k)), k + 1
    return PolicyContext(n_arms=len(ARMS), arm_names=ARMS, L=4, reward_lo=float(lo.min()), reward_hi=float(hi.max()),
                         reward_kind=reward_kind, arm_lo=lo, arm_hi=hi, drafter_names=("a", "b"), arm_cost_s=cost,
                         hindsight_best={"rounds": np.zeros(8, dtype=np.int64), "time": np.zeros(8, dtype=np.int64)})


def default_spec(name: str) -> str:
    """A runnable spec for a registered name (``fixed`` needs an arm of the synthetic context)."""
    return {"fixed": "fixed:a@2"}.get(name, name)


def _feedback(ctx: PolicyContext, arms: np.ndarray, rng: np.random.Generator, rnd: int):
    """Rewards in each arm's range, positions of this round, verified mask and gamma."""
    n = len(arms)
    lo, hi = ctx.arm_range()
    k = np.array([a.k for a in ctx.arms])
    y = 1 + np.minimum(rng.integers(0, 5, size=n), k[arms])  # tokens emitted
    rew = lo[arms] + (hi[arms] - lo[arms]) * (y - 1) / np.maximum(k[arms], 1)
    if ctx.reward_kind == "tokens":
        rew = y.astype(float)
    W = ctx.L + 1
    where = rnd * W + np.arange(W)[None, :] + np.zeros((n, 1), dtype=np.int64)
    verified = np.arange(W)[None, :] < y[:, None]
    gamma = np.where(verified[..., None], rng.random((n, W, len(ctx.drafter_names))), 0.0)
    return rew, where, verified, gamma


def _batch_sizes(seed: int, rounds: int, n_lanes: int) -> np.ndarray:
    """Batch sizes per round and lane for ``reads_batch`` policies: 1..64, from their own generator."""
    return np.random.default_rng([seed, 7]).integers(1, 65, size=(rounds, n_lanes))


def _drive(policy: Policy, ctx: PolicyContext, n_lanes: int, rounds: int, seed: int,
           active_mask: np.ndarray | None = None) -> list[np.ndarray]:
    """Select/update ``rounds`` times on synthetic feedback; return the arms of every round."""
    rng = np.random.default_rng(seed)
    sizes = _batch_sizes(seed, rounds, n_lanes)
    policy.reset(n_lanes, ctx)
    policy.on_prompt_start(np.arange(n_lanes), np.zeros(n_lanes, dtype=np.int64))
    out = []
    for r in range(rounds):
        u = rng.random((n_lanes, max(policy.n_random, 1)))
        u0 = u.copy()
        name = type(policy).__name__
        if policy.reads_batch:
            policy.on_batch(sizes[r].copy())
        try:  # the runner's own check of what select returns
            arms = select_arms(policy, u, n_lanes, ctx.n_arms)
        except PolicyError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
        assert np.array_equal(u, u0), f"{name}.select mutated its uniforms: copy before writing"
        if hasattr(policy, "probabilities"):
            p = policy.probabilities()
            assert np.allclose(p.sum(axis=1), 1.0) and (p >= 0).all(), f"{name}.probabilities must sum to 1"
        act = np.ones(n_lanes, bool) if active_mask is None else active_mask[r]
        rew, where, verified, gamma = _feedback(ctx, arms, rng, r)
        inputs = (arms, rew, act, where, verified, gamma) if policy.feedback == "full" else (arms, rew, act)
        copies = tuple(np.copy(x) for x in inputs)
        (policy.update_full if policy.feedback == "full" else policy.update)(*inputs)
        assert all(np.array_equal(x, y) for x, y in zip(inputs, copies, strict=True)), (
            f"{name}.update mutated its inputs: copy before writing")
        out.append(arms.copy())
    return out


def check_policy(policy: Policy, ctx: PolicyContext | None = None, n_lanes: int = 4, rounds: int = 30,
                 seed: int = 0) -> None:
    """Check a bare policy object (fresh copies of it are driven; ``policy`` is not changed)."""
    name = type(policy).__name__
    assert isinstance(policy, Policy), f"{name}: subclass simulator.policies.Policy"
    assert policy.feedback in ("bandit", "full"), f"{name}.feedback must be 'bandit' or 'full'"
    assert isinstance(policy.n_random, int) and policy.n_random >= 0, f"{name}.n_random must be an int >= 0"
    assert set(policy.rewards) <= set(REWARDS), f"{name}.rewards must be a subset of {REWARDS}"
    assert make_policy(policy.spec()) == policy, (
        f"{name}: make_policy(spec()) must rebuild the same object (register it; fields must parse)")
    for kind in policy.rewards or ("tokens",):
        c = ctx or synthetic_context(kind)
        a = _drive(copy.deepcopy(policy), c, n_lanes, rounds, seed)
        b = _drive(copy.deepcopy(policy), c, n_lanes, rounds, seed)
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)), (
            f"{name}: the same inputs gave different arms: draw randomness only from the uniforms u")
        # lanes are independent: lane i of a batch = lane i simulated alone, inactive rounds included
        mask = np.random.default_rng(seed + 1).random((rounds, n_lanes)) < 0.8
        batch = np.stack(_drive(copy.deepcopy(policy), c, n_lanes, rounds, seed, mask))
        for lane in range(n_lanes):
            alone = _drive_lane(copy.deepcopy(policy), c, n_lanes, lane, rounds, seed, mask)
            assert np.array_equal(batch[:, lane], alone), (
                f"{name}: lane {lane} decides differently when simulated alone: keep state per lane "
                f"and update only lanes where active")


def _drive_lane(policy: Policy, ctx: PolicyContext, n_lanes: int, lane: int, rounds: int, seed: int,
                mask: np.ndarray) -> np.ndarray:
    """Replay the batch's inputs of one lane through a one-lane copy."""
    rng = np.random.default_rng(seed)
    sizes = _batch_sizes(seed, rounds, n_lanes)
    policy.reset(1, ctx)
    policy.on_prompt_start(np.arange(1), np.zeros(1, dtype=np.int64))
    out = []
    for r in range(rounds):
        u = rng.random((n_lanes, max(policy.n_random, 1)))[lane:lane + 1]
        if policy.reads_batch:
            policy.on_batch(sizes[r, lane:lane + 1].copy())
        arms = np.asarray(policy.select(u))
        # the synthetic draws do not depend on the arms, so the same generator state with this
        # lane's arm in every slot reproduces this lane's row of the batch's feedback
        full_arms = np.full(n_lanes, int(arms[0]))
        rew, where, verified, gamma = _feedback(ctx, full_arms, rng, r)
        act = mask[r, lane:lane + 1]
        sl = slice(lane, lane + 1)
        if policy.feedback == "full":
            policy.update_full(arms, rew[sl], act, where[sl], verified[sl], gamma[sl])
        else:
            policy.update(arms, rew[sl], act)
        out.append(int(arms[0]))
    return np.array(out)
