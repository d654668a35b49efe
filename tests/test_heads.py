"""Medusa and EAGLE heads on the tiny model: trained here, loaded from the published layouts,
replayed == live for chain and tree arms, and EAGLE's per-position drafting is necessary."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the collector needs the [collect] extra")

import traces  # noqa: E402
from gpu_collect import prompts as P  # noqa: E402
from gpu_collect.collector import CollectConfig, collect  # noqa: E402
from gpu_collect.drafter_base import Seq, token_ranks  # noqa: E402
from gpu_collect.drafters import make_drafter  # noqa: E402
from gpu_collect.errors import CollectError  # noqa: E402
from gpu_collect.head_ckpt import load_eagle, load_medusa, read_tensors  # noqa: E402
from gpu_collect.head_drafters import eagle_ranks  # noqa: E402
from gpu_collect.live import speculative_decode, speculative_decode_tree  # noqa: E402
from gpu_collect.models import load_model  # noqa: E402
from gpu_collect.tiny import build_tiny  # noqa: E402
from gpu_collect.train_head import train  # noqa: E402
from traces import Arm  # noqa: E402

KINDS = ("medusa", "eagle", "eagle3")


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    """A tiny target and one head of each kind trained on its outputs for 3 evaluation prompts
    (memorised on purpose, so that heads accept and the checks are not vacuous)."""
    root = tmp_path_factory.mktemp("heads")
    target_dir = build_tiny(root / "target", seed=0)
    qs, _ = P.load_questions("builtin:specregret-84")
    lines = [{"question_id": 0, "category": "held", "turns": ["held out"]}]
    lines += [{"question_id": q.question_id, "category": q.category, "turns": [q.turns[0]]} for q in qs[:3]]
    (root / "train.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    target = load_model(str(target_dir), torch.device("cpu"), torch.float32)
    out = {"target": target, "target_dir": str(target_dir), "root": root}
    for kind in KINDS:
        out[kind] = root / kind
        out[kind + "_recipe"] = train(kind, str(target_dir), root / kind, prompts=str(root / "train.jsonl"),
                                      heads=3, steps=150, lr=3e-3, max_new_tokens=32, held_every=1000,
                                      positions=32, target=target, progress=False)
    return out


@pytest.fixture(scope="module")
def head_trace(heads):
    out = heads["root"] / "trace"
    specs = tuple(f"{k}:{heads[k]}" for k in KINDS)
    collect(CollectConfig(target=heads["target_dir"], drafters=("pld", *specs), prompts="builtin:specregret-84",
                          max_new_tokens=32, k_max=4, out=str(out), limit=3, costs=True, cost_contexts=(32,),
                          cost_batch_sizes=(1,), cost_budget_s=1.0, device="cpu"), progress=False)
    return traces.load(out)


def _ids(target, p):
    qs, _ = P.load_questions("builtin:specregret-84")
    return P.chat_ids(target.tokenizer, [{"role": "user", "content": qs[p].turns[0]}])


def test_manifest_says_how_each_drafter_was_scored(head_trace, heads):
    ds = {d["kind"]: d for d in head_trace.manifest["drafters"]}
    assert ds["medusa"]["scoring"].startswith("teacher-forced") and ds["medusa"]["draft_passes"] == "one"
    assert ds["medusa"]["max_depth"] == 3 and head_trace.k_limits["medusa-medusa"] == 3
    for k in ("eagle", "eagle3"):
        assert ds[k]["scoring"].startswith("per-position drafting") and ds[k]["draft_passes"] == "per depth"
        assert ds[k]["rank_depth"] == 4
    assert ds["ngram"]["scoring"].startswith("lookup")
    recipe = ds["eagle"]["params"]["recipe"]
    assert recipe["recipe_sha256"] == heads["eagle_recipe"]["recipe_sha256"] and recipe["steps"] == 150
    # the heads learned something: they accept, or the replay == live checks below would be vacuous
    for k in KINDS:
        d = head_trace.drafter_names.index(ds[k]["name"])
        assert head_trace.accept[:, d].max() >= 2, k
    with pytest.raises(traces.ArmError, match="drafts at most 3 tokens"):
        traces.resolve_arms("medusa-medusa@4", head_trace.drafter_names, head_trace.k_limits)


@pytest.mark.parametrize("kind", KINDS)
def test_replay_equals_live_chain_and_tree_arms(head_trace, heads, kind):
    """Chain arms and three tree shapes (two per-depth branchings and a sparse tree of rank
    paths): rounds replayed from the recorded (position, depth) ranks == live head drafting
    and verification (Medusa: heads on the target's feature; EAGLE: own features)."""
    target = heads["target"]
    d = make_drafter(f"{kind}:{heads[kind]}")
    d.prepare(target)
    sparse = heads["root"] / "sparse.json"
    sparse.write_text('{"paths": [[0, 0, 0], [0, 1], [1, 0], [2]]}')
    for p in range(3):
        ids = _ids(target, p)
        for K in (1, 3):
            live = speculative_decode(target, d, ids, K, 32)
            assert live.output_ids == head_trace.prompts.output_ids[p].tolist()
            assert live.emitted == head_trace.fixed_arm_rounds(Arm(d.name, K), p).tolist(), (kind, K, p)
        for tree in ("2x2", "3x1x1", str(sparse)):
            live = speculative_decode_tree(target, d, ids, tree, 32)
            assert live.output_ids == head_trace.prompts.output_ids[p].tolist()
            assert live.emitted == head_trace.fixed_arm_rounds(Arm(d.name, 0, tree=tree), p).tolist(), (kind, tree, p)


def test_teacher_forced_eagle_score_is_not_live_drafting(heads):
    """The naive score (target features at every depth: the run of correct one-step
    predictions) differs from EAGLE drafting with its own features, so the per-position
    path is necessary; the per-position ranks equal a plain sequential walk (no batching)."""
    target = heads["target"]
    d = make_drafter(f"eagle:{heads['eagle']}")
    d.prepare(target)
    d.k_max_ = 4
    differ = 0
    for p in range(3):
        ids = _ids(target, p)
        y = speculative_decode(target, None, ids, 0, 32).output_ids
        seq = Seq(ids, y, target)
        F = seq.target_out().hidden_states[-1][0]
        own = eagle_ranks(d.head_, F, ids + y, len(ids), 4, 16)
        one_step = own[:, 0]  # depth 1 reads the target's features: teacher forcing's row
        naive = np.concatenate([one_step, np.full(4, 16)])
        naive = np.stack([naive[j : j + len(y)] for j in range(4)], 1)
        lead = lambda r: np.cumprod(r == 0, 1).sum(1)  # noqa: E731
        differ += int((lead(naive) != lead(own)).sum())
        for t in range(0, len(y), 5):  # the batched masks against one causal walk per position
            for s in range(1, min(4, len(y) - t) + 1):
                r = token_ranks(d._walk(ids + y[:t], y[t : t + s - 1])[None], [y[t + s - 1]], 16)[0]
                assert r == own[t, s - 1], (p, t, s)
    assert differ > 0


def test_published_layouts_load(heads, tmp_path):
    """Medusa: bare names, a ``medusa_head.`` prefix (Medusa-2 full model), vLLM's
    ``blocks/lm_heads`` names, and a ``.pt`` file; EAGLE: ``model.`` prefix and ``.bin``."""
    from safetensors.torch import save_file

    target = heads["target"]
    ref = load_medusa(heads["medusa"], target)
    x = torch.randn(5, target.model.config.hidden_size)
    sd = read_tensors(heads["medusa"] / "medusa_lm_head.safetensors")
    cfg = (heads["medusa"] / "config.json").read_text()
    variants = {
        "prefixed": ({"medusa_head." + k: v for k, v in sd.items()} | {"model.norm.weight": torch.ones(3)},
                     "model.safetensors"),
        "pt": (sd, "medusa_lm_head.pt"),
    }
    variants["vllm"] = ({(f"blocks.{k.split('.')[0]}.layers.0.{k.split('.')[-1]}" if ".linear." in k
                          else f"lm_heads.{k.split('.')[0]}.weight"): v for k, v in sd.items()}, "model.safetensors")
    for name, (tensors, fname) in variants.items():
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(cfg)
        if fname.endswith(".pt"):
            torch.save(tensors, d / fname)
        else:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(d / fname))
        got = load_medusa(d, target)
        torch.testing.assert_close(got(x), ref(x), msg=name)
    e_sd = read_tensors(heads["eagle"] / "model.safetensors")
    d = tmp_path / "eagle-bin"
    d.mkdir()
    (d / "config.json").write_text((heads["eagle"] / "config.json").read_text())
    torch.save({"model." + k: v for k, v in e_sd.items()}, d / "pytorch_model.bin")
    a, b = load_eagle(heads["eagle"], target, fused=False), load_eagle(d, target, fused=False)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/specregret-pwned",))


