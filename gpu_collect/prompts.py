"""Prompt sets: ``builtin:NAME`` or a Spec-Bench / FastChat ``question.jsonl`` file.

Each line: ``{"question_id": ..., "category": ..., "turns": ["...", ...]}`` (extra keys such
as ``reference`` are ignored).  By default only the first turn is used; ``all_turns``
yields every turn, later turns continuing the conversation with the target's answers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from traces import guards

from .errors import CollectError

BUILTIN_DIR = Path(__file__).resolve().parent / "prompt_sets"
BUILTIN = {"specregret-84": BUILTIN_DIR / "specregret-84.jsonl",
           "specregret-train": BUILTIN_DIR / "specregret-train.jsonl"}  # head training (not evaluation)
MAX_PROMPTS_BYTES = 64 << 20  # a question file (the builtin sets are ~20 KB)


@dataclass(frozen=True)
class Question:
    question_id: str
    category: str
    turns: tuple[str, ...]


def per_category(questions: list[Question], n: int) -> list[Question]:
    """At most ``n`` questions of each category, interleaved: the first of every category (in
    order of first appearance), then the second of every category, ...; so a ``--limit`` taken
    after it spreads over the categories too."""
    by: dict[str, list[Question]] = {}
    for q in questions:
        by.setdefault(q.category, []).append(q)
    return [qs[r] for r in range(n) for qs in by.values() if r < len(qs)]


def read_regular(path: Path, what: str, limit: int) -> bytes:
    """The bytes of ``path``, or one :class:`CollectError` line starting with ``what`` unless it
    is a regular file of at most ``limit`` bytes: a FIFO would block and a device such as
    ``/dev/zero`` would never end.  Opened without blocking and checked on the open file, so a
    file swapped for a FIFO after an earlier check is refused too."""
    try:
        return guards.read_regular(path, limit)
    except guards.FileGuardError as exc:
        if exc.kind:
            raise CollectError(f"{what}: not a regular file ({exc.kind}); expected a text file") from None
        raise CollectError(f"{what}: more than {limit} bytes; expected a file of at most {limit} bytes") from None
    except OSError as exc:
        raise CollectError(f"{what}: cannot open ({exc.strerror})") from None


def resolve(spec: str) -> Path:
    if spec.startswith("builtin:"):
        name = spec[len("builtin:"):]
        if name not in BUILTIN:
            raise CollectError(f"prompts {spec}: no builtin prompt set {name!r}; have {sorted(BUILTIN)}")
        return BUILTIN[name]
    p = Path(spec)
    if not p.is_file():
        what = "not a regular file" if p.exists() else "file not found"
        raise CollectError(f"prompts {spec}: {what} (expected builtin:NAME or a question.jsonl path)")
    return p


def load_questions(spec: str) -> tuple[list[Question], dict]:
    """Parse and validate; returns the questions and ``{name, sha256, path}``."""
    path = resolve(spec)
    raw = read_regular(path, f"prompts {spec}", MAX_PROMPTS_BYTES)
    qs: list[Question] = []
    seen: set[str] = set()
    body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw  # a UTF-8 byte-order mark is fine
    # JSON lines end at \n only: U+2028 and friends are valid inside a JSON string
    for i, bline in enumerate(body.split(b"\n"), start=1):
        where = f"{path}: line {i}"
        try:
            line = bline.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CollectError(f"{where}: not UTF-8 (byte {exc.start} of the line)") from None
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CollectError(f"{where}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise CollectError(f"{where}: not valid JSON (nested too deeply)") from None
        except ValueError as exc:  # e.g. an integer longer than Python converts
            raise CollectError(f"{where}: not valid JSON ({str(exc).splitlines()[0][:120]})") from None
        if not isinstance(obj, dict):
            raise CollectError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        if "question_id" not in obj:
            raise CollectError(f"{where}: field 'question_id' missing")
        qid = obj["question_id"]
        if not isinstance(qid, (int, str)) or isinstance(qid, bool):
            raise CollectError(f"{where}: question_id: expected an integer or string, got {qid!r}")
        qid = str(qid)
        if len(qid) > 200:
            raise CollectError(f"{where}: question_id: expected at most 200 characters, got {len(qid)}")
        if qid in seen:
            raise CollectError(f"{where}: question_id: duplicate id {qid!r}")
        seen.add(qid)
        turns = obj.get("turns")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
            raise CollectError(f"{where}: turns: expected a non-empty list of strings")
        if any(not t.strip() for t in turns):
            raise CollectError(f"{where}: turns: expected non-empty prompts, got an empty string")
        for j, t in enumerate(turns):
            try:
                t.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise CollectError(f"{where}: turns[{j}]: expected text, got a lone surrogate at character "
                                   f"{exc.start}") from None
        cat = obj.get("category", "uncategorized")
        if not isinstance(cat, str):
            raise CollectError(f"{where}: category: expected a string, got {cat!r}")
        qs.append(Question(qid, cat, tuple(turns)))
    if not qs:
        raise CollectError(f"{path}: no questions")
    meta = {"name": spec if spec.startswith("builtin:") else path.name,
            "sha256": hashlib.sha256(raw).hexdigest(), "n_questions": len(qs)}
    return qs, meta


def chat_ids(tokenizer, messages: list[dict[str, str]], *, template: bool = True,
             system: str | None = None) -> list[int]:
    """Token ids of a conversation with the generation prompt, through the chat template
    when the tokenizer has one and ``template`` (plain concatenation otherwise); ``system``
    is a system message put first."""
    if system is not None:
        messages = [{"role": "system", "content": system}, *messages]
    if template and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    text = "\n".join(m["content"] for m in messages) + "\n"
    return list(tokenizer(text)["input_ids"])
