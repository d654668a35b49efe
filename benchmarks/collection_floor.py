"""Collection against its physical floor (issue "12.", part 5), measured side by side in one run:

    collection loop / (plain generation + the target's teacher-forced pass
                       + one teacher-forced pass per model drafter)

    .venv/bin/python benchmarks/collection_floor.py [--prompts 8] [--max-new-tokens 64] [--heads DIR] [--hf-rtn3 DIR]

The collection loop is ``gpu_collect.collector.collect`` itself on the same prompts (its
manifest's ``collection.wall_s``: generation, scoring, shard writing; model loading, drafter
set-up and the cost tables are one-off and outside both sides).  The floor is measured on the
same outputs: batched greedy ``generate`` (same batch size), one forward of the target over
prompt + output (hidden states kept: early exits and heads read them), and for each model
drafter its own pass: layer skip, quantised copies and ``hf:`` a forward, an early exit the
final norm and LM head on the target's layer-L states; head drafters (``--heads`` with
``smollm2-medusa`` / ``smollm2-eagle`` from ``make heads``) count their head passes.  Lookup
drafters (n-gram, PLD, REST, suffix) have no pass: all they cost is above the floor.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from gpu_collect import prompts as P  # noqa: E402
from gpu_collect.collector import CollectConfig, collect, generate_greedy  # noqa: E402
from gpu_collect.drafter_base import Seq  # noqa: E402
from gpu_collect.drafters import ModelDrafter, make_drafter  # noqa: E402
from gpu_collect.head_drafters import HeadDrafter  # noqa: E402
from gpu_collect.models import load_model  # noqa: E402
from gpu_collect.prompt_sets import corpus  # noqa: E402
from traces.schema import RANK_CAP  # noqa: E402

# the bundled greedy trace's drafters (Makefile REAL_DRAFTERS + RETRIEVAL_DRAFTERS), without
# hf-rtn3 (a derived checkpoint; its pass costs what quant:rtn4's does)
DRAFTERS = ["pld", "pld3=pld:max=3", "ngram:1", "ngram:2", "ngram:3", "early:24", "early:28", "skip:5,24",
            "skip:5,11,18,24", "quant:rtn4", "quant:int8", "rest:{corpus}", "suffix"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--heads", type=Path, default=None, help="folder with smollm2-medusa and smollm2-eagle")
    ap.add_argument("--hf-rtn3", type=Path, default=None,
                    help="the derived checkpoint of REAL_DRAFTERS' hf-rtn3 (python -m gpu_collect derive --bits 3)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus.main(["builtin:specregret-84", str(tmp / "corpus.txt")])
        specs = [s.format(corpus=tmp / "corpus.txt") for s in DRAFTERS]
        if a.hf_rtn3:
            specs.append(f"hf-rtn3=hf:{a.hf_rtn3}")
        if a.heads:
            specs += [f"medusa=medusa:{a.heads / 'smollm2-medusa'}", f"eagle=eagle:{a.heads / 'smollm2-eagle'}"]
        cfg = CollectConfig(target="smollm2-135m", drafters=tuple(specs), prompts="builtin:specregret-84",
                            max_new_tokens=a.max_new_tokens, k_max=8, out=str(tmp / "trace"), limit=a.prompts,
                            batch_size=a.batch_size, costs=False, device="cpu")
        collect(cfg, progress=False)
        loop_s = json.loads((tmp / "trace" / "manifest.json").read_text())["collection"]["wall_s"]

        target = load_model("smollm2-135m", torch.device("cpu"), torch.float32)
        drafters = [make_drafter(s) for s in specs]
        for d in drafters:
            d.prepare(target)
            d.k_max_ = 8
        qs, _ = P.load_questions("builtin:specregret-84")
        ids = [P.chat_ids(target.tokenizer, [{"role": "user", "content": q.turns[0]}]) for q in qs[: a.prompts]]
        t0 = time.perf_counter()
        outs = []
        for b in range(0, len(ids), a.batch_size):
            outs += generate_greedy(target, ids[b : b + a.batch_size], a.max_new_tokens)
        gen_s = time.perf_counter() - t0
        passes = {"target": 0.0}
        for x, y in zip(ids, outs, strict=True):
            seq = Seq(x, y, target)
            t0 = time.perf_counter()
            seq.target_out()
            passes["target"] += time.perf_counter() - t0
            for d in drafters:
                if isinstance(d, ModelDrafter):
                    t0 = time.perf_counter()
                    d.logits(seq)
                elif isinstance(d, HeadDrafter):
                    t0 = time.perf_counter()
                    d.ranks(seq, RANK_CAP)
                else:
                    continue
                passes[d.name] = passes.get(d.name, 0.0) + time.perf_counter() - t0
    floor = gen_s + sum(passes.values())
    tokens = sum(len(y) for y in outs)
    print(f"{a.prompts} prompts, {tokens} tokens, {len(specs)} drafters, threads {torch.get_num_threads()}")
    print(f"{'part':<28} {'seconds':>8}")
    print(f"{'generation (batched)':<28} {gen_s:8.2f}")
    for k, v in passes.items():
        print(f"{'teacher-forced ' + k:<28} {v:8.2f}")
    print(f"{'floor (sum)':<28} {floor:8.2f}")
    print(f"{'collection loop':<28} {loop_s:8.2f}")
    print(f"collection / floor = {loop_s / floor:.3f}  (target <= 1.1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
