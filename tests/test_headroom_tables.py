"""Headroom (the clairvoyant per-round switcher) and tables that cannot be misread.

The switcher's dynamic programme against brute force; it is at or below every fixed arm, the
oracles and every policy; Table 1's paired Δ columns, verdicts, ``n=1`` cells and degenerate
prompts; ``simulator summary``'s switcher row, gain% column and single speedup.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

import traces
from experiments.cli import main as exp_main
from experiments.tables import table1, table1_tidy
from simulator.cli import main as sim_main
from simulator.envs import make_env
from simulator.headroom import env_emitted, not_defined, switcher_columns, switcher_dp
from simulator.runner import RunConfig, fixed_frame, resolve
from traces import resolve_arms


def brute_force(e: np.ndarray, n: int, cost: np.ndarray) -> tuple[float, float]:
    """(fewest rounds, least time) over every arm sequence, by exhaustive recursion."""
    A = e.shape[1]

    @functools.cache
    def paths(t: int) -> list[tuple[int, float]]:
        if t >= n:
            return [(0, 0.0)]
        return [(r + 1, s + cost[a]) for a in range(A) for r, s in paths(t + int(e[t, a]))]

    every = paths(0)
    return min(r for r, _ in every), min(s for _, s in every)


@pytest.mark.parametrize("timed", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_switcher_dp_equals_brute_force_on_random_tables(seed, timed):
    rng = np.random.default_rng(seed)
    P, T, A = 3, 9, 3
    lengths = rng.integers(1, T + 1, P)
    acc = rng.integers(0, 4, (P, T, A))
    e = np.minimum(acc + 1, lengths[:, None, None] - np.arange(T)[None, :, None])
    cost = rng.uniform(0.5, 2.0, (P, A)) if timed else None
    d = switcher_dp(e, lengths, cost)
    for p in range(P):
        r, s = brute_force(e[p], int(lengths[p]), np.ones(A) if cost is None else cost[p])
        assert d["rounds"][p] == r
        if timed:
            assert d["time_s"][p] == pytest.approx(s, rel=1e-12)
            # each path's other measure is a feasible path's: never below the other optimum
            assert d["rounds_time_s"][p] >= s - 1e-12 and d["time_rounds"][p] >= r
        else:
            assert np.isnan(d["time_s"][p])


def test_switcher_on_the_tiny_trace_equals_brute_force_over_the_environment(tiny_trace):
    """On the hand-worked 10-position trace, with the replay environment's own emission."""
    arms = resolve_arms("a@1-3,b@1-3", tiny_trace.drafter_names, tiny_trace.k_limits)
    env = make_env("replay", tiny_trace, arms)
    assert not_defined(env) is None
    cost = np.array([[1.0, 1.3, 1.6, 0.9, 1.2, 1.5]])
    cols = switcher_columns(env, cost)
    e = env_emitted(env, np.arange(env.n_prompts))[0]
    r, s = brute_force(e, int(env.lengths[0]), cost[0])
    assert cols["switcher_rounds"][0] == r and cols["switcher_time_s"][0] == pytest.approx(s, rel=1e-12)
    fixed = env.expected_fixed_st()[0]
    assert r <= fixed.min() and s <= (fixed * cost[0]).min() + 1e-12


@pytest.fixture(scope="module")
def time_run(tmp_path_factory):
    """A time-objective replay run with plain decoding, a tree arm and both oracles."""
    out = tmp_path_factory.mktemp("headroom") / "res"
    assert sim_main(["run", "--trace", "builtin:smollm2-greedy", "--policy", "ucbspec", "--policy", "hedgespec",
                     "--policy", "oracle", "--policy", "oracle:rounds", "--runs", "2", "--arms",
                     "plain@0,pld@4,suffix@4,eagle@4,rtn4@tree:2x2", "--objective", "time", "--cost-device",
                     "cuda", "--out", str(out), "--quiet"]) == 0
    return out


def test_switcher_is_below_every_fixed_arm_oracle_and_policy(time_run):
    fixed = pd.read_parquet(time_run / "fixed.parquet")
    df = pd.read_parquet(time_run / "results.parquet")
    sw = fixed.drop_duplicates("prompt_id").set_index("prompt_id")
    eps = 1 + 1e-12
    sw = sw.loc[sorted(sw.index)]
    assert (sw["switcher_rounds"] <= fixed.groupby("prompt_id").rounds.min().loc[sw.index]).all()
    assert (sw["switcher_time_s"] <= fixed.groupby("prompt_id").time_s.min().loc[sw.index] * eps).all()
    assert (sw["switcher_time_s"] <= sw["switcher_rounds_time_s"] * eps).all()
    assert (sw["switcher_rounds"] <= sw["switcher_time_rounds"]).all()
    for pol, g in df.groupby("policy"):
        worst_t = g.groupby("prompt_id").time_s.min()
        worst_r = g.groupby("prompt_id").stopping_time.min()
        assert (sw.loc[worst_t.index, "switcher_time_s"] <= worst_t * eps).all(), pol
        assert (sw.loc[worst_r.index, "switcher_rounds"] <= worst_r).all(), pol


