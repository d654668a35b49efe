"""Every registered policy passes check_policy; no policy peeks at unverified positions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

import traces
from simulator.policies import REGISTRY, Policy, make_policy
from simulator.policies.check import check_policy, default_spec
from simulator.runner import ConfigError, RunConfig, resolve, simulate


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_policy_conforms(name):
    check_policy(make_policy(default_spec(name)))


def test_check_policy_can_fail():
    """Broken on purpose: a policy that shares state across lanes, and one that draws its own
    random numbers, are both caught with a message that says what to fix."""

    @dataclass
    class Leaky(Policy):
        name: ClassVar[str] = "leaky-test"

        def reset(self, n_lanes, ctx):
            super().reset(n_lanes, ctx)
            self.total_ = 0.0

        def select(self, u):
            return np.full(self.n_lanes_, int(self.total_) % self.ctx_.n_arms)

        def update(self, arms, rewards, active):
            self.total_ += float(rewards[active].sum())  # one total for every lane

    @dataclass
    class OwnRandom(Policy):
        name: ClassVar[str] = "own-random-test"

        def select(self, u):
            return np.random.default_rng().integers(0, self.ctx_.n_arms, self.n_lanes_)

    from simulator.policies.base import REGISTRY as R

    try:
        for cls, msg in ((Leaky, "simulated alone"), (OwnRandom, "different arms")):
            R[cls.name] = cls
            with pytest.raises(AssertionError, match=msg):
                check_policy(cls())
    finally:
        R.pop("leaky-test", None)
        R.pop("own-random-test", None)


@pytest.mark.parametrize("name", sorted(n for n in REGISTRY if n != "oracle"))
def test_no_peeking(name, tmp_path):
    """Changing trace entries at positions >= T0 leaves every decision taken before a
    round starts at T0 unchanged (a policy only learns from verified rounds)."""
    base = traces.load("builtin:synthetic-demo")
    T0 = 40
    acc = base.accept.copy()
    rng = np.random.default_rng(0)
    P, D, T = acc.shape
    lens = base.output_lens
    for p in range(P):
        n = int(lens[p])
        cap = np.minimum(base.k_max, n - np.arange(n))
        new = rng.integers(0, 9, size=(D, n)) % (cap + 1)
        acc[p, :, T0:n] = new[:, T0:]
    changed = traces.Trace(base.manifest, base.prompts, acc, costs=base.costs)
    paths = [traces.write(base, tmp_path / "a"), traces.write(changed, tmp_path / "b")]
    spec = {"fixed": "fixed:strong@2"}.get(name, name)
    hist = []
    for path in paths:
        prep = resolve(RunConfig(trace=str(path), setting="replay", policies=(spec,), runs=3, seed=1,
                                 arms="plain@0,strong@1-4,copy@1-4"))
        hist.append(simulate(prep, make_policy(spec), np.arange(P), np.arange(3), record=True)["history"])
    for (pos_a, arm_a, *_), (pos_b, arm_b, *_) in zip(hist[0], hist[1], strict=False):
        before = (pos_a >= 0) & (pos_a < T0)
        assert np.array_equal(pos_a[before], pos_b[before])
        assert np.array_equal(arm_a[before], arm_b[before]), f"{name} used positions >= {T0}"


def test_runner_refuses_feedback_mismatch():
    @dataclass
    class FullOnly(Policy):
        name: ClassVar[str] = "full-only-test"
        feedback: ClassVar[str] = "full"

    prep = resolve(RunConfig(trace="builtin:synthetic-demo", setting="stochastic", runs=1, arms="strong@1-2"))
    with pytest.raises(ConfigError, match="declares feedback 'full', which only the replay setting"):
        simulate(prep, FullOnly(), np.arange(1), np.arange(1))


def test_heuristic_schedule_by_hand(tiny_trace_dir):
    """a@K arms on the hand trace L_a = [2,1,0,3,2,1,0,0,1,0], start K=1: t=0 K=1 accepts 1
    (all) -> 2 tokens, K=3; t=2 L=0 -> 1 token, K=2; t=3 L=3 -> accepts 2 (all) -> 3 tokens,
    K=3 (cap); t=6 L=0 -> 1, K=2; t=7 -> 1, K=1; t=8 L=1 -> accepts 1 (all) -> 2 tokens. 6 rounds."""
    prep = resolve(RunConfig(trace=str(tiny_trace_dir), policies=("heuristic:start=1",), runs=1,
                             arms="a@1-3"))
    res = simulate(prep, make_policy("heuristic:start=1"), np.arange(1), np.arange(1), record=True)
    assert [int(h[0][0]) for h in res["history"]] == [0, 2, 3, 6, 7, 8]
    assert [int(h[1][0]) for h in res["history"]] == [0, 2, 1, 2, 1, 0]
    assert res["stopping_time"][0, 0] == 6


def test_banditspec_code_warmup_and_shared_bonus():
    p = make_policy("banditspec-code:drafter=strong")
    prep = resolve(RunConfig(trace="builtin:synthetic-demo", policies=("uniform",), runs=1, arms="strong@1-4"))
    p.reset(1, prep.context(p))
    seen = []
    for r in [1.0, 2.0, 3.0, 5.0, 1.0, 2.0, 3.0, 9.0]:
        a = p.select(np.zeros((1, 1)))
        seen.append(int(a[0]))
        p.update(a, np.array([r]), np.array([True]))
    assert seen[:7] == [0, 1, 2, 3, 0, 1, 2]  # 7 warm-up rounds: K = 1,2,3,4,1,2,3
    assert seen[7] == 3  # then greedy on the mean: K=4 had reward 5 (mean 5 > 2.5, 2, 1)
