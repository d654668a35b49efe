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
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .guards import FileGuardError, check_regular
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
    wall: float | None = None  # seconds the request took (Spec-Bench wall_time: prefill included)
    model_id: str | None = None
    drafted: np.ndarray | None = None  # draft length per step, when the log or --schedule says
    first: int = 0  # index of the request's first step in the line's step list


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
    by_k = sd.get("acceptance_histogram_by_draft_length")
    if "per_step_accepted" in sd and sd["per_step_accepted"] is not None:
        steps, ordered = np.array(_ints(sd["per_step_accepted"], "per_step_accepted"), np.int64), True
        drafted = np.array(_ints(sd.get("per_step_drafted") or [K] * len(steps), "per_step_drafted", 0, K), np.int64)
        if len(drafted) != len(steps) or (steps > drafted).any():
            raise _Bad("fields 'per_step_accepted'/'per_step_drafted': expected equal lengths with accepted <= "
                       "drafted at every step")
        if np.bincount(steps, minlength=len(hist)).tolist() != hist:
            raise _Bad("field 'acceptance_histogram': does not count 'per_step_accepted'")
    elif by_k is not None:
        steps, drafted = _vllm_by_draft_length(by_k, hist, K, n)
        ordered = False
    else:
        steps, ordered = _expand(hist, "acceptance_histogram", n), False
        drafted = np.full(len(steps), K, np.int64)
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
                   plen if isinstance(plen, int) and plen >= 1 else 1, text if isinstance(text, str) else None,
                   model_id=_model_name(body.get("model")), drafted=drafted if (drafted != K).any() else None)]


def _model_name(v: Any) -> str | None:
    """The served model's name as the log gives it (OpenAI-style ``model``), or None."""
    return v if isinstance(v, str) and 0 < len(v) <= 200 and v.isprintable() else None