def test_a_pickle_that_runs_code_is_refused(heads, tmp_path):
    """A ``.bin`` checkpoint is read tensors-only: a pickle with code is refused in one line and
    the code never runs."""
    import os

    marker = "/tmp/specregret-pwned"
    if os.path.exists(marker):
        os.remove(marker)
    d = tmp_path / "evil"
    d.mkdir()
    (d / "config.json").write_text((heads["eagle"] / "config.json").read_text())
    with open(d / "pytorch_model.bin", "wb") as f:
        pickle.dump({"fc.weight": _Evil()}, f)
    with pytest.raises(CollectError, match=r"pytorch_model.bin: refused: not a tensors-only checkpoint"):
        load_eagle(d, heads["target"], fused=False)
    assert not os.path.exists(marker)
    with pytest.raises(CollectError, match="tensor names do not match"):
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "config.json").write_text((heads["eagle"] / "config.json").read_text())
        from safetensors.torch import save_file

        save_file({"fc.weight": torch.zeros(2, 2)}, str(bad / "model.safetensors"))
        load_eagle(bad, heads["target"], fused=False)


def test_decoder_layer_is_llamas():
    """Our decoder layer with Llama's tensor names computes what transformers' Llama layer does."""
    from transformers import LlamaConfig, LlamaModel

    from gpu_collect.heads import DecoderLayer, HeadConfig, attend

    torch.manual_seed(0)
    c = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                    num_attention_heads=4, num_key_value_heads=2, rope_theta=1000.0)
    ref = LlamaModel(c).eval()
    hc = HeadConfig(hidden_size=32, vocab_size=50, num_attention_heads=4, num_key_value_heads=2,
                    intermediate_size=48, rms_norm_eps=c.rms_norm_eps, rope_theta=1000.0)
    ours = DecoderLayer(hc, input_norm=True, fused=False)
    ours.load_state_dict({k.removeprefix("layers.0."): v for k, v in ref.state_dict().items()
                          if k.startswith("layers.0.")})
    ids = torch.randint(0, 50, (1, 7))
    with torch.no_grad():
        want = ref(ids).last_hidden_state[0]
        x = ref.embed_tokens(ids)[0]
        q, k, v = ours.self_attn.qkv(ours.attn_input(x, None), torch.arange(7))
        got = ref.norm(ours.finish(x, attend(q, [(k[None], v[None], torch.ones(7, 7, dtype=torch.bool).tril())])))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_cost_model_charges_medusa_one_draft_pass_and_carries_gpu_tables(head_trace, heads, tmp_path):
    """Medusa drafts every depth in one pass (``draft_passes: "one"``): a chain round costs
    one draft step, not K; EAGLE pays one step per depth.  ``costs --carry`` copies a device
    table the trace lacks and fills new drafters' draft rows by rule (a head on the H100
    random-weight table: its proxy, Llama-3-8B cut to one layer, by weight ratio), saying so."""
    from gpu_collect.gpu_costs import arch_params, carry
    from simulator.costs import CostModel

    m = CostModel.for_trace(head_trace, "nominal")
    med, eag = "medusa-medusa", "eagle-eagle"
    assert m.one_pass == {med}
    got = m.round_ms([Arm(med, 3), Arm(eag, 3)])
    assert got[0] == pytest.approx(m.verify_ms(3, 1, 0) + m.draft_step_ms(med, 1, 0))
    assert got[1] == pytest.approx(m.verify_ms(3, 1, 0) + 3 * m.draft_step_ms(eag, 1, 0))
    bundled = traces.load("builtin:smollm2-greedy")
    out = traces.write(head_trace, tmp_path / "t")
    done = carry(str(out), "builtin:smollm2-greedy")
    tr = traces.load(out)
    gpu = [d for d in bundled.costs.device.unique() if d.startswith("cuda")][0]
    assert any(line.startswith(gpu) and "by rule, not measured" in line for line in done)
    assert "1 layer" in tr.manifest["cost_notes"][gpu]["carried"]
    g = CostModel.for_trace(tr, "cuda")
    frac = arch_params("llama3-8b", 1) / arch_params("llama3-8b")
    v = bundled.costs[(bundled.costs.device == gpu) & (bundled.costs.kind == "verify") & (bundled.costs.k == 0)]
    v0 = float(v[v.batch_size == v.batch_size.min()].sort_values("context_len").ms.iloc[0])
    assert g.draft_ms[eag] == pytest.approx(frac * v0)
    np.testing.assert_array_equal(tr.ranks, head_trace.ranks)


def test_training_prompts_are_not_near_copies_of_evaluation_prompts():
    """The shipped training set passes its generator's near-duplicate check, and the check
    catches a near copy (one added on purpose)."""
    import importlib.util

    from gpu_collect.prompts import BUILTIN

    spec = importlib.util.spec_from_file_location("mk", BUILTIN["specregret-train"].parent / "make_specregret_train.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    evals = [t for q in P.load_questions("builtin:specregret-84")[0] for t in q.turns]
    train_set = [q.turns[0] for q in P.load_questions("builtin:specregret-train")[0]]
    assert train_set == [q["turns"][0] for q in mk.questions()]  # the file is the generator's output
    assert not mk.near_duplicates(train_set, evals)
    assert mk.near_duplicates(["Write a Python function that converts a temperature from Celsius to Fahrenheit."],
                              evals)
