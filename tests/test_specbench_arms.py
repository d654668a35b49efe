"""Arms on several-file Spec-Bench traces and the question on real logs (issue "18. Real GPU
evidence", items 3 and 6).

Small fixtures written here (not the shared data): a vanilla file, a chain method (SpS) at one
constant K, a tree method (EAGLE), and an SpS file at transformers' heuristic schedule whose wall
times follow ``prefill + a x steps + b x drafted`` exactly.  The last test runs
``python -m experiments specbench`` on one set of ../shared/data/specbench-logs and skips,
naming the folder, where it is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import traces
from simulator.cli import main as sim_main
from simulator.costs import CostError, CostModel
from traces import Arm, ArmError
from traces.cli import main as tr_main
from traces.importers import HF_START, Schedule

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "specbench-logs"
RNG = np.random.default_rng(7)
K = 4  # the constant K of the chain fixture: accept lengths 1..K + 1


def _line(qid: int, model: str, lengths: list[int], wall: float, text: str = "same") -> str:
    return json.dumps({"question_id": qid, "category": "writing", "answer_id": f"a{qid}", "model_id": model,
                       "choices": [{"index": 0, "turns": [text], "decoding_steps": [len(lengths)],
                                    "new_tokens": [int(sum(lengths))], "wall_time": [wall],
                                    "accept_lengths": lengths}], "tstamp": 1.0}) + "\n"


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict[str, Path]:
    """vanilla, sps (chain, constant K), eagle (tree, K = 5) over 6 questions of 60 tokens each."""
    d = tmp_path_factory.mktemp("logs")
    files = {m: d / f"m-{m}.jsonl" for m in ("vanilla", "sps", "eagle")}
    out = {m: "" for m in files}
    for q in range(6):
        n = 60
        out["vanilla"] += _line(q, "vicuna-vanilla-float16", [1] * n, 0.04 + 0.022 * n)
        for m, top, step in (("sps", K + 1, 0.028), ("eagle", 6, 0.032)):
            lens, left = [], n
            while left:
                x = min(int(RNG.integers(1, top + 1)), left)
                lens.append(x)
                left -= x
            out[m] += _line(q, f"vicuna-{m}-68m-float16" if m == "sps" else f"vicuna-{m}-float16", lens,
                            0.05 + step * len(lens) + 0.001 * (q % 2))
    for m, f in files.items():
        f.write_text(out[m])
    return files


@pytest.fixture(scope="module")
def trace_dir(logs, tmp_path_factory) -> Path:
    t = tmp_path_factory.mktemp("t") / "t"
    assert tr_main(["import", "--from", "specbench", *map(str, logs.values()), "--out", str(t)]) == 0
    return t


def test_structure_and_default_arms_are_the_logged_configurations(trace_dir, capsys):
    tr = traces.load(trace_dir)
    by = {d["name"]: d for d in tr.manifest["drafters"]}
    assert by["sps"]["structure"] == "chain" and by["eagle"]["structure"] == "tree"
    arms, note = tr.select_arms(None)
    assert [a.name for a in arms] == ["plain@0", f"sps@{K}", "eagle@5"]
    assert "logged configurations" in note and tr.select_arms("all")[0] == arms
    assert [a.name for a in tr.select_arms("sps@1-2")[0]] == ["sps@1", "sps@2"]  # a chain gives every k <= K
    assert sim_main(["run", "--trace", str(trace_dir), "--setting", "stochastic", "--policy", "uniform", "--runs",
                     "2", "--out", str(trace_dir.parent / "r0"), "--quiet"]) == 0
    assert "note: arms: the methods at their logged configurations (plain@0,sps@4,eagle@5)" in capsys.readouterr().err


@pytest.mark.parametrize("k", range(1, K + 1))
def test_chain_arms_below_k_are_exactly_min_k_a(trace_dir, logs, k):
    tr = traces.load(trace_dir)
    rows = [json.loads(x) for x in logs["sps"].read_text().splitlines()]
    for p, o in enumerate(rows):
        a = np.array(o["choices"][0]["accept_lengths"]) - 1
        np.testing.assert_array_equal(tr.accepted(Arm("sps", k), p), np.minimum(a, k))


def test_a_tree_method_gives_only_its_logged_tree(trace_dir, capsys):
    tr = traces.load(trace_dir)
    with pytest.raises(ArmError, match=r"arm eagle@3: eagle is a tree method.*expected eagle@5"):
        tr.select_arms("eagle@3")
    with pytest.raises(ArmError, match="arm eagle@2"):
        tr.accepted(Arm("eagle", 2), 0)
    assert sim_main(["run", "--trace", str(trace_dir), "--setting", "stochastic", "--arms", "eagle@1-5", "--runs",
                     "1", "--out", str(trace_dir.parent / "r1"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "arm eagle@1: eagle is a tree method" in err[0]


def test_time_objective_refuses_a_chain_arm_without_a_cost_naming_it_and_why(trace_dir, capsys):
    tr = traces.load(trace_dir)
    assert {(d, int(k)) for d, k in zip(tr.costs.drafter, tr.costs.k, strict=True)} == {("", 0), ("sps", K),
                                                                                          ("eagle", 5)}
    with pytest.raises(CostError, match=rf"arm sps@2: no measured cost: the log ran every step at K = {K}"):
        CostModel.for_trace(tr).round_ms([Arm("sps", 2)])
    args = ["run", "--trace", str(trace_dir), "--setting", "stochastic", "--arms", f"plain@0,sps@1-{K}", "--runs", "1",
            "--policy", "uniform", "--quiet"]
    assert sim_main([*args, "--objective", "time", "--out", str(trace_dir.parent / "r2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "arm sps@1: no measured cost" in err[0] and "--objective rounds" in err[0]
    assert sim_main([*args, "--objective", "rounds", "--out", str(trace_dir.parent / "r3")]) == 0  # rounds: fine


@pytest.fixture(scope="module")
def adaptive(tmp_path_factory) -> tuple[Path, float, float]:
    """vanilla + SpS at transformers' heuristic schedule, wall = 0.06 + a x steps + b x drafted."""
    d = tmp_path_factory.mktemp("ad")
    a_s, b_s = 0.020, 0.003
    van, sps = "", ""
    sched = Schedule("hf-heuristic", HF_START)
    for q in range(8):
        n = 80 + 10 * q
        van += _line(q, "vicuna-vanilla-float16", [1] * n, 0.03 + 0.022 * n)
        lens, left, k = [], n, HF_START
        while left:
            x = min(int(RNG.integers(0, k + 1)), left - 1) + 1  # accepted drafts 0..k, then the bonus
            lens.append(x)
            left -= x
            k = k + 2 if x - 1 >= k else max(1, k - 1)
        drafted = int(sched.ks(np.array(lens) - 1).sum())
        sps += _line(q, "vicuna-sps-68m-float16", lens, 0.06 + a_s * len(lens) + b_s * drafted)
    (d / "v.jsonl").write_text(van)
    (d / "s.jsonl").write_text(sps)
    t = d / "t"
    assert tr_main(["import", "--from", "specbench", str(d / "v.jsonl"), str(d / "s.jsonl"), "--schedule",
                    "hf-heuristic", "--out", str(t)]) == 0
    return t, a_s * 1000, b_s * 1000


