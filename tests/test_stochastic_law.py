"""The stochastic setting's law comes from each arm's own rounds (issue 15.1).

``--law empirical`` draws arm ``(d, K)``'s tokens per round from the rounds of its own
fixed-arm replay path, so a fixed arm's expected MAT in the stochastic setting is its replay
MAT up to the last round's truncation; ``--law positions`` keeps the earlier law over all
positions (length-biased: suffix@4's MAT 1.723 in replay becomes 2.053), bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import traces
from simulator.cli import main as sim_main
from simulator.envs import make_env
from simulator.envs.replay import expected_rounds_bernoulli
from simulator.envs.stochastic import StochasticEnv, occupation_counts, round_counts
from simulator.policies import make_policy
from simulator.runner import RunConfig, resolve, simulate, simulate_env
from simulator.stats import runs_half_width
from traces import Arm, arm_from_name

GREEDY = "builtin:smollm2-greedy"
SAMPLING = "builtin:smollm2-sampling"


@pytest.fixture(scope="module")
def greedy():
    return traces.load(GREEDY)


def _every_arm(tr: traces.Trace) -> list[Arm]:
    """Every fixed arm of the trace: plain, each drafter at K = 1..its depth, and the bundled
    trees on each drafter with ranks."""
    arms = [Arm("plain", 0)]
    for i, d in enumerate(tr.drafter_names):
        top = int(tr.manifest["drafters"][i].get("max_depth") or tr.k_max)
        arms += [Arm(d, k) for k in range(1, min(top, tr.k_max) + 1)]
        if tr.has_ranks(d) and tr.rank_cap > 3:
            arms.append(arm_from_name(f"{d}@tree:4x2x2x1"))
    return arms


def _truncation_check(tr: traces.Trace, env: StochasticEnv, rounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (prompt, arm): ``mu * rounds - n`` (the last round's truncation: in [0, K] for the
    rounds law) and the pooled expected MAT of the stochastic setting vs. replay's, with the
    Wald bound ``|E[ST] - R| <= K / mu`` per prompt summed into a MAT interval."""
    mu = env.means  # (P, A)
    n = tr.output_lens.astype(float)[:, None]
    excess = mu * rounds - n
    est = env.expected_fixed_st()
    slack = (env.table.k[None, :] / mu).sum(axis=0)  # sum over prompts of K / mu_p
    return excess, np.abs(est.sum(axis=0) - rounds.sum(axis=0)) <= slack + 1e-9


def test_every_fixed_arm_has_its_replay_mat_under_the_rounds_law(greedy):
    arms = _every_arm(greedy)
    assert len(arms) > 100
    rounds = make_env("replay", greedy, arms).expected_fixed_st()
    env = make_env("stochastic", greedy, arms, law="empirical")
    excess, inside = _truncation_check(greedy, env, rounds)
    k = env.table.k[None, :]
    assert (excess >= -1e-9).all() and (excess <= k + 1e-9).all(), "law mean x replay rounds - n outside [0, K]"
    assert inside.all(), [a.name for a, ok in zip(arms, inside, strict=True) if not ok]
    # the round counts are replay's rounds, one by one
    for a in (Arm("suffix", 4), Arm("pld", 8), arm_from_name("eagle@tree:4x2x2x1")):
        for p in (0, 7, 40):
            c = round_counts(greedy, a, p, 8)
            want = greedy.fixed_arm_rounds(a, p)
            assert c.sum() == len(want)
            assert (np.bincount(want[:-1] - 1, minlength=9) <= c).all()  # all but the (truncated) last round


@pytest.mark.parametrize("law", ["tgd", "autocorrelated"])
def test_the_fitted_laws_keep_the_rounds_mean(greedy, law):
    arms = [Arm(d, k) for d in ("pld", "suffix", "rest", "rtn4") for k in (1, 4, 8)] + [Arm("plain", 0)]
    emp = make_env("stochastic", greedy, arms, law="empirical")
    env = make_env("stochastic", greedy, arms, law=law)
    np.testing.assert_allclose(env.means, emp.means, rtol=0, atol=1e-6)
    rounds = make_env("replay", greedy, arms).expected_fixed_st()
    assert _truncation_check(greedy, env, rounds)[1].all()


def test_the_positions_law_is_length_biased_on_suffix(greedy):
    arms = [Arm("suffix", 4), Arm("pld", 4), Arm("rest", 4)]
    rounds = make_env("replay", greedy, arms).expected_fixed_st()
    n = greedy.output_lens.sum()
    mat = {law: n / make_env("stochastic", greedy, arms, law=law).expected_fixed_st().sum(axis=0)
           for law in ("empirical", "positions")}
    assert np.round(n / rounds.sum(axis=0), 3).tolist() == [1.723, 1.589, 1.218]
    assert np.round(mat["positions"], 3).tolist() == [2.053, 1.855, 1.269]  # the numbers
    assert np.round(mat["empirical"], 3).tolist() == [1.718, 1.582, 1.215]
    inside = _truncation_check(greedy, make_env("stochastic", greedy, arms, law="positions"), rounds)[1]
    assert not inside[0]


