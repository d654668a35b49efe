"""Engine logs in: a partial-information trace from what an engine already logged.

    python -m traces import --from vllm|sglang|specbench FILE --out DIR [--drafter NAME] [--k K]

A log from a run at draft length K tells, for every verification step, how many draft tokens
were accepted (``a``, bonus excluded).  That is ``min(K, L_d(t))`` at the step's position t:
``min(k, L_d(t)) = min(k, a)`` for every k <= K (censored at K), nothing about other positions
or other drafters.  The trace written holds exactly that (manifest ``information`` "partial",
``traces.schema.INFORMATION``): one drafter, ``k_max`` = K, accept rows at the steps'
positions only.  The simulator runs it in the stochastic setting (the laws of the logged
steps) for arms ``NAME@k``, k <= K, and refuses replay, adversarial streams, trees and batch
serving with one line saying why.

Formats, one JSON object per line (a line may also wrap the engine's object as
``{"question_id": ..., "category": ..., "response": {...}}`` to carry ids of its own):

* ``vllm``: an OpenAI completion / chat response of a server started with
  ``--per-request-spec-decode-metrics summary|detailed`` (vLLM 0.32 docs, "Per-Request
  Acceptance Metrics", experimental): ``metrics.speculative_decoding`` with
  ``num_spec_tokens`` (K), ``acceptance_histogram`` (``[j]`` = steps that accepted j drafts),
  ``num_spec_steps``, ``num_accepted_draft_tokens`` and, at ``detailed``, the ordered
  ``per_step_accepted`` / ``per_step_drafted``; tokens from ``usage.completion_tokens``.
* ``sglang``: a native ``/generate`` response (SGLang 0.5 ``meta_info``): ``spec_verify_ct``
  (steps), ``spec_accept_histogram`` (``[j]`` = steps that accepted j drafts),
  ``completion_tokens``, ``finish_reason``; K is the histogram's last index unless ``--k``.
* ``specbench``: a Spec-Bench answer line (hemingkx/Spec-Bench ``evaluation/inference_*.py``):
  ``choices[0]`` with ``turns``, ``new_tokens`` and ``decoding_steps`` per turn and
  ``accept_lengths`` (tokens per step, bonus included: a = length - 1) over all turns; K is
  the longest step's a unless ``--k``.

A histogram has no step order: its steps are placed in histogram order and the manifest says
so (the stochastic laws do not depend on order).  vLLM and SGLang count the prefill's token
as output, so steps start at position 1; a last step cut by the token limit is clipped to the
output's end, and the count of clipped steps is recorded.

``--k``: vLLM logs its K (``num_spec_tokens``, one per log), so ``--k`` may only repeat it: a
larger K would claim draft lengths the engine never ran, and a smaller one is what
``--arms NAME@1-k`` selects at simulation time.  SGLang and Spec-Bench K is inferred (a lower
bound when no step accepted all K drafts), so ``--k`` may raise it, never below a logged step.

Limits (each refused in one line naming FILE:LINE and the field, before anything is built):
a log of at most :data:`MAX_LOG_BYTES`, lines of at most :data:`MAX_LINE_BYTES` (read in
bounded pieces, so a longer line is never held whole), outputs of at most
``traces.io.MAX_TOKENS`` tokens per request, histograms counting no more steps than the
output has tokens (checked before they are expanded), and an estimate of the memory the
import needs (:func:`estimate_bytes`) within :func:`memory_limit_bytes`.  Reading is linear
in the log's size.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .io import MAX_TOKENS
from .manifest import make_manifest
from .trace import Trace, TraceError

FORMATS = ("vllm", "sglang", "specbench")
MAX_LINE_BYTES = 64 << 20  # one JSON line
MAX_LOG_BYTES = 1 << 30  # the whole log
# memory per (request x longest output) cell and per logged step at the import's peak: the
# dense int16 accept array and, while the trace is written, traces.io.accept_table's index
# arrays over every output position (measured: 10 requests of 2**24 tokens, 8.8 GB = 52 bytes
# per cell); per step: the steps, their positions and values, and the accept rows written
CELL_BYTES, STEP_BYTES = 56, 48
TOKENS_FIELD = {"vllm": "usage.completion_tokens", "sglang": "meta_info.completion_tokens",
                "specbench": "choices[0].new_tokens"}


@dataclass
class Logged:
    """One request (one turn) of a log."""

    prompt_id: str
    category: str
    turn: int
    n_tokens: int
    steps: np.ndarray  # int64: accepted draft tokens per verification step, bonus excluded
    ordered: bool
    k: int | None
    finish: str
    prompt_len: int
    answer: str | None
    line: int = 0


class _Bad(ValueError):
    pass


def _field(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            raise _Bad(f"field {'.'.join(path)!r}: missing")
        obj = obj[key]
    return obj


def _int(v: Any, name: str, lo: int = 0, hi: int = 1 << 31) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise _Bad(f"field {name!r}: expected an integer in {lo}..{hi}, got {v!r}"[:200])
    return v


def _ints(v: Any, name: str, lo: int = 0, hi: int = 1 << 31) -> list[int]:
    if not isinstance(v, list):
        raise _Bad(f"field {name!r}: expected a list of integers, got {type(v).__name__}")
    return [_int(x, f"{name}[{i}]", lo, hi) for i, x in enumerate(v)]


def _expand(hist: list[int], name: str, n_tokens: int) -> np.ndarray:
    """The steps a histogram counts, in histogram order; refused before expanding when they
    are more than the output's tokens (each step emits at least one)."""
    if sum(hist) > n_tokens:
        raise _Bad(f"field {name!r}: counts {sum(hist)} steps, more than the {n_tokens} output tokens "
                   "(each step emits at least one token)")
    return np.repeat(np.arange(len(hist), dtype=np.int64), hist)


