"""Textbook bandit baselines agree with their scalar twins on identical streams."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import rng as crng
from simulator.policies import PolicyContext, make_policy
from simulator.policies import reference as R

TWINS = {
    "ucb1": lambda K: R.UCB1Reference(K),
    "klucb": lambda K: R.KLUCBReference(K),
    "thompson": lambda K: R.ThompsonReference(K),
    "epsilon-greedy": lambda K: R.EpsilonGreedyReference(K),
    "exp3-ix": lambda K: R.EXP3IXReference(K),
    "tsallis-inf": lambda K: R.TsallisINFReference(K),
    "sw-ucb": lambda K: R.SlidingWindowUCBReference(K),
}


@pytest.mark.parametrize("name", sorted(TWINS))
@pytest.mark.parametrize("K", [3, 7])
def test_bandit_matches_reference(name, K):
    L = 4
    ctx = PolicyContext(n_arms=K, arm_names=tuple(f"d@{i}" for i in range(K)), L=L,
                        reward_lo=1.0, reward_hi=L + 1.0)
    pol = make_policy(name)
    lanes = 4
    pol.reset(lanes, ctx)
    twins = [TWINS[name](K) for _ in range(lanes)]
    key = crng.stream_key(K, name)
    means = np.linspace(1.5, L + 0.5, K)
    picks = []
    for t in range(250):
        u = crng.uniform(key, np.arange(lanes)[:, None], t, np.arange(max(pol.n_random, 1)))
        arms = pol.select(u)
        ref = [tw.select(list(u[i])) for i, tw in enumerate(twins)]
        assert arms.tolist() == ref, f"{name} round {t}"
        v = crng.uniform(key, np.arange(lanes), t, 77)
        y = np.clip(np.round(means[arms] + (v - 0.5) * 3), 1, L + 1)
        pol.update(arms, y, np.ones(lanes, dtype=bool))
        for i, tw in enumerate(twins):
            tw.update(int(arms[i]), (y[i] - 1) / L)
        picks.append(arms)
    if name != "sw-ucb":  # every learner concentrates on the best arm eventually
        assert (np.array(picks[-80:]) == K - 1).mean() > 1.5 / K
