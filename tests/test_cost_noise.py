"""Cost tables with their noise (issue 17, items 1-2): schema-1.2 spread columns, the checks
that flag a noisy or contradictory table (collector, ``traces validate``, ``simulator run``),
interleaved adaptive timing, and the fitted cost model with its "within timing noise" verdict."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import traces
from simulator.costs import CostModel, fit_verify_row, timing_verdict, uncertainty_of, within_timing_noise
from traces import synthetic
from traces.costcheck import cost_warnings

ROOT = Path(__file__).resolve().parent.parent
DEV = "cpu:test"


def _table(edit=None, noise: bool = True) -> pd.DataFrame:
    """A clean measured table (batch 1 and 4, k 0..4, context 256) with ``edit(df)`` applied."""
    rows = [(DEV, "verify", "", k, b, 256, (10.0 + k) * (1 if b == 1 else 2.5)) for b in (1, 4) for k in range(5)]
    rows += [(DEV, "draft", d, 1, 1, 256, 1.0) for d in ("tgd0", "tgd1")]
    df = pd.DataFrame(rows, columns=["device", "kind", "drafter", "k", "batch_size", "context_len", "ms"])
    if noise:
        df["ms_lo"], df["ms_hi"], df["ms_iqr"], df["reps"] = df["ms"] * 0.99, df["ms"] * 1.01, df["ms"] * 0.02, 5
    if edit is not None:
        edit(df)
    return df


def _trace_dir(tmp_path: Path, costs: pd.DataFrame, name: str = "t") -> Path:
    tr = synthetic.tgd([0.8, 0.5], n_prompts=4, output_len=64, k_max=4, seed=3)
    return traces.write(dataclasses.replace(tr, costs=costs), tmp_path / name)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def _batch4_cheaper(df):  # the hand-edited case: a batch-4 cell cheaper than batch 1
    i = df.index[(df["batch_size"] == 4) & (df["k"] == 3)][0]
    df.loc[i, ["ms", "ms_lo", "ms_hi"]] = [6.0, 5.9, 6.1]


def _k_drop(df):  # verify k=2 3266 ms, k=3 665 ms (the loaded-machine table)
    i2 = df.index[(df["batch_size"] == 1) & (df["k"] == 2)][0]
    df.loc[i2, ["ms", "ms_lo", "ms_hi"]] = [3266.0, 3200.0, 3300.0]


def _noisy(df):  # a cell whose interval is +-50% of its median
    i = df.index[(df["batch_size"] == 1) & (df["k"] == 1)][0]
    df.loc[i, ["ms_lo", "ms_hi"]] = [5.5, 16.5]


CASES = {"batch4_cheaper": (_batch4_cheaper, "cheaper at a larger batch size",
                            "k 3, context 256: batch 1 -> 4 (13 -> 6 ms)"),
         "k_drop": (_k_drop, "cheaper at a larger k", "k 2 -> 3 (3266 -> 13 ms)"),
         "noisy": (_noisy, "noisier than +-10%", "verify k 1 batch 1 context 256")}


def test_clean_table_has_no_warning_and_old_tables_still_load(tmp_path):
    assert cost_warnings(_table()) == []
    d = _trace_dir(tmp_path, _table())
    assert json.loads((d / "manifest.json").read_text())["schema_version"] == "1.2"
    back = traces.load(d)
    assert {"ms_lo", "ms_hi", "ms_iqr", "reps"} <= set(back.costs.columns)
    old = _trace_dir(tmp_path, _table(noise=False), "old")  # no spread columns: loads, no noise columns
    assert "reps" not in traces.load(old).costs.columns
    r = _cli("traces", "validate", "--trace", str(d))
    assert r.returncode == 0 and "warning" not in r.stdout, r.stdout


@pytest.mark.parametrize("case", list(CASES))
def test_suspect_table_flagged_by_validate_and_run(tmp_path, case):
    edit, what, cell = CASES[case]
    w = cost_warnings(_table(edit))
    assert any(what in x for x in w) and cell in " ".join(w), w
    d = _trace_dir(tmp_path, _table(edit))
    r = _cli("traces", "validate", "--trace", str(d))
    assert r.returncode == 0, r.stdout + r.stderr  # warnings do not make the trace invalid
    assert any(line.startswith("warning: ") and cell in line for line in r.stdout.splitlines()), r.stdout
    assert "valid (" in r.stdout and "warning(s)" in r.stdout
    r = _cli("simulator", "run", "--trace", str(d), "--runs", "1", "--policy", "ucbspec", "--objective", "time",
             "--setting", "replay", "--engine", "numpy", "--out", str(tmp_path / "R"), "--quiet")
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if "looks noisy" in line]
    assert len(said) == 1 and said[0].startswith("warning: ") and "traces validate" in said[0], r.stderr
    conf = json.loads((tmp_path / "R" / "config.json").read_text())
    assert conf["cost_model"]["warnings"] == w


@pytest.mark.parametrize("bad,msg", [
    (lambda df: df.__setitem__("ms_lo", df["ms"] * 1.5), "ms_lo: expected at most ms"),
    (lambda df: df.__setitem__("reps", -1), "reps: expected an integer >= 0"),
    (lambda df: df.pop("ms_iqr"), "missing; expected all of"),
])
def test_bad_noise_columns_are_problems(tmp_path, bad, msg):
    d = _trace_dir(tmp_path, _table())
    costs = pd.read_parquet(d / "costs.parquet")
    bad(costs)
    costs.to_parquet(d / "costs.parquet")
    assert any(msg in p for p in traces.validate(d)), traces.validate(d)


def test_noise_columns_need_schema_12(tmp_path):
    d = _trace_dir(tmp_path, _table())
    m = json.loads((d / "manifest.json").read_text())
    (d / "manifest.json").write_text(json.dumps({**m, "schema_version": "1.1"}))
    assert any("schema_version: expected '1.2' or later with noise columns" in p for p in traces.validate(d))


def test_fit_smooths_a_zigzag_and_reports_its_residual():
    ks = np.arange(9.0)
    zig = np.array([7.81, 8.41, 8.78, 8.48, 8.81, 8.47, 8.85, 8.55, 9.08])  # the bundled H100 row
    f = fit_verify_row(ks, zig)
    assert np.all(np.diff(f) >= 0) and np.abs(f - zig).max() < 0.5
    lin = 10 + 2 * ks
    assert np.allclose(fit_verify_row(ks, lin), lin)  # a straight row is its own fit
    tree = np.r_[ks, 11, 15, 23, 31, 47, 63]  # knots at 16 and 32 verified tokens
    kink = np.where(tree + 1 <= 16, 10 + tree, 10 + 15 + 3 * (tree - 15))
    assert np.allclose(fit_verify_row(tree, kink), kink, rtol=1e-6)
    raw = CostModel.from_table(_table(_k_drop), DEV, "raw")
    fit = CostModel.from_table(_table(_k_drop), DEV, "fit")
    assert raw.fit_residual_rel == fit.fit_residual_rel > 0.5  # the 3266 ms cell is far off any line
    assert raw.verify_ms(2, 1, 256) == pytest.approx(3266.0)
    assert fit.verify_ms(2, 1, 256) < 3266.0 and fit.describe()["fit"] == "fit"
    assert fit.uncertainty_rel == max(fit.noise_rel, fit.fit_residual_rel)
    with pytest.raises(Exception, match="cost-fit: expected one of"):
        CostModel.from_table(_table(), DEV, "smooth")


def test_within_timing_noise_verdict(tmp_path):
    assert within_timing_noise(1.00, 1.02, 0.03) and not within_timing_noise(1.00, 1.05, 0.03)
    assert not within_timing_noise(1.0, 1.0001, 0.0)  # no uncertainty recorded: winners as before
    assert timing_verdict("better", 1.0, 1.01, 0.03) == "within timing noise"
    assert timing_verdict("better", 1.0, 1.5, 0.03) == "better"
    assert uncertainty_of({"cost_model": {"uncertainty_rel": 0.04}}) == 0.04
    assert uncertainty_of({"setting": "multi", "settings": [{"cost_model": {"uncertainty_rel": 0.02}}]}) == 0.02
    assert uncertainty_of({"cost_model": {"uncertainty_rel": "x"}}) == 0.0
    assert uncertainty_of({"cost_model": {"uncertainty_rel": 1.5}}) == 1.5  # a table noisier than its values
    assert within_timing_noise(1.0, 2.0, 1.5)
    # end to end: a run's summary and Table 1 say it where the arms differ by less than the model's noise
    d = _trace_dir(tmp_path, _table(_noisy))
    out = tmp_path / "R"
    r = _cli("simulator", "run", "--trace", str(d), "--runs", "1", "--policy", "fixed:tgd0@1", "--objective", "time",
             "--setting", "replay", "--engine", "numpy", "--cost-fit", "fit", "--arms", "tgd0@1,tgd1@1",
             "--out", str(out))
    assert r.returncode == 0, r.stderr
    conf = json.loads((out / "config.json").read_text())
    assert conf["cost_fit"] == "fit" and conf["cost_model"]["uncertainty_rel"] > 0
    from experiments.tables import table1_tidy
    from simulator.results_reader import open_results
    from simulator.summary import summarize

    res = open_results(out, want="run")
    loose = dict(conf, cost_model=dict(conf["cost_model"], uncertainty_rel=0.9))
    s = summarize(res.results, res.fixed, noise_rel=0.9)
    assert (s["vs_vanilla_verdict"] == "within timing noise").all(), s["vs_vanilla_verdict"]
    s0 = summarize(res.results, res.fixed, noise_rel=0.0)
    assert (s0["vs_vanilla_verdict"] != "within timing noise").all()
    t = table1_tidy(res.results, res.fixed, config=loose)
    assert t.loc[t["category"] == "overall", "verdict"].str.contains("within timing noise of vanilla").any()


# -- timing (no model: fake cells and a fake clock) ------------------------------------------
def test_time_cells_interleaves_and_stops_at_precision_or_budget(capsys):
    pytest.importorskip("torch", reason="gpu_collect.timing imports torch")
    from gpu_collect.timing import TimingBudget, time_cells

    order, now = [], [0.0]

    def cell(key, ms):
        def once():
            order.append(key)
            now[0] += 1.0
            return ms() if callable(ms) else ms
        return (key, once)

    seq = iter([5.0, 50.0, 20.0] * 100)
    cells = [cell("steady", 10.0), cell("jitter", lambda: next(seq))]
    t = time_cells(cells, TimingBudget(budget_s=20, precision=0.03, min_reps=3, max_reps=100, warmup=1),
                   clock=lambda: now[0])
    passes = [order[i:i + 2] for i in range(2, 8, 2)]  # after the warm-up pass: each pass visits both cells
    assert all(sorted(p) == ["jitter", "steady"] for p in passes), order
    assert len(t["steady"]) == 3  # within precision after the minimum: no more repeats
    assert 3 < len(t["jitter"]) < 100  # the noisy cell repeats until the budget is spent
    err = capsys.readouterr().err
    assert "one pass ~" in err and "ETA" in err and "(--cost-budget)" in err
    fixed = time_cells(cells, TimingBudget(reps=4, warmup=0), clock=lambda: now[0], progress=False)
    assert {len(v) for v in fixed.values()} == {4}
    slow = [cell("a", 1000.0), cell("b", 1000.0)]  # one pass ~2 s: 3 passes do not fit 3 s, 2 do
    t = time_cells(slow, TimingBudget(budget_s=3, min_reps=3), clock=lambda: now[0])
    assert {len(v) for v in t.values()} == {2}
    assert "3 passes (~6 s) do not fit --cost-budget 3 s: 2 instead" in capsys.readouterr().err


@pytest.mark.collect
def test_measure_costs_on_the_tiny_model(tmp_path):
    torch = pytest.importorskip("torch", reason="the collector needs the [collect] extra")
    from gpu_collect.models import load_model
    from gpu_collect.timing import NOISE_COLS, TimingBudget, measure_costs, verify_ks
    from gpu_collect.tiny import build_tiny

    m = load_model(str(build_tiny(tmp_path / "m", seed=0)), torch.device("cpu"), torch.float32)
    df = measure_costs(m, [], 2, (16,), (1,), budget=TimingBudget(budget_s=60, min_reps=3, max_reps=3),
                       progress=False)
    assert set(NOISE_COLS) <= set(df.columns) and len(df) == len(verify_ks(2))
    assert (df["reps"] >= 3).all() and (df["ms_lo"] <= df["ms"]).all() and (df["ms"] <= df["ms_hi"]).all()
    tr = synthetic.tgd([0.8, 0.5], n_prompts=4, output_len=64, k_max=4, seed=3)
    tr = dataclasses.replace(tr, costs=pd.concat([tr.costs, df], ignore_index=True))  # nominal rows: no spread
    back = traces.load(traces.write(tr, tmp_path / "t"))
    assert (back.costs.loc[back.costs["device"] == "nominal", "reps"] == 0).all()
