"""How collection cost grows with the number of drafters of each kind and with output length,
and whether batching the teacher-forced pass pays (issue "6. Performance and scale-out").

    .venv/bin/python benchmarks/collection_scaling.py [--prompts 8] [--max-new-tokens 64]

All numbers come from one run, side by side: plain batched greedy ``generate`` of the same
prompts, then the collector's scoring (``gpu_collect.collector.score``) for drafter sets of
1, 4, 8 and 16 drafters of each kind; then a fixed drafter set at several output lengths;
then the target's teacher-forced pass per prompt against one right-padded batch.
Model loading and drafter construction are one-off and excluded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gpu_collect import prompts as P  # noqa: E402
from gpu_collect.collector import generate_greedy, score  # noqa: E402
from gpu_collect.drafters import Seq, make_drafter  # noqa: E402
from gpu_collect.models import load_model  # noqa: E402

COUNTS = (1, 4, 8, 16)


def specs(kind: str, n: int, n_layers: int) -> list[str]:
    """``n`` distinct drafters of one kind (quant: named copies cycling rtn2..rtn8, int8)."""
    if kind == "ngram":
        return [f"ngram:{i}" for i in range(1, n + 1)]
    layers = np.unique(np.linspace(1, n_layers - 1, n).round().astype(int))
    if kind == "early":
        return [f"early:{L}" for L in layers]
    if kind == "skip":
        return [f"skip:{L}" for L in layers]
    methods = [f"rtn{b}" for b in range(2, 9)] + ["int8"]
    return [f"q{i}=quant:{methods[i % len(methods)]}" for i in range(n)]


def generate(target, ids: list[list[int]], max_new: int, bs: int) -> tuple[list[list[int]], float]:
    t0 = time.perf_counter()
    outs: list[list[int]] = []
    for b in range(0, len(ids), bs):
        outs += generate_greedy(target, ids[b : b + bs], max_new)
    return outs, time.perf_counter() - t0


def score_time(target, ids, outs, drafters) -> float:
    for d in drafters:
        d.prepare(target)
    t0 = time.perf_counter()
    for x, y in zip(ids, outs, strict=True):
        score(Seq(x, y, target), drafters, 8, 0.0, 0)
    return time.perf_counter() - t0


def batched_teacher_forcing(target, ids, outs) -> tuple[float, float, float]:
    """Per-prompt passes vs one right-padded batch: times and the fraction of positions whose
    argmax agrees (right padding leaves causal positions unchanged up to rounding)."""
    seqs = [x + y for x, y in zip(ids, outs, strict=True)]
    with torch.no_grad():
        t0 = time.perf_counter()
        single = [target.model(torch.tensor([s]), use_cache=False).logits[0].argmax(-1) for s in seqs]
        t_single = time.perf_counter() - t0
        n = max(len(s) for s in seqs)
        pad = target.tokenizer.pad_token_id or 0
        batch = torch.tensor([s + [pad] * (n - len(s)) for s in seqs])
        mask = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs])
        t0 = time.perf_counter()
        logits = target.model(batch, attention_mask=mask, use_cache=False).logits
        t_batch = time.perf_counter() - t0
    agree = np.mean(np.concatenate([(logits[i, : len(s)].argmax(-1) == single[i]).numpy()
                                    for i, s in enumerate(seqs)]))
    return t_single, t_batch, float(agree)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--lengths", default="32,64,128,256")
    ap.add_argument("--batch-size", type=int, default=8)
    a = ap.parse_args()
    target = load_model(a.target, torch.device("cpu"), torch.float32)
    n_layers = target.model.config.num_hidden_layers
    qs, _ = P.load_questions("builtin:specregret-84")
    qs = qs[:: max(1, len(qs) // a.prompts)][: a.prompts]
    ids = [P.chat_ids(target.tokenizer, [{"role": "user", "content": q.turns[0]}]) for q in qs]
    print(f"{a.target} on CPU, {torch.get_num_threads()} threads, {len(ids)} prompts")

    outs, t_gen = generate(target, ids, a.max_new_tokens, a.batch_size)
    tokens = sum(len(y) for y in outs)
    print(f"\n1) drafters per kind, {tokens} tokens (<= {a.max_new_tokens} per prompt); plain generate {t_gen:.1f} s")
    print(f"{'kind':6} {'n':>3} {'scoring s':>10} {'per drafter s':>14} {'collection/generate':>20}")
    for kind in ("ngram", "early", "skip", "quant"):
        for n in COUNTS:
            ds = [make_drafter(s) for s in specs(kind, n, n_layers)]
            t = score_time(target, ids, outs, ds)
            print(f"{kind:6} {len(ds):3d} {t:10.2f} {t / len(ds):14.3f} {(t_gen + t) / t_gen:20.2f}")
            del ds

    print("\n2) output length, drafters pld, ngram:2, early:24, skip:5,24")
    print(f"{'max new':>8} {'tokens':>7} {'generate s':>11} {'scoring s':>10} {'collection/generate':>20}")
    for n_new in (int(x) for x in a.lengths.split(",")):
        o, tg = generate(target, ids, n_new, a.batch_size)
        ds = [make_drafter(s) for s in ("pld", "ngram:2", "early:24", "skip:5,24")]
        t = score_time(target, ids, o, ds)
        print(f"{n_new:8d} {sum(map(len, o)):7d} {tg:11.2f} {t:10.2f} {(tg + t) / tg:20.2f}")

    ts, tb, agree = batched_teacher_forcing(target, ids, outs)
    print(f"\n3) teacher-forced target pass, {len(ids)} prompts: one by one {ts:.2f} s, one right-padded batch "
          f"{tb:.2f} s (x{ts / tb:.2f}); argmax agreement {agree:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
