"""``python -m experiments cost-check`` end to end on a tiny random Llama (CPU, 3 prompts): the
folder's files, the live arm sequences equal to the simulator's replay (checked here again, not
only by the command), the error's parts adding up, and the summary recomputed from the rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch", reason="cost-check needs the [collect] extra")

from experiments import cost_error as E  # noqa: E402
from experiments.cli import main  # noqa: E402
from experiments.cost_check import _by_drafted, _predictions, first_difference, replay_arms  # noqa: E402
from gpu_collect.tiny import build_tiny  # noqa: E402
from simulator.runner import RunConfig, resolve  # noqa: E402

pytestmark = pytest.mark.collect

POLICIES = ("ucbspec", "exp3spec", "fixed:pld@2")
ARMS = "plain@0,pld@1-3,early2@1-2,suffix@1-3"
FILES = ("trace/manifest.json", "live/rounds.csv", "prompts.csv", "kinds.csv", "summary.csv", "arms_check.csv",
         "cost_check.png", "config.json")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and the machine is shared
    root = tmp_path_factory.mktemp("costcheck")
    t = build_tiny(root / "target", seed=0)
    out = root / "out"
    argv = ["cost-check", "--target", str(t), "--drafter", "pld", "--drafter", "early:2", "--drafter", "suffix",
            "--prompts", "builtin:specregret-84", "--limit", "3", "--max-new-tokens", "16", "--k-max", "3",
            "--arms", ARMS, "--cost-contexts", "32", "--cost-budget", "0.5", "--seed", "2", "--device", "cpu",
            "--out", str(out), "--quiet"]
    for p in POLICIES:
        argv += ["--policy", p]
    try:
        rc = main(argv)
    finally:
        torch.set_num_threads(threads)
    return rc, out


def test_folder_files_and_config(folder):
    rc, out = folder
    assert rc == 0
    for f in FILES:
        assert (out / f).is_file(), f"{out}/{f}: expected cost-check to write it"
    conf = json.loads((out / "config.json").read_text())
    assert conf["cost_fits"] == ["raw", "fit"] and conf["arm_sequences_differ"] == 0
    assert conf["cost_device"].startswith("cpu:")
    rows = pd.read_csv(out / "prompts.csv", dtype={"prompt_id": str})
    assert len(rows) == 2 * len(POLICIES) * 3 and set(rows.cost_fit) == {"raw", "fit"}
    kinds = set(pd.read_csv(out / "kinds.csv").kind)
    assert {"pld", "early", "suffix"} & kinds and kinds <= {"pld", "early", "suffix", "plain"}


def test_live_arm_sequence_equals_replay(folder):
    """Recomputed here from the live log and a fresh replay: equal round for round, every fit."""
    _, out = folder
    rounds = pd.read_csv(out / "live" / "rounds.csv", dtype={"prompt_id": str})
    for fit in ("raw", "fit"):
        cfg = RunConfig(trace=str(out / "trace"), policies=POLICIES, runs=1, seed=2, arms=ARMS, cost_fit=fit,
                        engine="numpy", cost_device=json.loads((out / "config.json").read_text())["cost_device"])
        prep = resolve(cfg)
        for pol in POLICIES:
            _, seqs = replay_arms(prep, pol)
            live = rounds[rounds.policy == pol]
            live = live[live.cost_fit == live.cost_fit.iloc[0]]  # a fit that changes no decision is run once
            for p, pid in enumerate(prep.env.prompt_ids):
                assert live[live.prompt_id == pid].arm.tolist() == seqs[p], (fit, pol, pid)
    checks = pd.read_csv(out / "arms_check.csv")
    assert (checks.first_difference == -1).all() and (checks.rounds_live == checks.rounds_replay).all()


def test_first_difference_names_the_round():
    assert first_difference(["a", "b", "c"], ["a", "b", "c"]) == -1
    assert first_difference(["a", "x", "c"], ["a", "b", "c"]) == 1
    assert first_difference(["a", "b"], ["a", "b", "c"]) == 2


def test_error_parts_add_up_and_predictions_are_the_simulators(folder):
    _, out = folder
    rows = pd.read_csv(out / "prompts.csv")
    # the simulator's time per prompt == the cost model's round times summed over the live rounds
    np.testing.assert_allclose(rows.predicted_s, rows.pred_rounds_s, rtol=1e-9)
    parts = rows[[f"err_{p}_s" for p in E.PARTS]].sum(axis=1)
    np.testing.assert_allclose(parts, rows.measured_s - rows.predicted_s, rtol=1e-9, atol=1e-12)
    assert (rows.meas_other_s > -1e-6).all() and (rows.measured_s > 0).all()
    np.testing.assert_allclose(rows.error_pct, 100 * (rows.predicted_s / rows.measured_s - 1), rtol=1e-9)


def test_summary_is_computed_from_the_rows(folder):
    _, out = folder
    rows = pd.read_csv(out / "prompts.csv", dtype={"prompt_id": str})
    summ = pd.read_csv(out / "summary.csv")
    for fit in ("raw", "fit"):
        for pol in POLICIES:
            g = rows[(rows.cost_fit == fit) & (rows.policy == pol)]
            err = 100 * (g.predicted_s / g.measured_s - 1)
            s = summ[(summ.cost_fit == fit) & (summ.group == "policy") & (summ.name == pol)].iloc[0]
            assert s.median_abs_pct == pytest.approx(np.median(np.abs(err)), rel=1e-9)
            assert s.total_pct == pytest.approx(100 * (g.predicted_s.sum() / g.measured_s.sum() - 1), rel=1e-9)
            assert s.median_abs_lo <= s.median_abs_pct <= s.median_abs_hi
            assert s.total_lo <= s.total_pct <= s.total_hi
        every = rows[rows.cost_fit == fit].groupby("prompt_id")[["measured_s", "predicted_s"]].sum()
        s = summ[(summ.cost_fit == fit) & (summ.group == "all")].iloc[0]
        assert s.measured_s == pytest.approx(every.measured_s.sum(), rel=1e-9)
        assert s.median_abs_pct == pytest.approx(np.median(np.abs(100 * (every.predicted_s / every.measured_s - 1))))
    kinds = pd.read_csv(out / "kinds.csv")
    for (fit, kind), g in kinds.groupby(["cost_fit", "kind"]):
        s = summ[(summ.cost_fit == fit) & (summ.group == "kind") & (summ.name == kind)].iloc[0]
        assert s.predicted_s == pytest.approx(g.predicted_s.sum()) and s.rounds == g.rounds.sum()


def test_per_drafted_token_diagnostic(folder):
    """Charged per drafted token: k drafted costs the arm's round, 0 drafted costs plain's; the
    summary's diagnostic totals come from the rows."""
    _, out = folder
    conf = json.loads((out / "config.json").read_text())
    prep = resolve(RunConfig(trace=str(out / "trace"), policies=POLICIES, runs=1, seed=2, arms=ARMS,
                             cost_device=conf["cost_device"], engine="numpy"))
    cost_s, ver_s = _predictions(prep)
    f = _by_drafted(prep, cost_s, ver_s)
    P, A = cost_s.shape
    p, a = np.repeat(np.arange(P), A), np.tile(np.arange(A), P)
    ks = np.array([arm.k for arm in prep.arms])
    np.testing.assert_allclose(f(p, a, ks[a]), cost_s[p, a], rtol=1e-12)
    plain = [arm.name for arm in prep.arms].index("plain@0")
    np.testing.assert_allclose(f(p, a, np.zeros_like(a)), cost_s[p, plain], rtol=1e-12)
    rows = pd.read_csv(out / "prompts.csv", dtype={"prompt_id": str})
    live = pd.read_csv(out / "live" / "rounds.csv", dtype={"prompt_id": str})
    live = live[live.policy == POLICIES[0]]
    pix = {pid: i for i, pid in enumerate(prep.env.prompt_ids)}
    aix = {arm.name: i for i, arm in enumerate(prep.arms)}
    want = f(live.prompt_id.map(pix).to_numpy(), live.arm.map(aix).to_numpy(), live.drafted.to_numpy())
    want = pd.Series(want, index=live.index).groupby(live.prompt_id).sum()
    summ = pd.read_csv(out / "summary.csv")
    g = rows[(rows.cost_fit == "raw") & (rows.policy == POLICIES[0])]
    np.testing.assert_allclose(g.set_index("prompt_id").pred_drafted_s[want.index], want, rtol=1e-9)
    s = summ[(summ.cost_fit == "raw") & (summ.name == POLICIES[0])].iloc[0]
    assert s.drafted_total_pct == pytest.approx(100 * (g.pred_drafted_s.sum() / g.measured_s.sum() - 1), rel=1e-9)


