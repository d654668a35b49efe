from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import traces
from traces import Arm, ArmError, TraceError, resolve_arms, synthetic


def test_roundtrip(tmp_path, tiny_trace):
    out = traces.write(tiny_trace, tmp_path / "t")
    back = traces.load(out)
    np.testing.assert_array_equal(back.accept, tiny_trace.accept)
    assert back.prompt_ids == tiny_trace.prompt_ids
    assert back.manifest["k_max"] == 3
    with pytest.raises(FileExistsError):
        traces.write(tiny_trace, out)


def test_builtin_demo_is_labelled_synthetic():
    tr = traces.load("builtin:synthetic-demo")
    assert tr.is_synthetic and "SYNTHETIC" in tr.label
    assert tr.n_prompts == 40 and set(tr.categories) == set(synthetic.DEFAULT_CATEGORIES)
    assert tr.costs is not None


def test_emitted_convention(tiny_trace):
    # a@2 at every position: min(2, L) + 1, capped at what remains
    assert tiny_trace.emitted(Arm("a", 2), 0).tolist() == [3, 2, 1, 3, 3, 2, 1, 1, 2, 1]
    assert tiny_trace.emitted(Arm("a", 0), 0).tolist() == [1] * 10  # plain decoding


def test_tgd_trace_has_truncated_geometric_rounds():
    p, K = 0.6, 3
    tr = synthetic.tgd([p], n_prompts=20, output_len=2000, k_max=8, seed=0)
    ys = np.concatenate([tr.fixed_arm_rounds(Arm("tgd0", K), i)[:-1] for i in range(20)])
    emp = np.bincount(ys, minlength=K + 2)[1:] / len(ys)
    law = [p ** (x - 1) * (1 - p) for x in range(1, K + 1)] + [p**K]
    np.testing.assert_allclose(emp, law, atol=4 * np.sqrt(0.25 / len(ys)))


def test_arm_selection():
    ds = ["pld", "ngram2", "skip"]
    assert [a.name for a in resolve_arms("plain@0,ngram*@1-2", ds, 8)] == [
        "plain@0", "ngram2@1", "ngram2@2"]
    assert len(resolve_arms(None, ds, 4)) == 1 + 3 * 4
    assert resolve_arms("pld@0", ds, 4)[0].name == "plain@0"
    for bad, msg in [("pld", "expected DRAFTER@K"), ("foo@1", "no drafter matches|unknown drafter"),
                     ("pld@9", "K must be in 0..8"), ("pld@x", "integer")]:
        with pytest.raises(ArmError, match=msg):
            resolve_arms(bad, ds, 8)


# -- invalid traces: each ends in one clear line naming file and field --------------------
def _mutate_parquet(path, fn):
    df = pq.read_table(path).to_pandas()
    df = fn(df)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)


def _case(tmp_path, tiny_trace_dir, name):
    d = tmp_path / name
    shutil.copytree(tiny_trace_dir, d)
    return d


CASES = {
    "accept_above_kmax": (
        lambda d: _mutate_parquet(d / "accept.parquet",
                                  lambda df: df.assign(accept=df.accept.where(df.pos != 0, 7))),
        r"accept.parquet: accept: expected 0..3"),
    "negative_accept": (
        lambda d: _mutate_parquet(d / "accept.parquet",
                                  lambda df: df.assign(accept=df.accept.where(df.pos != 2, -1))),
        r"accept.parquet: accept: expected 0..3"),
    "positions_out_of_order": (
        lambda d: _mutate_parquet(d / "accept.parquet", lambda df: df.iloc[::-1]),
        r"accept.parquet: pos: expected 0..N-1 in order"),
    "missing_column": (
        lambda d: _mutate_parquet(d / "accept.parquet", lambda df: df.drop(columns=["pos"])),
        r"accept.parquet: column 'pos' missing"),
    "extra_column": (
        lambda d: _mutate_parquet(d / "prompts.parquet", lambda df: df.assign(junk=1)),
        r"prompts.parquet: unexpected columns \['junk'\]"),
    "truncated_parquet": (
        lambda d: (d / "accept.parquet").write_bytes((d / "accept.parquet").read_bytes()[:50]),
        r"accept.parquet: cannot read as parquet"),
    "unknown_schema": (
        lambda d: (d / "manifest.json").write_text(
            json.dumps({**json.loads((d / "manifest.json").read_text()), "schema_version": "9.9"})),
        r"manifest.json: schema_version: expected one of \['1.0', '1.1', '1.2'\], got '9.9'"),
    "bad_json": (lambda d: (d / "manifest.json").write_text("{nope"),
                 r"manifest.json: not valid JSON"),
    "duplicate_prompt_ids": (
        lambda d: _mutate_parquet(d / "prompts.parquet", lambda df: pd.concat([df, df])),
        r"prompt_id: expected unique ids"),
    "zero_length_output": (
        lambda d: _mutate_parquet(d / "prompts.parquet",
                                  lambda df: df.assign(output_len=0, output_ids=[[]])),
        r"output_len: expected >= 1"),
    "missing_rows": (
        lambda d: _mutate_parquet(d / "accept.parquet", lambda df: df[df.pos != 4]),
        r"expected 10 \(one per output position\), got 9"),
    "nan_cost": (
        lambda d: pq.write_table(pa.table({"device": ["cpu"], "kind": ["verify"], "drafter": [""],
                                           "k": [0], "batch_size": [1], "context_len": [0],
                                           "ms": [float("nan")]}), d / "costs.parquet"),
        r"costs.parquet: .*ms"),
}