def _unwrap(obj: Any, line: int) -> tuple[dict, str | None, str]:
    if not isinstance(obj, dict):
        raise _Bad(f"expected a JSON object, got {type(obj).__name__}")
    if "response" in obj:
        qid = obj.get("question_id", obj.get("prompt_id"))
        if qid is not None and (not isinstance(qid, (int, str)) or isinstance(qid, bool) or len(str(qid)) > 200):
            raise _Bad(f"field 'question_id': expected an integer or a string up to 200 characters, got {qid!r}"[:200])
        cat = obj.get("category", "logged")
        if not isinstance(cat, str):
            raise _Bad(f"field 'category': expected a string, got {cat!r}"[:200])
        if not isinstance(obj["response"], dict):
            raise _Bad("field 'response': expected a JSON object")
        return obj["response"], None if qid is None else str(qid), cat
    return obj, None, "logged"


def _finish(v: Any) -> str:
    v = v.get("type") if isinstance(v, dict) else v
    return "length" if v == "length" else "eos"


def _vllm(obj: Any, line: int, k_opt: int | None) -> list[Logged]:
    body, qid, cat = _unwrap(obj, line)
    sd = _field(body, "metrics", "speculative_decoding")
    if not isinstance(sd, dict):
        raise _Bad("field 'metrics.speculative_decoding': null (start vLLM with --per-request-spec-decode-metrics "
                   "summary|detailed; requests with n > 1 carry none)")
    K = _int(_field(sd, "num_spec_tokens"), "num_spec_tokens", 1, 127)
    if k_opt is not None and k_opt != K:
        raise _Bad(f"--k {k_opt}: the log ran at num_spec_tokens = {K}; expected --k {K} or no --k (a larger K "
                   f"is not in the log; fewer draft tokens are --arms NAME@1-k at simulation time)")
    hist = _ints(_field(sd, "acceptance_histogram"), "acceptance_histogram")
    n_steps = _int(_field(sd, "num_spec_steps"), "num_spec_steps")
    n = _int(_field(body, "usage", "completion_tokens"), "usage.completion_tokens", 1, MAX_TOKENS)
    if "per_step_accepted" in sd and sd["per_step_accepted"] is not None:
        steps, ordered = np.array(_ints(sd["per_step_accepted"], "per_step_accepted"), np.int64), True
        drafted = np.array(_ints(sd.get("per_step_drafted") or [K] * len(steps), "per_step_drafted"), np.int64)
        if len(drafted) != len(steps) or (steps > drafted).any():
            raise _Bad("fields 'per_step_accepted'/'per_step_drafted': expected equal lengths with accepted <= "
                       "drafted at every step")
        if np.bincount(steps, minlength=len(hist)).tolist() != hist:
            raise _Bad("field 'acceptance_histogram': does not count 'per_step_accepted'")
    else:
        steps, ordered = _expand(hist, "acceptance_histogram", n), False
    if len(steps) != n_steps or (len(steps) and steps.max() > K):
        raise _Bad(f"field 'num_spec_steps': {n_steps}, but the steps logged are {len(steps)} with at most K = {K} "
                   "accepted each expected")
    plen = body.get("usage", {}).get("prompt_tokens", 1)
    ch = (body.get("choices") or [{}])[0] if isinstance(body.get("choices"), list) else {}
    ch = ch if isinstance(ch, dict) else {}
    msg = ch.get("message") if isinstance(ch.get("message"), dict) else {}
    text = ch.get("text") if isinstance(ch.get("text"), str) else msg.get("content")
    pid = qid or str(_field(body, "id"))
    return [Logged(pid, cat, 0, n, steps, ordered, k_opt or K, _finish(ch.get("finish_reason")),
                   plen if isinstance(plen, int) and plen >= 1 else 1, text if isinstance(text, str) else None)]


