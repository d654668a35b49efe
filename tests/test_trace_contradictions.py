"""Validation that catches contradictions (issue "14.", item 4; hostile cases 18-24, 28-30, 49).

Each corrupted trace is reported by ``python -m traces validate`` (exit 1, one line naming the
file and field) and refused by ``simulator run`` (exit 2, one line, no traceback); arrays that
would not fit in memory are refused from estimates made before they are allocated (traces,
trees, batch serving); the bundled traces stay valid.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import traces
from simulator.cli import main as sim_main
from traces import guards
from traces import io as tio
from traces.cli import main as traces_main


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    """A greedy trace with costs and one-step ranks (hostile cases' ``T``)."""
    from traces import synthetic

    tr = synthetic.tgd([0.8, 0.5, 0.3], n_prompts=4, output_len=64, k_max=4, seed=3)
    return traces.write(tr, tmp_path_factory.mktemp("base") / "T")


def _table(name: str, fn):
    def apply(d: Path) -> None:
        df = pq.read_table(d / name).to_pandas()
        pq.write_table(pa.Table.from_pandas(fn(df), preserve_index=False), d / name)
    return apply


def _text(fn):
    def apply(d: Path) -> None:
        p = d / "manifest.json"
        p.write_text(fn(p.read_text()))
    return apply


def _manifest(fn):
    def apply(d: Path) -> None:
        m = json.loads((d / "manifest.json").read_text())
        fn(m)
        (d / "manifest.json").write_text(json.dumps(m))
    return apply


def _link_out(name: str):
    def apply(d: Path) -> None:
        elsewhere = d.parent / f"elsewhere-{d.name}"
        elsewhere.mkdir()
        shutil.move(d / name, elsewhere / name)
        (d / name).symlink_to(elsewhere / name)
    return apply


def _costs(fn):
    return _table("costs.parquet", fn)


def _ranks(fn):
    return _table("ranks.parquet", fn)


def _flip_first_zero(r: pd.DataFrame) -> pd.DataFrame:
    """One rank-0 entry of drafter tgd2 made 1: the chain accepted there, the ranks say it cannot."""
    i = int(np.flatnonzero((r["drafter"] == "tgd2").to_numpy() & (r["rank"] == 0).to_numpy())[0])
    rank = r["rank"].to_numpy().copy()
    rank[i] = 1
    return r.assign(rank=rank)


def _set(path: list, value):
    def fn(m):
        for key in path[:-1]:
            m = m[key]
        m[path[-1]] = value
    return fn


# case: (mutation, the line validate prints)
CASES = {
    # 18: draft rows only (run: IndexError in costs.default_device)
    "18_costs_draft_rows_only": (_costs(lambda c: c[c.kind == "draft"]),
                                 r"costs\.parquet: kind: device\(s\) \['nominal'\] have draft rows only"),
    # 19: two rows for one cell, conflicting (x100) or identical (refused as well: one value per cell)
    "19_costs_conflicting_duplicates": (_costs(lambda c: pd.concat([c, c.assign(ms=c.ms * 100)])),
                                        r"costs\.parquet: ms: expected one row per \(device, kind, drafter, k, "
                                        r"batch_size, context_len\), got 8 repeated cells \(8 with different ms\)"),
    "19_costs_identical_duplicates": (_costs(lambda c: pd.concat([c, c])),
                                      r"costs\.parquet: ms: expected one row per .* \(0 with different ms\)"),
    # 20: absurd values, absolute (100 ns .. 1 hour) and relative to the device's plain step
    "20_costs_1e300": (_costs(lambda c: c.assign(ms=1e300)), r"costs\.parquet: ms: expected 0\.0001\.\.3\.6e\+06 ms"),
    "20_costs_1e-300": (_costs(lambda c: c.assign(ms=1e-300)), r"costs\.parquet: ms: expected 0\.0001\.\.3\.6e\+06"),
    "20_costs_draft_1e4_plain": (_costs(lambda c: c.assign(ms=c.ms.where(c.kind != "draft", 30 * 1e4 * 1.01))),
                                 r"costs\.parquet: ms: expected verify rows within \[plain / 1000, plain x 10000\].*"
                                 r"got 303000 at device 'nominal', draft 'tgd0'"),
    "20_costs_verify_below_plain_1e3": (_costs(lambda c: c.assign(ms=c.ms.where((c.kind != "verify") | (c.k < 4),
                                                                                0.01))),
                                        r"costs\.parquet: ms: expected verify rows within .* got 0\.01 at device "
                                        r"'nominal', verify, k 4"),
    # 21: ranks that contradict accept, or duplicated rows with other ranks
    "21_ranks_all_3": (_ranks(lambda r: r.assign(rank=np.uint8(3))),
                       r"ranks\.parquet: rank: contradicts accept\.parquet for drafter 'tgd0' at \d+ positions, "
                       r"e\.g\. prompt 'syn-0000', pos 0"),
    "21_ranks_duplicated_rows": (_ranks(lambda r: pd.concat([r, r.assign(rank=np.uint8(5))])),
                                 r"ranks\.parquet: rank: expected one row per \(prompt_id, drafter, pos, depth\), got "
                                 r"768 repeated"),
    "21_ranks_one_flipped": (_ranks(_flip_first_zero),
                             r"ranks\.parquet: rank: contradicts accept\.parquet for drafter 'tgd2' at \d+ "
                             r"positions.*: accept [1-4], but the ranks give [0-3] \("),
    "21_rank_depth_claimed_2": (_manifest(lambda m: m["drafters"][0].update(rank_depth=2)),
                                r"ranks\.parquet: rank: contradicts accept\.parquet for drafter 'tgd0' .* over depths"),
    # 22: a key twice (json.loads keeps the last one)
    "22_manifest_duplicate_key": (_text(lambda t: t.replace('"k_max": 4', '"k_max": 4, "k_max": 100')),
                                  r"manifest\.json: duplicate key 'k_max'; expected each key once"),
    "22_duplicate_key_nested": (_text(lambda t: t.replace('"temperature": 0.0', '"temperature": 0.0, '
                                                                                '"temperature": 0.7')),
                                r"manifest\.json: duplicate key 'temperature'"),
    # 23: loose manifest fields
    "23_schema_10_with_ranks": (_manifest(_set(["schema_version"], "1.0")),
                                r"manifest\.json: schema_version: expected '1\.1' with ranks\.parquet present"),
    "23_temperature_hot": (_manifest(_set(["decoding", "temperature"], "hot")),
                           r"manifest\.json: decoding\.temperature: expected a number >= 0 or null, got 'hot'"),
    "23_temperature_greedy_0.7": (_manifest(_set(["decoding", "temperature"], 0.7)),
                                  r"manifest\.json: decoding\.temperature: expected 0 \(or null\) for kind 'greedy'"),
    "23_max_new_tokens_string": (_manifest(_set(["decoding", "max_new_tokens"], "lots")),
                                 r"manifest\.json: decoding\.max_new_tokens: expected an integer"),
    "23_rank_depth_string": (_manifest(lambda m: m["drafters"][1].update(rank_depth="x")),
                             r"manifest\.json: drafters\[1\]\.rank_depth: expected an integer >= 1"),
    # 49: files inside the folder that are links out of it
    "49_accept_links_out": (_link_out("accept.parquet"),
                            r"accept\.parquet: a symbolic link out of the trace folder \(to .*elsewhere"),
    "49_manifest_links_out": (_link_out("manifest.json"),
                              r"manifest\.json: a symbolic link out of the trace folder"),
    "49_costs_link_to_dev_zero": (lambda d: ((d / "costs.parquet").unlink(), (d / "costs.parquet").symlink_to(
        "/dev/zero")), r"costs\.parquet: a symbolic link out of the trace folder \(to /dev/zero\)"),
}


def _copy(base: Path, tmp_path: Path, name: str) -> Path:
    d = tmp_path / name
    shutil.copytree(base, d)
    return d


def _refused_by_run(d: Path, tmp_path: Path, capsys, *extra: str) -> str:
    capsys.readouterr()
    rc = sim_main(["run", "--trace", str(d), "--runs", "1", "--out", str(tmp_path / "out"), "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()
    return err


@pytest.mark.parametrize("name", sorted(CASES))
def test_contradiction_is_found_by_validate_and_refused_by_run(base_dir, tmp_path, capsys, name):
    mutate, pattern = CASES[name]
    d = _copy(base_dir, tmp_path, name)
    mutate(d)
    capsys.readouterr()
    assert traces_main(["validate", "--trace", str(d)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(re.search(pattern, ln) for ln in lines), lines
    assert all(ln.startswith(str(d)) for ln in lines), lines  # each line names the file
    err = _refused_by_run(d, tmp_path, capsys, "--objective", "time")
    assert re.search(pattern, err) or any(ln in err for ln in lines), err


def test_the_untouched_trace_and_the_bundled_traces_are_valid(base_dir):
    assert traces.validate(base_dir) == []
    for name in ("smollm2-greedy", "smollm2-sampling", "synthetic-demo"):  # every new check holds on them
        assert traces.load(f"builtin:{name}").n_prompts > 0


def test_run_with_rounds_objective_refuses_a_cost_table_without_verify_rows(base_dir, tmp_path, capsys):
    d = _copy(base_dir, tmp_path, "draft_only")
    CASES["18_costs_draft_rows_only"][0](d)
    assert "draft rows only" in _refused_by_run(d, tmp_path, capsys, "--objective", "rounds")


def test_cost_model_without_verify_rows_is_a_cost_error():
    from simulator.costs import CostError, CostModel

    draft = pd.DataFrame([dict(device="d", kind="draft", drafter="a", k=1, batch_size=1, context_len=0, ms=1.0)])
    with pytest.raises(CostError, match="no verify rows"):
        CostModel.from_table(draft)


def test_links_inside_the_folder_and_a_linked_folder_are_allowed(base_dir, tmp_path):
    d = _copy(base_dir, tmp_path, "inner")
    (d / "data").mkdir()
    shutil.move(d / "accept.parquet", d / "data" / "accept.parquet")
    (d / "accept.parquet").symlink_to(Path("data") / "accept.parquet")
    assert traces.validate(d) == []
    (tmp_path / "named").symlink_to(d)  # the folder the user names may itself be a link
    assert traces.validate(tmp_path / "named") == []


# -- memory estimates before large allocations --------------------------------------------------
def _bomb(d: Path, base: Path, n_prompts: int, long: int) -> None:
    """A "zip bomb" trace: one output of ``long`` tokens, ``n_prompts - 1`` of one token, one
    drafter: small files, a dense (prompts x drafters x longest output) accept array."""
    shutil.copytree(base, d)
    for f in ("ranks.parquet", "costs.parquet"):
        (d / f).unlink()
    m = json.loads((d / "manifest.json").read_text())
    m.update(schema_version="1.0", drafters=m["drafters"][:1])
    m.pop("rank_cap")
    (d / "manifest.json").write_text(json.dumps(m))
    lens = np.ones(n_prompts, np.int64)
    lens[0] = long
    ids = [f"p{i}" for i in range(n_prompts)]
    pq.write_table(pa.table({
        "prompt_id": ids, "category": ["c"] * n_prompts, "turn": np.zeros(n_prompts, np.int64),
        "prompt_len": np.ones(n_prompts, np.int64), "output_len": lens, "finish_reason": ["length"] * n_prompts,
        "output_ids": pa.array([np.zeros(n, np.int32) for n in lens], type=pa.list_(pa.int32()))}),
        d / "prompts.parquet", compression="zstd")
    pid = np.repeat(np.arange(n_prompts, dtype=np.int32), lens)
    pq.write_table(pa.table({
        "prompt_id": pa.DictionaryArray.from_arrays(pa.array(pid), pa.array(ids)).cast(pa.string()),
        "drafter": pa.array(["tgd0"] * len(pid)),
        "pos": pa.array(np.concatenate([np.arange(n, dtype=np.int32) for n in lens])),
        "accept": pa.array(np.zeros(len(pid), np.int8))}), d / "accept.parquet", compression="zstd")


def test_dense_arrays_over_the_limit_are_refused_before_allocation(base_dir, tmp_path, capsys, monkeypatch):
    d = tmp_path / "bomb"
    _bomb(d, base_dir, 2000, 2000)
    assert traces.validate(d) == []  # valid under the machine's limit
    tables = sum(b for _, b in tio._table_bytes(d))
    dense = 2000 * 1 * 2000 * 2
    monkeypatch.setattr(guards, "MAX_MEMORY_BYTES", int(tables + dense / 2))  # the tables fit, the arrays do not
    problems = traces.validate(d)
    assert len(problems) == 1 and re.search(
        r"bomb/prompts\.parquet: output_len: loading the trace would need about \d+\.\d+ MB of memory \(accept array "
        r"2000 prompts x 1 drafters x 2000 positions .*over the .* limit \(the limit set in traces\.guards",
        problems[0]), problems
    assert "output_len: loading the trace would need" in _refused_by_run(d, tmp_path, capsys)
    monkeypatch.setattr(guards, "MAX_MEMORY_BYTES", int(tables / 2))  # the tables' rows, from the footers
    problems = traces.validate(d)
    assert len(problems) == 1 and re.search(r"bomb/(accept|prompts)\.parquet: rows: reading the trace would need",
                                            problems[0]), problems


def test_the_reported_zip_bomb_is_refused_in_one_line(base_dir, tmp_path, capsys, monkeypatch):
    """Hostile case 24 as reported: 5000 prompts, one output of 2^22 tokens (~40 GB dense),
    refused on any machine (the limit held at 8 GB, as on a machine with 10 GB of RAM)."""
    monkeypatch.setattr(guards, "MAX_MEMORY_BYTES", 8 << 30)
    d = tmp_path / "B"
    _bomb(d, base_dir, 5000, 1 << 22)
    capsys.readouterr()
    assert traces_main(["validate", "--trace", str(d)]) == 1
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"{d}/prompts.parquet: output_len: loading the trace would need about 4"), out
    assert len(out.splitlines()) == 1


def test_memory_limit_follows_ulimit(monkeypatch):
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda what: (guards._vm_size() + 10**9, resource.RLIM_INFINITY))
    limit, why = guards.memory_limit()
    assert limit == pytest.approx(0.8e9, rel=0.05) and "ulimit -v" in why


def test_serving_arrays_over_the_limit_are_refused_before_allocation(base_dir, tmp_path, capsys, monkeypatch):
    base = ["serve", "--trace", str(base_dir), "--arms", "tgd0@1-4", "--batch-sizes", "1-4", "--quiet"]
    rc = sim_main([*base, "--runs", "100000000", "--out", str(tmp_path / "s1")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and not (tmp_path / "s1").exists()
    assert re.match(r"error: --runs 100000000 x --batch-sizes 1,2,3,4: batch serving would need about \d+\.\d+ GB "
                    r"of memory \(.*\), over the .* limit \(80% of .*\); use fewer --runs", err), err
    rc = sim_main([*base, "--runs", "200", "--max-memory", "0.001", "--out", str(tmp_path / "s2")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "batch serving would need" in err and "limit (--max-memory)" in err
    assert sim_main([*base, "--runs", "2", "--out", str(tmp_path / "s3")]) == 0  # small runs still run


# -- trees: refused from the name or the file, before anything is built ---------------------
def _nested(d: Path) -> str:
    f = d / "n.json"
    f.write_text('{"paths": ' + "[" * 100000 + "]" * 100000 + "}")
    return str(f)


def _dup(d: Path) -> str:
    f = d / "dup.json"
    f.write_text('{"paths": [[0]], "paths": [[0], [1], [2]]}')
    return str(f)


def _long(d: Path) -> str:
    f = d / "long.json"
    f.write_text(json.dumps({"paths": [[0] * 200]}))  # 100 000 long: 5e9 prefix entries without the check
    return str(f)


def _wide(d: Path) -> str:
    f = d / "wide.json"
    f.write_text(json.dumps({"paths": [[i, j] for i in range(100) for j in range(11)]}))
    return str(f)


TREES = {
    "28_nested_100000_deep": (_nested, r"n\.json: paths: expected .* \(nested too deeply\)"),
    "22_tree_duplicate_key": (_dup, r"dup\.json: duplicate key 'paths'"),
    "tree_path_200_long": (_long, r"long\.json: paths: expected .*lists of 1\.\.127 integer ranks 0\.\.254"),
    "tree_file_1100_nodes": (_wide, r"wide\.json': nodes 102\d; expected at most 1024"),
    "29_branching_1e20": (lambda d: "99999999999999999999", r"largest rank above 10\^12; expected at most 254"),
    "30_branching_3000x3000": (lambda d: "3000x3000", r"'3000x3000': largest rank 2999; expected at most 254"),
    "30_branching_32x32": (lambda d: "32x32", r"'32x32': nodes 1056; expected at most 1024"),
    "branching_5000_digits": (lambda d: "9" * 5000, r"largest rank above 10\^12"),
    "branching_depth_200": (lambda d: "x".join(["1"] * 200), r"depth 200; expected at most 127"),
}


@pytest.mark.parametrize("name", sorted(TREES))
def test_hostile_tree_is_refused_in_one_line(base_dir, tmp_path, capsys, name):
    make, pattern = TREES[name]
    tree = make(tmp_path)
    t0 = time.perf_counter()
    err = _refused_by_run(base_dir, tmp_path, capsys, "--arms", f"tgd0@1,tgd0@tree:{tree}")
    assert time.perf_counter() - t0 < 20  # 3000x3000 took 54 s and 2.6 GB before failing
    assert re.search(pattern, err), err


def test_the_shipped_trees_and_a_1024_node_tree_still_load():
    from traces.trees import load_tree

    assert load_tree("sparse63").n_nodes == 63 and load_tree("4x2x2x1").n_nodes == 44
    assert load_tree("32x31").n_nodes == 32 + 32 * 31 == 1024


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_a_link_loop_inside_the_folder_is_still_reported(base_dir, tmp_path):
    d = _copy(base_dir, tmp_path, "loop")
    (d / "manifest.json").unlink()
    (d / "manifest.json").symlink_to(d / "manifest.json")
    assert any("manifest.json: cannot read" in p for p in traces.validate(d))
