"""``python -m gpu_collect live``: fixed arms decoded for real with KV caches, timed per round.

    python -m gpu_collect live --target smollm2-135m --drafter pld --drafter early:12 \\
        --arms 'plain@0,pld@3,early12@2' --prompts builtin:specregret-84 --limit 4 --out DIR

Writes ``DIR/rounds.csv`` (one row per round: arm, prompt, drafted, accepted, emitted, draft and
verify seconds), ``DIR/prompts.csv`` (per arm and prompt: tokens, rounds, wall seconds) and
``DIR/live.json`` (what ran).  Each arm decodes each prompt once, after one untimed warm-up
prompt.  A policy choosing the arm every round is ``python -m experiments live`` (it needs the
simulator, which this package never imports).
"""

from __future__ import annotations

import argparse
import json

from traces import clikit as ck

from .errors import CollectError

SUPPORTED = "hf, early, skip, quant, ngram, pld, rest, suffix"


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--target", required=True, help="model id, local directory or smollm2-135m")
    ap.add_argument("--drafter", action="append", default=[], help=f"[NAME=]KIND[:ARG] ({SUPPORTED}; repeatable)")
    ap.add_argument("--arms", required=True, help="chain arms NAME@K or NAME@K1-K2, comma-separated; plain@0 "
                                                  "is plain decoding")
    ap.add_argument("--prompts", required=True, help="prompt set: builtin:NAME or a question.jsonl file")
    ap.add_argument("--limit", type=ck.positive_int, default=None, help="first N questions only")
    ap.add_argument("--max-new-tokens", type=ck.positive_int, default=128, help="tokens per output (default 128)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--dtype", default="auto", help="auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16")
    ap.add_argument("--threads", type=ck.positive_int, default=None, help="torch CPU threads")
    ck.add_out(ap, "folder for rounds.csv, prompts.csv and live.json")
    ck.add_quiet(ap)


def run_cli(a: argparse.Namespace) -> int:
    import pandas as pd
    import torch

    from traces import PLAIN, resolve_arms
    from traces.outdir import staged_folder

    from . import prompts as P
    from .drafters import make_drafter
    from .live import decode_live, live_drafters
    from .models import load_model, resolve_device, resolve_dtype

    if a.threads:
        torch.set_num_threads(a.threads)
    ds = [make_drafter(s) for s in a.drafter]
    names = [d.name for d in ds]
    if len(set(names)) != len(names):
        raise CollectError(f"--drafter: two drafters are named alike ({names}); expected NAME=KIND:ARG to tell them "
                           "apart")
    arms = resolve_arms(a.arms, tuple(names), 64)
    if any(arm.tree for arm in arms):
        raise CollectError(f"--arms {a.arms!r}: tree arms are not run live yet; expected chain arms NAME@K")
    qs, _ = P.load_questions(a.prompts)
    qs = qs[: a.limit] if a.limit else qs
    dev = resolve_device(a.device)
    target = load_model(a.target, dev, resolve_dtype(a.dtype, dev))
    for d in ds:
        d.prepare(target)
    fns = live_drafters(ds)
    live_arms = [(None if arm.drafter == PLAIN else arm.drafter, int(arm.k)) for arm in arms]
    ids = [P.chat_ids(target.tokenizer, [{"role": "user", "content": q.turns[0]}]) for q in qs]
    suffix = [d for d in ds if d.kind == "suffix"]
    decode_live(target, fns, live_arms, ids[0], min(8, a.max_new_tokens), lambda s: len(live_arms) - 1)  # warm-up
    rounds, per_prompt = [], []
    for i, arm in enumerate(arms):
        outputs: list[list[int]] = []
        for q, x in zip(qs, ids, strict=True):
            for d in suffix:
                d.set_history(outputs)
            run = decode_live(target, fns, live_arms, x, a.max_new_tokens, lambda s, i=i: i)
            outputs.append(run.output_ids)
            rounds += [{"arm": arm.name, "prompt_id": str(q.question_id), "round": j, "drafted": r.drafted,
                        "accepted": r.accepted, "emitted": r.emitted, "draft_s": r.draft_s, "verify_s": r.verify_s}
                       for j, r in enumerate(run.rounds)]
            per_prompt.append({"arm": arm.name, "prompt_id": str(q.question_id), "tokens": len(run.output_ids),
                               "rounds": len(run.rounds), "wall_s": run.wall_s})
        if not a.quiet:
            rows = [r for r in per_prompt if r["arm"] == arm.name]
            tok, wall = sum(r["tokens"] for r in rows), sum(r["wall_s"] for r in rows)
            print(f"{arm.name:16} {tok} tokens in {sum(r['rounds'] for r in rows)} rounds, {wall:.3f} s "
                  f"({tok / wall:.1f} tokens/s)", flush=True)
    info = {"target": target.info, "drafters": [d.info() for d in ds], "arms": [arm.name for arm in arms],
            "prompts": a.prompts, "limit": a.limit, "max_new_tokens": a.max_new_tokens, "device": str(dev),
            "threads": torch.get_num_threads(), "decoding": "greedy, KV-cached (gpu_collect.live.decode_live)"}
    with staged_folder(a.out, "live") as tmp:
        pd.DataFrame(rounds).to_csv(tmp / "rounds.csv", index=False)
        pd.DataFrame(per_prompt).to_csv(tmp / "prompts.csv", index=False)
        (tmp / "live.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    if not a.quiet:
        print(f"wrote {a.out}")
    return 0
