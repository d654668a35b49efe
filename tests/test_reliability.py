"""Reliability: hostile inputs end in one clear error, results are byte-identical, no
unsafe deserialisation anywhere in the code."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import traces
from gpu_collect.errors import CollectError
from gpu_collect.prompts import load_questions
from simulator.cli import main as sim_main

ROOT = Path(__file__).resolve().parent.parent
FILES = ["accept.parquet", "prompts.parquet", "manifest.json"]

mutation = st.one_of(
    st.tuples(st.just("truncate"), st.sampled_from(FILES), st.floats(0, 1)),
    st.tuples(st.just("garble"), st.sampled_from(FILES), st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("drop"), st.sampled_from(FILES[:2]), st.integers(0, 10)),
    st.tuples(st.just("cell"), st.sampled_from(FILES[:2]), st.tuples(
        st.integers(0, 10), st.integers(0, 30),
        st.one_of(st.integers(-1000, 1000), st.floats(allow_nan=True), st.text(max_size=5), st.none()))),
    st.tuples(st.just("shuffle"), st.sampled_from(FILES[:2]), st.integers(0, 2**31)),
    st.tuples(st.just("manifest"), st.sampled_from(["schema_version", "k_max", "kind", "drafters", "target",
                                                    "synthetic", "decoding", "seed", "name", "information"]),
              st.one_of(st.integers(-5, 500), st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=2),
                        st.booleans(), st.floats(allow_nan=True), st.dictionaries(st.text(max_size=3),
                                                                                   st.integers(), max_size=2))),
)


def _apply(d: Path, m) -> None:
    kind, name, arg = m
    path = d / name
    if kind == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * arg)])
    elif kind == "garble":
        data = bytearray(path.read_bytes())
        at = len(data) // 2
        data[at: at + len(arg)] = arg
        path.write_bytes(bytes(data))
    elif kind == "manifest":
        try:
            man = json.loads((d / "manifest.json").read_text())
        except (ValueError, UnicodeDecodeError):
            return  # already broken by an earlier mutation
        man[name] = arg
        (d / "manifest.json").write_text(json.dumps(man))
    else:
        try:
            df = pq.read_table(path).to_pandas()
        except (pa.ArrowInvalid, OSError):
            return  # already broken by an earlier mutation
        if kind == "drop":
            df = df.drop(columns=[df.columns[arg % len(df.columns)]])
        elif kind == "shuffle":
            df = df.sample(frac=1.0, random_state=arg % 2**31)
        else:
            col, row, val = arg
            c = df.columns[col % len(df.columns)]
            df[c] = df[c].astype(object)
            df.iloc[row % len(df), df.columns.get_loc(c)] = val
        try:
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            path.write_bytes(b"not parquet")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(muts=st.lists(mutation, min_size=1, max_size=3))
def test_fuzzed_traces_never_crash_and_never_load_wrong(tiny_trace_dir, muts):
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "t"
        shutil.copytree(tiny_trace_dir, d)
        for m in muts:
            _apply(d, m)
        problems = traces.validate(d)  # must not raise
        assert all(isinstance(p, str) and p.startswith(str(d)) for p in problems)
        if problems:
            with pytest.raises(traces.TraceError):
                traces.load(d)
        else:  # what loads satisfies the contract
            tr = traces.load(d)
            for p in range(tr.n_prompts):
                n = int(tr.output_lens[p])
                a = tr.accept[p, :, :n]
                assert (a >= 0).all() and (a <= np.minimum(tr.k_max, n - np.arange(n))).all()


_HOSTILE_LINES = st.sampled_from([b"\xff\xfe", b"[" * 5000, b'{"question_id": ' + b"9" * 5000 + b"}",
                                  b'{"question_id": 1, "turns": ["a\\ud800"]}', b"\xef\xbb\xbf",
                                  '{"question_id": 2, "turns": ["a\u2028b"]}'.encode()])


@settings(max_examples=120, deadline=None)
@given(lines=st.lists(st.one_of(
    st.text(max_size=30).map(str.encode),
    _HOSTILE_LINES,
    st.dictionaries(st.sampled_from(["question_id", "category", "turns", "reference", "x"]),
                    st.one_of(st.integers(), st.text(max_size=8), st.lists(st.text(max_size=8), max_size=3),
                              st.none(), st.booleans()), max_size=5).map(lambda d: json.dumps(d).encode())),
    min_size=1, max_size=5))
def test_fuzzed_question_files(lines):
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "question.jsonl"
        f.write_bytes(b"\n".join(lines) + b"\n")
        try:
            qs, _ = load_questions(str(f))
        except CollectError as exc:
            msg = str(exc)
            assert str(f) in msg and "\n" not in msg
            return
        for q in qs:  # accepted input is well formed (and encodable: the tokenizer will take it)
            assert q.turns and all(isinstance(t, str) and t.strip() and t.encode("utf-8") for t in q.turns)


_LOG_VALUES = st.one_of(st.integers(-3, 40), st.none(), st.text(max_size=4), st.booleans(),
                        st.lists(st.integers(-2, 9), max_size=6))


@settings(max_examples=80, deadline=None)
@given(fmt=st.sampled_from(["vllm", "sglang", "specbench"]), fields=st.dictionaries(st.sampled_from(
    ["num_spec_tokens", "acceptance_histogram", "num_spec_steps", "per_step_accepted", "completion_tokens",
     "spec_verify_ct", "spec_accept_histogram", "new_tokens", "accept_lengths", "decoding_steps", "question_id"]),
    _LOG_VALUES, max_size=8))
def test_fuzzed_engine_logs_end_in_one_line_or_a_valid_trace(fmt, fields):
    """Engine-log lines with any of their fields replaced: the import either builds a trace that
    validates, or refuses with one line naming the file and line."""
    from traces.importers import build_trace

    sd = {k: fields.get(k, v) for k, v in {"num_spec_tokens": 3, "acceptance_histogram": [1, 1, 0, 1],
                                            "num_spec_steps": 3, "num_accepted_draft_tokens": 4}.items()}
    if "per_step_accepted" in fields:
        sd["per_step_accepted"] = fields["per_step_accepted"]
    obj = {"vllm": {"id": "r", "usage": {"completion_tokens": fields.get("completion_tokens", 9)},
                    "metrics": {"speculative_decoding": sd}},
           "sglang": {"text": "t", "meta_info": {"completion_tokens": fields.get("completion_tokens", 9),
                                                 "spec_verify_ct": fields.get("spec_verify_ct", 3),
                                                 "spec_accept_histogram": fields.get("spec_accept_histogram",
                                                                                     [1, 1, 0, 1])}},
           "specbench": {"question_id": fields.get("question_id", 1), "choices": [{
               "new_tokens": fields.get("new_tokens", [9]), "accept_lengths": fields.get("accept_lengths", [2, 3, 4]),
               "decoding_steps": fields.get("decoding_steps", [3])}]}}[fmt]
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "log.jsonl"
        f.write_text(json.dumps(obj) + "\n")
        try:
            tr = build_trace(fmt, f)
        except traces.TraceError as exc:
            assert str(exc).startswith(str(f)) and "\n" not in str(exc)
            return
        traces.write(tr, Path(tmp) / "t")
        assert traces.validate(Path(tmp) / "t") == []


@settings(max_examples=40, deadline=None)
@given(argv=st.lists(st.sampled_from([
    "run", "summary", "policies", "plot", "--trace", "builtin:synthetic-demo", "builtin:nope", "--policy",
    "ucbspec", "nope", "ucbspec:delta=x", "--runs", "-3", "0", "2", "--arms", "zzz@1", "strong@99", "*@1",
    "--out", "/dev/null/x", "--setting", "bogus", "replay", "--reward", "throughput", "--quiet"]), max_size=9))
def test_fuzzed_cli_arguments(argv):
    import contextlib
    import io

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = sim_main(argv)
        except SystemExit as exc:  # argparse usage errors
            assert exc.code == 2
            return
    assert rc in (0, 2)
    if rc == 2:
        lines = [x for x in err.getvalue().splitlines() if not x.startswith(("replay", "stochastic", "adv"))]
        assert lines and lines[-1].startswith("error:") and "Traceback" not in err.getvalue()


def test_results_are_byte_identical_across_runs_and_workers(tmp_path):
    base = ["run", "--trace", "builtin:synthetic-demo", "--setting", "stochastic", "--policy", "exp3spec",
            "--policy", "ucbspec", "--runs", "4", "--seed", "11", "--arms", "*@2", "--quiet"]
    outs = []
    for i, workers in enumerate(("1", "1", "2")):
        out = tmp_path / f"r{i}"
        assert sim_main(base + ["--workers", workers, "--out", str(out)]) == 0
        outs.append(((out / "results.parquet").read_bytes(),
                     {k: v for k, v in json.loads((out / "config.json").read_text()).items() if k != "workers"}))
    assert outs[0][0] == outs[1][0] == outs[2][0]
    assert outs[0][1] == outs[1][1] == outs[2][1]


def test_no_unsafe_deserialisation_in_the_code():
    """No pickle, no eval/exec (but the constant ``exec("")`` of ``clikit.interrupted``), no
    torch.load except the tensors-only ``weights_only=True`` load of ``.bin`` head
    checkpoints (weights load through safetensors or GGUF otherwise)."""
    bad = []
    for pkg in ("traces", "simulator", "theory", "gpu_collect", "benchmarks"):
        for f in (ROOT / pkg).rglob("*.py"):
            text = f.read_text()
            for pat in (r"\bimport pickle\b", r"\bpickle\.", r"(?<![\w.])eval\(", r"(?<![\w.])exec\((?!\"\"\))",
                        r"torch\.load\((?![^)]*weights_only=True)", r"allow_pickle=True"):
                if re.search(pat, text):
                    bad.append(f"{f.relative_to(ROOT)}: {pat}")
    assert not bad, bad


def test_unwritable_outputs_and_too_many_workers_are_said_in_one_line(tmp_path, capsys):
    """`theory --out` on a path that cannot be a folder fails before any check runs;
    `--workers 100` on this machine is clamped to its CPUs with a note (results do not depend
    on it), and the results equal a one-worker run."""
    import os

    from experiments.cli import main as exp_main

    assert exp_main(["theory", "--quick", "--only", "3", "--out", "/dev/null/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: /dev/null/x") and "Traceback" not in err
    base = ["run", "--trace", "builtin:synthetic-demo", "--policy", "ucbspec", "--runs", "2", "--arms", "*@2",
            "--quiet"]
    assert sim_main([*base, "--workers", "100", "--out", str(tmp_path / "many")]) == 0
    assert f"--workers 100 clamped to {os.cpu_count()}" in capsys.readouterr().err
    assert sim_main([*base, "--workers", "1", "--out", str(tmp_path / "one")]) == 0
    assert (tmp_path / "many" / "results.parquet").read_bytes() == (tmp_path / "one" / "results.parquet").read_bytes()