def _vllm_by_draft_length(by_k: Any, hist: list[int], K: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps and their draft lengths from ``acceptance_histogram_by_draft_length`` (vLLM
    #56278: per drafted length k, ``k + 1`` buckets of accepted drafts), which must add up to
    ``acceptance_histogram``; steps in (k, accepted) order."""
    name = "acceptance_histogram_by_draft_length"
    if not isinstance(by_k, dict):
        raise _Bad(f"field {name!r}: expected an object {{draft length: [k + 1 counts]}}, got {type(by_k).__name__}")
    steps, drafted, total = [], [], np.zeros(K + 1, np.int64)
    for key in sorted(by_k, key=lambda x: (len(str(x)), str(x))):
        if not str(key).isdigit() or not 1 <= int(key) <= K:
            raise _Bad(f"field {name!r}: key {key!r}; expected draft lengths 1..{K} (num_spec_tokens)"[:200])
        k = int(key)
        h = _ints(by_k[key], f"{name}[{key}]")
        if len(h) != k + 1:
            raise _Bad(f"field '{name}[{key}]': {len(h)} buckets; expected k + 1 = {k + 1} (accepted 0..{k})")
        s = _expand(h, f"{name}[{key}]", n)
        steps.append(s)
        drafted.append(np.full(len(s), k, np.int64))
        total[: k + 1] += h
    pad = np.zeros(K + 1, np.int64)
    pad[: min(len(hist), K + 1)] = hist[: K + 1]
    if len(hist) > K + 1 or (total != pad).any():
        raise _Bad(f"field {name!r}: adds up to {total.tolist()} steps per accepted count, but acceptance_histogram "
                   f"says {hist}; expected them equal")
    return (np.concatenate(steps) if steps else np.zeros(0, np.int64),
            np.concatenate(drafted) if drafted else np.zeros(0, np.int64))


#: SGLang's meta_info names, newest first (sgl-project/sglang #24081 renamed the drafts-only
#: counts to ``correct``; the older names stay as aliases; <= 0.5.10 had ``spec_accept_token_num``)
SGLANG_HISTOGRAM = ("spec_correct_drafts_histogram", "spec_accept_histogram")
SGLANG_CORRECT = ("spec_num_correct_drafts", "spec_accepted_drafts", "spec_accept_token_num")
SGLANG_PROPOSED = ("spec_num_proposed_drafts", "spec_proposed_drafts", "spec_draft_token_num")


def _sglang_histogram(meta: dict) -> tuple[list[int], str]:
    """The histogram of accepted drafts per step under its new or old name (both: equal)."""
    found = [n for n in SGLANG_HISTOGRAM if n in meta]
    if not found:
        raise _Bad("field 'meta_info.spec_correct_drafts_histogram': missing (or its old name spec_accept_histogram; "
                   "needs an SGLang that reports it, 0.5 or later)")
    hists = [_ints(meta[n], f"meta_info.{n}") for n in found]
    if any(h != hists[0] for h in hists[1:]):
        raise _Bad(f"field 'meta_info.{found[1]}': {hists[1]}, but meta_info.{found[0]} says {hists[0]}; expected "
                   "the alias to repeat it"[:300])
    return hists[0], found[0]


def _sglang_totals(meta: dict, hist: list[int], hname: str) -> None:
    """The drafts-only totals, when present, must be the histogram's (new and old names)."""
    correct = sum(j * c for j, c in enumerate(hist))
    for name in SGLANG_CORRECT:
        if name in meta and _int(meta[name], f"meta_info.{name}") != correct:
            raise _Bad(f"field 'meta_info.{name}': {meta[name]}, but meta_info.{hname} counts {correct} accepted "
                       "drafts; expected them equal")
    for name in SGLANG_PROPOSED:
        if name in meta and _int(meta[name], f"meta_info.{name}") < correct:
            raise _Bad(f"field 'meta_info.{name}': {meta[name]} drafts proposed, fewer than the {correct} accepted")


def _sglang(obj: Any, line: int, k_opt: int | None) -> list[Logged]:
    body, qid, cat = _unwrap(obj, line)
    meta = body.get("meta_info")
    if meta is None and isinstance(body.get("choices"), list) and body["choices"]:
        meta = body["choices"][0].get("meta_info") if isinstance(body["choices"][0], dict) else None
    if not isinstance(meta, dict):
        raise _Bad("field 'meta_info': missing (a native /generate response of SGLang with speculative decoding)")
    hist, hname = _sglang_histogram(meta)
    n_steps = _int(_field(meta, "spec_verify_ct"), "meta_info.spec_verify_ct")
    if sum(hist) != n_steps:
        raise _Bad(f"field 'meta_info.spec_verify_ct': {n_steps}, but the histogram counts {sum(hist)} steps")
    n = _int(_field(meta, "completion_tokens"), "meta_info.completion_tokens", 1, MAX_TOKENS)
    steps = _expand(hist, f"meta_info.{hname}", n)
    _sglang_totals(meta, hist, hname)
    plen = meta.get("prompt_tokens", 1)
    text = body.get("text")
    pid = qid or str(meta.get("id", body.get("id", f"line-{line}")))
    return [Logged(pid, cat, 0, n, steps, False, k_opt or max(len(hist) - 1, 1), _finish(meta.get("finish_reason")),
                   plen if isinstance(plen, int) and plen >= 1 else 1, text if isinstance(text, str) else None,
                   model_id=_model_name(body.get("model")))]


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
    raw_turns = ch.get("turns")
    for t, text in enumerate(raw_turns if isinstance(raw_turns, list) else []):
        if text == "ERROR":  # what Spec-Bench's inference scripts write when generate() raised
            raise _Bad(f"field 'choices[0].turns[{t}]': \"ERROR\" (the run failed on this turn); expected the answer "
                       "text of a run that completed (a failed method's log cannot be imported)")
    walls = _walls(ch.get("wall_time"))
    model_id = obj.get("model_id")
    if model_id is not None and (not isinstance(model_id, str) or len(model_id) > 200):
        raise _Bad(f"field 'model_id': expected a string up to 200 characters, got {model_id!r}"[:200])
    new = _ints(_field(ch, "new_tokens"), "choices[0].new_tokens", 1, MAX_TOKENS)
    lengths = _ints(_field(ch, "accept_lengths"), "choices[0].accept_lengths", 1)
    per_turn = _ints(ch.get("decoding_steps", [len(lengths)]), "choices[0].decoding_steps")
    if len(per_turn) != len(new) or sum(per_turn) != len(lengths):
        raise _Bad(f"field 'choices[0].decoding_steps': {per_turn} steps per turn for {len(new)} turns and "
                   f"{len(lengths)} accept_lengths; expected one count per turn summing to them")
    if walls is not None and len(walls) != len(new):
        raise _Bad(f"field 'choices[0].wall_time': {len(walls)} values for {len(new)} turns; expected one per turn")
    turns = ch.get("turns") if isinstance(ch.get("turns"), list) else [None] * len(new)
    out, at = [], 0
    for t, (n, s) in enumerate(zip(new, per_turn, strict=True)):
        steps = np.array(lengths[at: at + s], np.int64) - 1
        pid = str(qid) if t == 0 else f"{qid}#t{t}"
        text = turns[t] if t < len(turns) and isinstance(turns[t], str) else None
        out.append(Logged(pid, cat if isinstance(cat, str) else "logged", t, n, steps, True,
                          k_opt or max(int(steps.max(initial=1)), 1), "eos", 1, text,
                          wall=None if walls is None else walls[t], model_id=model_id, first=at))
        at += s
    return out


def _walls(v: Any) -> list[float] | None:
    """Spec-Bench's ``wall_time`` per turn: finite positive seconds (a failed run logs NaN)."""
    if v is None:
        return None
    if not isinstance(v, list):
        raise _Bad(f"field 'choices[0].wall_time': expected a list of seconds per turn, got {type(v).__name__}")
    for t, x in enumerate(v):
        if not isinstance(x, (int, float)) or isinstance(x, bool) or not np.isfinite(x) or not 0 < x < 1e7:
            raise _Bad(f"field 'choices[0].wall_time[{t}]': expected a finite number of seconds > 0, got {x!r}"[:200])
    return [float(x) for x in v]


PARSERS = {"vllm": _vllm, "sglang": _sglang, "specbench": _specbench}
OFFSET = {"vllm": 1, "sglang": 1, "specbench": 0}  # output tokens before the first step (the prefill's)


def memory_limit_bytes() -> float:
    """The most memory an import may plan to hold: ``traces.guards.memory_limit`` (80 % of the
    smallest of RAM, the cgroup limit and ``ulimit -v``), as for loading a trace."""
    from .guards import memory_limit

    return float(memory_limit()[0])


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
                         f"{sizes[2]} steps), over the {limit / 1e9:.1f} GB limit (80 % of the memory this process "
                         "may use); expected a log that fits (split it)")


def read_log(fmt: str, path: str | Path, k: int | None = None) -> tuple[list[Logged], str]:
    """The requests of a log file and its sha256, or one :class:`TraceError` line naming file,
    line and field."""
    if fmt not in PARSERS:
        raise TraceError(f"--from: expected one of {list(FORMATS)}, got {fmt!r}")
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{p}: expected a log file (JSON lines), got "
                         + ("a directory" if p.is_dir() else "nothing there" if not p.exists() else "a special file"))
    try:
        check_regular(p, MAX_LOG_BYTES)
    except FileGuardError as exc:
        raise TraceError(f"{p}: {exc.size} bytes; expected a log of at most {MAX_LOG_BYTES} bytes" if exc.size
                         else f"{p}: expected a log file (JSON lines), got {exc.kind}") from None
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


