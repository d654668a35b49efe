"""Save a weight-rounded copy of a target as a standalone model directory, usable as an
independent ``hf:DIR`` drafter that shares the target's tokenizer.

    python -m gpu_collect derive --target smollm2-135m --bits 3 --out DIR
"""

from __future__ import annotations

import argparse

import torch

from traces.outdir import staged_folder

from .models import load_model
from .surgery import rtn_copy


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--target", required=True, help="model id, local directory or smollm2-135m")
    ap.add_argument("--bits", type=int, default=3, help="bits of the round-to-nearest weights (default 3)")
    ap.add_argument("--group", type=int, default=64, help="input columns per quantisation group (default 64)")
    ap.add_argument("--out", required=True, help="model directory to write")


def run_cli(a: argparse.Namespace) -> int:
    t = load_model(a.target, torch.device("cpu"), torch.float32)
    m = rtn_copy(t.model, bits=a.bits, group=a.group)
    with staged_folder(a.out, "model", replace=False) as tmp:  # a folder of only this copy, written whole
        m.save_pretrained(tmp)
        t.tokenizer.save_pretrained(tmp)
    print(f"wrote {a.out} (rtn{a.bits} group {a.group} copy of {a.target})")
    return 0