def test_better_fit_and_table():
    rows = pd.DataFrame({"cost_fit": ["raw"] * 4 + ["fit"] * 4, "policy": "p", "prompt_id": list("abcd") * 2,
                         "measured_s": 1.0, "predicted_s": [1.01, 0.99, 1.02, 0.98, 1.3, 1.4, 1.35, 1.32],
                         **{f"err_{p}_s": 0.0 for p in E.PARTS}})
    summ = E.summarise(rows, pd.DataFrame(columns=["cost_fit", "policy", "prompt_id", "kind", "rounds",
                                                   "measured_s", "predicted_s"]), b=200)
    raw = summ[(summ.cost_fit == "raw") & (summ.group == "policy")].iloc[0]
    assert raw.median_abs_pct == pytest.approx(1.5) and raw.total_pct == pytest.approx(0.0, abs=1e-9)
    assert E.better_fit(summ).startswith("raw (")
    lines = E.table_lines(summ)
    assert max(map(len, lines)) <= 100 and "median |err|" in lines[0]


def test_bad_cost_fit_refused(tmp_path, capsys):
    assert main(["cost-check", "--target", "x", "--drafter", "pld", "--prompts", "builtin:specregret-84",
                 "--cost-fit", "raw,smooth", "--out", str(tmp_path / "o")]) == 2
    assert "--cost-fit" in capsys.readouterr().err