# -- draft-length schedules ----------------------------------------------------------------
HF_START = 5  # transformers' num_assistant_tokens before v4.45 (the schedule "heuristic")
ATOM_SHARE = 0.01  # without a schedule, the largest accepted count must hold this share of the steps


@dataclass(frozen=True)
class Schedule:
    """How a log's per-step draft length followed from its steps (``--schedule``).

    ``constant:K``: every step drafted K.  ``hf-heuristic[:START]``: transformers'
    ``num_assistant_tokens_schedule="heuristic"`` (``AssistedCandidateGenerator.
    update_candidate_strategy``): START (default 5) at each generate call, i.e. each turn,
    then ``k + 2`` after a step that accepted all k drafts, ``max(1, k - 1)`` otherwise.
    """

    kind: str
    k: int

    @property
    def spec(self) -> str:
        return f"constant:{self.k}" if self.kind == "constant" else f"hf-heuristic:{self.k}"

    def ks(self, a: np.ndarray) -> np.ndarray:
        """The draft length of each step of one turn that accepted ``a``."""
        if self.kind == "constant":
            return np.full(len(a), self.k, np.int64)
        out, k = np.empty(len(a), np.int64), self.k
        for i, x in enumerate(a.tolist()):
            out[i] = k
            k = k + 2 if x >= k else max(1, k - 1)
        return out


def parse_schedule(spec: str) -> Schedule:
    """``hf-heuristic[:START]`` or ``constant:K`` (K, START in 1..127)."""
    kind, _, num = spec.partition(":")
    if kind == "hf-heuristic" and not num:
        return Schedule("hf-heuristic", HF_START)
    if kind in ("hf-heuristic", "constant") and num.isdigit() and 1 <= int(num) <= 127:
        return Schedule(kind, int(num))
    raise TraceError(f"--schedule: expected hf-heuristic, hf-heuristic:START or constant:K (1..127), got {spec!r}")


# -- one log file: its requests, checked ------------------------------------------------------
@dataclass
class Method:
    """One log file of an import: its requests and what it says about its drafter."""

    name: str
    path: Path
    reqs: list[Logged]
    sha: str
    K: int
    schedule: Schedule | None = None
    vanilla: bool = False
    structure: str | None = None  # Spec-Bench: "chain" or "tree" (SPECBENCH_CHAIN); other formats: None

    @property
    def adaptive(self) -> bool:
        return any(r.drafted is not None for r in self.reqs)


def _step_field(fmt: str, r: Logged, i: int) -> str:
    return f"choices[0].accept_lengths[{r.first + i}]" if fmt == "specbench" else f"step {i}"


def _apply_schedule(fmt: str, path: Path, reqs: list[Logged], sched: Schedule) -> None:
    """Each step's draft length from ``sched``; a step that accepted more than it drafted is
    refused naming FILE:LINE, the field and the step."""
    for r in reqs:
        ks = sched.ks(r.steps)
        bad = np.flatnonzero(r.steps > ks)
        if len(bad):
            i = int(bad[0])
            raise TraceError(f"{path}:{r.line}: field {_step_field(fmt, r, i)!r}: {int(r.steps[i]) + 1} tokens at "
                             f"step {i} of turn {r.turn}, but --schedule {sched.spec} drafts k = {int(ks[i])} there; "
                             f"expected at most k + 1 = {int(ks[i]) + 1} (was the log run with this schedule?)")
        r.drafted = None if sched.kind == "constant" else ks
        r.k = sched.k if sched.kind == "constant" else int(ks.max(initial=1))


