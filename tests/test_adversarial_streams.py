"""The named synthetic adversarial streams (``sqrt-burst``, ``ucb-trap``): the properties
their derivations in docs/theory.md rest on, and how a run's arms map onto them.  Their
growth rates (slopes 0.5 and 1.0 from 1e3 to 1e5 tokens) are checked by
``tests/test_theory_validate.py`` through ``theory validate --quick``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import traces
from simulator.cli import main as sim_main
from simulator.envs import make_env
from simulator.envs.adversarial import AdversarialEnv, sqrt_burst_rewards, ucb_trap_rewards
from simulator.runner import simulate_env
from traces import Arm, synthetic


@pytest.mark.parametrize("L", [1, 2, 4, 8])
def test_sqrt_burst_dominates_round_by_round_with_sparse_bursts(L):
    Y = sqrt_burst_rewards(40_000, L)
    assert (Y[0] == L).all() and (Y[1] >= Y[0]).all() and (Y[1] <= L + 1).all()
    # the lead after T rounds is ~ L sqrt(T) tokens: sqrt growth, vanishing density
    lead = np.cumsum(Y[1] - Y[0])
    for T in (10_000, 40_000):
        assert abs(lead[T - 1] / (L * np.sqrt(T)) - 1) < 0.05
    # a prefix of a longer stream is the shorter stream (one stream cut at every length)
    assert (sqrt_burst_rewards(500, L) == Y[:, :500]).all()


@pytest.mark.parametrize("L", [3, 4, 8])
def test_ucb_trap_fixed_arms_as_derived(L):
    T1 = 37
    n = 5 * L * T1
    Y, t1 = ucb_trap_rewards(n, L)
    assert t1 == T1 and (Y[:, :T1].T == [L + 1, L]).all() and (Y[:, T1:].T == [1, 2]).all()
    env = AdversarialEnv.synthetic("ucb-trap", [n], L)
    st0, st1 = env.expected_fixed_st()[0]
    assert (st0, st1) == (4 * L * T1, (2 * L + 1) * T1)  # arm 1 is the best fixed arm


def test_no_policy_beats_the_dominant_arm_and_ucbspec_is_trapped():
    env = AdversarialEnv.synthetic("sqrt-burst", [2000, 5000], 4)
    for spec in ("uniform", "exp3spec"):
        r = simulate_env(env, spec, 8, 0)
        assert (r["stopping_time"] >= r["fixed_st"][:, [1]]).all()
    trap = AdversarialEnv.synthetic("ucb-trap", [20_000], 4)
    r = simulate_env(trap, "ucbspec", 1, 0)
    regret = r["stopping_time"][0, 0] - r["fixed_st"][0].min()
    assert abs(regret / (20_000 // 20) - 1) < 0.1  # -> (L - 2) T1 / 2 = T1 at L = 4


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory):
    tr = synthetic.tgd([0.8, 0.5, 0.3], n_prompts=4, output_len=60, k_max=4, seed=1)
    return traces.write(tr, tmp_path_factory.mktemp("adv") / "adv")


def test_named_streams_use_two_arms_and_the_traces_total_length(trace_dir):
    tr = traces.load(str(trace_dir))
    env = make_env("adversarial", tr, [Arm("tgd0", 4), Arm("tgd2", 4)], stream="ucb-trap")
    assert env.n_prompts == 1 and env.lengths.tolist() == [240]
    assert [a.name for a in env.table.arms] == ["tgd0@4", "tgd2@4"]
    assert env.describe() == {"name": "adversarial", "stream": "ucb-trap", "synthetic": True, "length": 240}
    for arms, stream in (([Arm("tgd0", 4)] * 3, "sqrt-burst"), ([Arm("tgd0", 4), Arm("tgd1", 3)], "sqrt-burst"),
                         ([Arm("tgd0", 2), Arm("tgd1", 2)], "ucb-trap")):
        with pytest.raises(ValueError, match=r"needs exactly 2 arms with the same K"):
            make_env("adversarial", tr, arms, stream=stream)


def test_cli_runs_a_named_stream_and_says_why_not(trace_dir, tmp_path, capsys):
    out = tmp_path / "r"
    assert sim_main(["run", "--trace", str(trace_dir), "--setting", "adversarial", "--stream", "sqrt-burst",
                     "--arms", "tgd0@4,tgd1@4", "--policy", "exp3spec", "--runs", "3", "--out", str(out),
                     "--quiet"]) == 0
    assert len(pd.read_parquet(out / "results.parquet")) == 3
    assert sim_main(["run", "--trace", str(trace_dir), "--setting", "adversarial", "--stream", "ucb-trap",
                     "--arms", "tgd0@4,tgd1@4,tgd2@4", "--out", str(out), "--quiet"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "needs exactly 2 arms with the same K >= 3" in err[0]
