"""Hostile engine logs (`python -m traces import`): each ends in one line naming the file, the
line and the field, before anything large is built, and the import stays linear in the log's
size (hostile cases 31-36 of round 3)."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import pytest

import traces
from traces import importers
from traces.cli import main as tr_main

LOGS = Path(__file__).parent / "data" / "engine_logs"
VLLM = json.loads((LOGS / "vllm.jsonl").read_text().splitlines()[0])  # K = 3, 27 tokens, 10 ordered steps


def _vllm_summary(rid: str, tokens: int, hist: list[int], k: int = 3) -> dict:
    return {"id": rid, "usage": {"completion_tokens": tokens}, "metrics": {"speculative_decoding": {
        "num_spec_tokens": k, "acceptance_histogram": hist, "num_spec_steps": sum(hist)}}}


def _sglang(tokens: int, hist: list[int]) -> dict:
    return {"text": "t", "meta_info": {"id": "a", "completion_tokens": tokens, "spec_verify_ct": sum(hist),
                                       "spec_accept_histogram": hist}}


def _specbench(qid: int, new_tokens: int) -> dict:
    return {"question_id": qid, "category": "chat", "choices": [{
        "turns": ["An answer."], "decoding_steps": [4], "new_tokens": [new_tokens], "accept_lengths": [3, 2, 4, 1]}]}


def _write(path: Path, objs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return path


def _refused(tmp_path: Path, capsys, argv: list[str]) -> str:
    """Run ``traces import`` expecting exit 2 with one line and no trace folder; the line."""
    out = tmp_path / "t"
    assert tr_main(["import", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert not out.exists()
    return err


@pytest.mark.parametrize("k", ["10", "4", "2"])
def test_k_other_than_the_vllm_logs_own_is_refused(tmp_path, capsys, k):
    """Case 31: vLLM logs its K; a larger --k claims draft lengths never run, a smaller one is
    --arms NAME@1-k at simulation time (docstring of traces.importers)."""
    f = LOGS / "vllm.jsonl"
    err = _refused(tmp_path, capsys, ["--from", "vllm", str(f), "--k", k])
    assert f"{f}:1: --k {k}: the log ran at num_spec_tokens = 3" in err


def test_k_equal_to_the_vllm_logs_own_is_accepted(tmp_path):
    argv = ["import", "--from", "vllm", str(LOGS / "vllm.jsonl"), "--k", "3", "--out", str(tmp_path / "t")]
    assert tr_main(argv) == 0
    assert traces.load(tmp_path / "t").k_max == 3


def test_a_vllm_log_mixing_draft_lengths_is_refused(tmp_path, capsys):
    """A sibling of case 31: a request logged at K = 3 says nothing about @4, so one trace
    cannot hold K = 3 and K = 4 requests."""
    f = _write(tmp_path / "log.jsonl", [_vllm_summary("a", 20, [1, 1, 0, 1]),
                                        _vllm_summary("b", 20, [1, 1, 0, 0, 1], 4)])
    err = _refused(tmp_path, capsys, ["--from", "vllm", str(f)])
    assert f"{f}:2: field 'num_spec_tokens': 4, but line 1 says 3" in err


@pytest.mark.parametrize("fmt, obj, field", [
    ("vllm", {**VLLM, "usage": {"completion_tokens": 2**31}}, "usage.completion_tokens"),  # case 34
    ("vllm", {**VLLM, "usage": {"completion_tokens": 10**8}}, "usage.completion_tokens"),  # case 35
    ("sglang", _sglang(10**8, [1, 1]), "meta_info.completion_tokens"),
    ("specbench", _specbench(1, 10**8), "choices[0].new_tokens[0]"),
])
def test_an_output_longer_than_a_trace_may_hold_is_refused_at_once(tmp_path, capsys, fmt, obj, field):
    """Cases 34, 35: refused from the count, before the arrays are built (before: a MemoryError
    traceback, or 9 s and 5 GB then a message naming a temp folder)."""
    f = _write(tmp_path / "log.jsonl", [obj])
    t0 = time.perf_counter()
    err = _refused(tmp_path, capsys, ["--from", fmt, str(f)])
    assert time.perf_counter() - t0 < 5
    assert f"{f}:1: field {field!r}: expected an integer in 1..{traces.io.MAX_TOKENS}" in err


@pytest.mark.parametrize("fmt, obj, field", [
    ("sglang", _sglang(100, [0, 0, 0, 0, 10**9]), "meta_info.spec_accept_histogram"),  # case 36
    ("vllm", _vllm_summary("a", 100, [0, 0, 0, 10**9]), "acceptance_histogram"),
])
def test_a_histogram_of_more_steps_than_tokens_is_refused_before_it_is_expanded(tmp_path, capsys, fmt, obj, field):
    """Case 36: 1e9 steps would be a list of 1e9 ints (before: 35 s, 7 GB, MemoryError)."""
    f = _write(tmp_path / "log.jsonl", [obj])
    t0 = time.perf_counter()
    err = _refused(tmp_path, capsys, ["--from", fmt, str(f)])
    assert time.perf_counter() - t0 < 5
    assert f"{f}:1: field {field!r}: counts 1000000000 steps, more than the 100 output tokens" in err


def test_an_import_over_the_memory_limit_is_refused_at_the_line_that_crosses_it(tmp_path, capsys, monkeypatch):
    """Cases 35/36, the total: every request is within the per-request cap, but together their
    dense arrays would not fit; refused at the line where the estimate crosses the limit."""
    monkeypatch.setattr(importers, "memory_limit_bytes", lambda: 1e7)
    f = _write(tmp_path / "log.jsonl", [_vllm_summary(f"r{i}", 100_000, [1, 0, 0, 0]) for i in range(3)])
    err = _refused(tmp_path, capsys, ["--from", "vllm", str(f)])
    assert f"{f}:2: field 'usage.completion_tokens': 100000 tokens; the import would hold about" in err
    assert "over the 0.0 GB limit" in err
    assert importers.estimate_bytes(2, 100_000, 2) > 1e7 > importers.estimate_bytes(1, 100_000, 1)


def test_a_line_over_the_cap_is_refused_without_being_held(tmp_path, capsys, monkeypatch):
    """Case 33: MAX_LINE_BYTES is applied per line, and the line is read in bounded pieces: a
    30 MB line under a 1 MiB cap never costs 30 MB (before: the whole file was read at once)."""
    monkeypatch.setattr(importers, "MAX_LINE_BYTES", 1 << 20)
    line = {**VLLM, "choices": [{"message": {"content": "x" * (30 << 20)}}]}
    f = _write(tmp_path / "log.jsonl", [VLLM, line])
    tracemalloc.start()
    try:
        err = _refused(tmp_path, capsys, ["--from", "vllm", str(f)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"{f}:2: a line of more than {1 << 20} bytes" in err
    assert peak < 10 << 20, peak


def test_a_line_at_the_cap_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(importers, "MAX_LINE_BYTES", 4096)
    body = json.dumps({**VLLM, "choices": [{"message": {"content": ""}}]})
    pad = 4096 - len(body.encode())
    f = tmp_path / "log.jsonl"
    f.write_text(json.dumps({**VLLM, "choices": [{"message": {"content": "x" * pad}}]}) + "\n")
    assert len(f.read_bytes()) == 4097
    assert importers.build_trace("vllm", f).n_prompts == 1


def test_import_is_linear_in_the_number_of_lines(tmp_path):
    """Case 32: the duplicate-id check counted each id over the whole list (O(N^2): 60k lines
    took 43 s on the development machine, 3 s after); 60k lines must import in seconds."""
    f = _write(tmp_path / "sb.jsonl", [_specbench(i, 10) for i in range(60_000)])
    t0 = time.perf_counter()
    tr = importers.build_trace("specbench", f)
    took = time.perf_counter() - t0
    assert tr.n_prompts == 60_000 and took < 30, took


def test_duplicate_ids_are_still_refused(tmp_path, capsys):
    f = _write(tmp_path / "sb.jsonl", [_specbench(i % 3, 10) for i in range(6)])
    err = _refused(tmp_path, capsys, ["--from", "specbench", str(f)])
    assert "question_id: expected unique ids, duplicates ['0', '1', '2']" in err
