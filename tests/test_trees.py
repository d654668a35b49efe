"""Draft trees as arms: exact from one teacher-forced pass (ranks), replay == live tree
verification on the tiny model, a hand-worked sparse tree, costs, and every setting."""

from __future__ import annotations

import json

import numpy as np
import pytest

import traces
from traces import Arm, arm_from_name, resolve_arms
from traces.accept import run_lengths
from traces.trees import TreeError, load_tree


def test_sparse_tree_by_hand(tmp_path):
    """Paths {0, 1, 00, 01, 10, 000}: ranks (0, 1, 5) accept 2 (node 01, no child 5);
    (1, 0, 0) accepts 2 (10 has no child); (1, 1) accepts 1; (2, ...) accepts 0; (0, 0, 0) 3."""
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"paths": [[0, 1], [1, 0], [0, 0, 0]]}))  # prefixes implied
    t = load_tree(str(f))
    assert t.n_nodes == 6 and t.depth == 3 and t.widths == (2, 3, 1)
    r = np.array([[0, 1, 5], [1, 0, 0], [1, 1, 0], [2, 0, 0], [0, 0, 0], [0, -1, 0]])
    assert t.accept(r).tolist() == [2, 2, 1, 0, 3, 1]
    b = load_tree("2x1")
    assert b.paths == ((0,), (1,), (0, 0), (1, 0)) and b.accept(np.array([[1, 0], [1, 1]])).tolist() == [2, 1]
    s = load_tree("sparse63")
    assert s.n_nodes == 63 and s.depth == 4
    with pytest.raises(TreeError, match="expected a branching"):
        load_tree("nope")


def _trace():
    r = np.array([[0, 1, 0, 0, 2, 0, 1, 1, 0, 0], [0, 0, 3, 0, 0, 0, 1, 0, 0, 0]])
    acc = run_lengths(r == 0, 4)
    return traces.from_arrays([acc], ["a", "b"], k_max=4, ranks=[r])


def test_tree_arms_replay_from_ranks_and_old_traces_still_load(tmp_path):
    tr = _trace()
    arm = arm_from_name("a@tree:2x2")
    assert arm.k == 2 and arm.name == "a@tree:2x2" and arm.is_tree
    assert tr.accepted(arm, 0).tolist() == [2, 2, 2, 1, 0, 2, 2, 2, 2, 1]
    # a chain is the tree 1x1x...: the same accepted lengths as the chain arm
    assert np.array_equal(tr.accepted(Arm("b", 0, tree="1x1x1"), 0), tr.accepted(Arm("b", 3), 0))
    d = traces.write(tr, tmp_path / "t")
    back = traces.load(d)
    assert back.manifest["schema_version"] == traces.SCHEMA_VERSION and np.array_equal(back.ranks, tr.ranks)
    # a schema-1.0 trace (as written before ranks existed): the bundled one, its manifest set back
    d10 = traces.write(traces.load("builtin:smollm2-greedy"), tmp_path / "v10")
    (d10 / "ranks.parquet").unlink()
    m = json.loads((d10 / "manifest.json").read_text())
    m["schema_version"] = "1.0"
    m.pop("rank_cap", None)
    for dr in m["drafters"]:
        for key in ("rank_depth", "ranks", "scoring", "draft_passes", "max_depth"):
            dr.pop(key, None)
    (d10 / "manifest.json").write_text(json.dumps(m))
    old = traces.load(d10)  # schema 1.0: no ranks, chain arms unchanged
    assert old.ranks is None and old.manifest["schema_version"] == "1.0"
    assert np.array_equal(old.accepted(Arm("rtn4", 3), 0), traces.load("builtin:smollm2-greedy").accepted(
        Arm("rtn4", 3), 0))
    with pytest.raises(traces.ArmError, match="records no ranks for drafter 'rtn4'"):
        old.accepted(Arm("rtn4", 0, tree="2x2"), 0)
    # single-candidate drafters (n-gram) need no ranks: their trees are their all-0 chain
    assert np.array_equal(old.accepted(Arm("pld", 0, tree="2x2"), 0), old.accepted(Arm("pld", 2), 0))


def test_tree_arm_costs_follow_the_rule():
    import pandas as pd

    from simulator.costs import CostModel

    rows = [dict(device="d", kind="verify", drafter="", k=k, batch_size=1, context_len=0, ms=10.0 + k)
            for k in (0, 8)] + [dict(device="d", kind="draft", drafter="a", k=1, batch_size=1, context_len=0, ms=2.0)]
    m = CostModel.from_table(pd.DataFrame(rows), "d")
    t = load_tree("2x2")  # 6 nodes, widths (2, 4)
    got = m.round_ms([Arm("a", 0, tree="2x2")])[0]
    # verify 6 draft tokens (+1) = 16 ms; one drafter step per depth, batched over its width
    assert got == pytest.approx(16.0 + m.draft_step_ms("a", 2, 0) + m.draft_step_ms("a", 4, 0))
    assert t.n_nodes == 6