def _sglang(obj: Any, line: int, k_opt: int | None) -> list[Logged]:
    body, qid, cat = _unwrap(obj, line)
    meta = body.get("meta_info")
    if meta is None and isinstance(body.get("choices"), list) and body["choices"]:
        meta = body["choices"][0].get("meta_info") if isinstance(body["choices"][0], dict) else None
    if not isinstance(meta, dict):
        raise _Bad("field 'meta_info': missing (a native /generate response of SGLang with speculative decoding)")
    if "spec_accept_histogram" not in meta:
        raise _Bad("field 'meta_info.spec_accept_histogram': missing (needs an SGLang that reports it, 0.5 or later)")
    hist = _ints(meta["spec_accept_histogram"], "meta_info.spec_accept_histogram")
    n_steps = _int(_field(meta, "spec_verify_ct"), "meta_info.spec_verify_ct")
    if sum(hist) != n_steps:
        raise _Bad(f"field 'meta_info.spec_verify_ct': {n_steps}, but the histogram counts {sum(hist)} steps")
    n = _int(_field(meta, "completion_tokens"), "meta_info.completion_tokens", 1, MAX_TOKENS)
    steps = _expand(hist, "meta_info.spec_accept_histogram", n)
    plen = meta.get("prompt_tokens", 1)
    text = body.get("text")
    pid = qid or str(meta.get("id", body.get("id", f"line-{line}")))
    return [Logged(pid, cat, 0, n, steps, False, k_opt or max(len(hist) - 1, 1), _finish(meta.get("finish_reason")),
                   plen if isinstance(plen, int) and plen >= 1 else 1, text if isinstance(text, str) else None)]


