"""Live KV-cached decoding (``gpu_collect.live.decode_live``) vs transformers' own speculative loops.

For one fixed arm, same model, prompts and k, in one run, side by side, interleaved per repeat:

* ``pld@k`` live vs ``model.generate(prompt_lookup_num_tokens=k)`` (prompt lookup decoding);
* ``draft@k`` live (a model drafter, own KV cache) vs ``model.generate(assistant_model=draft,
  num_assistant_tokens=k, num_assistant_tokens_schedule="constant")``, the assistant's
  confidence threshold off so it always drafts k;
* plain greedy: live ``plain@0`` vs ``model.generate``.

Prints median wall seconds per prompt set and the ratio live / transformers (target <= 1.05),
and one target forward (a decode step) for scale; ``--out DIR`` also writes them to
``DIR/results.json``.  ``--device cuda`` runs on a GPU (bf16 by default; timings synchronised).

    .venv/bin/python benchmarks/live_vs_assisted.py --target smollm2-135m --draft early:15 --k 3 \\
        --limit 4 --max-new-tokens 64 --repeats 3 [--device cuda] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from gpu_collect import prompts as P
from gpu_collect.drafters import make_drafter
from gpu_collect.errors import CollectError
from gpu_collect.live import decode_live, live_drafters
from gpu_collect.models import load_model, resolve_device, resolve_dtype


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="smollm2-135m")
    ap.add_argument("--draft", default="early:15", help="model drafter (hf:, early:, skip:, quant:)")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--prompts", default="builtin:specregret-84", help="builtin:NAME or a question.jsonl file")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    ap.add_argument("--dtype", default="auto", help="auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16")
    ap.add_argument("--out", help="also write the figures to OUT/results.json")
    a = ap.parse_args()
    try:
        device = resolve_device(a.device)
        dtype = resolve_dtype(a.dtype, device)
    except CollectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if a.threads:
        torch.set_num_threads(a.threads)
    target = load_model(a.target, device, dtype)
    d, pld = make_drafter(a.draft), make_drafter("pld")
    d.prepare(target)
    pld.prepare(target)
    fns = live_drafters([d, pld])
    arms = [(None, 0), (d.name, a.k), ("pld", a.k)]
    qs, _ = P.load_questions(a.prompts)
    ids = [P.chat_ids(target.tokenizer, [{"role": "user", "content": q.turns[0]}]) for q in qs[: a.limit]]
    m = target.model
    d.model_.generation_config.assistant_confidence_threshold = 0.0
    d.model_.generation_config.num_assistant_tokens = a.k
    d.model_.generation_config.num_assistant_tokens_schedule = "constant"
    eos = target.tokenizer.eos_token_id
    common = {"do_sample": False, "max_new_tokens": a.max_new_tokens, "eos_token_id": eos,
              "pad_token_id": eos, "num_beams": 1}

    def hf(kind: str, x: list[int]) -> list[int]:
        t = torch.tensor([x], device=device)
        kw = dict(common)
        if kind == "draft":
            kw.update(assistant_model=d.model_, num_assistant_tokens=a.k, num_assistant_tokens_schedule="constant",
                      assistant_confidence_threshold=0.0)
        elif kind == "pld":
            kw.update(prompt_lookup_num_tokens=a.k)
        with torch.no_grad():
            return m.generate(input_ids=t, attention_mask=torch.ones_like(t), **kw)[0, len(x):].tolist()

    cases = {"plain": 0, "draft": 1, "pld": 2}
    times: dict[tuple[str, str], list[float]] = {(c, w): [] for c in cases for w in ("live", "hf")}
    policy_s: list[float] = []
    equal: dict[str, int] = {}
    for rep in range(a.repeats + 1):  # repeat 0 is the warm-up
        for c, i in cases.items():
            _sync(device)
            t0 = time.perf_counter()
            outs_live = [decode_live(target, fns, arms, x, a.max_new_tokens, lambda s, i=i: i).output_ids for x in ids]
            _sync(device)
            t1 = time.perf_counter()
            outs_hf = [hf(c, x) for x in ids]
            _sync(device)
            t2 = time.perf_counter()
            if rep:
                times[(c, "live")].append(t1 - t0)
                times[(c, "hf")].append(t2 - t1)
            same = sum(o == h[: len(o)] for o, h in zip(outs_live, outs_hf, strict=True))
            if rep == 1:
                equal[c] = int(same)
                print(f"{c}: outputs equal in {same}/{len(ids)} prompts")
    # one target decode step, and a policy's select+update, for scale
    with torch.no_grad():
        ctx = torch.tensor([ids[0]], device=device)
        o = m(input_ids=ctx, use_cache=True)
        step = []
        for _ in range(20):
            _sync(device)
            t = time.perf_counter()
            m(input_ids=ctx[:, -1:], past_key_values=o.past_key_values, use_cache=True)
            _sync(device)
            step.append(time.perf_counter() - t)
            o.past_key_values.crop(-1)
    try:
        import numpy as np

        from simulator.policies import PolicyContext, make_policy

        pol = make_policy("ucbspec")
        pol.reset(1, PolicyContext(3, ("plain@0", "a@3", "b@3"), 3, 1.0, 4.0))
        for _ in range(200):
            t = time.perf_counter()
            arm = pol.select(np.zeros((1, 1)))
            pol.update(arm, np.array([2.0]), np.array([True]))
            policy_s.append(time.perf_counter() - t)
    except ImportError:
        pass
    print(f"{device} {str(dtype)[6:]}, threads {torch.get_num_threads()}, {len(ids)} prompts x "
          f"{a.max_new_tokens} tokens, k={a.k}, drafter {a.draft}, {a.repeats} repeats (median seconds per prompt set)")
    res: dict = {"device": str(device), "dtype": str(dtype)[6:], "target": a.target, "draft": a.draft, "k": a.k,
                 "prompts": len(ids), "max_new_tokens": a.max_new_tokens, "repeats": a.repeats,
                 "threads": torch.get_num_threads(), "cases": {}}
    for c in cases:
        lv, hv = statistics.median(times[(c, "live")]), statistics.median(times[(c, "hf")])
        print(f"  {c:6} live {lv:.3f} s  transformers {hv:.3f} s  ratio live/transformers {lv / hv:.3f}")
        res["cases"][c] = {"live_s": lv, "transformers_s": hv, "ratio": lv / hv, "outputs_equal": equal.get(c)}
    fwd = statistics.median(step)
    res["target_step_ms"] = fwd * 1e3
    res["policy_ms"] = statistics.median(policy_s) * 1e3 if policy_s else None
    print(f"one target decode step {fwd * 1e3:.2f} ms" + (
        f"; ucbspec select+update {statistics.median(policy_s) * 1e3:.3f} ms "
        f"({statistics.median(policy_s) / fwd:.1%} of a step)" if policy_s else ""))
    if a.out:
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
