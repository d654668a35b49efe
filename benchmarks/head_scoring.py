"""What scoring a head drafter costs at collection, per output token, side by side in one run:
the target's teacher-forced pass, Medusa's ranks (heads on those features), EAGLE's naive
teacher-forced score (one pass of the head over the target's features: depth 1 only) and its
exact per-position drafting of ``k_max`` depths with its own features, and a model drafter's
teacher-forced pass for scale.

    .venv/bin/python benchmarks/head_scoring.py --trace traces/data/smollm2-greedy [--prompts 8]

The heads are the trace's own (``medusa`` / ``eagle`` drafters: their checkpoint directories
are in the manifest), on the CPU, float32; outputs are the trace's recorded greedy outputs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import traces  # noqa: E402
from gpu_collect import prompts as P  # noqa: E402
from gpu_collect.drafters import Seq, make_drafter  # noqa: E402
from gpu_collect.models import load_model  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trace", default="traces/data/smollm2-greedy")
    ap.add_argument("--prompts", type=int, default=8)
    a = ap.parse_args()
    tr = traces.load(a.trace)
    target = load_model("smollm2-135m", torch.device("cpu"), torch.float32)
    specs = {d["name"]: d["params"]["spec"] for d in tr.manifest["drafters"]}
    heads = {n: make_drafter(specs[n]) for n in ("medusa", "eagle") if n in specs}
    model = make_drafter("quant:rtn4")
    for d in (*heads.values(), model):
        d.prepare(target)
        d.k_max_ = tr.k_max
    qs, _ = P.load_questions(tr.manifest["prompt_set"]["name"])
    by_id = {q.question_id: q for q in qs}
    pick = list(range(0, tr.n_prompts, max(1, tr.n_prompts // a.prompts)))[: a.prompts]
    times = {"target teacher-forced pass": 0.0, "rtn4 teacher-forced pass": 0.0}
    tokens = 0
    for p in pick:
        q = by_id[str(tr.prompts.prompt_id[p])]
        ids = P.chat_ids(target.tokenizer, [{"role": "user", "content": q.turns[0]}])
        y = tr.prompts.output_ids[p].tolist()
        tokens += len(y)
        seq = Seq(ids, y, target)
        t0 = time.perf_counter()
        seq.target_out()
        times["target teacher-forced pass"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        model.greedy_ranks(seq, 16)
        times["rtn4 teacher-forced pass"] += time.perf_counter() - t0
        for name, d in heads.items():
            if name == "eagle":
                from gpu_collect.head_drafters import eagle_ranks

                F = d.pick(seq.target_out().hidden_states)[0]
                for depth, label in ((1, "eagle naive teacher-forced (depth 1)"),
                                     (tr.k_max, f"eagle per-position drafting ({tr.k_max} depths)")):
                    t0 = time.perf_counter()
                    eagle_ranks(d.head_, F, ids + y, len(ids), depth, 16)
                    times[label] = times.get(label, 0.0) + time.perf_counter() - t0
            else:
                d.cache_ = (None, None, None)
                t0 = time.perf_counter()
                d.ranks(seq, 16)
                times[f"{name} ranks ({d.max_depth} heads)"] = times.get(f"{name} ranks ({d.max_depth} heads)", 0.0) \
                    + time.perf_counter() - t0
    print(f"{len(pick)} prompts, {tokens} output tokens, threads {torch.get_num_threads()}")
    base = times["target teacher-forced pass"]
    for k, v in times.items():
        print(f"{k:44} {1000 * v / tokens:7.2f} ms/token   {v / base:5.2f} x the target pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
