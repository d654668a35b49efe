"""Save a weight-rounded copy of a target as a standalone model directory, usable as an
independent ``hf:DIR`` drafter that shares the target's tokenizer.

    python -m gpu_collect.derive --target smollm2-135m --bits 3 --out DIR
"""

from __future__ import annotations

import argparse
import sys

import torch

from .models import CollectError, load_model
from .surgery import rtn_copy


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gpu_collect.derive", description=__doc__)
    ap.add_argument("--target", required=True)
    ap.add_argument("--bits", type=int, default=3)
    ap.add_argument("--group", type=int, default=64)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    try:
        t = load_model(a.target, torch.device("cpu"), torch.float32)
    except CollectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = rtn_copy(t.model, bits=a.bits, group=a.group)
    m.save_pretrained(a.out)
    t.tokenizer.save_pretrained(a.out)
    print(f"wrote {a.out} (rtn{a.bits} group {a.group} copy of {a.target})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
