"""The figure pipeline (``python -m experiments figures``) and the batch-serving setting."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import traces
from experiments.cli import main as exp_main
from simulator.cli import main as sim_main
from simulator.costs import CostModel
from simulator.envs.replay import ReplayEnv
from simulator.serving import ServeConfig, batch_round_costs_s, run_serving, simulate_batches
from traces import Arm, synthetic

EXPECTED = ["fig3_batch_serving", "fig_regret_vs_length", "fig_normalised_regret", "fig5a_cumulative_regret",
            "fig5b_regret_vs_pool", "fig6a_pulls_over_time", "fig6b_pulls_by_category",
            "fig7_acceptance_survival", "fig3b_batch_serving_sorted"]


@pytest.fixture(scope="module")
def small_trace_dir(tmp_path_factory):
    tr = synthetic.tgd([0.8, 0.5, 0.3], n_prompts=8, output_len=60, k_max=4, seed=5)
    return traces.write(tr, tmp_path_factory.mktemp("small") / "small")


def test_figures_end_to_end_from_a_tiny_trace(tmp_path, small_trace_dir, capsys):
    out = tmp_path / "figs"
    assert exp_main(["figures", "--trace", str(small_trace_dir), "--out", str(out), "--quick", "--quiet"]) == 0
    for name in EXPECTED:
        for ext in ("png", "pdf"):
            p = out / f"{name}.{ext}"
            assert p.stat().st_size > 2000, p
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    t1 = pd.read_csv(out / "tables" / "table1.csv")
    assert {"vanilla (plain@0)", "ucbspec [throughput]", "ucbspec:reward=tokens", "exp3spec [throughput]",
            "hedgespec", "smartspec [tokens]", "oracle [time]", "oracle:rounds"} <= set(t1.method)
    assert "overall" in set(t1.category)
    meta = json.loads((out / "data" / "config.json").read_text())
    assert set(meta["timings"]) >= {"table1 replay", "batch serving", "regret vs length"}
    # render-only redraws from the saved tables without simulating
    stamp = (out / "data" / "bounds.csv").stat().st_mtime_ns
    (out / "fig3_batch_serving.png").unlink()
    assert exp_main(["figures", "--trace", str(small_trace_dir), "--out", str(out), "--render-only",
                     "--quiet"]) == 0
    assert (out / "fig3_batch_serving.png").exists()
    assert (out / "data" / "bounds.csv").stat().st_mtime_ns == stamp


def test_figure_data_say_what_the_captions_say(tmp_path, small_trace_dir):
    out = tmp_path / "figs"
    assert exp_main(["figures", "--trace", str(small_trace_dir), "--out", str(out), "--quick", "--quiet"]) == 0
    d = out / "data"
    serving = pd.read_csv(d / "serving.csv")
    plain = serving[serving["k"] == 0]
    assert np.allclose(plain["improvement"], 1.0)
    # the time oracle of Table 1 is at least as fast as every fixed arm, vanilla included, per prompt
    res, fixed = pd.read_parquet(d / "replay_results.parquet"), pd.read_parquet(d / "replay_fixed.parquet")
    assert "plain@0" in set(fixed.arm)
    ot = res[res.policy == "oracle"].groupby("prompt_id").time_s.max()
    assert (ot <= fixed.groupby("prompt_id").time_s.min().loc[ot.index] * (1 + 1e-12)).all()
    traj = pd.read_csv(d / "trajectories.csv")
    fracs = traj[[c for c in traj.columns if c.startswith("frac:")]].sum(axis=1)
    assert np.allclose(fracs[traj["active"] > 0], 1.0)
    # the full-information regret against the best arm in hindsight ends >= 0 for every policy
    final = traj.groupby("policy")["cum_regret"].last()
    assert (final >= -1e-9).all()
    bounds = pd.read_csv(d / "bounds.csv")
    sto = bounds[bounds["check"] == "stochastic"]
    assert (sto["regret"] - sto["ci95"] <= sto["upper"]).all()
    assert np.allclose(sto["lower"], sto["c_thm44"] * np.log(sto["n"]))
    surv = pd.read_csv(d / "survival.csv")
    for _, g in surv.groupby("drafter"):
        assert (np.diff(g.sort_values("i")["survival"]) <= 1e-12).all()  # survival is non-increasing


def test_batch_serving_golden():
    """Hand-checkable: the 10-position trace, arm a@2, batches of one and two prompts."""
    tr = traces.from_arrays([np.array([[2, 1, 0, 3, 2, 1, 0, 0, 1, 0], [0, 0, 1, 0, 0, 2, 1, 0, 0, 0]]),
                             np.array([[0, 0, 0, 0], [1, 1, 1, 1]])], ["a", "b"], k_max=3, name="t2")
    arms = [Arm("plain", 0), Arm("a", 2)]
    env = ReplayEnv(tr, arms)
    cost = np.array([[0, 0], [1.0, 2.0], [1.5, 3.0]])[None]  # (lanes, batch of n sequences, arms)
    # prompt 0 alone with a@2: rounds at t=0 (+3), 3 (+3), 6 (+1), 7 (+1), 8 (+2) -> 5 rounds, 10 tokens
    tok, t, rounds = simulate_batches(env, [np.array([0])], cost, None, 1, 0)
    assert (tok[0], rounds[0], t[0]) == (10, 5, 5 * 2.0)
    # with prompt 1 (4 tokens, a never right: 4 rounds) the first 4 rounds cost c(2) and the last c(1)
    tok, t, rounds = simulate_batches(env, [np.array([0, 1])], cost, None, 1, 0)
    assert (tok[0], rounds[0], t[0]) == (14, 5, 4 * 3.0 + 2.0)


def test_batch_costs_interpolate_and_extrapolate_in_batch_size():
    rows = []
    for b, base in ((1, 10.0), (4, 13.0), (16, 25.0)):
        for k in (0, 4):
            rows.append(dict(device="dev", kind="verify", drafter="", k=k, batch_size=b, context_len=512,
                             ms=base + k))
    rows.append(dict(device="dev", kind="draft", drafter="d", k=1, batch_size=1, context_len=512, ms=2.0))
    model = CostModel.from_table(pd.DataFrame(rows), "dev")
    c = batch_round_costs_s(model, [Arm("plain", 0), Arm("d", 2)], 28, np.array([512.0]))[0]
    assert any("above the largest measured batch 16" in n for n in model.notes)  # extrapolation is said
    assert c[1, 0] == pytest.approx(0.010) and c[4, 0] == pytest.approx(0.013)
    assert c[10, 0] == pytest.approx(0.019)  # halfway between 4 and 16
    assert c[28, 0] == pytest.approx(0.037)  # slope 1 ms per sequence past 16
    # draft cost scales with the target's k = 0 time: 2 tokens x 2 ms x (25/10) at n = 16
    assert c[16, 1] == pytest.approx((25.0 + 2.0 + 2 * 2.0 * 2.5) / 1000)


def test_serve_cli_and_common_prompts(tmp_path, small_trace_dir, capsys):
    out = tmp_path / "serve"
    assert sim_main(["serve", "--trace", str(small_trace_dir), "--arms", "tgd0@1-3", "--batch-sizes", "1-4",
                     "--runs", "3", "--out", str(out), "--quiet"]) == 0
    df = pd.read_csv(out / "serving.csv")
    assert set(df["method"]) == {"plain@0", "tgd0@1", "tgd0@2", "tgd0@3", "ucbspec"}
    assert len(df) == 5 * 4 * 3
    assert exp_main(["plot", "--results", str(out)]) == 0 and (out / "figures" / "batch_serving.png").exists()
    # every method sees the same batches: same total tokens per (sample, run)
    assert (df.groupby(["sample", "run"])["tokens"].nunique() == 1).all()
    # the policy is reproducible and never better than the best fixed arm by more than noise allows
    df2, _ = run_serving(ServeConfig(trace=str(small_trace_dir), arms="tgd0@1-3", batch_sizes=(1, 2, 3, 4), runs=3))
    assert np.array_equal(df["throughput"].to_numpy(), df2["throughput"].to_numpy())
    rc = sim_main(["serve", "--trace", str(small_trace_dir), "--arms", "tgd0@1", "--batch-sizes", "1-99",
                   "--out", str(out), "--quiet"])
    assert rc == 2 and "batch size 9 exceeds the trace's 8 prompts" in capsys.readouterr().err