def test_a_simulated_fixed_arm_matches_replay_within_its_interval(greedy):
    arms = [Arm("plain", 0), Arm("suffix", 4), Arm("pld", 4)]
    n = greedy.output_lens.sum()
    replay = n / make_env("replay", greedy, arms).expected_fixed_st()[:, 1].sum()
    slack = None
    for law in ("empirical", "positions"):
        env = make_env("stochastic", greedy, arms, law=law, seed=5)
        st = simulate_env(env, "fixed:suffix@4", 30, seed=5)["stopping_time"]  # (P, R)
        mat = n / st.sum(axis=0)
        half = float(runs_half_width(mat))
        if slack is None:  # truncation: |E[ST] - R| <= sum_p K / mu_p, as a MAT interval
            slack = n / (n / replay - (4 / env.means[:, 1]).sum()) - replay
        ok = abs(mat.mean() - replay) <= half + slack
        assert ok == (law == "empirical"), (law, mat.mean(), half, slack, replay)


def test_the_positions_law_reproduces_the_earlier_numbers(greedy):
    """Numbers computed with the earlier ``empirical`` code (git HEAD before issue 15.1): the
    environment's draws, fixed arms' stopping times and exact E[ST] (policy-free, so they
    pin the law and its random stream alone)."""
    names = ["plain@0", "pld@4", "suffix@4", "rest@4", "eagle@6", "suffix@tree:4x2x2x1"]
    env = StochasticEnv(greedy, [arm_from_name(a) for a in names], law="positions", seed=3)
    for p in range(greedy.n_prompts):  # the law of min(K, L_d(t)) + 1 over every position
        for a, arm in enumerate(env.table.arms):
            x = greedy.accepted(arm, p)
            np.testing.assert_array_equal(env.pmf[p, a], np.bincount(x, minlength=7) / len(x))
    P = greedy.n_prompts
    prompt, run = np.repeat(np.arange(P), 4), np.tile(np.arange(4), P)
    y = sum(env.emit_all(prompt, run, np.full(4 * P, r), np.zeros(4 * P, np.int64)) * (r + 1) for r in range(50))
    assert y.sum(axis=0).tolist() == [428400, 935190, 1007415, 777801, 526517, 1083424]
    old = {"pld@4": [5471, 5470, 5534], "suffix@4": [5021, 5043, 5050], "rest@4": [8122, 8124, 8153],
           "eagle@6": [8410, 8416, 8434], "suffix@tree:4x2x2x1": [4552, 4572, 4600]}
    for a, want in old.items():
        assert simulate_env(env, f"fixed:{a}", 3, 3)["stopping_time"].sum(axis=0).tolist() == want, a
    np.testing.assert_allclose(env.expected_fixed_st().sum(axis=0), [
        10296.0, 5550.302935306, 5014.608927606, 8114.773984621, 8390.038576338, 4597.172353534], rtol=0, atol=1e-8)


def test_sampling_traces_use_the_expected_occupation_law():
    tr = traces.load(SAMPLING)
    arms = [Arm("plain", 0), Arm("rtn4", 4), Arm("int8", 3), Arm("pld", 4), Arm("early24", 8)]
    replay = make_env("replay", tr, arms)
    rounds = replay.expected_fixed_st()
    env = make_env("stochastic", tr, arms, law="empirical")
    excess, inside = _truncation_check(tr, env, rounds)
    assert (excess >= -1e-9).all() and (excess <= env.table.k[None, :] + 1e-9).all()
    assert inside.all()
    d = tr.drafter_index("rtn4")
    for p in (0, 5):  # the occupation law's total is the exact E[ST] of replay
        beta = np.nan_to_num(tr.beta[p, d, : tr.output_lens[p]].astype(float), nan=0.0)
        assert occupation_counts(beta, 4, 4).sum() == pytest.approx(expected_rounds_bernoulli(beta, 4), abs=1e-9)


@pytest.mark.parametrize("trace,law", [(GREEDY, "positions"), (SAMPLING, "empirical"), (SAMPLING, "autocorrelated")])
def test_the_compiled_engine_draws_the_same_law(trace, law):
    """The kernel reads the env's ``cdf``: stopping times and pulls equal numpy's, to the bit."""
    cfg = RunConfig(trace=trace, setting="stochastic", law=law, runs=2, seed=5, engine="numpy",
                    arms="plain@0,rtn4@1-4,pld@4")
    prep = resolve(cfg)
    for spec in ("ucbspec", "thompson", "fixed:rtn4@3"):
        got = []
        for engine in ("numpy", "numba"):
            prep.cfg = replace(cfg, engine=engine)
            got.append(simulate(prep, make_policy(spec), np.arange(6), np.arange(2)))
        for k in ("stopping_time", "pulls"):
            assert np.array_equal(got[0][k], got[1][k]), (trace, law, spec, k)


@pytest.mark.parametrize("law", StochasticEnv.LAWS)
def test_the_cli_runs_every_law(tmp_path, law):
    tr = traces.load("builtin:synthetic-demo")
    out = tmp_path / law
    assert sim_main(["run", "--trace", "builtin:synthetic-demo", "--setting", "stochastic", "--law", law,
                     "--policy", "fixed:strong@3", "--policy", "ucbspec", "--arms", "plain@0,strong@3,copy@2",
                     "--runs", "2", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["law"] == law
    fixed = pd.read_parquet(out / "fixed.parquet")
    env = make_env("stochastic", tr, [Arm("plain", 0), Arm("strong", 3), Arm("copy", 2)], law=law)
    got = fixed[fixed["arm"] == "strong@3"].set_index("prompt_id")["rounds"].reindex(tr.prompt_ids).to_numpy()
    np.testing.assert_allclose(got, env.expected_fixed_st()[:, 1], rtol=1e-12)