def load_method(fmt: str, name: str, path: str | Path, *, k: int | None = None, schedule: Schedule | None = None,
                vanilla: bool = False) -> Method:
    """One log file read and checked: unique ids, one K (vLLM), the schedule's draft lengths,
    and, without a schedule, that one constant K can have produced it."""
    p = Path(path)
    if schedule is not None and fmt != "specbench":
        raise TraceError(f"--schedule: only for --from specbench ({fmt} logs say what each step drafted)")
    reqs, sha = read_log(fmt, p, k)
    seen = Counter(r.prompt_id for r in reqs)
    dup = sorted(x for x, c in seen.items() if c > 1)
    if dup:
        raise TraceError(f"{p}: question_id: expected unique ids, duplicates {dup[:5]}")
    mixed = [r for r in reqs if r.k != reqs[0].k]
    if fmt == "vllm" and mixed:
        raise TraceError(f"{p}:{mixed[0].line}: field 'num_spec_tokens': {mixed[0].k}, but line {reqs[0].line} "
                         f"says {reqs[0].k}; expected one K per log (import each K's requests separately)")
    if vanilla:
        for r in reqs:
            if (r.steps != 0).any():
                i = int(np.flatnonzero(r.steps)[0])
                raise TraceError(f"{p}:{r.line}: field {_step_field(fmt, r, i)!r}: {int(r.steps[i]) + 1} tokens; "
                                 "expected 1 at every step of a vanilla (plain decoding) log")
        return Method(name, p, reqs, sha, 0, None, True)
    if schedule is not None:
        _apply_schedule(fmt, p, reqs, schedule)
    elif fmt == "specbench" and k is None:
        _one_constant_k(p, reqs)
    if any(r.drafted is not None for r in reqs):
        from .censored import identified_k

        for r in reqs:  # a request at the log's K: each step drafted K
            if r.drafted is None:
                r.drafted = np.full(len(r.steps), r.k or 1, np.int64)
        a = np.concatenate([r.steps for r in reqs])
        K = identified_k(a, np.concatenate([r.drafted for r in reqs]))
        K = max(min(K, max(r.k or 1 for r in reqs)), 1)
    else:
        K = max(r.k or 1 for r in reqs)
    if K > 127:
        raise TraceError(f"{p}: draft length K = {K}; expected at most 127")
    return Method(name, p, reqs, sha, K, schedule)


def _one_constant_k(p: Path, reqs: list[Logged]) -> None:
    """A log at one constant K piles every step that accepted all K drafts on its largest
    value; a log whose largest value holds under ``ATOM_SHARE`` of the steps drafted varying
    lengths (transformers' assisted generation) and is refused without ``--schedule``."""
    a = np.concatenate([r.steps for r in reqs]) if reqs else np.zeros(0, np.int64)
    if not len(a) or a.max() < 2:
        return
    top = int(a.max())
    share = float((a == top).mean())
    if share < ATOM_SHARE:
        r = next(r for r in reqs if len(r.steps) and r.steps.max() == top)
        i = int(np.argmax(r.steps))
        raise TraceError(f"{p}:{r.line}: field {_step_field('specbench', r, i)!r}: {top + 1} tokens, the largest, "
                         f"at only {int((a == top).sum())} of {len(a)} steps "
                         f"({100 * share:.2f}% < {100 * ATOM_SHARE:g}%): "
                         "the steps cannot come from one constant K (a run at K piles every fully accepted step "
                         "there); expected --schedule hf-heuristic (transformers' assisted generation, e.g. "
                         "Spec-Bench's SpS) or --schedule constant:K")


# -- the trace ------------------------------------------------------------------------------
def _positions(fmt: str, path: Path, r: Logged) -> tuple[np.ndarray, np.ndarray, int]:
    """Step start positions, accepted values clipped at the output's end, and how many were."""
    # step j starts after the tokens of steps 0..j-1 (a + 1 each: the drafts and the bonus)
    pos = min(OFFSET[fmt], r.n_tokens - 1) + np.concatenate(([0], np.cumsum(r.steps[:-1] + 1)))
    if pos[-1] >= r.n_tokens:
        raise TraceError(f"{path}:{r.line}: request {r.prompt_id!r}: its {len(r.steps)} steps emit more than "
                         f"its {r.n_tokens} output tokens (new_tokens / completion_tokens)")
    cap = r.n_tokens - pos
    return pos, np.minimum(r.steps, cap), int((r.steps > cap).sum())


def _drafter_entry(fmt: str, m: Method) -> dict:
    how = (f"on-policy {fmt} log at varying draft lengths ({m.schedule.spec if m.schedule else 'as logged'}): "
           f"fully accepted steps censored at their own k; the law of min(k, L) is the Kaplan-Meier estimate, "
           f"identified for k <= {m.K}" if m.adaptive else
           f"on-policy {fmt} log at K = {m.K}: min(k, L) known for k <= {m.K} at logged steps")
    entry = {"name": m.name, "kind": "logged", "engine": fmt, "max_depth": m.K, "scoring": how}
    if m.schedule is not None:
        entry["schedule"] = m.schedule.spec
    if m.structure is not None:
        entry.update(arm_entry(m))
    return entry


