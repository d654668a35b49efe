"""Check the collector on this machine's device: build tiny random models, collect a trace,
and compare every replayed fixed arm with live speculative decoding.

    python -m gpu_collect selfcheck --device cuda --dtype bfloat16

Reports, per drafter, how many (K, prompt) runs agree exactly.  On GPUs in reduced
precision a teacher-forced pass and incremental decoding can round differently; the
collector records teacher-forcing mismatches of the target per prompt for that reason.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import traces
from traces import Arm

from . import prompts as P
from .collector import CollectConfig, collect
from .drafters import make_drafter
from .live import speculative_decode
from .models import load_model, resolve_device, resolve_dtype
from .tiny import build_tiny


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--dtype", default="auto", help="auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16")
    ap.add_argument("--limit", type=int, default=4, help="first N questions of the built-in set (default 4)")
    ap.add_argument("--max-new-tokens", type=int, default=32, help="tokens per output (default 32)")


def run_cli(a: argparse.Namespace) -> int:
    device = resolve_device(a.device)
    dtype = resolve_dtype(a.dtype, device)
    with tempfile.TemporaryDirectory() as tmp:
        t = build_tiny(Path(tmp) / "target", seed=0)
        n = build_tiny(Path(tmp) / "noisy", seed=1, base=t, noise=0.01)
        specs = ("pld", "ngram:2", "early:2", "skip:1", "quant:rtn4", "quant:int8", f"draft=hf:{n}")
        out = Path(tmp) / "trace"
        collect(CollectConfig(target=str(t), drafters=specs, prompts="builtin:specregret-84",
                              max_new_tokens=a.max_new_tokens, k_max=6, out=str(out), limit=a.limit,
                              batch_size=2, device=str(device), dtype=a.dtype, cost_contexts=(64,),
                              cost_batch_sizes=(1, 4), cost_budget_s=5.0), progress=False)
        tr = traces.load(out)
        target = load_model(str(t), device, dtype)
        qs, _ = P.load_questions("builtin:specregret-84")
        print(f"device {device} dtype {dtype}: target teacher-forcing mismatches "
              f"{int(tr.prompts.tf_mismatches.sum())} of {int(tr.output_lens.sum())} positions")
        print(tr.costs[tr.costs.device != "nominal"].to_string(index=False))
        bad_total = 0
        for spec, info in zip(specs, tr.manifest["drafters"], strict=True):
            d = make_drafter(spec)
            d.prepare(target)
            ok = total = 0
            for K in (1, 3, 6):
                for p in range(tr.n_prompts):
                    ids = P.chat_ids(target.tokenizer, [{"role": "user", "content": qs[p].turns[0]}])
                    live = speculative_decode(target, d, ids, K, a.max_new_tokens)
                    same = (live.output_ids == tr.prompts.output_ids[p].tolist()
                            and live.rounds == len(tr.fixed_arm_rounds(Arm(info["name"], K), p)))
                    ok += same
                    total += 1
            bad_total += total - ok
            print(f"{info['name']:10} replay == live in {ok}/{total} runs")
    return 1 if bad_total else 0