def test_switcher_is_not_defined_outside_the_greedy_replay():
    rc = RunConfig(trace="builtin:synthetic-demo", setting="stochastic", policies=("ucbspec",), runs=1,
                   arms="*@2", objective="time")
    f = fixed_frame(resolve(rc))
    assert f["switcher_rounds"].isna().all() and f["switcher_time_s"].isna().all()
    assert "replay setting only" in not_defined(resolve(rc).env)


def _tidy_overall(out, **kw) -> pd.DataFrame:
    df = pd.read_parquet(out / "results.parquet")
    fixed = pd.read_parquet(out / "fixed.parquet")
    t = table1_tidy(df, fixed, "replay", **kw)
    return t[t.category == "overall"].set_index("method")


def test_table1_has_paired_delta_columns_a_verdict_and_the_switcher_row(time_run):
    t = _tidy_overall(time_run)
    df = pd.read_parquet(time_run / "results.parquet")
    fixed = pd.read_parquet(time_run / "fixed.parquet")
    ucb = t.loc["ucbspec [throughput]"]
    best = fixed.groupby("arm").time_s.sum().idxmin()
    assert ucb.ref_arm == best and ucb.unit == "ms"
    per = df[df.policy == "ucbspec"].groupby("prompt_id").time_s.mean()
    ref = fixed[fixed.arm == best].set_index("prompt_id").time_s.loc[per.index]
    assert ucb.d_fixed == pytest.approx(1000 * (per - ref).mean())
    assert ucb.d_fixed_lo <= ucb.d_fixed <= ucb.d_fixed_hi and ucb.d_vanilla_lo <= ucb.d_vanilla <= ucb.d_vanilla_hi
    # the paired interval is much narrower than the two marginal ones would suggest
    assert ucb.d_fixed_hi - ucb.d_fixed_lo < 1000 * (ref.sum() / len(ref))
    sw = t.loc["[per-round switcher] [time]"]
    assert sw.kind == "reference" and sw.gain_pct == pytest.approx(100) and (t.tps <= sw.tps + 1e-9).all()
    assert sw.d_fixed_hi < 0 and sw.verdict.startswith(f"faster than {best}")
    assert t.loc[f"fixed:{best}"].verdict.startswith("reference (best fixed arm)")
    assert t.loc["vanilla (plain@0)"].verdict == "reference (vanilla)"
    tab = table1(df, fixed, "replay")
    assert {"verdict", f"Δ vs best fixed {best} (ms/prompt)", "Δ vs vanilla (ms/prompt)", "gain% of headroom"} \
        <= set(tab.columns)
    assert tab.loc["ucbspec [throughput]", "Δ vs vanilla (ms/prompt)"].count("[") == 1


def test_a_category_of_one_prompt_prints_n1_never_nan(time_run):
    df = pd.read_parquet(time_run / "results.parquet")
    fixed = pd.read_parquet(time_run / "fixed.parquet")
    keep = df[df.category == "translation"].prompt_id.iloc[0]
    df = df[(df.category != "translation") | (df.prompt_id == keep)]
    fixed = fixed[(fixed.category != "translation") | (fixed.prompt_id == keep)]
    tab = table1(df, fixed, "replay")
    cells = tab["translation"]
    assert cells.str.endswith("(n=1)").all(), cells.iloc[0]
    assert not tab.map(lambda v: "nan" in str(v)).to_numpy().any()


def test_degenerate_prompts_get_a_sensitivity_column_and_can_be_excluded(time_run, capsys):
    deg = [p for p in traces.load("builtin:smollm2-greedy").prompts.query("degenerate").prompt_id]
    assert len(deg) == 8
    t = _tidy_overall(time_run, degenerate=deg)
    df = pd.read_parquet(time_run / "results.parquet")
    fixed = pd.read_parquet(time_run / "fixed.parquet")
    tidy = table1_tidy(df, fixed, "replay", degenerate=deg)
    wo = tidy[tidy.category == "overall w/o degenerate"].set_index("method")
    assert (wo.prompts == 76).all() and (t.prompts == 84).all()
    tab = table1(df, fixed, "replay", degenerate=deg)
    assert "w/o 8 degenerate: tokens/s" in tab.columns
    assert exp_main(["table", "--results", str(time_run)]) == 0
    md = (time_run / "tables" / "table1_replay.md").read_text()
    assert "8 of 84 prompts are flagged degenerate" in md and "w/o 8 degenerate" in md
    assert exp_main(["table", "--results", str(time_run), "--exclude-degenerate"]) == 0
    md = (time_run / "tables" / "table1_replay.md").read_text()
    assert "8 prompts flagged degenerate (repetitive output) are excluded" in md and "w/o 8" not in md
    ex = pd.read_csv(time_run / "tables" / "table1_replay.csv")
    assert (ex[ex.category == "overall"].prompts == 76).all()