def specbench_structure(name: str, model_id: str | None) -> str:
    """``chain`` for the methods of ``SPECBENCH_CHAIN`` (by the file's model id, else its name),
    ``tree`` for every other: a method not known to draft one chain gives only its logged arm."""
    method = method_of(model_id) or method_of(name) or name.lower()
    return "chain" if method in SPECBENCH_CHAIN else "tree"


def arm_entry(m: Method) -> dict:
    """The manifest fields that say which arms a logged method gives and which have a cost:
    ``structure``, ``logged_arms`` (the arms the default arm set holds) and ``no_cost`` (why
    its other arms have no measured step cost)."""
    if m.structure == "tree":
        return {"structure": "tree", "logged_arms": f"{m.name}@{m.K}",
                "arms_note": f"a tree method: its log gives only its logged tree, as arm {m.name}@{m.K} (a tree of "
                             f"depth {m.K} is not a chain of k drafts)"}
    if m.adaptive:
        return {"structure": "chain", "logged_arms": f"{m.name}@1-{m.K}",
                "arms_note": f"a chain at varying k: every k <= {m.K} (the largest identified) from the "
                             "Kaplan-Meier law, each with the fitted step cost(k)"}
    return {"structure": "chain", "logged_arms": f"{m.name}@{m.K}",
            "arms_note": f"a chain at one K = {m.K}: every k <= {m.K} exactly (min(k, a))",
            "no_cost": f"the log ran every step at K = {m.K}, so its wall times price only {m.name}@{m.K} "
                       "(drafted tokens = K x steps: no per-token slope to fit); a per-k cost needs a log at "
                       "varying draft lengths (--schedule)"}


def build_trace(fmt: str, path: str | Path, *, drafter: str | None = None, k: int | None = None,
                schedule: Schedule | None = None) -> Trace:
    """The partial-information trace of one log (module docstring)."""
    name = drafter or fmt
    _check_name(name, "--drafter")
    m = load_method(fmt, name, path, k=k, schedule=schedule)
    return _assemble(fmt, [m], None, single=True)


def _check_name(name: str, flag: str) -> None:
    if not name or "@" in name or "," in name or "=" in name or name == "plain" or len(name) > 100:
        raise TraceError(f"{flag}: expected a name without '@', ',' or '=' and not 'plain', got {name!r}")


def _assemble(fmt: str, methods: list[Method], base: Method | None, *, single: bool,
              extra_log: dict | None = None, costs: pd.DataFrame | None = None) -> Trace:
    """One trace from the methods' requests matched by prompt id (single: one log, as it was)."""
    by = [{r.prompt_id: r for r in m.reqs if len(r.steps)} for m in methods]
    dropped = sorted({r.prompt_id for m in methods for r in m.reqs if not len(r.steps)})
    ids = [pid for pid in dict.fromkeys(r.prompt_id for r in methods[0].reqs) if all(pid in b for b in by)]
    if base is not None:
        bb = {r.prompt_id: r for r in base.reqs}
        ids = [pid for pid in ids if pid in bb]
    if not ids:
        raise TraceError(f"{methods[0].path}: no request has a verification step" if single else
                         "no (question_id, turn) is in every file; expected logs of the same questions")
    D = len(methods)
    lens = np.array([max([b[pid].n_tokens for b in by] + ([bb[pid].n_tokens] if base else [])) for pid in ids])
    T = int(lens.max())
    accept = np.full((len(ids), D, T), -1, np.int16)
    drafted = np.full((len(ids), D, T), -1, np.int16) if any(m.adaptive for m in methods) else None
    clipped = 0
    for d, (m, b) in enumerate(zip(methods, by, strict=True)):
        for p, pid in enumerate(ids):
            r = b[pid]
            pos, val, c = _positions(fmt, m.path, r)
            clipped += c
            accept[p, d, pos] = val
            if drafted is not None and r.drafted is not None:
                drafted[p, d, pos] = np.minimum(r.drafted, 32767)
    ref = [bb[pid] for pid in ids] if base is not None else [by[0][pid] for pid in ids]
    prompts = pd.DataFrame({
        "prompt_id": ids, "category": [r.category for r in ref], "turn": [r.turn for r in ref],
        "prompt_len": [r.prompt_len for r in ref], "output_len": lens,
        "finish_reason": [r.finish for r in ref], "output_ids": [[] for _ in ids]})
    if all(r.answer is not None for r in ref):
        prompts["answer"] = [r.answer for r in ref]
    n_ord = sum(b[pid].ordered for b in by for pid in ids)
    n_all = len(ids) * D
    K = max(m.K for m in methods)
    log = {"format": fmt, "requests": sum(len(m.reqs) for m in methods),
           "steps": int(sum(len(b[pid].steps) for b in by for pid in ids)), "k": K,
           "step_order": ("as logged" if n_ord == n_all else
                          f"as logged for {n_ord} of {n_all} requests; the rest from histograms (order unknown: "
                          "steps placed in histogram order)"),
           "clipped_at_output_end": int(clipped), "dropped_without_steps": dropped}
    if single:
        log = {"format": fmt, "file": methods[0].path.name, "sha256": methods[0].sha, **log}
        if methods[0].schedule is not None:
            log["schedule"] = methods[0].schedule.spec
    log.update(extra_log or {})
    if drafted is not None:
        log["censored_steps"] = int(((accept >= 0) & (accept == drafted)).sum())
    name = methods[0].path.stem if single else "+".join(m.name for m in ([base] if base else []) + methods)
    models = sorted({r.model_id for m in methods for r in m.reqs if r.model_id})
    unnamed = {"id": "as logged by the engine (not recorded in the log)",
               **({"model_ids": models[:8]} if models else {})}
    target = ({"id": models[0], "source": "the log's model name"} if fmt != "specbench" and len(models) == 1
              else unnamed)
    man = make_manifest(
        kind="greedy", synthetic=False, target=target,
        drafters=[_drafter_entry(fmt, m) for m in methods], k_max=K,
        decoding={"temperature": None, "note": "as the engine ran it (not recorded in the log)"},
        prompt_set={"name": methods[0].path.name if single else name, "n_questions": len(ids)}, seed=None,
        name=name, description=f"imported from {'a' if single else len(methods) + (base is not None)} {fmt} "
                               f"log{'' if single else 's'} by python -m traces import (partial information)",
        hardware={"device": "as logged by the engine"}, information="partial", log=log)
    return Trace(man, prompts, accept, costs=costs, drafted=drafted)


