"""Vectorised policies agree with their line-by-line reference twins on the same streams."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import rng as crng
from simulator.policies import PolicyContext, make_policy
from simulator.policies.reference import EXP3SpecReference, UCBSpecReference


def _ctx(K, L):
    return PolicyContext(n_arms=K, arm_names=tuple(f"d@{i}" for i in range(K)), L=L,
                         reward_lo=1.0, reward_hi=L + 1.0)


def _drive(policy, twins, K, L, rounds, seed, means):
    """Feed both implementations the same uniforms and the same rewards."""
    R = len(twins)
    policy.reset(R, _ctx(K, L))
    key = crng.stream_key(seed, "test")
    arms_hist = []
    for t in range(rounds):
        u = crng.uniform(key, np.arange(R)[:, None], t, np.arange(max(policy.n_random, 1)))
        arms = policy.select(u)
        ref = np.array([tw.select(float(u[r, 0])) for r, tw in enumerate(twins)])
        np.testing.assert_array_equal(arms, ref, err_msg=f"round {t}")
        if hasattr(policy, "p_"):
            np.testing.assert_allclose(policy.p_, np.array([tw.p for tw in twins]), rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(policy.p_.sum(axis=1), 1.0)
        # rewards from a truncated-geometric-like draw, integral in [1, L+1]
        v = crng.uniform(key, np.arange(R), t, 99)
        y = np.clip(np.floor(means[arms] + 1.5 * (v - 0.5) * L), 1, L + 1)
        policy.update(arms, y, np.ones(R, dtype=bool))
        for r, tw in enumerate(twins):
            tw.update(int(arms[r]), float(y[r]))
        arms_hist.append(arms)
    return np.array(arms_hist)


@pytest.mark.parametrize("K,L,delta", [(3, 2, 0.5), (8, 4, 0.5), (16, 8, 0.1)])
def test_ucbspec_matches_reference(K, L, delta):
    means = np.linspace(1.5, L, K)[np.random.default_rng(K).permutation(K)]
    twins = [UCBSpecReference(K, L, delta) for _ in range(5)]
    pol = make_policy(f"ucbspec:delta={delta}")
    hist = _drive(pol, twins, K, L, rounds=300, seed=K, means=means)
    assert hist[:K, 0].tolist() == list(range(K))  # round robin first
    ref_index = np.array([[tw.ucb(i) for i in range(K)] for tw in twins])
    np.testing.assert_allclose(pol.index(), ref_index, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("K,L", [(2, 1), (5, 4), (17, 8)])
def test_exp3spec_matches_reference(K, L):
    means = np.linspace(1.2, L + 0.5, K)
    twins = [EXP3SpecReference(K, L) for _ in range(6)]
    pol = make_policy("exp3spec")
    hist = _drive(pol, twins, K, L, rounds=400, seed=100 + K, means=means)
    # the learner moves towards the best arm: late rounds pick it more than uniform would
    assert (hist[-100:] == means.argmax()).mean() > 1.0 / K
