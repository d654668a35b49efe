"""The engines' and Spec-Bench's spelling of collector settings, mapped to the toolkit's.

``--speculative-config`` takes vLLM's JSON (``{"method": "ngram", "num_speculative_tokens": 4,
"prompt_lookup_max": 3}``) and gives one ``--drafter`` spec plus a ``--k-max``; the table is in
docs/collecting.md.  Keys vLLM has that change nothing the collector records are refused, not
ignored, so a setting never silently differs from the engine run it stands for.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import CollectError

FLAG = "--speculative-config"
HEAD_METHODS = {"eagle": "eagle", "eagle3": "eagle3", "medusa": "medusa", "draft_model": "hf"}
ALLOWED = {
    "ngram": {"method", "num_speculative_tokens", "prompt_lookup_max", "prompt_lookup_min"},
    "suffix": {"method", "num_speculative_tokens"},
    **{m: {"method", "num_speculative_tokens", "model"} for m in HEAD_METHODS},
}


def _int(cfg: dict[str, Any], key: str) -> int | None:
    val = cfg.get(key)
    if val is None:
        return None
    if not isinstance(val, int) or isinstance(val, bool) or val < 1:
        raise CollectError(f"{FLAG}: {key}: expected an integer >= 1, got {val!r}")
    return val


def _ngram(cfg: dict[str, Any]) -> str:
    """vLLM's defaults: a missing bound equals the other one; both missing is 5."""
    hi, lo = _int(cfg, "prompt_lookup_max"), _int(cfg, "prompt_lookup_min")
    hi = hi or lo or 5
    lo = lo or hi
    if lo > hi:
        raise CollectError(f"{FLAG}: expected prompt_lookup_min <= prompt_lookup_max, got {lo} > {hi}")
    return f"pld:max={hi},min={lo}"


def from_speculative_config(text: str) -> tuple[str, int | None]:
    """Parse vLLM's ``--speculative-config`` JSON.

    Parameters
    ----------
    text : str
        The JSON object as given on the command line.

    Returns
    -------
    tuple[str, int | None]
        The drafter spec (``pld:max=3,min=3``, ``eagle:DIR``, ``hf:DIR``, ``suffix``) and the
        k_max from ``num_speculative_tokens`` (None when absent).
    """
    try:
        cfg = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise CollectError(f"{FLAG}: not valid JSON ({str(exc).splitlines()[0][:100]})") from None
    if not isinstance(cfg, dict):
        raise CollectError(f"{FLAG}: expected a JSON object, got {type(cfg).__name__}")
    method = cfg.get("method", "draft_model" if "model" in cfg else None)  # vLLM: a model alone is a draft model
    if method not in ALLOWED:
        raise CollectError(f"{FLAG}: method: expected one of {', '.join(sorted(ALLOWED))}, got {method!r}")
    extra = sorted(set(cfg) - ALLOWED[method])
    if extra:
        raise CollectError(f"{FLAG}: key {extra[0]!r} is not supported with method {method!r} "
                           f"(supported: {', '.join(sorted(ALLOWED[method]))})")
    k = _int(cfg, "num_speculative_tokens")
    if method == "ngram":
        return _ngram(cfg), k
    if method == "suffix":
        return "suffix", k
    model = cfg.get("model")
    if not isinstance(model, str) or not model:
        raise CollectError(f"{FLAG}: model: method {method!r} needs a model folder, got {model!r}")
    return f"{HEAD_METHODS[method]}:{model}", k


def bench_questions(bench: str, data_dir: str | None) -> str:
    """Spec-Bench's ``--bench-name``: ``DATA_DIR/BENCH/question.jsonl`` (Spec-Bench's layout);
    without ``--data-dir`` only ``spec_bench`` is known, as the built-in set (no network here)."""
    if data_dir is not None:
        return f"{data_dir.rstrip('/')}/{bench}/question.jsonl"
    if bench in ("spec_bench", "specregret-84"):
        return "builtin:specregret-84"
    raise CollectError(f"--bench-name {bench}: give --data-dir DIR holding {bench}/question.jsonl "
                       "(Spec-Bench's data/ folder); without it only spec_bench (the built-in set) is known")