# -- several Spec-Bench files: one drafter per method -------------------------------------------
#: Spec-Bench's method names as its model ids spell them (``vicuna-7b-v1.3-eagle-float16-...``),
#: longest first so that ``eagle3`` is not read as ``eagle``
SPECBENCH_METHODS = ("vanilla", "baseline", "eagle3", "eagle2", "eagle", "hydra", "medusa", "sps", "pld", "lade",
                     "lookahead", "rest", "space", "recycling", "samd", "cls", "jakiro")
PLAIN_METHODS = ("vanilla", "baseline")
#: Spec-Bench methods that draft one chain per step (transformers' assisted generation and prompt
#: lookup): a run at K gives ``min(k, a)`` for every k <= K.  Every other named method drafts a
#: tree or several candidates per step, so its log gives only its logged configuration.
SPECBENCH_CHAIN = ("sps", "pld")
COST_DEVICE = "logged"
COST_RULE = ("per method, least squares over its file's turns: wall_time = prefill + step_ms x decoding_steps "
             "(+ per_drafted_ms x drafted tokens when each step's draft length is known); a negative prefill is "
             "fixed at 0 (fit through the origin); with fewer turns than coefficients + 1, step_ms = "
             "sum(wall_time) / sum(decoding_steps) (prefill not separated). Plain decoding: the vanilla file's "
             "step_ms. A method's round costs its step_ms (+ per_drafted_ms x k); a simulated run's time is "
             "rounds x step cost, without the prefill. Arms: a tree method (EAGLE, Hydra, Medusa...) only at its "
             "logged tree (its row at K); a chain method logged at one K gives every k <= K exactly (min(k, a)) "
             "but its wall times price only k = K (drafted tokens = K x steps, no separate slope): its k < K arms "
             "have no row and --objective time refuses them; a chain method logged at varying k (--schedule) gets "
             "a row for every identified k, step_cost(k) = step_ms + per_drafted_ms x k. Uncertainty: each row's "
             "95 % half-width 1.96 x sqrt(v' C v), v = (0, 1, k), C = s^2 (X'X)^-1 from the fit's residuals "
             "(half95_rel in the provenance, the cost model's uncertainty_rel)")


def method_of(model_id: str | None) -> str | None:
    """The Spec-Bench method a ``model_id`` names (``-eagle-``, ``-sps-68m-``...), or None."""
    parts = str(model_id or "").lower().split("-")
    return next((m for m in SPECBENCH_METHODS if m in parts), None)


def parse_entries(args: list[str]) -> list[tuple[str | None, str]]:
    """``NAME=FILE`` or ``FILE`` (an existing file whose name holds '=' is a file)."""
    out = []
    for a in args:
        name, eq, path = a.partition("=")
        if eq and name and not Path(a).exists():
            out.append((name, path))
        else:
            out.append((None, a))
    return out


