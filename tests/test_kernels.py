"""The compiled replay engine agrees with the numpy policies and the reference twins."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from simulator import kernels
from simulator import rng as crng
from simulator.policies import make_policy
from simulator.policies.reference import EXP3SpecReference, HedgeReference, UCBSpecReference, sample_by_inversion
from simulator.runner import ConfigError, RunConfig, prepare, run_experiment, simulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from learner_kernels import learner_rounds  # noqa: E402  (a benchmark protocol, not library code)

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")  # it is a core dependency


def test_counter_based_uniforms_are_the_same_bits():
    key = crng.stream_key(7, "policy")
    c = np.random.default_rng(0).integers(0, 1 << 40, size=(200, 3))
    want = crng.uniform(key, c[:, 0], c[:, 1], c[:, 2])
    got = np.array([kernels.uniform3(key, *map(int, row)) for row in c])
    assert np.array_equal(want, got)


@pytest.mark.parametrize("policy", ["ucbspec", "exp3spec", "ucbspec:delta=0.1", "exp3spec:eta_scale=3.0"])
@pytest.mark.parametrize("arms,reward", [("pld@4,skip5-24@4,rtn4@4,hf-rtn3@4,early28@4", "tokens"),
                                         ("plain@0,rtn4@1-4,pld@1-8", "throughput")])
def test_kernel_equals_numpy_runner_on_the_real_trace(policy, arms, reward):
    cfg = RunConfig(trace="builtin:smollm2-greedy", policies=(policy,), runs=6, seed=3, arms=arms, reward=reward,
                    cost_device="cuda", engine="numpy")
    a_prep, b_prep = prepare(cfg), prepare(replace(cfg, engine="numba"))
    P = a_prep.env.n_prompts
    a = simulate(a_prep, make_policy(policy), np.arange(P), np.arange(6))
    b = simulate(b_prep, make_policy(policy), np.arange(P), np.arange(6))
    assert np.array_equal(a["stopping_time"], b["stopping_time"])
    assert np.array_equal(a["pulls"], b["pulls"])
    assert np.allclose(a["time_s"], b["time_s"], rtol=1e-12)


def test_auto_engine_results_do_not_depend_on_workers():
    cfg = RunConfig(trace="builtin:smollm2-greedy", policies=("ucbspec", "exp3spec"), runs=4, seed=1,
                    arms="pld@4,rtn4@4,early28@4")
    one, _ = run_experiment(cfg, progress=False)
    two, _ = run_experiment(replace(cfg, workers=2), progress=False)
    assert one["stopping_time"].tolist() == two["stopping_time"].tolist()


@pytest.mark.parametrize("K", [3, 16])
def test_learner_kernels_follow_the_reference_twins(K):
    L, n = 8, 400
    means = np.linspace(1.5, L, K)
    key = np.uint64(12345)
    # UCBSpec: deterministic
    got = learner_rounds(kernels.UCBSPEC, K, 1, n, means, L, 0.5)[0]
    tw = UCBSpecReference(K, L)
    pulls = np.zeros(K, dtype=np.int64)
    for _ in range(n):
        a = tw.select()
        tw.update(a, float(round(means[a])))
        pulls[a] += 1
    assert np.array_equal(got, pulls)
    # EXP3Spec and Hedge on the kernel's uniforms
    for pid in (kernels.EXP3SPEC, kernels.HEDGE):
        got = learner_rounds(pid, K, 2, n, means, L, 0.5)
        for r in range(2):
            tw = EXP3SpecReference(K, L) if pid == kernels.EXP3SPEC else HedgeReference(K)
            pulls = np.zeros(K, dtype=np.int64)
            for t in range(n):
                u = crng.uniform(key, r, t, 0)
                if pid == kernels.EXP3SPEC:
                    a = tw.select(float(u))
                    tw.update(a, float(round(means[a])))
                else:
                    a = sample_by_inversion(tw.probabilities(), float(u))
                    tw.observe(list((L + 1.0 - np.round(means)) / L))
                pulls[a] += 1
            assert np.array_equal(got[r], pulls), (pid, r)


def test_engine_numba_refuses_what_it_does_not_compile():
    cfg = RunConfig(trace="builtin:smollm2-greedy", policies=("hedgespec",), runs=1, arms="pld@4,rtn4@4",
                    engine="numba")
    with pytest.raises(ConfigError, match=r"engine 'numba' runs \['exp3spec', 'ucbspec'\]"):
        run_experiment(cfg, progress=False)


@pytest.mark.parametrize("policy", ["ucbspec", "exp3spec"])
def test_log_grid_curve_equals_separate_runs_of_each_length(policy):
    from simulator.curves import log_grid, regret_curve
    from simulator.envs.stochastic import StochasticEnv, tgd_pmf
    from simulator.runner import simulate_env

    L = 4
    pmf = tgd_pmf(np.array([0.5, 0.7, 0.8]), np.full(3, L), L)
    grid = log_grid(30, 3000, 2)
    runs = 5
    cur = regret_curve(policy, pmf, grid, runs, seed=2)
    assert cur["stopping_time"].shape == (runs, len(grid)) and cur["pulls"].shape == (runs, len(grid), 3)
    for c, n in enumerate(grid):
        env = StochasticEnv.from_laws(pmf[None], np.array([n]), [f"a{i}@{L}" for i in range(3)], seed=2, law="given")
        res = simulate_env(env, policy, runs, seed=2)
        assert np.array_equal(res["stopping_time"][0], cur["stopping_time"][:, c]), n
        assert np.array_equal(res["pulls"][0], cur["pulls"][:, c]), n
        assert np.allclose(env.expected_fixed_st()[0], cur["fixed_st"][c])
