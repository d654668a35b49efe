"""Collector on tiny random Llama models (CPU): exactness of the recorded acceptance."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the collector needs the [collect] extra")

import traces  # noqa: E402
from gpu_collect import prompts as P  # noqa: E402
from gpu_collect.collector import CollectConfig, collect  # noqa: E402
from gpu_collect.drafters import EarlyDrafter, Seq, make_drafter  # noqa: E402
from gpu_collect.live import speculative_decode  # noqa: E402
from gpu_collect.models import CollectError, load_model  # noqa: E402
from gpu_collect.surgery import layer_submodel  # noqa: E402
from gpu_collect.tiny import build_tiny  # noqa: E402
from traces import Arm  # noqa: E402
from traces.trees import load_tree  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

DRAFTERS = ("pld", "ngram:2", "early:2", "skip:1", "quant:rtn4", "quant:int8", "draft=hf:{noisy}")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    target = build_tiny(root / "target", seed=0)
    noisy = build_tiny(root / "noisy", seed=1, base=target, noise=0.01)
    return {"target": str(target), "noisy": str(noisy), "root": root}


def _cfg(m, out, **kw):
    base = dict(target=m["target"], drafters=tuple(d.format(**m) for d in DRAFTERS),
                prompts="builtin:specregret-84", max_new_tokens=32, k_max=6, out=str(out),
                limit=5, batch_size=3, costs=False, device="cpu")
    base.update(kw)
    return CollectConfig(**base)


@pytest.fixture(scope="session")
def tiny_trace(tiny_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("coll") / "trace"
    collect(_cfg(tiny_models, out, costs=True, cost_contexts=(32,), cost_batch_sizes=(1,), cost_budget_s=1.0),
            progress=False)
    return out


@pytest.fixture(scope="session")
def target(tiny_models):
    return load_model(tiny_models["target"], torch.device("cpu"), torch.float32)


def _prompt_ids(target, i):
    qs, _ = P.load_questions("builtin:specregret-84")
    return P.chat_ids(target.tokenizer, [{"role": "user", "content": qs[i].turns[0]}])


def test_trace_validates_with_provenance_and_costs(tiny_trace):
    tr = traces.load(tiny_trace)
    assert tr.manifest["kind"] == "greedy" and not tr.is_synthetic
    assert [d["kind"] for d in tr.manifest["drafters"]] == [
        "ngram", "ngram", "early_exit", "skip", "quant", "quant", "hf"]
    assert tr.manifest["target"]["sha256"] and tr.manifest["prompt_set"]["sha256"]
    assert "torch" in tr.manifest["software"] and tr.manifest["collection"]["tf_mismatch_positions"] == 0
    assert (tr.prompts.tf_mismatches == 0).all()
    assert set(tr.costs.kind) == {"verify", "draft"} and set(tr.costs.drafter) >= set(tr.drafter_names)
    assert {c.split(":")[0] for c in tr.costs.device} == {"cpu", "nominal"}
    assert tr.accept.max() > 0  # some drafter gets tokens accepted


def test_replay_equals_live_speculative_decoding(tiny_trace, target):
    """For every drafter, K and prompt: replayed stopping time == live rounds, and the live
    output equals the recorded greedy output."""
    tr = traces.load(tiny_trace)
    for info in tr.manifest["drafters"]:
        d = make_drafter(f"{info['name']}={info['params']['spec'].split('=')[-1]}")
        d.prepare(target)
        for K in (1, 3, 6):
            for p in range(tr.n_prompts):
                live = speculative_decode(target, d, _prompt_ids(target, p), K, 32)
                assert live.output_ids == tr.prompts.output_ids[p].tolist()
                replay = tr.fixed_arm_rounds(Arm(info["name"], K), p)
                assert live.rounds == len(replay), (info["name"], K, p)
                assert live.emitted == replay.tolist()


@pytest.mark.parametrize("tree", ["2x2", "3x1x1", "sparse-small"])
def test_replay_equals_live_tree_verification(tiny_trace, target, tree, tmp_path):
    """Tree arms of every drafter kind: the rounds replayed from the recorded ranks equal the
    rounds of a live loop that drafts and verifies the tree for real (issue "10. Draft trees")."""
    from gpu_collect.live import speculative_decode_tree

    if tree == "sparse-small":
        f = tmp_path / "small.json"
        f.write_text('{"paths": [[0, 0, 0], [0, 1], [1, 0], [2]]}')
        tree = str(f)
    tr = traces.load(tiny_trace)
    assert tr.ranks is not None and tr.manifest["rank_cap"] == 16
    # not vacuous: somewhere a model drafter's tree accepts more than its chain of the same depth
    gain = [(tr.accepted(Arm(i["name"], 0, tree=tree), p) > tr.accepted(Arm(i["name"], load_tree(tree).depth), p)).any()
            for i in tr.manifest["drafters"] for p in range(3)]
    assert any(gain)
    for info in tr.manifest["drafters"]:
        d = make_drafter(f"{info['name']}={info['params']['spec'].split('=')[-1]}")
        d.prepare(target)
        for p in range(3):
            live = speculative_decode_tree(target, d, _prompt_ids(target, p), tree, 32)
            assert live.output_ids == tr.prompts.output_ids[p].tolist()
            replay = tr.fixed_arm_rounds(Arm(info["name"], 0, tree=tree), p)
            assert live.emitted == replay.tolist(), (info["name"], tree, p)


def test_rest_retrieval_drafter_replay_equals_live(tiny_models, tiny_trace, target, tmp_path):
    """A REST-style datastore (here: the target's decoded outputs, so lookups match): chain and
    tree arms replayed from depth-indexed ranks equal live drafting and verification."""
    from gpu_collect.live import speculative_decode_tree

    base = traces.load(tiny_trace)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(target.tokenizer.decode(ids, skip_special_tokens=True)
                                for ids in base.prompts.output_ids) + "\n")
    out = tmp_path / "rest"
    collect(_cfg(tiny_models, out, drafters=(f"rest:{corpus}",), limit=3), progress=False)
    tr = traces.load(out)
    info = tr.manifest["drafters"][0]
    assert info["kind"] == "rest" and info["rank_depth"] == 6 and info["params"]["datastore"]["tokens"] > 0
    assert tr.ranks.shape[3] == 6 and tr.accept.max() >= 2  # the datastore does predict
    d = make_drafter(f"rest:{corpus}")
    d.prepare(target)
    for p in range(3):
        ids = _prompt_ids(target, p)
        for K in (1, 4):
            live = speculative_decode(target, d, ids, K, 32)
            assert live.output_ids == tr.prompts.output_ids[p].tolist()
            assert live.emitted == tr.fixed_arm_rounds(Arm("rest", K), p).tolist(), (K, p)
        for tree in ("2x2", "3x1x1", "sparse63"):
            live = speculative_decode_tree(target, d, ids, tree, 32)
            assert live.emitted == tr.fixed_arm_rounds(Arm("rest", 0, tree=tree), p).tolist(), (tree, p)


def test_suffix_drafter_history_and_replay_equals_live(tiny_models, target, tmp_path):
    """SuffixDecoding-style: the datastore is the earlier outputs plus the current prompt and
    output; replay == live for chain and tree arms, and sharding is refused in one line."""
    from gpu_collect.live import speculative_decode_tree

    out = tmp_path / "suffix"
    collect(_cfg(tiny_models, out, drafters=("suffix", "pld"), limit=4), progress=False)
    tr = traces.load(out)
    assert tr.manifest["drafters"][0]["kind"] == "suffix" and tr.has_ranks("suffix")
    assert (tr.accept[:, 0] >= 1).sum() >= 3  # it does retrieve
    d = make_drafter("suffix")
    d.prepare(target)
    outs = [list(map(int, y)) for y in tr.prompts.output_ids]
    for p in range(4):
        d.set_history(outs[:p])  # what the collector saw before prompt p
        ids = _prompt_ids(target, p)
        for K in (2, 5):
            live = speculative_decode(target, d, ids, K, 32)
            assert live.output_ids == outs[p]
            assert live.emitted == tr.fixed_arm_rounds(Arm("suffix", K), p).tolist(), (K, p)
        for tree in ("2x2", "3x1x1", "sparse63"):
            live = speculative_decode_tree(target, d, ids, tree, 32)
            assert live.emitted == tr.fixed_arm_rounds(Arm("suffix", 0, tree=tree), p).tolist(), (tree, p)
    with pytest.raises(CollectError, match="cannot be sharded"):
        collect(_cfg(tiny_models, tmp_path / "s2", drafters=("suffix",), shard=(0, 2)), progress=False)


def test_same_as_transformers_assisted_generation(tiny_models, tiny_trace, target):
    from transformers import GenerationConfig

    tr = traces.load(tiny_trace)
    d = make_drafter(f"draft=hf:{tiny_models['noisy']}")
    d.prepare(target)
    calls = []
    hook = target.model.register_forward_hook(lambda *a: calls.append(1))
    try:
        for K in (2, 4):
            a = d.model_.generation_config
            a.num_assistant_tokens, a.num_assistant_tokens_schedule = K, "constant"
            a.assistant_confidence_threshold = 0.0
            for p in range(3):
                ids = _prompt_ids(target, p)
                x = torch.tensor([ids])
                calls.clear()
                gc = GenerationConfig(do_sample=False, max_new_tokens=32, pad_token_id=1,
                                      num_assistant_tokens=K, num_assistant_tokens_schedule="constant",
                                      assistant_confidence_threshold=0.0)
                out = target.model.generate(x, attention_mask=torch.ones_like(x), assistant_model=d.model_,
                                            generation_config=gc)[0, len(ids):].tolist()
                assert out == tr.prompts.output_ids[p].tolist()
                assert len(calls) == len(tr.fixed_arm_rounds(Arm("draft", K), p))
    finally:
        hook.remove()


def test_early_exit_shortcut_equals_truncated_model(target):
    d = EarlyDrafter(spec="early:2", name="early2", arg="2")
    d.prepare(target)
    seq = Seq(_prompt_ids(target, 0), list(range(5, 25)), target)
    short = d.logits(seq).argmax(-1)
    with torch.no_grad():
        full = d.model_(seq.ids).logits[0, seq.positions()].argmax(-1)
    assert torch.equal(short, full)
    sub = layer_submodel(target.model, [0, 2, 3])
    assert sub.config.num_hidden_layers == 3


def test_drafter_with_other_tokenizer_is_refused(tiny_models, target, tmp_path):
    other = build_tiny(tmp_path / "other", seed=3, vocab_size=300, texts=["completely different text"] * 50)
    d = make_drafter(f"hf:{other}")
    with pytest.raises(CollectError, match="tokenizer differs from the target's"):
        d.prepare(target)


def test_resume_continues_and_matches_uninterrupted(tiny_models, tiny_trace, tmp_path):
    out = tmp_path / "resumed"
    collect(_cfg(tiny_models, out, limit=2), progress=False)  # a run that stopped after 2 prompts
    assert traces.load(out).n_prompts == 2
    with pytest.raises(CollectError, match="a trace is already there"):
        collect(_cfg(tiny_models, out), progress=False)
    # simulate an interrupted run: shards of 2 prompts, no final trace yet
    part = tmp_path / "part"
    cfg = _cfg(tiny_models, part)
    import gpu_collect.collector as C

    calls = {"n": 0}
    real = C._write_shard

    def dying(*a, **k):
        if calls["n"] == 2:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(*a, **k)

    C._write_shard = dying
    try:
        with pytest.raises(KeyboardInterrupt):
            collect(cfg, progress=False)
    finally:
        C._write_shard = real
    assert len(list((part / "shards").glob("*.parquet"))) == 2
    with pytest.raises(CollectError, match="pass --resume"):
        collect(cfg, progress=False)
    collect(_cfg(tiny_models, part, resume=True), progress=False)
    a, b = traces.load(part), traces.load(tiny_trace)
    np.testing.assert_array_equal(a.accept, b.accept)
    assert a.prompts.output_ids.map(list).tolist() == b.prompts.output_ids.map(list).tolist()
    assert not (part / "shards").exists()


def test_resume_with_other_settings_is_refused(tiny_models, tmp_path):
    part = tmp_path / "p"
    (part / "shards").mkdir(parents=True)
    import json

    (part / "shards" / "config.json").write_text(json.dumps({"k_max": 99}))
    with pytest.raises(CollectError, match="--resume with different settings"):
        collect(_cfg(tiny_models, part, resume=True), progress=False)


@pytest.mark.parametrize("line,msg", [
    ('{"question_id": 1, "turns": "hi"}', "turns: expected a non-empty list of strings"),
    ('{"turns": ["hi"]}', "field 'question_id' missing"),
    ('{"question_id": 1, "turns": [""]}', "expected non-empty prompts"),
    ('not json', "not valid JSON"),
    (b'{"question_id": 1, "turns": ["caf\xe9"]}', "not UTF-8"),
    ('{"question_id": ' + "9" * 5000 + ', "turns": ["hi"]}', "not valid JSON"),
    ('{"question_id": "' + "x" * 300 + '", "turns": ["hi"]}', "at most 200 characters"),
    ("[" * 200000, "nested too deeply"),
    ('{"question_id": 1, "turns": ["a\\ud800b"]}', r"turns\[0\]: expected text, got a lone surrogate"),
])
def test_bad_question_files(tmp_path, line, msg):
    f = tmp_path / "question.jsonl"
    first = b'{"question_id": 0, "category": "x", "turns": ["ok"]}\n'
    f.write_bytes(first + (line if isinstance(line, bytes) else line.encode()) + b"\n")
    with pytest.raises(CollectError, match=msg) as e:
        P.load_questions(str(f))
    assert str(f) in str(e.value) and "line 2" in str(e.value) and "\n" not in str(e.value)


def test_a_byte_order_mark_and_a_raw_line_separator_in_a_question_are_accepted(tmp_path):
    f = tmp_path / "question.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + '{"question_id": 3, "turns": ["one\u2028two"]}\n'.encode())
    qs, _ = P.load_questions(str(f))
    assert [q.question_id for q in qs] == ["3"] and qs[0].turns == ("one\u2028two",)


def test_specbench_question_file_loads_as_is(tmp_path):
    f = tmp_path / "question.jsonl"
    f.write_text('{"question_id": 81, "category": "writing", "turns": ["a", "b"], "reference": ["r"]}\n'
                 '{"question_id": 161, "category": "translation", "turns": ["c"]}\n')
    qs, meta = P.load_questions(str(f))
    assert [q.question_id for q in qs] == ["81", "161"] and qs[0].turns == ("a", "b")
    assert len(meta["sha256"]) == 64


def test_all_turns(tiny_models, tmp_path, target):
    f = tmp_path / "q.jsonl"
    f.write_text('{"question_id": 7, "category": "chat", "turns": ["Hello there", "And then?"]}\n')
    out = tmp_path / "t"
    collect(_cfg(tiny_models, out, prompts=str(f), all_turns=True, limit=None), progress=False)
    tr = traces.load(out)
    assert tr.prompt_ids == ["7", "7#t1"] and tr.prompts.turn.tolist() == [0, 1]
    assert tr.prompts.prompt_len[1] > tr.prompts.prompt_len[0] + tr.prompts.output_len[0]


def test_sigkill_at_random_points_then_resume_equals_uninterrupted(tiny_models, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    args = [sys.executable, "gpu_collect/collect_traces.py", "--target", tiny_models["target"],
            "--drafter", "pld", "--drafter", "early:2", "--drafter", "skip:1", "--prompts",
            "builtin:specregret-84", "--limit", "6", "--max-new-tokens", "24", "--k-max", "4",
            "--batch-size", "1", "--no-costs", "--device", "cpu", "--quiet"]
    root = Path(__file__).resolve().parent.parent
    ref = tmp_path / "ref"
    subprocess.run(args + ["--out", str(ref)], cwd=root, check=True, capture_output=True)
    out = tmp_path / "killed"
    shards = out / "shards"
    kills, attempts = 0, 0
    for kill_at in sorted(np.random.default_rng(7).choice(np.arange(1, 6), size=3, replace=False)):
        attempts += 1
        proc = subprocess.Popen(args + ["--out", str(out), "--resume"], cwd=root,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None:
            if shards.exists() and len(list(shards.glob("*.parquet"))) >= kill_at:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
                break
            time.sleep(0.02)
    rc = subprocess.run(args + ["--out", str(out), "--resume"], cwd=root, capture_output=True).returncode
    assert rc == 0 and kills >= 1
    a, b = traces.load(out), traces.load(ref)
    assert a.prompt_ids == b.prompt_ids and len(set(a.prompt_ids)) == 6  # none lost or duplicated
    np.testing.assert_array_equal(a.accept, b.accept)
    assert a.prompts.output_ids.map(list).tolist() == b.prompts.output_ids.map(list).tolist()


def test_disk_full_ends_in_one_line_and_keeps_shards(tiny_models, tmp_path):
    import errno

    import gpu_collect.collector as C

    out = tmp_path / "full"
    real, calls = C._write_shard, {"n": 0}

    def full_disk(path, *a, **k):
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        calls["n"] += 1
        return real(path, *a, **k)

    C._write_shard = full_disk
    try:
        with pytest.raises(CollectError, match="No space left on device.*earlier shards are intact") as e:
            collect(_cfg(tiny_models, out, batch_size=1), progress=False)
    finally:
        C._write_shard = real
    assert "\n" not in str(e.value)
    assert len(list((out / "shards").glob("*.parquet"))) == 2


def test_sampling_collection_is_repeatable_and_long_prompts_are_refused(tiny_models, tmp_path):
    a, b = tmp_path / "s1", tmp_path / "s2"
    for out in (a, b):
        collect(_cfg(tiny_models, out, temperature=0.8, seed=5, limit=2, max_new_tokens=16), progress=False)
    ta, tb = traces.load(a), traces.load(b)
    assert ta.manifest["kind"] == "sampling"
    np.testing.assert_array_equal(ta.accept, tb.accept)
    np.testing.assert_array_equal(ta.beta, tb.beta)
    assert ta.prompts.output_ids.map(list).tolist() == tb.prompts.output_ids.map(list).tolist()
    f = tmp_path / "long.jsonl"
    f.write_text('{"question_id": 1, "category": "x", "turns": ["' + "word " * 3000 + '"]}\n')
    with pytest.raises(CollectError, match="question 1 turn 0: prompt of .* exceeds the model's context of 1024"):
        collect(_cfg(tiny_models, tmp_path / "long", prompts=str(f), limit=None), progress=False)


def test_a_model_drafter_is_scored_with_one_teacher_forced_pass(tiny_models, target):
    """Acceptance (argmax == the target's token) and ranks come from one forward of the
    drafter per output (collection's floor: one teacher-forced pass per model drafter)."""
    d = make_drafter(f"draft=hf:{tiny_models['noisy']}")
    d.prepare(target)
    calls = []
    d.model_.register_forward_hook(lambda *_: calls.append(1))
    ids = _prompt_ids(target, 0)
    y = speculative_decode(target, d, ids, 4, 24).output_ids
    seq = Seq(ids, y, target)
    calls.clear()
    acc, ranks = d.greedy_accept(seq, 6), d.greedy_ranks(seq, 16)
    assert len(calls) == 1
    pred = d.logits(seq).argmax(-1).numpy()  # the definition, from a fresh pass
    bits = pred == np.asarray(y)
    want = [min(int(np.cumprod(bits[t:]).sum()), 6) for t in range(len(y))]
    assert acc.tolist() == want and (ranks == 0).tolist() == bits.tolist()
    assert 0 < bits.mean() < 1  # both cases occur, so the comparison is not vacuous


# -- the collection cases of issue "13.": each was a traceback, wrong advice or a silent overwrite
def test_a_second_collector_on_the_same_out_is_refused_at_once(tiny_models, tmp_path):
    from gpu_collect.collector import OutLock

    out = tmp_path / "busy"
    held = OutLock(out)  # the first collector, still running
    try:
        with pytest.raises(CollectError, match="another collector is writing there") as e:
            collect(_cfg(tiny_models, out, limit=1), progress=False)
        assert "\n" not in str(e.value) and not (out / "shards").exists()
    finally:
        held.release()
    collect(_cfg(tiny_models, out, limit=1), progress=False)  # free again once it is gone
    assert traces.load(out).n_prompts == 1 and not held.path.exists()


def test_resume_checks_the_settings_of_a_finished_trace_and_of_limit(tiny_models, tmp_path):
    out = tmp_path / "done"
    collect(_cfg(tiny_models, out, limit=2), progress=False)
    before = (out / "accept.parquet").read_bytes()
    with pytest.raises(CollectError, match=r"finished trace with different settings \(k_max\)"):
        collect(_cfg(tiny_models, out, limit=2, k_max=5, resume=True), progress=False)
    with pytest.raises(CollectError, match=r"different settings \(limit\)"):
        collect(_cfg(tiny_models, out, limit=4, resume=True), progress=False)
    assert collect(_cfg(tiny_models, out, limit=2, resume=True), progress=False) == out  # same: nothing to do
    assert (out / "accept.parquet").read_bytes() == before
    # shards of 2 prompts, then --resume --limit 4: refused, not a silently longer trace
    import json

    part = tmp_path / "part"
    (part / "shards").mkdir(parents=True)
    (part / "shards" / "config.json").write_text(json.dumps(_cfg(tiny_models, part, limit=2).fingerprint()))
    with pytest.raises(CollectError, match=r"--resume with different settings \(limit\)"):
        collect(_cfg(tiny_models, part, limit=4, resume=True), progress=False)


@pytest.mark.parametrize("theirs", ["accept.parquet", "manifest.json"])
def test_files_the_collector_did_not_write_are_never_overwritten(tiny_models, tmp_path, theirs):
    out = tmp_path / "users"
    out.mkdir()
    (out / theirs).write_bytes(b"the user's own file")
    for resume in (False, True):
        with pytest.raises(CollectError, match=f"holds {theirs}, not a trace this collector wrote") as e:
            collect(_cfg(tiny_models, out, limit=1, resume=resume), progress=False)
        assert "\n" not in str(e.value)
    assert (out / theirs).read_bytes() == b"the user's own file" and sorted(os.listdir(out)) == [theirs]


def test_a_full_disk_at_the_final_write_keeps_every_shard(tiny_models, tmp_path, monkeypatch):
    import errno

    import gpu_collect.collector as C

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(C.traces, "write", full)
    out = tmp_path / "full"
    with pytest.raises(CollectError, match="cannot write the trace .No space left on device.; every prompt is kept"):
        collect(_cfg(tiny_models, out, limit=2), progress=False)
    assert len(list((out / "shards").glob("*.parquet"))) == 2
    monkeypatch.undo()
    collect(_cfg(tiny_models, out, limit=2, resume=True), progress=False)
    assert traces.load(out).n_prompts == 2 and not (out / "shards").exists()


def test_a_write_killed_midway_leaves_no_temp_folder_behind(tiny_trace, tmp_path):
    import subprocess

    from traces.io import PARTIAL_MARK

    tr = traces.load(tiny_trace)
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    stale = tmp_path / ".t.abc123"
    stale.mkdir()
    (stale / PARTIAL_MARK).write_text(str(dead.pid))
    (stale / "accept.parquet").write_bytes(b"half")
    foreign = tmp_path / ".t.keepme"  # not ours: no mark
    foreign.mkdir()
    traces.write(tr, tmp_path / "t")
    assert not stale.exists() and foreign.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".t.keepme", "t"]
    assert PARTIAL_MARK not in os.listdir(tmp_path / "t")


def test_ctrl_c_while_the_collector_starts_is_one_line(tiny_models, tmp_path):
    """SIGINT at several moments of start-up (imports, parsing, model loading, the first
    prompts): one line and exit 130 every time, never a traceback."""
    import signal
    import subprocess
    import time

    for i, delay in enumerate((0.15, 0.5, 1.2, 3.0)):
        out = tmp_path / f"o{i}"
        p = subprocess.Popen([sys.executable, "-m", "gpu_collect", "collect", "--target", tiny_models["target"],
                              "--drafter", "pld", "--prompts", "builtin:specregret-84", "--limit", "2",
                              "--no-costs", "--out", str(out)],
                             stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=120)[1]
        assert "Traceback" not in err, (delay, err)
        assert p.returncode in (0, 130), (delay, p.returncode, err)  # 0: it finished before the signal
        if p.returncode == 130:
            assert err.strip().count("\n") == 0 and "interrupted" in err


def test_a_target_with_only_pickled_weights_is_refused(tiny_models, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = tmp_path / "pickled"
    m = AutoModelForCausalLM.from_pretrained(tiny_models["target"])
    m.save_pretrained(d)
    AutoTokenizer.from_pretrained(tiny_models["target"]).save_pretrained(d)
    for f in d.glob("*.safetensors"):  # what an old checkpoint ships: the weights as a pickle only
        f.unlink()
    torch.save(m.state_dict(), d / "pytorch_model.bin")
    assert not list(d.glob("*.safetensors")) and list(d.glob("*.bin"))
    for spec in (dict(target=str(d)), dict(drafters=(f"hf:{d}",))):
        with pytest.raises(CollectError, match=r"no \*\.safetensors weights \(only pytorch_model.bin, a pickle\)"):
            collect(_cfg(tiny_models, tmp_path / "o", limit=1, **spec), progress=False)
    assert not (tmp_path / "o").exists()


def test_a_run_killed_between_the_final_write_and_the_shard_cleanup_resumes_to_done(tiny_models, tmp_path):
    import json

    out = tmp_path / "late"
    cfg = _cfg(tiny_models, out, limit=1)
    collect(cfg, progress=False)
    before = (out / "accept.parquet").read_bytes()
    (out / "shards").mkdir()  # what a SIGKILL after traces.write and before the cleanup leaves
    (out / "shards" / "config.json").write_text(json.dumps(cfg.fingerprint()))
    (out / "shards" / "00-00000.parquet").write_bytes(b"a finished shard")
    assert collect(_cfg(tiny_models, out, limit=1, resume=True), progress=False) == out
    assert not (out / "shards").exists() and (out / "accept.parquet").read_bytes() == before
    (out / "shards").mkdir()  # other settings: refused, nothing removed
    (out / "shards" / "config.json").write_text(json.dumps({**cfg.fingerprint(), "k_max": 2}))
    with pytest.raises(CollectError):
        collect(_cfg(tiny_models, out, limit=1, resume=True), progress=False)
    assert (out / "shards" / "config.json").exists()