def fit_step_cost(wall: np.ndarray, steps: np.ndarray, drafted: np.ndarray | None = None) -> dict:
    """The step cost of one method from its turns (``COST_RULE``): milliseconds, with the fit's
    residuals and the spread of the per-turn step cost across turns."""
    wall, steps = np.asarray(wall, float) * 1000.0, np.asarray(steps, float)
    cols = [steps] + ([np.asarray(drafted, float)] if drafted is not None else [])
    X = np.column_stack([np.ones(len(wall)), *cols])
    if len(wall) < X.shape[1] + 1:
        step = float(wall.sum() / steps.sum())
        return {"rule": "sum(wall_time) / sum(decoding_steps) (too few turns to fit)", "turns": len(wall),
                "prefill_ms": 0.0, "step_ms": step, "per_drafted_ms": 0.0 if drafted is not None else None,
                "resid_rms_ms": None, "r2": None, **_spread(wall, steps, 0.0)}
    coef = np.linalg.lstsq(X, wall, rcond=None)[0]
    rule = "least squares with intercept"
    if coef[0] < -1e-6:  # ms; rounding noise of an exact fit is not a negative prefill
        coef = np.r_[0.0, np.linalg.lstsq(X[:, 1:], wall, rcond=None)[0]]
        rule = "least squares through the origin (the intercept came out negative)"
    coef[0] = max(coef[0], 0.0)
    resid = wall - X @ coef
    ss = float(((wall - wall.mean()) ** 2).sum())
    used = X if coef[0] > 0 or rule.startswith("least squares with") else X[:, 1:]
    s2 = float((resid ** 2).sum()) / max(len(wall) - used.shape[1], 1)
    cov = np.zeros((X.shape[1], X.shape[1]))
    off = X.shape[1] - used.shape[1]
    cov[off:, off:] = s2 * np.linalg.pinv(used.T @ used)
    return {"rule": rule, "turns": len(wall), "prefill_ms": float(coef[0]), "step_ms": float(coef[1]),
            "cov_ms2": cov.tolist(),
            "per_drafted_ms": float(coef[2]) if drafted is not None else None,
            "resid_rms_ms": float(np.sqrt((resid ** 2).mean())), "resid_rel": float(np.sqrt((resid ** 2).mean())
                                                                                      / wall.mean()),
            "r2": float(1 - (resid ** 2).sum() / ss) if ss > 0 else None, **_spread(wall, steps, float(coef[0]))}


def _spread(wall_ms: np.ndarray, steps: np.ndarray, prefill: float) -> dict:
    """Per-turn step cost ``(wall - prefill) / steps`` across turns: quartiles and CV."""
    per = (wall_ms - prefill) / np.maximum(steps, 1)
    q = np.percentile(per, [25, 50, 75]) if len(per) else [np.nan] * 3
    return {"turn_step_ms_q25": float(q[0]), "turn_step_ms_median": float(q[1]), "turn_step_ms_q75": float(q[2]),
            "turn_step_ms_cv": float(per.std() / per.mean()) if len(per) > 1 and per.mean() > 0 else None}


def _method_costs(m: Method) -> dict | None:
    """``fit_step_cost`` over every turn of ``m``'s file with steps and a wall time."""
    reqs = [r for r in m.reqs if len(r.steps) and r.wall is not None]
    if not reqs or len(reqs) < len([r for r in m.reqs if len(r.steps)]):
        return None
    wall = np.array([r.wall for r in reqs])
    steps = np.array([len(r.steps) for r in reqs])
    drafted = np.array([int(r.drafted.sum()) for r in reqs]) if m.adaptive else None
    fit = fit_step_cost(wall, steps, drafted)
    if drafted is not None and not (fit["per_drafted_ms"] or 0) > 0:  # no measurable slope: one step cost
        fit = {**fit_step_cost(wall, steps), "note": f"per-drafted-token slope {fit['per_drafted_ms']} ms not "
                                                     "positive: one step cost for every k"}
    return {"file": m.path.name, "sha256": m.sha, **fit}


def _half95_rel(f: dict, k: int) -> float | None:
    """The 95 % half-width of ``step_ms + per_drafted_ms x k`` relative to it, from the fit's
    covariance (``cov_ms2``, from its residuals); None where the fit had too few turns."""
    cov = f.get("cov_ms2")
    if cov is None:
        return None
    C = np.asarray(cov, float)
    v = np.zeros(len(C))
    v[1] = 1.0
    if len(C) > 2:
        v[2] = k
    ms = f["step_ms"] + (f.get("per_drafted_ms") or 0.0) * k
    return float(1.96 * np.sqrt(max(float(v @ C @ v), 0.0)) / ms) if ms > 0 else None


def logged_costs(methods: list[Method], base: Method | None) -> tuple[pd.DataFrame | None, dict]:
    """The cost table of kind ``logged`` and its provenance (``COST_RULE``), or None and why."""
    prov: dict[str, Any] = {"device": COST_DEVICE, "rule": COST_RULE}
    if base is None:
        return None, {**prov, "table": "none: no vanilla file, so no plain-decoding cost"}
    fits = {m.name: _method_costs(m) for m in [base, *methods]}
    missing = [n for n, f in fits.items() if f is None]
    if missing:
        return None, {**prov, "table": f"none: no wall_time on every turn of {missing}"}
    rows = [("", 0, fits[base.name]["step_ms"])]
    fits[base.name]["half95_rel"] = {"0": _half95_rel(fits[base.name], 0)}
    for m in methods:
        f = fits[m.name]
        slope = f.get("per_drafted_ms") or 0.0
        ks = range(1, m.K + 1) if m.adaptive else [m.K]
        rows += [(m.name, k, f["step_ms"] + slope * k) for k in ks]
        f["half95_rel"] = {str(k): _half95_rel(f, k if slope else 0) for k in ks}
    df = pd.DataFrame({"device": COST_DEVICE, "kind": "logged", "drafter": [r[0] for r in rows],
                       "k": np.array([r[1] for r in rows], np.int64), "batch_size": np.int64(1),
                       "context_len": np.int64(0), "ms": np.array([r[2] for r in rows], float)})
    return df, {**prov, "table": f"{len(df)} rows", "plain": base.name, "methods": fits}


