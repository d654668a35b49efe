"""Cost of collecting a full-information trace divided by plain generation of the same
tokens, measured side by side in one run (issue 2 target: <= 1.3 for n-gram + early-exit
drafters).

    .venv/bin/python benchmarks/collection_cost.py [--prompts 16] [--max-new-tokens 128]

Both sides use the same batched greedy ``generate`` (batch 8); collection adds the
teacher-forced target pass (it also yields every early exit) and each drafter's scoring.
Model loading and drafter construction are one-off and excluded from both.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from gpu_collect import prompts as P  # noqa: E402
from gpu_collect.collector import generate_greedy, score  # noqa: E402
from gpu_collect.drafters import Seq, make_drafter  # noqa: E402
from gpu_collect.models import cache_root, load_model  # noqa: E402

GROUPS = {
    "ngram+early": ["pld", "ngram:1", "ngram:2", "ngram:3", "early:24", "early:28"],
    "all": ["pld", "ngram:1", "ngram:2", "ngram:3", "early:24", "early:28", "skip:5,24",
            "skip:5,11,18,24", "quant:rtn4", "quant:int8"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    a = ap.parse_args()
    target = load_model(a.target, torch.device("cpu"), torch.float32)
    rtn3 = cache_root() / "smollm2-135m-rtn3"
    if rtn3.is_dir():
        GROUPS["all"].append(f"hf-rtn3=hf:{rtn3}")
    qs, _ = P.load_questions("builtin:specregret-84")
    qs = qs[:: max(1, len(qs) // a.prompts)][: a.prompts]
    ids = [P.chat_ids(target.tokenizer, [{"role": "user", "content": q.turns[0]}]) for q in qs]
    drafters = {g: [make_drafter(s) for s in specs] for g, specs in GROUPS.items()}
    for ds in drafters.values():
        for d in ds:
            d.prepare(target)

    t0 = time.perf_counter()
    outs = []
    for b in range(0, len(ids), a.batch_size):
        outs += generate_greedy(target, ids[b : b + a.batch_size], a.max_new_tokens)
    t_gen = time.perf_counter() - t0
    tokens = sum(len(y) for y in outs)
    print(f"plain generate: {len(ids)} prompts, {tokens} tokens, {t_gen:.1f} s "
          f"({1000 * t_gen / tokens:.1f} ms/token), threads {torch.get_num_threads()}")
    for g, ds in drafters.items():
        t0 = time.perf_counter()
        for x, y in zip(ids, outs, strict=True):
            score(Seq(x, y, target), ds, 8, 0.0, 0)
        t_score = time.perf_counter() - t0
        print(f"{g:12} {len(ds):2d} drafters: scoring {t_score:6.1f} s   collection / generate = "
              f"{(t_gen + t_score) / t_gen:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
