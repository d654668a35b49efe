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
from simulator.runner import ConfigError, RunConfig, resolve, run_experiment, simulate

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
    a_prep, b_prep = resolve(cfg), resolve(replace(cfg, engine="numba"))
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
    got = learner_rounds("ucbspec", K, 1, n, means, L, 0.5)[0]
    tw = UCBSpecReference(K, L)
    pulls = np.zeros(K, dtype=np.int64)
    for _ in range(n):
        a = tw.select()
        tw.update(a, float(round(means[a])))
        pulls[a] += 1
    assert np.array_equal(got, pulls)
    # EXP3Spec and Hedge on the kernel's uniforms
    for pid in ("exp3spec", "hedge"):
        got = learner_rounds(pid, K, 2, n, means, L, 0.5)
        for r in range(2):
            tw = EXP3SpecReference(K, L) if pid == "exp3spec" else HedgeReference(K)
            pulls = np.zeros(K, dtype=np.int64)
            for t in range(n):
                u = crng.uniform(key, r, t, 0)
                if pid == "exp3spec":
                    a = tw.select(float(u))
                    tw.update(a, float(round(means[a])))
                else:
                    a = sample_by_inversion(tw.probabilities(), float(u))
                    tw.observe(list((L + 1.0 - np.round(means)) / L))
                pulls[a] += 1
            assert np.array_equal(got[r], pulls), (pid, r)


LEARNERS = ["ucbspec", "ucbspec:delta=0.1", "exp3spec", "exp3spec:eta_scale=3.0", "ucb1", "klucb", "thompson",
            "epsilon-greedy", "exp3-ix", "tsallis-inf", "sw-ucb", "sw-ucb:window=8", "heuristic", "heuristic_transient",
            "banditspec-code", "fixed:pld@4", "uniform", "oracle", "structured-ucb", "smartspec"]
FULL = ["hedgespec", "hedgespec:learner=normalhedge", "hedgespec:loss=acceptance"]
GREEDY_ARMS = "pld@1-4,plain@0,eagle@1-4,rest@4,suffix@4,medusa@2"
SETTINGS = {  # name: (trace, RunConfig fields, learners)
    "replay": ("builtin:smollm2-greedy", dict(arms=GREEDY_ARMS, cost_device="cuda"), LEARNERS + FULL),
    "replay-carry": ("builtin:smollm2-greedy", dict(arms=GREEDY_ARMS, carry_state=True), LEARNERS + FULL),
    "replay-trees-throughput": ("builtin:smollm2-greedy", dict(
        arms="pld@1-4,plain@0,eagle@1-4,eagle@tree:4x2x2x1,pld@tree:sparse63", reward="throughput",
        cost_device="cuda"), LEARNERS + FULL),
    "sampling": ("builtin:smollm2-sampling", dict(arms="rtn4@1-4,plain@0,pld@4,int8@1-3"), LEARNERS + FULL),
    "sampling-carry": ("builtin:smollm2-sampling", dict(arms="rtn4@1-4,plain@0,pld@4", carry_state=True),
                       LEARNERS + FULL),
    "stochastic": ("builtin:smollm2-greedy", dict(setting="stochastic", arms=GREEDY_ARMS), LEARNERS),
    "stochastic-tgd": ("builtin:smollm2-greedy", dict(setting="stochastic", law="tgd", arms=GREEDY_ARMS), LEARNERS),
    "stochastic-autocorrelated-carry": ("builtin:smollm2-greedy", dict(
        setting="stochastic", law="autocorrelated", carry_state=True, arms=GREEDY_ARMS), LEARNERS),
    "adversarial": ("builtin:smollm2-greedy", dict(setting="adversarial", arms=GREEDY_ARMS), LEARNERS),
    # one stream as long as the whole trace: the numpy side is slow, so the cheap learners only
    "adversarial-category-switch": ("builtin:smollm2-greedy", dict(
        setting="adversarial", stream="category-switch", arms=GREEDY_ARMS), ["ucbspec", "exp3spec", "thompson"]),
}


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_every_learner_kernel_equals_numpy_in_every_setting(setting):
    """Same stopping times, pulls, seconds and feedback seconds, to the bit, for every
    built-in learner on the bundled real traces."""
    trace, fields, learners = SETTINGS[setting]
    fields = {**fields, "arms": fields["arms"].replace("pld@", "rtn4@") if "sampling" in setting else fields["arms"]}
    cfg = RunConfig(trace=trace, runs=2, seed=5, engine="numpy", **fields)
    prep = resolve(cfg)
    prompts = np.arange(min(prep.env.n_prompts, 8))
    for spec in learners:
        spec = spec.replace("pld@", "rtn4@") if "sampling" in setting else spec
        prep.cfg = replace(cfg, engine="numpy")
        a = simulate(prep, make_policy(spec), prompts, np.arange(2))
        prep.cfg = replace(cfg, engine="numba")
        b = simulate(prep, make_policy(spec), prompts, np.arange(2))
        for k in ("stopping_time", "pulls", "time_s", "feedback_s"):
            assert np.array_equal(a[k], b[k]), f"{setting}: {spec}: {k} differs between numpy and numba"