def test_arms_of_a_chain_at_varying_k_cost_the_fit_a_plus_b_k(adaptive):
    t, a, b = adaptive
    tr = traces.load(t)
    Kid = tr.k_limits["sps"]
    rows = tr.costs[tr.costs.drafter == "sps"].sort_values("k")
    assert rows.k.tolist() == list(range(1, Kid + 1))
    np.testing.assert_allclose(rows.ms, a + b * rows.k, rtol=1e-9)
    assert [x.name for x in tr.select_arms(None)[0]] == ["plain@0"] + [f"sps@{k}" for k in range(1, Kid + 1)]
    prov = tr.manifest["log"]["costs"]
    assert "step_cost(k) = step_ms + per_drafted_ms x k" in prov["rule"]
    assert set(prov["methods"]["sps"]["half95_rel"]) == {str(k) for k in range(1, Kid + 1)}
    m = CostModel.for_trace(tr)  # an exact fit: no residual spread, no uncertainty
    np.testing.assert_allclose(m.round_ms([Arm("sps", 3)])[0], a + 3 * b, rtol=1e-9)
    assert m.uncertainty_rel < 1e-6


def test_the_uncertainty_is_the_fits_residual_spread(adaptive, tmp_path):
    t, _, _ = adaptive
    tr = traces.load(t)
    rows = [json.loads(x) for x in (t.parent / "s.jsonl").read_text().splitlines()]
    for i, o in enumerate(rows):  # +-10 ms on alternate turns: the fit has residuals now
        o["choices"][0]["wall_time"][0] += 0.01 * (-1) ** i
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(o) + "\n" for o in rows))
    u = tmp_path / "u"
    assert tr_main(["import", "--from", "specbench", str(t.parent / "v.jsonl"), str(tmp_path / "s.jsonl"),
                    "--schedule", "hf-heuristic", "--out", str(u)]) == 0
    tu = traces.load(u)
    f = tu.manifest["log"]["costs"]["methods"]["sps"]
    C = np.array(f["cov_ms2"])
    k = tr.k_limits["sps"]
    want = 1.96 * np.sqrt(C[1, 1] + 2 * k * C[1, 2] + k * k * C[2, 2]) / (f["step_ms"] + f["per_drafted_ms"] * k)
    assert f["half95_rel"][str(k)] == pytest.approx(want, rel=1e-9) and want > 1e-4
    assert CostModel.for_trace(tu).uncertainty_rel == pytest.approx(max(f["half95_rel"].values()), rel=1e-12)


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} absent (the shared Spec-Bench logs)")
def test_the_specbench_verb_on_one_real_set(tmp_path, capsys):
    from experiments.cli import main as ex_main

    s = "sentiment_analysis"
    out = tmp_path / "o"
    assert ex_main(["specbench", "--logs", str(SHARED), "--sets", s, "--runs", "3", "--out", str(out),
                    "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "Engine rules" in text and "not applicable" in text
    sel = pd.read_csv(out / "selection.csv").iloc[0]
    assert sel["arms"] == "plain@0,eagle@5,hydra@4" and sel["best_fixed_arm"] == "eagle@5"
    walls = {}  # the headroom, recomputed here from the files' wall times
    for f in sorted((SHARED / s).glob("*.jsonl")):
        m = next(x for x in ("vanilla", "eagle", "hydra") if f"-{x}-" in f.name)
        walls[m] = {o["question_id"]: sum(o["choices"][0]["wall_time"])
                    for o in map(json.loads, f.read_text().splitlines())}
    W = pd.DataFrame(walls)
    assert sel["log_best_method"] == W.sum().idxmin()
    assert sel["log_headroom_pct"] == pytest.approx(100 * (1 - W.min(axis=1).sum() / W.sum().min()), abs=0.005)
    t1 = pd.read_csv(out / f"table1_{s}.csv")
    assert {"ucbspec", "exp3spec", "uniform", "oracle"} <= {m.split(" ")[0].split(":")[0] for m in t1.method}