def _specbench(obj: Any, line: int, k_opt: int | None) -> list[Logged]:
    if not isinstance(obj, dict):
        raise _Bad(f"expected a JSON object, got {type(obj).__name__}")
    qid = _field(obj, "question_id")
    if not isinstance(qid, (int, str)) or isinstance(qid, bool) or len(str(qid)) > 200:
        raise _Bad(f"field 'question_id': expected an integer or a string up to 200 characters, got {qid!r}"[:200])
    cat = obj.get("category", "logged")
    choices = _field(obj, "choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _Bad("field 'choices': expected a non-empty list of objects")
    ch = choices[0]
    new = _ints(_field(ch, "new_tokens"), "choices[0].new_tokens", 1, MAX_TOKENS)
    lengths = _ints(_field(ch, "accept_lengths"), "choices[0].accept_lengths", 1)
    per_turn = _ints(ch.get("decoding_steps", [len(lengths)]), "choices[0].decoding_steps")
    if len(per_turn) != len(new) or sum(per_turn) != len(lengths):
        raise _Bad(f"field 'choices[0].decoding_steps': {per_turn} steps per turn for {len(new)} turns and "
                   f"{len(lengths)} accept_lengths; expected one count per turn summing to them")
    turns = ch.get("turns") if isinstance(ch.get("turns"), list) else [None] * len(new)
    out, at = [], 0
    for t, (n, s) in enumerate(zip(new, per_turn, strict=True)):
        steps = np.array(lengths[at: at + s], np.int64) - 1
        at += s
        pid = str(qid) if t == 0 else f"{qid}#t{t}"
        text = turns[t] if t < len(turns) and isinstance(turns[t], str) else None
        out.append(Logged(pid, cat if isinstance(cat, str) else "logged", t, n, steps, True,
                          k_opt or max(int(steps.max(initial=1)), 1), "eos", 1, text))
    return out


PARSERS = {"vllm": _vllm, "sglang": _sglang, "specbench": _specbench}
OFFSET = {"vllm": 1, "sglang": 1, "specbench": 0}  # output tokens before the first step (the prefill's)


def memory_limit_bytes() -> float:
    """The most memory an import may plan to hold: 80% of this machine's (the simulator's
    default ``--max-memory``)."""
    return 0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate_bytes(n_requests: int, longest: int, steps: int) -> float:
    """Memory an import of ``n_requests`` requests, the longest ``longest`` tokens, with
    ``steps`` logged steps in all, holds at its peak (see ``CELL_BYTES``, ``STEP_BYTES``)."""
    return float(n_requests) * longest * CELL_BYTES + float(steps) * STEP_BYTES


def _lines(p: Path, digest: Any) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` of ``p``, read in pieces of at most ``MAX_LINE_BYTES + 1``
    bytes (a longer line is refused before it is held whole); feeds ``digest`` the bytes read,
    after a leading UTF-8 byte-order mark."""
    total = 0
    with p.open("rb") as f:
        for i in itertools.count(1):
            raw = f.readline(MAX_LINE_BYTES + 1)  # JSON lines end at \n only (not U+2028)
            if not raw:
                return
            if i == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark
            total += len(raw)
            if len(raw) - raw.endswith(b"\n") > MAX_LINE_BYTES:
                raise TraceError(f"{p}:{i}: a line of more than {MAX_LINE_BYTES} bytes; expected lines of at most "
                                 f"{MAX_LINE_BYTES} bytes (one request each)")
            if total > MAX_LOG_BYTES:
                raise TraceError(f"{p}:{i}: more than {MAX_LOG_BYTES} bytes; expected a log of at most "
                                 f"{MAX_LOG_BYTES} bytes (split it)")
            digest.update(raw)
            yield i, raw


def _check_size(p: Path, i: int, fmt: str, sizes: list[int], new: list[Logged]) -> None:
    """Refuse at line ``i`` once the import would need more than :func:`memory_limit_bytes`;
    ``sizes`` = [requests, longest output, steps] so far, updated with ``new``."""
    for r in new:
        sizes[0] += 1
        sizes[1] = max(sizes[1], r.n_tokens)
        sizes[2] += len(r.steps)
    need, limit = estimate_bytes(*sizes), memory_limit_bytes()
    if need > limit:
        longest = max((r.n_tokens for r in new), default=0)
        raise TraceError(f"{p}:{i}: field {TOKENS_FIELD[fmt]!r}: {longest} tokens; the import would hold about "
                         f"{need / 1e9:.1f} GB ({sizes[0]} requests x {sizes[1]} tokens, the longest output, and "
                         f"{sizes[2]} steps), over the {limit / 1e9:.1f} GB limit (80% of this machine's memory); "
                         "expected a log that fits (split it)")


def read_log(fmt: str, path: str | Path, k: int | None = None) -> tuple[list[Logged], str]:
    """The requests of a log file and its sha256, or one :class:`TraceError` line naming file,
    line and field."""
    if fmt not in PARSERS:
        raise TraceError(f"--from: expected one of {list(FORMATS)}, got {fmt!r}")
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{p}: expected a log file (JSON lines), got "
                         + ("a directory" if p.is_dir() else "nothing there" if not p.exists() else "a special file"))
    if p.stat().st_size > MAX_LOG_BYTES:
        raise TraceError(f"{p}: {p.stat().st_size} bytes; expected a log of at most {MAX_LOG_BYTES} bytes")
    out: list[Logged] = []
    digest, sizes = hashlib.sha256(), [0, 0, 0]
    for i, raw in _lines(p, digest):
        if raw.isspace():
            continue
        try:
            new = PARSERS[fmt](json.loads(raw.decode("utf-8")), i, k)
        except UnicodeDecodeError as exc:
            raise TraceError(f"{p}:{i}: not UTF-8 (byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise TraceError(f"{p}:{i}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        except RecursionError:
            raise TraceError(f"{p}:{i}: JSON nested too deeply") from None
        except ValueError as exc:  # _Bad, and int() of a huge number
            raise TraceError(f"{p}:{i}: {exc}") from None
        except (TypeError, AttributeError, KeyError) as exc:  # a shape no check above foresaw
            raise TraceError(f"{p}:{i}: unexpected structure ({type(exc).__name__}: {str(exc)[:120]})") from None
        _check_size(p, i, fmt, sizes, new)
        for r in new:
            r.line = i
            out.append(r)
    if not out:
        raise TraceError(f"{p}: no requests (expected one JSON object per line)")
    return out, digest.hexdigest()


def build_trace(fmt: str, path: str | Path, *, drafter: str | None = None, k: int | None = None) -> Trace:
    """The partial-information trace of a log (module docstring)."""
    name = drafter or fmt
    if not name or "@" in name or "," in name or name == "plain":
        raise TraceError(f"--drafter: expected a name without '@' or ',' and not 'plain', got {name!r}")
    reqs, sha = read_log(fmt, path, k)
    seen = Counter(r.prompt_id for r in reqs)
    dup = sorted(x for x, c in seen.items() if c > 1)
    if dup:
        raise TraceError(f"{path}: question_id: expected unique ids, duplicates {dup[:5]}")
    mixed = [r for r in reqs if r.k != reqs[0].k]
    if fmt == "vllm" and mixed:
        raise TraceError(f"{path}:{mixed[0].line}: field 'num_spec_tokens': {mixed[0].k}, but line {reqs[0].line} "
                         f"says {reqs[0].k}; expected one K per log (import each K's requests separately)")
    K = max(r.k or 1 for r in reqs)
    if K > 127:
        raise TraceError(f"{path}: draft length K = {K}; expected at most 127")
    off = OFFSET[fmt]
    kept, acc_rows, clipped, dropped = [], [], 0, []
    for r in reqs:
        if not len(r.steps):
            dropped.append(r.prompt_id)  # no verification step: nothing about the drafter
            continue
        if r.steps.max() > K:
            raise TraceError(f"{path}:{r.line}: request {r.prompt_id!r}: a step accepted {r.steps.max()} drafts, "
                             f"over --k {K}")
        # step j starts after the tokens of steps 0..j-1 (a + 1 each: the drafts and the bonus)
        pos = min(off, r.n_tokens - 1) + np.concatenate(([0], np.cumsum(r.steps[:-1] + 1)))
        if pos[-1] >= r.n_tokens:
            raise TraceError(f"{path}:{r.line}: request {r.prompt_id!r}: its {len(r.steps)} steps emit more than "
                             f"its {r.n_tokens} output tokens (new_tokens / completion_tokens)")
        cap = r.n_tokens - pos
        clipped += int((r.steps > cap).sum())
        val = np.minimum(r.steps, cap)
        kept.append(r)
        acc_rows.append((r.prompt_id, pos, val))
    if not kept:
        raise TraceError(f"{path}: no request has a verification step")
    T = max(r.n_tokens for r in kept)
    accept = np.full((len(kept), 1, T), -1, np.int16)
    for i, (_, pos, val) in enumerate(acc_rows):
        accept[i, 0, pos] = val
    has_text = all(r.answer is not None for r in kept)
    prompts = pd.DataFrame({
        "prompt_id": [r.prompt_id for r in kept], "category": [r.category for r in kept],
        "turn": [r.turn for r in kept], "prompt_len": [r.prompt_len for r in kept],
        "output_len": [r.n_tokens for r in kept], "finish_reason": [r.finish for r in kept],
        "output_ids": [[] for _ in kept]})
    if has_text:
        prompts["answer"] = [r.answer for r in kept]
    n_ord = sum(r.ordered for r in kept)
    log = {"format": fmt, "file": Path(path).name, "sha256": sha, "requests": len(reqs),
           "steps": int(sum(len(r.steps) for r in kept)), "k": K,
           "step_order": ("as logged" if n_ord == len(kept) else
                          f"as logged for {n_ord} of {len(kept)} requests; the rest from histograms (order unknown: "
                          "steps placed in histogram order)"),
           "clipped_at_output_end": int(clipped), "dropped_without_steps": dropped}
    man = make_manifest(
        kind="greedy", synthetic=False, target={"id": "as logged by the engine (not recorded in the log)"},
        drafters=[{"name": name, "kind": "logged", "engine": fmt, "max_depth": K,
                   "scoring": f"on-policy {fmt} log at K = {K}: min(k, L) known for k <= {K} at logged steps"}],
        k_max=K, decoding={"temperature": None, "note": "as the engine ran it (not recorded in the log)"},
        prompt_set={"name": Path(path).name, "n_questions": len(kept)}, seed=None, name=Path(path).stem,
        description=f"imported from a {fmt} log by python -m traces import (partial information)",
        hardware={"device": "as logged by the engine"}, information="partial", log=log)
    return Trace(man, prompts, accept)