def test_summary_prints_one_speedup_the_switcher_and_the_gain_share(time_run, capsys):
    capsys.readouterr()
    assert sim_main(["summary", "--results", str(time_run)]) == 0
    text = capsys.readouterr().out
    assert "SB-spd" not in text and "[per-round switcher]" in text and "gain%" in text
    assert "vs vanilla:" in text and "the best fixed arm's gain%" in text
    assert max(len(line) for line in text.splitlines()) <= 100  # fits 100 columns (issue 20)
    assert sim_main(["summary", "--results", str(time_run), "--specbench-speedup"]) == 0
    text = capsys.readouterr().out
    assert "SB-spd" in text and "Spec-Bench's speedup" in text


def test_folders_without_switcher_columns_still_read_and_bad_ones_are_refused(time_run, tmp_path, capsys):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(time_run, old)
    f = pd.read_parquet(old / "fixed.parquet")
    f.drop(columns=[c for c in f.columns if c.startswith("switcher")]).to_parquet(old / "fixed.parquet")
    capsys.readouterr()
    assert sim_main(["summary", "--results", str(old)]) == 0
    text = capsys.readouterr().out
    assert "[per-round switcher]: n/a" in text and "gain%" not in text
    assert exp_main(["table", "--results", str(old)]) == 0
    md = (old / "tables" / "table1_replay.md").read_text()
    assert "| [per-round switcher]" not in md and "[per-round switcher]: n/a (not in this folder's" in md
    f.assign(switcher_rounds="x").to_parquet(old / "fixed.parquet")
    capsys.readouterr()
    assert sim_main(["summary", "--results", str(old)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fixed.parquet" in err[0] and "'switcher_rounds'" in err[0]
    f.assign(switcher_rounds=-f["switcher_rounds"]).to_parquet(old / "fixed.parquet")
    assert sim_main(["summary", "--results", str(old)]) == 2
    assert "expected a finite number >= 1 or NaN" in capsys.readouterr().err


@pytest.mark.parametrize("named", [False, True])
def test_a_rounds_run_prints_its_table_in_rounds(tmp_path, named):
    out = tmp_path / "res"
    args = ["run", "--trace", "builtin:synthetic-demo", "--policy", "ucbspec", "--policy", "oracle", "--runs", "2",
            "--arms", "*@2", "--objective", "rounds", "--out", str(out), "--quiet"]
    assert sim_main(args + (["--cost-device", "nominal"] if named else [])) == 0
    assert exp_main(["table", "--results", str(out)]) == 0
    md = (out / "tables" / "table1_replay.md").read_text()
    assert "Δ vs vanilla (rounds/prompt)" in md and "ms/prompt" not in md and "Cells: MAT [95% CI]" in md
    assert ("tokens/s (cost table nominal; not the objective)" in md) == named
    assert ("tokens/s" in md) == named


def test_switcher_equals_brute_force_on_prefixes_of_the_bundled_trace():
    """Across chains, plain decoding and a tree arm of the bundled trace (first 12 prompts), the
    switcher's rounds equal brute force on every 12-token prefix (outputs cut to 12 tokens)."""
    tr = traces.load("builtin:smollm2-greedy")
    arms = resolve_arms("plain@0,pld@2,suffix@4,rtn4@tree:2x2", tr.drafter_names, tr.k_limits)
    env = make_env("replay", tr, arms)
    e = env_emitted(env, np.arange(12))[:, :12, :]
    n = 12
    e = np.minimum(e, n - np.arange(n)[None, :, None])
    d = switcher_dp(e, np.full(12, n), np.tile(np.arange(1.0, 5.0), (12, 1)))
    for p in range(12):
        r, s = brute_force(e[p], n, np.arange(1.0, 5.0))
        assert d["rounds"][p] == r and d["time_s"][p] == pytest.approx(s)



def test_one_prompt_prints_n1_in_the_summary_and_the_table(tiny_trace_dir, tmp_path, capsys):
    out = tmp_path / "res"
    assert sim_main(["run", "--trace", str(tiny_trace_dir), "--policy", "ucbspec", "--policy", "oracle", "--arms",
                     "a@1-3,b@1-3", "--runs", "2", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert sim_main(["summary", "--results", str(out)]) == 0
    text = capsys.readouterr().out
    assert "nan" not in text and "rounds/prompt (n=1) -> no interval" in text
    assert exp_main(["table", "--results", str(out)]) == 0
    md = (out / "tables" / "table1_replay.md").read_text()
    assert "nan" not in md and "(n=1)" in md and "[per-round switcher] [rounds]" in md