def _manifest(**change):
    def apply(d):
        m = json.loads((d / "manifest.json").read_text())
        for k, v in change.items():
            if isinstance(v, tuple):  # (index, field, value) inside drafters
                m[k][v[0]][v[1]] = v[2]
            else:
                m[k] = v
        (d / "manifest.json").write_text(json.dumps(m))
    return apply


def _cell(col, value):
    return lambda d: _mutate_parquet(d / "prompts.parquet", lambda df: df.assign(**{col: [value] * len(df)}))


def _cost_rows(**row):
    base = {"device": ["cpu"], "kind": ["verify"], "drafter": [""], "k": [0], "batch_size": [1], "context_len": [0],
            "ms": [1.0]}
    return lambda d: pq.write_table(pa.table({**base, **{k: [v] for k, v in row.items()}}), d / "costs.parquet")


def _symlink_loop(d):
    (d / "manifest.json").unlink()
    (d / "manifest.json").symlink_to(d / "manifest.json")


def _fifo(d):
    (d / "manifest.json").unlink()
    __import__("os").mkfifo(d / "manifest.json")


def _as_dir(d):
    (d / "manifest.json").unlink()
    (d / "manifest.json").mkdir()


# the hostile inputs of issue "13.": each was a traceback, a hang or silently accepted
CASES.update({
    "manifest_symlink_loop": (_symlink_loop, r"manifest.json: cannot read"),
    "manifest_is_a_fifo": (_fifo, r"manifest.json: expected a regular JSON file, got a FIFO"),
    "manifest_is_a_directory": (_as_dir, r"manifest.json: expected a regular JSON file, got a directory"),
    "manifest_nested_200000_deep": (lambda d: (d / "manifest.json").write_text("[" * 200000),
                                    r"manifest.json: not valid JSON \(nested too deeply\)"),
    "target_a_string": (_manifest(target="just-a-string"), r"manifest.json: target: expected an object"),
    "synthetic_a_string": (_manifest(synthetic="false"), r"manifest.json: synthetic: expected true or false"),
    "decoding_a_string": (_manifest(decoding="greedy"), r"manifest.json: decoding: expected a JSON object"),
    "seed_nan": (_manifest(seed=float("nan")), r"manifest.json: seed: expected a non-negative integer or null"),
    "name_a_dict": (_manifest(name={"x": 1}), r"manifest.json: name: expected a string"),
    "drafter_kind_evil": (_manifest(drafters=(0, "kind", "evil")), r"drafters\[0\].kind: expected one of"),
    "output_ids_strings": (_cell("output_ids", ["a"] * 10), r"output_ids: expected token ids"),
    "output_ids_negative": (_cell("output_ids", [-3] * 10), r"output_ids: expected token ids"),
    "turn_negative": (_cell("turn", -5), r"turn: expected 0..1000, got -5"),
    "prompt_len_2_62": (_cell("prompt_len", 2**62), r"prompt_len: expected 1..16777216"),
    "costs_no_rows": (lambda d: pq.write_table(_cost_table().slice(0, 0), d / "costs.parquet"),
                      r"costs.parquet: no rows"),
    "cost_k_1e12": (_cost_rows(k=10**12), r"costs.parquet: k: expected 0..1024"),
})


def _cost_table():
    return pa.table({"device": ["cpu"], "kind": ["verify"], "drafter": [""], "k": [0], "batch_size": [1],
                     "context_len": [0], "ms": [1.0]})


@pytest.mark.parametrize("name", sorted(CASES))
def test_invalid_trace_rejected(tmp_path, tiny_trace_dir, name):
    mutate, pattern = CASES[name]
    d = _case(tmp_path, tiny_trace_dir, name)
    mutate(d)
    problems = traces.validate(d)  # never raises, never blocks (a FIFO is not opened)
    assert problems, name
    assert any(__import__("re").search(pattern, p) for p in problems), problems
    assert all(str(d) in p for p in problems)  # every line names the file
    with pytest.raises(TraceError):
        traces.load(d)


def test_write_refuses_invalid(tmp_path, tiny_trace):
    bad = traces.Trace(tiny_trace.manifest, tiny_trace.prompts, tiny_trace.accept.copy())
    bad.accept[0, 0, 0] = 9
    with pytest.raises(TraceError, match="refusing to write"):
        traces.write(bad, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