def test_every_setting_and_learner_runs_with_mixed_chain_and_tree_arms(tmp_path):
    from simulator.cli import main as sim_main

    d = traces.write(_trace(), tmp_path / "t")
    out = tmp_path / "res"
    assert sim_main(["run", "--trace", str(d), "--setting", "replay,stochastic,adversarial", "--policy", "ucbspec",
                     "--policy", "exp3spec", "--arms", "a@2,a@tree:2x2,b@tree:3x1", "--runs", "2",
                     "--out", str(out), "--quiet"]) == 0
    assert sim_main(["run", "--trace", str(d), "--policy", "hedgespec", "--policy", "ucbspec", "--arms",
                     "a@2,b@2,a@tree:2x2", "--runs", "2", "--out", str(out), "--quiet"]) == 0
    import pandas as pd

    fixed = pd.read_parquet(out / "fixed.parquet")
    assert "a@tree:2x2" in set(fixed.arm)
    # the tree (a superset of the chain) never needs more rounds than the chain of its depth
    f = fixed.set_index("arm").rounds
    assert f["a@tree:2x2"] <= f["a@2"]


def test_resolve_tree_arms_by_glob():
    arms = resolve_arms("*@tree:2x1,plain@0", ["a", "b"], 4)
    assert [a.name for a in arms] == ["a@tree:2x1", "b@tree:2x1", "plain@0"]


def test_chain_vs_tree_table_per_category(tmp_path, capsys):
    from experiments.cli import main as exp_main
    from traces import synthetic

    d = traces.write(synthetic.tgd([0.8, 0.45], n_prompts=10, output_len=60, k_max=4, seed=3), tmp_path / "t")
    assert exp_main(["trees", "--trace", str(d), "--trees", "2x2,4x2x2x1", "--out", str(tmp_path / "o")]) == 0
    import pandas as pd

    t = pd.read_csv(tmp_path / "o" / "chain_vs_tree.csv")
    assert set(t.drafter) == {"tgd0", "tgd1"} and "overall" in set(t.category)
    assert t.best_tree.str.contains("@tree:").all() and (~t.best_chain.str.contains("@tree:")).all()
    assert ((t.diff_lo <= t.tree_minus_chain_ms) & (t.tree_minus_chain_ms <= t.diff_hi)).all()
    faster = t[t.verdict == "tree faster"]
    assert (faster.diff_hi < 0).all()
    # the bundled trace (schema 1.0) has no model-drafter ranks: one line, exit 2
    capsys.readouterr()
    assert exp_main(["trees", "--trace", "builtin:smollm2-sampling", "--drafters", "rtn4", "--out",
                     str(tmp_path / "x")]) == 2
    assert "records no ranks for drafter 'rtn4'" in capsys.readouterr().err


def test_verify_costs_reach_64_tokens_and_a_verify_only_merge_keeps_the_rest(tmp_path):
    """Collection measures verify rows up to 64 verified tokens (trees up to 63 nodes are then
    interpolated); ``costs --merge`` of a verify-only table replaces that device's verify rows
    and keeps its draft rows, the other devices and the ranks."""
    import pandas as pd
    import torch

    from gpu_collect.gpu_costs import merge
    from gpu_collect.models import load_model
    from gpu_collect.timing import COLS, measure_costs, nominal_costs, verify_ks
    from gpu_collect.tiny import build_tiny
    from simulator.costs import CostModel

    assert verify_ks(8) == [*range(9), 11, 15, 23, 31, 47, 63]
    assert verify_ks(20) == [*range(21), 23, 31, 47, 63]
    target = load_model(str(build_tiny(tmp_path / "t", seed=0)), torch.device("cpu"), torch.float32)
    got = measure_costs(target, [], 4, (16,), (1, 2), warmup=0, reps=1, progress=False)
    assert sorted(got["k"].unique()) == verify_ks(4) and got["k"].max() + 1 == 64
    nom = nominal_costs(target, [], 4)
    assert nom["ms"].iloc[-1] == pytest.approx(30.0 * (1 + 0.02 * 63))
    m = CostModel.from_table(nom, "nominal")
    assert m.verify_ms(load_tree("sparse63").n_nodes, 1, 0) == pytest.approx(30.0 * (1 + 0.02 * 63))
    assert not m.notes  # inside the table: nothing extrapolated

    tr = traces.load("builtin:smollm2-greedy")
    out = traces.write(tr, tmp_path / "copy")
    cpu = [d for d in tr.costs["device"].unique() if d.startswith("cpu")][0]
    new = pd.DataFrame([(cpu, "verify", "", k, 1, 256, 1.0 + k) for k in verify_ks(8)], columns=COLS)
    new.to_parquet(tmp_path / "v.parquet")
    (tmp_path / "v.json").write_text(json.dumps({"device": cpu, "method": "test"}))
    merge(str(out), str(tmp_path / "v.parquet"))
    after = traces.load(out)
    c = after.costs
    assert (c[(c.device == cpu) & (c.kind == "verify")]["ms"].to_numpy() == new["ms"].to_numpy()).all()
    assert len(c[(c.device == cpu) & (c.kind == "draft")]) == len(tr.costs[(tr.costs.device == cpu)
                                                                        & (tr.costs.kind == "draft")])
    assert len(c[c.device != cpu]) == len(tr.costs[tr.costs.device != cpu])
    np.testing.assert_array_equal(after.ranks, tr.ranks)
