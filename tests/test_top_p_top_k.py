"""Top-k / top-p sampling in the collector and the live loop (``gpu_collect.sampling``).

The warp equals transformers' warpers bit for bit; alpha / beta under top-k and top-p equal a
brute-force float64 computation on a tiny model; the target's ``p`` and every drafter's ``q``
are warped alike (a drafter identical to the target accepts every draft; top-k 1 is greedy
decoding, drafts and acceptance included); the collector's sampled output is the live loop's
plain output for the same seed; the settings are recorded; bad values are one line each.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the collector needs the [collect] extra")

import traces  # noqa: E402
from gpu_collect import prompts as P  # noqa: E402
from gpu_collect.cli import main as gc_main  # noqa: E402
from gpu_collect.collector import CollectConfig, generate_greedy, generate_sample, prompt_seed  # noqa: E402
from gpu_collect.drafters import Seq, make_drafter  # noqa: E402
from gpu_collect.errors import CollectError  # noqa: E402
from gpu_collect.live import speculative_decode  # noqa: E402
from gpu_collect.models import load_model  # noqa: E402
from gpu_collect.sampling import Sampling, warp_logits  # noqa: E402
from gpu_collect.tiny import build_tiny  # noqa: E402

pytestmark = pytest.mark.collect

T, TOP_K, TOP_P = 0.8, 20, 0.9
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("topk")
    m = build_tiny(root / "M", seed=0)
    noisy = build_tiny(root / "noisy", seed=1, base=m, noise=0.05)
    q = root / "q.jsonl"
    q.write_text(json.dumps({"question_id": 7, "category": "chat", "turns": ["The museum is open every day"]}) + "\n")
    target = load_model(str(m), torch.device("cpu"), torch.float32)
    prompt = P.chat_ids(target.tokenizer, [{"role": "user", "content": "The museum is open every day"}])
    return {"M": m, "noisy": noisy, "q": q, "target": target, "prompt": prompt}


def _drafter(spec: str, target):
    d = make_drafter(spec)
    d.prepare(target)
    return d


# -- the warp ---------------------------------------------------------------------------------
def test_warp_is_transformers_warpers_bit_for_bit():
    """Random logits (a third rounded to halves, so ties sit at the top-k and top-p boundary),
    every order of magnitude of top-k (above the vocabulary too) and top-p: the same bits as
    transformers' Temperature -> TopK -> TopP processors (its order), rows alone or batched."""
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    g = torch.Generator().manual_seed(0)
    for trial in range(120):
        V = int(torch.randint(2, 400, (1,), generator=g))
        x = torch.randn(3, V, generator=g) * float(0.1 + 5 * torch.rand(1, generator=g))
        if trial % 3 == 0:
            x = (2 * x).round() / 2
        t = (0.3, 0.7, 1.0, 1.5)[trial % 4]
        k = 0 if trial % 5 == 0 else int(torch.randint(1, V + 3, (1,), generator=g))
        p = (1.0, 0.9, 0.5, 0.05, 0.999)[trial % 5 if trial % 7 else 1]
        ref = LogitsProcessorList([TemperatureLogitsWarper(t), *([TopKLogitsWarper(k)] if k else []),
                                   *([TopPLogitsWarper(p)] if p < 1 else [])])(None, x.clone())
        assert torch.equal(warp_logits(x, t, k, p), ref), (trial, V, t, k, p)
        assert torch.equal(torch.stack([warp_logits(r, t, k, p) for r in x]), ref), (trial, "rows")


def test_warp_ties_and_the_boundary_token():
    x = torch.log(torch.tensor([0.5, 0.2, 0.2, 0.1]))
    kept = lambda k, p: torch.isfinite(warp_logits(x, 1.0, k, p)).tolist()  # noqa: E731
    assert kept(2, 1.0) == [True, True, True, False]  # both tokens tied with the 2nd stay
    assert kept(1, 1.0) == [True, False, False, False]
    # 0.5 < 0.6: one more token is needed; of the two tied at 0.2 one crosses 0.6 and stays, the
    # other goes (torch.sort's order decides, as in transformers: unlike top-k, not every tie stays)
    k06 = kept(0, 0.6)
    assert k06[0] and not k06[3] and k06[1] + k06[2] == 1
    assert kept(0, 0.75) == [True, True, True, False]  # 0.7 < 0.75: the second tied token crosses it
    assert kept(0, 0.5) == [True, False, False, False]  # 0.5 reaches 0.5: the boundary token alone
    assert kept(0, 1e-9) == [True, False, False, False]  # at least one token
    assert kept(0, 1.0) == [True] * 4 and kept(9, 1.0) == [True] * 4
    p = Sampling(1.0, 0, 0.6).probs(x)
    assert float(p[3]) == 0.0 and abs(float(p.sum()) - 1) < 1e-6


