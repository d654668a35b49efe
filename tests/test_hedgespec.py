"""HedgeSpec: learners against reference twins, the AcceptLength identity, delayed release."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.policies.hedgespec import hedge_probs, normalhedge_probs
from simulator.policies.reference import HedgeReference, NormalHedgeReference
from simulator.runner import RunConfig, run_experiment


@pytest.mark.parametrize("N", [2, 5, 11])
def test_hedge_matches_reference(N):
    rng = np.random.default_rng(N)
    twins = [HedgeReference(N) for _ in range(4)]
    L, t = np.zeros((4, N)), np.zeros(4, dtype=np.int64)
    for _ in range(200):
        f = rng.random((4, N)) * np.linspace(0.2, 1, N)
        L += f
        t += 1
        for i, tw in enumerate(twins):
            tw.observe(list(f[i]))
        np.testing.assert_allclose(hedge_probs(L, t), [tw.probabilities() for tw in twins], rtol=1e-9)


@pytest.mark.parametrize("N", [2, 4, 9])
def test_normalhedge_matches_reference(N):
    rng = np.random.default_rng(10 + N)
    twins = [NormalHedgeReference(N) for _ in range(3)]
    R = np.zeros((3, N))
    for _ in range(150):
        p = normalhedge_probs(R)
        ref = np.array([tw.probabilities() for tw in twins])
        np.testing.assert_allclose(p, ref, atol=1e-6)
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
        f = rng.random((3, N)) * np.linspace(1, 0.3, N)
        R += (p * f).sum(axis=1, keepdims=True) - f
        for i, tw in enumerate(twins):
            tw.observe(list(f[i]), list(ref[i]))
    assert (p.argmax(axis=1) == N - 1).all()  # the expert with the smallest losses leads


def test_accept_length_loss_equals_emitted_tokens_in_greedy(tiny_trace_dir):
    """In greedy traces 1 + sum_k prod_{j<k} gamma_{t+j} = min(K, L_d(t)) + 1 (Theorem 3 with
    0/1 gammas), so the length loss of the played drafter is 1 - y/(K+1)."""
    import traces
    from simulator.envs import ReplayEnv
    from traces import Arm

    tr = traces.load(tiny_trace_dir)
    env = ReplayEnv(tr, [Arm("a", 3)])
    pos = np.arange(10)
    g = env.gamma(np.zeros(10, dtype=np.int64), pos[:, None] + np.arange(3)[None, :])[:, :, 0]
    al = 1 + np.cumprod(g, axis=1).sum(axis=1)
    inside = pos + 3 <= 10
    np.testing.assert_array_equal(al[inside], np.minimum(tr.accept[0, 0, :10], 3)[inside] + 1)


def test_hedgespec_beats_bandits_on_demo():
    df, _ = run_experiment(RunConfig(trace="builtin:synthetic-demo", setting="replay",
                                     policies=("hedgespec", "hedgespec:learner=normalhedge", "ucbspec"),
                                     runs=5, arms="strong@4,copy@4,mid@4,weak@4"), progress=False)
    m = df.groupby("policy").regret_rounds.mean()
    assert m["hedgespec"] < m["ucbspec"] and m["hedgespec:learner=normalhedge"] < m["ucbspec"]


def test_structured_learners_by_hand_and_scaling(tmp_path):
    """Pulling a@3 and accepting 1 token (y = 2) reveals: depth 1 passed, depth 2 failed."""
    from simulator.policies import PolicyContext, make_policy

    ctx = PolicyContext(n_arms=4, arm_names=("plain@0", "a@1", "a@2", "a@3"), L=3, reward_lo=1.0,
                        reward_hi=4.0, drafter_names=("a",))
    p = make_policy("structured-ucb")
    p.reset(1, ctx)
    p.update(np.array([3]), np.array([2.0]), np.array([True]))
    assert p.at_risk_[0, 0].tolist() == [1, 1, 0] and p.passed_[0, 0].tolist() == [1, 0, 0]
    # survival S(1) = 1, S(2) = 0: expected tokens 1, 2, 2, 2 for plain, a@1, a@2, a@3
    assert p.expected_tokens(p.survival()).tolist() == [[1.0, 2.0, 2.0, 2.0]]

    from experiments.scaling import arms_scaling

    df = arms_scaling("builtin:synthetic-demo", k=4, runs=3,
                      policies=("ucbspec", "hedgespec", "structured-ucb"))
    last = df[df.drafters == df.drafters.max()].set_index("policy").regret
    assert last["hedgespec"] < last["structured-ucb"] < last["ucbspec"]