def build_specbench(entries: list[tuple[str | None, str | Path]], *,
                    schedule: Schedule | dict[str, Schedule] | None = None, k: int | None = None) -> Trace:
    """One partial-information trace from several Spec-Bench answer files of the same questions:
    one drafter per method (named ``NAME=`` or read from ``model_id``), a vanilla file as plain
    decoding (its steps all 1) and the cost table of kind ``logged`` (``logged_costs``); turns
    matched by question id and turn, those missing from some file left out and reported, the
    answer texts compared."""
    scheds = schedule if isinstance(schedule, dict) else {"*": schedule} if schedule else {}
    methods: list[Method] = []
    base: Method | None = None
    for name, path in entries:
        if name is None:
            reqs, _ = read_log("specbench", path)  # the method from its model_id
            ids = {r.model_id for r in reqs}
            name = method_of(next(iter(ids))) if len(ids) == 1 else None
            if name is None:
                raise TraceError(f"{path}: field 'model_id': {sorted(map(str, ids))[:3]}; expected one model id "
                                 f"naming a Spec-Bench method ({', '.join(SPECBENCH_METHODS)}), or name the file "
                                 "as NAME=FILE")
        _check_name(name, f"{name}={path}")
        if any(m.name == name for m in methods) or (base is not None and name in (base.name, *PLAIN_METHODS)):
            raise TraceError(f"{path}: method {name!r}: named twice; expected one file per method (NAME=FILE)")
        vanilla = name in PLAIN_METHODS
        m = load_method("specbench", name, path, k=None if vanilla else k,
                        schedule=None if vanilla else scheds.get(name, scheds.get("*")), vanilla=vanilla)
        m.structure = specbench_structure(name, next((r.model_id for r in m.reqs if r.model_id), None))
        if vanilla:
            base = m
        else:
            methods.append(m)
    if not methods:
        raise TraceError("no speculative method among the files (only vanilla); expected one or more drafters")
    unknown = sorted(set(scheds) - {"*"} - {m.name for m in methods})
    if unknown:
        raise TraceError(f"--schedule {unknown[0]}=...: no method {unknown[0]!r} among the files; methods: "
                         f"{[m.name for m in methods]}")
    keys = [{r.prompt_id for r in m.reqs if len(r.steps)} for m in ([base] if base else []) + methods]
    union = set().union(*keys)
    names = [m.name for m in ([base] if base else []) + methods]
    missing = {n: sorted(union - kk, key=_qkey) for n, kk in zip(names, keys, strict=True) if union - kk}
    costs, cprov = logged_costs(methods, base)
    extra = {"files": [{"name": m.name, "file": str(m.path.name), "sha256": m.sha, "requests": len(m.reqs),
                        "steps": int(sum(len(r.steps) for r in m.reqs)), "k": m.K, "plain": m.vanilla,
                        "schedule": m.schedule.spec if m.schedule else None,
                        "model_id": next((r.model_id for r in m.reqs if r.model_id), None)}
                       for m in ([base] if base else []) + methods],
             "baseline": base.name if base else None,
             "missing": {n: {"count": len(v), "ids": v[:20]} for n, v in missing.items()},
             "costs": cprov}
    tr = _assemble("specbench", methods, base, single=False, extra_log=extra, costs=costs)
    tr.manifest["log"]["answers"] = answer_agreement(tr.prompt_ids, methods, base)
    return tr


def _qkey(pid: str) -> tuple:
    q, _, t = pid.partition("#t")
    return (0, int(q), t) if q.isdigit() else (1, q, t)


def answer_agreement(ids: list[str], methods: list[Method], base: Method | None) -> dict:
    """Per matched turn, whether the methods' answer texts are identical (greedy decoding makes
    them equal up to reduced-precision near-ties): the share identical across all files, and
    each method's share identical to the baseline (vanilla, else the first method)."""
    ref = base or methods[0]
    texts = {m.name: {r.prompt_id: r.answer for r in m.reqs} for m in ([base] if base else []) + methods}
    all_same = [pid for pid in ids if len({t[pid] for t in texts.values()}) == 1]
    per = {m.name: float(np.mean([texts[m.name][pid] == texts[ref.name][pid] for pid in ids]))
           for m in methods if m is not ref}
    same = set(all_same)
    differ = [pid for pid in ids if pid not in same]
    return {"turns": len(ids), "identical_all": len(all_same), "share_identical_all": len(all_same) / len(ids),
            "reference": ref.name, "share_identical_to_reference": per, "differ": differ[:50]}