# -- alpha and beta -----------------------------------------------------------------------------
def _brute_probs(logits: np.ndarray, t: float, k: int, top_p: float) -> np.ndarray:
    """One row, float64, token by token: temperature, keep >= the k-th largest, keep a token
    while the tokens more likely than it hold less than top_p."""
    z = logits.astype(np.float64) / t
    if k:
        kth = sorted(z, reverse=True)[min(k, len(z)) - 1]
        z = np.where(z >= kth, z, -np.inf)
    e = np.exp(z - z.max())
    prob = e / e.sum()
    if top_p < 1:
        keep = np.zeros(len(z), bool)
        above = 0.0
        for i in sorted(range(len(z)), key=lambda i: -prob[i]):
            keep[i] = above < top_p
            above += prob[i]
        prob = np.where(keep, prob, 0.0)
        prob /= prob.sum()
    return prob


@pytest.mark.parametrize("k, top_p", [(TOP_K, TOP_P), (0, 0.7), (5, 1.0)])
def test_alpha_beta_equal_brute_force(tiny, k, top_p):
    """A model drafter (a noisy copy) and PLD (q one-hot on its draft) against alpha / beta
    from per-prefix forwards, warped in float64 by hand: agree to float32 rounding."""
    target, prompt = tiny["target"], tiny["prompt"]
    s = Sampling(T, k, top_p)
    y = generate_sample(target, prompt, 12, s, seed=3)
    draft = _drafter(f"hf:{tiny['noisy']}", target)
    pld = _drafter("pld", target)
    a_m, b_m = draft.sampling_probs(Seq(prompt, y, target), s)
    a_n, b_n = pld.sampling_probs(Seq(prompt, y, target), s)
    with torch.no_grad():
        for t in range(len(y)):
            ids = torch.tensor([prompt + y[:t]])
            p = _brute_probs(target.model(ids).logits[0, -1].numpy(), T, k, top_p)
            q = _brute_probs(draft.model_(ids).logits[0, -1].numpy(), T, k, top_p)
            assert p[y[t]] > 0  # the output was sampled from the warped target
            np.testing.assert_allclose(a_m[t], np.minimum(p, q).sum(), atol=2e-5)
            np.testing.assert_allclose(b_m[t], min(1.0, q[y[t]] / p[y[t]]), atol=2e-5, rtol=1e-4)
            d = pld.lookup(np.asarray(prompt + y[:t]), 1)
            np.testing.assert_allclose(a_n[t], p[d[0]] if len(d) else 0.0, atol=2e-5)
            assert b_n[t] == (float(d[0] == y[t]) if len(d) else 0.0)


# -- p and q warped alike ---------------------------------------------------------------------------
def test_a_drafter_equal_to_the_target_accepts_every_draft(tiny):
    """q == p after the same warp: every draft accepted live, alpha = beta = 1 collected.  A warp
    applied to one side only (the target's p, not the drafter's q) rejects drafts here."""
    target, prompt = tiny["target"], tiny["prompt"]
    same = _drafter(f"hf:{tiny['M']}", target)
    res = speculative_decode(target, same, prompt, 4, 21, temperature=T, seed=1, top_k=TOP_K, top_p=TOP_P)
    assert res.emitted == [5, 5, 5, 5, 1], res.emitted
    a, b = same.sampling_probs(Seq(prompt, res.output_ids, target), Sampling(T, TOP_K, TOP_P))
    np.testing.assert_allclose(a, 1, atol=1e-5)
    np.testing.assert_allclose(b, 1, atol=1e-5)


def test_top_k_1_is_greedy_decoding_drafts_and_acceptance_included(tiny):
    """top-k 1 makes p and q one-hot on their argmax: the sample, the live loop's output and its
    rounds equal greedy decoding's, and beta is the greedy one-step correctness."""
    target, prompt = tiny["target"], tiny["prompt"]
    greedy = generate_greedy(target, [prompt], 16)[0]
    assert generate_sample(target, prompt, 16, Sampling(1.0, 1), seed=4) == greedy
    early = _drafter("early:2", target)
    ref = speculative_decode(target, early, prompt, 3, 16)
    live = speculative_decode(target, early, prompt, 3, 16, temperature=1.0, seed=4, top_k=1)
    assert live.output_ids == greedy == ref.output_ids
    assert live.emitted == ref.emitted
    a, b = early.sampling_probs(Seq(prompt, greedy, target), Sampling(1.0, 1))
    correct = (early.greedy_ranks(Seq(prompt, greedy, target), 8) == 0).astype(float)
    np.testing.assert_array_equal(b, correct)
    np.testing.assert_array_equal(a, correct)


def test_live_plain_decoding_is_the_collectors_sample(tiny):
    """The live loop without drafts draws one token per round from the warped p with the same
    generator as the collector: the same tokens for the same seed (and not those of T alone)."""
    target, prompt = tiny["target"], tiny["prompt"]
    s = Sampling(T, TOP_K, TOP_P)
    for seed in (0, 1, 2):
        live = speculative_decode(target, None, prompt, 0, 16, temperature=T, seed=seed, top_k=TOP_K, top_p=TOP_P)
        assert live.output_ids == generate_sample(target, prompt, 16, s, seed)
    loose = [generate_sample(target, prompt, 16, Sampling(2.0), seed) for seed in range(3)]
    tight = [generate_sample(target, prompt, 16, Sampling(2.0, 3, 0.5), seed) for seed in range(3)]
    assert loose != tight