def test_the_equality_check_can_fail():
    """A kernel given another hyperparameter than the numpy policy is caught."""
    cfg = RunConfig(trace="builtin:smollm2-greedy", runs=2, seed=5, arms=GREEDY_ARMS, engine="numba")
    prep = resolve(cfg)
    a = simulate(prep, make_policy("ucbspec:delta=0.5"), np.arange(12), np.arange(2))
    b = simulate(prep, make_policy("ucbspec:delta=0.001"), np.arange(12), np.arange(2))
    assert not np.array_equal(a["pulls"], b["pulls"])


def test_ndtri_is_scipys_bit_for_bit():
    from scipy.special import ndtri as sp_ndtri

    from simulator.kernels.learners import ndtri

    u = np.clip(np.concatenate([np.random.default_rng(0).random(20000), np.geomspace(1e-12, 0.5, 2000),
                                1 - np.geomspace(1e-12, 0.5, 2000)]), 1e-12, 1 - 1e-12)
    assert np.array_equal(np.array([ndtri(float(x)) for x in u]), sp_ndtri(u))


TWIN_OF = {"ucbspec": lambda K, L: UCBSpecReference(K, L), "exp3spec": lambda K, L: EXP3SpecReference(K, L)}


@pytest.mark.parametrize("name", ["ucbspec", "exp3spec", "ucb1", "klucb", "thompson", "epsilon-greedy", "exp3-ix",
                                  "tsallis-inf", "sw-ucb"])
def test_kernel_follows_the_reference_twin_on_a_stochastic_environment(name):
    """The compiled loop against the line-by-line twin driven by hand on the same
    environment draws and policy uniforms: same stopping time and pulls in every lane."""
    from test_bandit_twins import TWINS

    from simulator.envs.stochastic import StochasticEnv, tgd_pmf
    from simulator.runner import simulate_env

    K, L, n, runs = 4, 4, 160, 3
    pmf = tgd_pmf(np.array([0.3, 0.5, 0.7, 0.8]), np.full(K, L), L)
    env = StochasticEnv.from_laws(np.stack([pmf, pmf[::-1]]), np.array([n, n - 37]),
                                  [f"a{i}@{L}" for i in range(K)], seed=4, law="given")
    got = simulate_env(env, name, runs, seed=4)  # the kernel: numba is installed and engine is auto
    key = crng.policy_key(4)
    for p in range(env.n_prompts):
        for r in range(runs):
            tw = TWIN_OF[name](K, L) if name in TWIN_OF else TWINS[name](K)
            n_rand = K if name == "thompson" else 2
            pos, t, pulls = 0, 0, np.zeros(K, dtype=np.int64)
            lane = int(crng.lane_key(p, r))
            while pos < env.lengths[p]:
                u = [float(crng.uniform(key, lane, t, j)) for j in range(n_rand)]
                arm = tw.select() if name == "ucbspec" else tw.select(u[0] if name in TWIN_OF else u)
                y = int(env.emit(np.array([p]), np.array([r]), np.array([t]), np.array([pos]), np.array([arm]))[0])
                tw.update(arm, float(y) if name in TWIN_OF else (y - 1) / L)
                pulls[arm] += 1
                pos, t = pos + y, t + 1
            assert got["stopping_time"][p, r] == t, (name, p, r)
            assert np.array_equal(got["pulls"][p, r], pulls), (name, p, r)


def test_serving_kernel_equals_numpy():
    from simulator.serving import ServeConfig, run_serving

    pols = ("ucbspec", "exp3spec", "thompson", "heuristic:drafter=eagle", "structured-ucb", "tsallis-inf")
    cfg = ServeConfig(trace="builtin:smollm2-greedy", arms="plain@0,eagle@1-4,pld@2", policies=pols,
                      batch_sizes=(1, 4), runs=1, engine="numpy")
    a, _ = run_serving(cfg, progress=False)
    b, _ = run_serving(replace(cfg, engine="numba"), progress=False)
    for col in ("rounds", "tokens", "time_s"):
        assert a[col].tolist() == b[col].tolist(), col


def test_a_subclass_without_its_own_kernel_runs_on_numpy_and_numba_says_so(tmp_path):
    from simulator.kernels.learners import has_kernel
    from simulator.policies import REGISTRY
    from simulator.policies.ucb1 import UCB1

    class Mine(UCB1):  # a user's variant: it must not silently run UCB1's kernel
        name = "mine-test"

        def select(self, u):
            return np.zeros(self.n_lanes_, dtype=np.int64)

    REGISTRY["mine-test"] = Mine
    try:
        assert has_kernel(UCB1) and not has_kernel(Mine)
        cfg = RunConfig(trace="builtin:smollm2-greedy", policies=("mine-test",), runs=1, arms="pld@4,rtn4@4",
                        engine="numba")
        with pytest.raises(ConfigError, match=r"engine 'numba': policy 'mine-test' has no kernel"):
            run_experiment(cfg, progress=False)
        df, _ = run_experiment(replace(cfg, engine="auto"), progress=False)
        assert (df["pulls"].map(lambda p: p[1]) == 0).all()  # its own select ran
    finally:
        del REGISTRY["mine-test"]


def test_policies_listing_says_which_learners_have_no_kernel(capsys):
    from simulator.cli import main

    assert main(["policies"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert rows["ucb1"].endswith("ucb1") and rows["hedgespec"].endswith("hedgespec")
    assert all(not r.endswith("no (numpy)") for r in rows.values())  # every built-in has one


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
