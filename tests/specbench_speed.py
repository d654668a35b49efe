"""Spec-Bench's ``evaluation/speed.py`` as a test helper, written here from the script's
behaviour (hemingkx/Spec-Bench, commit 132ba4cf; read with the search tools, not copied):

* method: per answer line, tokens = ``sum(choices[0]["new_tokens"])``, time =
  ``sum(choices[0]["wall_time"])``; every ``accept_lengths`` entry goes into one list;
* baseline: per answer line, tokens = ``sum(len(tokenizer(turn).input_ids) - 1 for turn in
  choices[0]["turns"])`` (the text is re-tokenised), time = ``sum(wall_time)``;
* speedup = mean of the method's per-answer tokens/s / mean of the baseline's; MAT = mean of
  the accept-length list.
"""

from __future__ import annotations

import json

import numpy as np


def _lines(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(x) for x in f]


def specbench_speed(method_file, baseline_file, tokenizer) -> tuple[float, float]:
    """(MAT, speedup) as Spec-Bench's ``evaluation/speed.py`` computes them."""
    speeds, accept = [], []
    for d in _lines(method_file):
        ch = d["choices"][0]
        speeds.append(sum(ch["new_tokens"]) / sum(ch["wall_time"]))
        accept.extend(ch["accept_lengths"])
    speeds0 = []
    for d in _lines(baseline_file):
        ch = d["choices"][0]
        tokens = sum(len(tokenizer(t).input_ids) - 1 for t in ch["turns"])
        speeds0.append(tokens / sum(ch["wall_time"]))
    return float(np.mean(accept)), float(np.array(speeds).mean() / np.array(speeds0).mean())