# -- the collector ------------------------------------------------------------------------------------
def _collect(tiny, out: Path, *args: str) -> int:
    threads = torch.get_num_threads()
    try:
        return gc_main(["collect", "--target", str(tiny["M"]), "--prompts", str(tiny["q"]), "--no-costs",
                        "--max-new-tokens", "10", "--k-max", "3", "--device", "cpu", "--quiet",
                        "--out", str(out), *args])
    finally:
        torch.set_num_threads(threads)


def test_collect_with_top_p_top_k_records_them_and_samples_the_warped_target(tiny, tmp_path):
    out = tmp_path / "s"
    rc = _collect(tiny, out, "--drafter", "early:2", "--drafter", "pld", "--temperature", str(T),
                  "--top-p", str(TOP_P), "--top-k", str(TOP_K), "--seed", "5")
    assert rc == 0
    tr = traces.load(out)
    dec = tr.manifest["decoding"]
    assert tr.manifest["kind"] == "sampling"
    assert (dec["temperature"], dec["top_k"], dec["top_p"]) == (T, TOP_K, TOP_P)
    settings = tr.manifest["collection"]["settings"]
    assert (settings["top_k"], settings["top_p"]) == (TOP_K, TOP_P)
    target, prompt = tiny["target"], tiny["prompt"]
    s = Sampling(T, TOP_K, TOP_P)
    y = list(tr.prompts.output_ids[0])
    assert y == generate_sample(target, prompt, 10, s, prompt_seed(5, str(tr.prompts.prompt_id[0])))
    for i, spec in enumerate(("early:2", "pld")):
        a, b = _drafter(spec, target).sampling_probs(Seq(prompt, y, target), s)
        np.testing.assert_allclose(tr.alpha[0, i, : len(y)], a, rtol=1e-6)
        np.testing.assert_allclose(tr.beta[0, i, : len(y)], b, rtol=1e-6)


def test_aliases_and_defaults():
    from gpu_collect.cli import build_parser

    a = build_parser().parse_args(["collect", "--target", "M", "--out", "o", "--top_p", "0.5", "--top_k", "7"])
    assert (a.top_k, a.top_p) == (7, 0.5)
    a = build_parser().parse_args(["collect", "--target", "M", "--out", "o"])
    assert (a.top_k, a.top_p) == (0, 1.0)
    # off at the default: a folder written before the options existed resumes, and records null
    cfg = CollectConfig(target="M", drafters=("pld",), prompts="builtin:specregret-84", max_new_tokens=4,
                        k_max=2, out="o", temperature=0.5)
    assert "top_k" not in cfg.fingerprint() and "top_p" not in cfg.fingerprint()
    assert cfg.sampling.record() == {"top_k": None, "top_p": None}
    old = traces.load(ROOT / "traces" / "data" / "smollm2-sampling")  # recorded null before
    assert old.manifest["decoding"]["top_k"] is None


@pytest.mark.parametrize("args, says", [
    (("--temperature", "0.8", "--top-p", "0"), "--top-p: expected a number in (0, 1] (1 = off; Spec-Bench's 0"),
    (("--temperature", "0.8", "--top-p", "1.5"), "--top-p: expected a number in (0, 1]"),
    (("--temperature", "0.8", "--top-p", "nan"), "--top-p: expected a number in (0, 1]"),
    (("--temperature", "0.8", "--top-k", "-1"), "--top-k: expected an integer >= 0 (0 = off; vLLM's -1"),
    (("--top-k", "20",), "--top-k 20: applies to sampling only (greedy decoding ignores it); expected "
                         "--temperature > 0, or drop --top-k"),
    (("--top-p", "0.9",), "--top-p 0.9: applies to sampling only"),
    (("--temperature", "0.8", "--top-k", "2.5"), "invalid int value: '2.5'"),
])
def test_bad_values_are_refused_in_one_line(tiny, tmp_path, capsys, args, says):
    out = tmp_path / "bad"
    assert _collect(tiny, out, "--drafter", "pld", *args) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith(("error", "Traceback"))]
    assert len(err) == 1 and says in err[0], err
    assert not out.exists()


def test_the_api_and_the_trace_reader_refuse_them_too(tmp_path):
    with pytest.raises(CollectError, match=r"--top-k: expected an integer >= 0"):
        Sampling(1.0, top_k=True)
    with pytest.raises(CollectError, match=r"--top-p: expected a number in \(0, 1\]"):
        speculative_decode(None, None, [1], 1, 1, temperature=1.0, top_p=-0.1)
    src = ROOT / "traces" / "data" / "smollm2-sampling"
    dst = tmp_path / "t"
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    man = json.loads((dst / "manifest.json").read_text())
    man["decoding"].update(top_p=1.5, top_k=-3)
    (dst / "manifest.json").write_text(json.dumps(man))
    problems = traces.validate(dst)
    assert any("decoding.top_p: expected a number in (0, 1] or null, got 1.5" in p for p in problems), problems
    assert any("decoding.top_k: expected an integer >= 0 or null, got -3" in p for p in problems), problems
