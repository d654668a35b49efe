"""Engine logs in (`python -m traces import --from vllm|sglang|specbench`): partial-information
traces that hold exactly what the log says, simulated in the stochastic setting, refused
where a policy would need what the log cannot know."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import traces
from simulator.cli import main as sim_main
from simulator.envs import StochasticEnv
from traces import Arm
from traces.cli import main as tr_main

LOGS = Path(__file__).parent / "data" / "engine_logs"
K = {"vllm": 3, "sglang": 4, "specbench": 5}


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    out = {}
    for fmt in K:
        d = tmp_path_factory.mktemp(fmt) / "t"
        assert tr_main(["import", "--from", fmt, str(LOGS / f"{fmt}.jsonl"), "--out", str(d)]) == 0
        out[fmt] = d
    return out


def _logged_steps(fmt: str) -> dict[str, list[int]]:
    """Accepted drafts per step of every request, read straight from the fixture."""
    out = {}
    for line in (LOGS / f"{fmt}.jsonl").read_text().splitlines():
        o = json.loads(line)
        if fmt == "vllm":
            body = o.get("response", o)
            sd = body["metrics"]["speculative_decoding"]
            steps = sd.get("per_step_accepted") or [j for j, c in enumerate(sd["acceptance_histogram"])
                                                    for _ in range(c)]
            out[str(o.get("question_id", body["id"]))] = steps
        elif fmt == "sglang":
            h = o["meta_info"]["spec_accept_histogram"]
            out[o["meta_info"]["id"]] = [j for j, c in enumerate(h) for _ in range(c)]
        else:
            ch, at = o["choices"][0], 0
            for t, s in enumerate(ch["decoding_steps"]):
                out[str(o["question_id"]) + (f"#t{t}" if t else "")] = [x - 1 for x in ch["accept_lengths"][at:at + s]]
                at += s
    return out


@pytest.mark.parametrize("fmt", list(K))
def test_an_imported_log_holds_exactly_the_logged_steps(imported, fmt):
    tr = traces.load(imported[fmt])
    assert tr.partial and tr.manifest["log"]["format"] == fmt and tr.k_max == K[fmt]
    logged = _logged_steps(fmt)
    assert sorted(tr.prompt_ids) == sorted(logged)
    for p, pid in enumerate(tr.prompt_ids):
        row = tr.accept[p, 0, : tr.output_lens[p]]
        assert sorted(row[row >= 0].tolist()) == sorted(logged[pid])  # one row per step, nothing else
        for k in range(1, tr.k_max + 1):  # min(k, L) = min(k, a): the censored information for every k <= K
            got = tr.accepted(Arm(tr.drafter_names[0], k), p)
            assert sorted(got.tolist()) == sorted(min(k, a) for a in logged[pid])
    if fmt == "vllm":  # ordered steps start after the prefill's token, one position per emitted token
        p = tr.prompt_ids.index("chatcmpl-a1")
        a = logged["chatcmpl-a1"]
        assert np.flatnonzero(tr.accept[p, 0] >= 0).tolist() == list(1 + np.cumsum([0] + [x + 1 for x in a[:-1]]))


def test_the_stochastic_law_of_an_arm_is_that_of_its_logged_steps(imported):
    tr = traces.load(imported["vllm"])
    arms = [Arm("vllm", k) for k in (1, 2, 3)]
    env = StochasticEnv(tr, arms, law="empirical")
    for p, pid in enumerate(tr.prompt_ids):
        steps = np.array(_logged_steps("vllm")[pid])
        for i, arm in enumerate(arms):
            want = np.bincount(np.minimum(steps, arm.k) + 1, minlength=env.pmf.shape[2] + 1)[1:] / len(steps)
            np.testing.assert_allclose(env.pmf[p, i], want[: env.pmf.shape[2]], rtol=0, atol=1e-15)


@pytest.mark.parametrize("fmt", list(K))
def test_a_draft_length_learner_runs_on_every_imported_log(imported, fmt, tmp_path):
    arms = f"{fmt}@1-{K[fmt]}"
    assert sim_main(["run", "--trace", str(imported[fmt]), "--setting", "stochastic", "--policy", "ucbspec",
                     "--policy", "structured-ucb", "--arms", arms, "--runs", "3", "--out", str(tmp_path / "r"),
                     "--quiet"]) == 0
    import pandas as pd

    df = pd.read_parquet(tmp_path / "r" / "results.parquet")
    assert set(df.policy) == {"ucbspec", "structured-ucb"} and (df.stopping_time >= 1).all()
    assert (df.tokens == df.prompt_id.map(dict(zip(*[traces.load(imported[fmt]).prompt_ids,
                                                     traces.load(imported[fmt]).output_lens], strict=True)))).all()


@pytest.mark.parametrize("argv, says", [
    (["run", "--setting", "replay", "--policy", "ucbspec", "--arms", "vllm@1-3"], "use --setting stochastic"),
    (["run", "--setting", "adversarial", "--policy", "ucbspec", "--arms", "vllm@1-3"], "engine log"),
    (["run", "--setting", "stochastic", "--policy", "ucbspec", "--arms", "vllm@4"], "0..3"),
    (["run", "--setting", "stochastic", "--policy", "ucbspec", "--arms", "vllm@tree:2x1"], "without ranks"),
    (["serve", "--arms", "vllm@1-3", "--batch-sizes", "1-2"], "engine log"),
])
def test_what_a_log_cannot_answer_is_refused_in_one_line(imported, tmp_path, capsys, argv, says):
    assert sim_main([*argv, "--trace", str(imported["vllm"]), "--runs", "2", "--out", str(tmp_path / "x"),
                     "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error:") and says in err[-1], err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("fmt, body, says", [
    ("vllm", b'{"id": "x", "usage": {"completion_tokens": 5}, "metrics": {"speculative_decoding": null}}',
     "--per-request-spec-decode-metrics"),
    ("vllm", b'{"id": "x", "usage": {"completion_tokens": 5}, "metrics": {"speculative_decoding": '
             b'{"num_spec_tokens": 3, "acceptance_histogram": [1, 0, 0, 1], "num_spec_steps": 3, '
             b'"num_accepted_draft_tokens": 3}}}', "num_spec_steps"),
    ("vllm", b'{"id": "x", "usage": {"completion_tokens": 2}, "metrics": {"speculative_decoding": '
             b'{"num_spec_tokens": 3, "acceptance_histogram": [0, 0, 0, 2], "num_spec_steps": 2, '
             b'"num_accepted_draft_tokens": 6}}}', "more than its 2 output tokens"),
    ("sglang", b'{"text": "a", "meta_info": {"completion_tokens": 4, "spec_verify_ct": 2}}', "spec_accept_histogram"),
    ("sglang", b'{"text": "a", "meta_info": {"completion_tokens": 4, "spec_verify_ct": 3, '
               b'"spec_accept_histogram": [1, "x"]}}', "expected an integer"),
    ("specbench", b'{"question_id": 1, "choices": [{"new_tokens": [4], "accept_lengths": [2, 2], '
                  b'"decoding_steps": [3]}]}', "decoding_steps"),
    ("specbench", b'{"question_id": true, "choices": []}', "question_id"),
    ("specbench", b"\xff\xfe not utf-8", "not UTF-8"),
    ("specbench", b"[" * 100000, "nested too deeply"),
    ("specbench", b'{"question_id": 1,', "not valid JSON"),
])
def test_bad_logs_end_in_one_line_naming_file_and_line(tmp_path, capsys, fmt, body, says):
    f = tmp_path / "log.jsonl"
    f.write_bytes(body + b"\n")
    assert tr_main(["import", "--from", fmt, str(f), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{f}:1:" in err and says in err, err
    assert not (tmp_path / "t").exists()


def test_a_log_line_with_a_byte_order_mark_and_a_raw_line_separator_is_read(tmp_path):
    line = json.loads((LOGS / "specbench.jsonl").read_text().splitlines()[1])
    line["choices"][0]["turns"] = ["x\u2028y"]
    f = tmp_path / "log.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps(line, ensure_ascii=False).encode() + b"\n")
    assert tr_main(["import", "--from", "specbench", str(f), "--out", str(tmp_path / "t")]) == 0
    assert traces.load(tmp_path / "t").prompts.answer[0] == "x\u2028y"


def test_survival_of_an_imported_log_is_that_of_its_steps(imported, tmp_path):
    """vLLM's per-position acceptance, P(a >= i), over the logged steps (unlogged positions
    are not counted as rejections); the figure command runs on the log."""
    from experiments.cli import main as exp_main
    from experiments.figures import survival_table

    tr = traces.load(imported["specbench"])
    steps = np.concatenate([np.array(v) for v in _logged_steps("specbench").values()])
    t = survival_table(tr.accept, tr.output_lens, list(tr.drafter_names), tr.k_max)
    # survival_table keeps positions with a full k_max horizon; recompute that subset from the log
    keep = np.concatenate([tr.accept[p, 0, : max(int(tr.output_lens[p]) - tr.k_max + 1, 0)]
                           for p in range(tr.n_prompts)])
    keep = keep[keep >= 0]
    assert len(keep) and set(keep.tolist()) <= set(steps.tolist())
    np.testing.assert_allclose(t.survival.to_numpy(), [(keep >= i).mean() for i in range(1, tr.k_max + 1)])
    assert exp_main(["survival", "--trace", str(imported["specbench"]), "--out", str(tmp_path)]) == 0


def test_a_vllm_line_with_odd_choices_still_imports(tmp_path):
    from traces.importers import build_trace

    line = json.loads((LOGS / "vllm.jsonl").read_text().splitlines()[0])
    for choices in ([5], [{"message": "not an object"}], "nope"):
        f = tmp_path / "log.jsonl"
        f.write_text(json.dumps({**line, "choices": choices}) + "\n")
        tr = build_trace("vllm", f)
        assert tr.n_prompts == 1 and "answer" not in tr.prompts


def test_an_imported_log_keeps_the_model_name_it_gives(imported):
    """vLLM's OpenAI-style ``model`` field names the target; a log without one says so."""
    assert traces.load(imported["vllm"]).manifest["target"] == {"id": "meta-llama/Llama-3.1-8B-Instruct",
                                                                "source": "the log's model name"}
    assert "not recorded" in traces.load(imported["sglang"]).manifest["target"]["id"]
