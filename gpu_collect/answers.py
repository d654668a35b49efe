"""Add the decoded answer text to a trace collected before traces kept it.

    python -m gpu_collect answers --trace TRACE --target smollm2-135m [--out DIR]

The collector writes ``prompts.parquet`` ``answer`` (the output decoded by the target's
tokenizer without special tokens: what a Spec-Bench answer file holds as ``turns``) and
``answer_tokens`` (that text re-tokenised, as Spec-Bench's speed.py counts it).  Older
traces have only ``output_ids``; this decodes them with the target the trace names (its
weights' sha256 must match the manifest's) and writes the trace again, in place or to ``--out``.
"""

from __future__ import annotations

import argparse
import copy

import torch

import traces
from traces import clikit as ck

from .errors import CollectError
from .models import load_model


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ck.add_trace(ap)
    ap.add_argument("--target", required=True, help="the trace's target: model id, local directory or smollm2-135m")
    ap.add_argument("--out", default=None, help="write the trace here (default: replace TRACE's files in place)")


def add_answers(trace: traces.Trace, tokenizer) -> traces.Trace:
    prompts = trace.prompts.copy()
    prompts["answer"] = [tokenizer.decode([int(v) for v in y], skip_special_tokens=True)
                         for y in prompts["output_ids"]]
    prompts["answer_tokens"] = [len(tokenizer(a).input_ids) for a in prompts["answer"]]
    manifest = copy.deepcopy(trace.manifest)
    manifest.setdefault("collection", {})["answer_text"] = (
        "decoded from output_ids afterwards by `python -m gpu_collect answers` (skip_special_tokens)")
    return traces.Trace(manifest, prompts, trace.accept, trace.alpha, trace.beta, trace.costs,
                        ranks=trace.ranks)


def run_cli(a: argparse.Namespace) -> int:
    tr = traces.load(a.trace)
    if tr.path is None:
        raise CollectError(f"{a.trace}: not a trace folder on disk")
    want = (tr.manifest.get("target") or {}).get("sha256") if isinstance(tr.manifest.get("target"), dict) else None
    t = load_model(a.target, torch.device("cpu"), torch.float32)
    got = t.info.get("sha256")
    if want is None or got is None or want != got:
        raise CollectError(f"{tr.path}/manifest.json: field 'target.sha256': expected the weights of {a.target!r} "
                           f"({got}), got {want}; pass the target the trace was collected with")
    out = traces.write(add_answers(tr, t.tokenizer), a.out or tr.path, overwrite=a.out is None)
    print(f"wrote {out} (answer text of {tr.n_prompts} prompts)")
    return 0
