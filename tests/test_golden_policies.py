"""Tiny golden fixtures worked out by hand, one per policy family."""

from __future__ import annotations

import numpy as np

from simulator.policies import PolicyContext, make_policy
from simulator.policies.hedgespec import hedge_probs


def _ctx(names, L, drafters=(), cost=None):
    return PolicyContext(n_arms=len(names), arm_names=tuple(names), L=L, reward_lo=1.0, reward_hi=L + 1.0,
                         drafter_names=tuple(drafters), arm_cost_s=cost)


def test_exp3spec_two_arms_by_hand():
    """K=2, L=1.  Round 1: p = (1/2, 1/2); arm 0 emits y=1, loss z = 1, Zhat = 1/0.5 = 2.
    Round 2: eta = sqrt(ln 2 / (2*2)) = 0.41628; p0 = e^{-0.83255} / (1 + e^{-0.83255}) = 0.30311."""
    p = make_policy("exp3spec")
    p.reset(1, _ctx(["a@1", "b@1"], 1))
    p.select(np.array([[0.1]]))
    np.testing.assert_allclose(p.p_, [[0.5, 0.5]])
    p.update(np.array([0]), np.array([1.0]), np.array([True]))
    np.testing.assert_allclose(p.probabilities(), [[0.30311, 0.69689]], atol=1e-5)


def test_hedge_by_hand():
    """Two experts, losses (1, 0) once: eta_1 = sqrt(8 ln 2) = 2.35482, p0 = 1/(1 + e^{2.35482}) = 0.08668."""
    np.testing.assert_allclose(hedge_probs(np.array([[1.0, 0.0]]), np.array([1])), [[0.08668, 0.91332]],
                               atol=1e-5)


def test_hedgespec_releases_length_loss_only_after_its_window():
    """Drafters a, b at K=2.  A round verifies positions 0 and 1: only position 0's window
    (0, 1) is complete, so exactly one loss is released: a matched both (AcceptLength 3,
    loss 0), b matched none (AcceptLength 1, loss 2/3)."""
    p = make_policy("hedgespec")
    p.reset(1, _ctx(["a@2", "b@2"], 2, drafters=("a", "b")))
    p.select(np.array([[0.0]]))
    gamma = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]])  # (lane, W=3, drafters)
    p.update_full(np.array([0]), np.array([2.0]), np.array([True]), np.array([[0, 1, 2]]),
                  np.array([[True, True, False]]), gamma)
    assert p.t_.tolist() == [1] and p.released_.tolist() == [1]
    np.testing.assert_allclose(p.cum_loss_, [[0.0, 2 / 3]])


def test_smartspec_by_hand():
    """No data: alpha = 1/2, so a@K yields (1 - 2^-(K+1)) / (1/2) tokens: 1.5, 1.75, 1.875.
    With round costs (1, 1.1, 1.3) s the goodputs are 1.5, 1.591, 1.442: it plays a@2."""
    p = make_policy("smartspec")
    p.reset(1, _ctx(["a@1", "a@2", "a@3"], 3, drafters=("a",), cost=np.array([1.0, 1.1, 1.3])))
    assert p.select(np.zeros((1, 1))).tolist() == [1]
