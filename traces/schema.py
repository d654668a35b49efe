"""Trace schema: file names, columns, and the written conventions.

A trace is a directory::

    manifest.json      provenance and settings (see ``MANIFEST_REQUIRED``)
    prompts.parquet    one row per prompt (``PROMPT_COLUMNS``)
    accept.parquet     one row per (prompt, drafter, position) (``ACCEPT_COLUMNS``)
    costs.parquet      optional measured costs (``COST_COLUMNS``)
    ranks.parquet      optional (schema 1.1): target-token ranks per (prompt, drafter, position, depth)

Conventions (also in ``docs/trace_format.md``):

* ``accept`` at position ``t`` is ``L_d(t)``: the number of consecutive draft tokens of
  drafter ``d``, drafted greedily from the prefix ``y_<t``, that equal ``y_t, y_{t+1}, ...``.
  It excludes the bonus token and is capped at ``min(k_max, output_len - t)``.
* An arm ``d@K`` played at position ``t`` emits ``y = min(K, L_d(t)) + 1`` tokens (the
  ``+1`` is the target's bonus token), never more than ``output_len - t``.  ``@0`` is
  plain decoding: one token per round whatever the drafter.
* Stopping time = number of rounds (target forward passes) until the whole recorded output
  has been emitted.
"""

from __future__ import annotations

SCHEMA_VERSION = "1.2"
#: 1.0: no ranks (chain arms only); 1.1: ranks; 1.2: costs.parquet may hold each cell's spread
#: (``COST_OPTIONAL``).  Older traces load unchanged.
SUPPORTED_SCHEMA_VERSIONS = ("1.0", "1.1", "1.2")

MANIFEST_FILE = "manifest.json"
PROMPTS_FILE = "prompts.parquet"
ACCEPT_FILE = "accept.parquet"
COSTS_FILE = "costs.parquet"
RANKS_FILE = "ranks.parquet"

#: column -> pandas dtype kind expected ("i" int, "f" float, "O"/"U" string, "b" bool)
PROMPT_COLUMNS: dict[str, str] = {
    "prompt_id": "str",
    "category": "str",
    "turn": "int",
    "prompt_len": "int",
    "output_len": "int",
    "finish_reason": "str",
    "output_ids": "list",
}
#: optional prompt columns written by the collector
#: ``answer``: the output decoded by the target's tokenizer without special tokens (what
#: Spec-Bench answer files hold as ``turns``); ``answer_tokens``: ``len(tokenizer(answer).input_ids)``
#: with the tokenizer's default special tokens (what Spec-Bench's speed.py counts, before its -1)
PROMPT_OPTIONAL = {"degenerate": "bool", "prompt_sha256": "str", "tf_mismatches": "int", "answer": "str",
                   "answer_tokens": "int"}

ACCEPT_COLUMNS: dict[str, str] = {"prompt_id": "str", "drafter": "str", "pos": "int", "accept": "int"}
#: sampling-mode columns (issue 2): alpha = sum_v min(p, q); beta = min(1, q(y)/p(y))
#: ``drafted`` (partial traces of adaptive-length logs): the draft length the logged step ran
#: at, -1 where the drafter ran at its constant K; ``accept == drafted`` marks a censored step
ACCEPT_OPTIONAL = {"alpha": "float", "beta": "float", "drafted": "int"}

#: ranks (schema 1.1): ``rank`` of the target's token ``y_{t+depth-1}`` among the drafter's
#: candidates (0 = its top-1), capped at the manifest's ``rank_cap`` (= "not among them").
#: Drafters that read tokens only record ``depth = 1`` (the one-step teacher-forced rank; a
#: tree's depth j from t reads position t+j-1); drafters with state of their own record
#: depths 1..k_max per position.  A drafter's manifest entry says which (``rank_depth``).
RANKS_COLUMNS: dict[str, str] = {"prompt_id": "str", "drafter": "str", "pos": "int", "depth": "int", "rank": "int"}
RANK_CAP = 16

#: cost rows: kind "verify" (target pass over k+1 tokens, drafter empty) or "draft"
#: (one drafted token of ``drafter``), in milliseconds, with the device that measured it;
#: or kind "logged" (an engine log's measured step, ``python -m traces import``): drafter
#: empty and k 0 for plain decoding, else one whole step (drafting and verification) of
#: ``drafter`` at draft length k.  A device's rows are all "logged" or none are.
COST_KINDS = ("verify", "draft", "logged")
MAX_COST_K = 1024  # longest draft a cost row may price
COST_COLUMNS: dict[str, str] = {
    "device": "str",
    "kind": "str",
    "drafter": "str",
    "k": "int",
    "batch_size": "int",
    "context_len": "int",
    "ms": "float",
}
#: schema 1.2 (all four or none): ``ms`` is the median of ``reps`` timed repeats, ``ms_lo`` /
#: ``ms_hi`` a 95 % bootstrap interval of it, ``ms_iqr`` the repeats' interquartile range;
#: ``reps`` 0 = spread not recorded (nominal or logged rows).  See ``traces.costcheck``.
COST_OPTIONAL: dict[str, str] = {"ms_lo": "float", "ms_hi": "float", "ms_iqr": "float", "reps": "int"}
NOISE_SCHEMA = "1.2"  # the first schema whose costs.parquet may hold COST_OPTIONAL

FINISH_REASONS = ("eos", "length")
#: manifest ``information`` (optional, default "full"): "full" = ``L_d(t)`` at every position of
#: every drafter (collected by teacher forcing); "partial" = an engine's on-policy log
#: (``python -m traces import``): accept rows only at the positions where a logged
#: verification step started, each ``min(K, L)`` for the logged draft length K (censored at K),
#: so ``min(k, L)`` is known there for every k <= K and nothing elsewhere.  Partial traces
#: replay only in the stochastic setting (the laws of the logged steps) and may have empty
#: ``output_ids`` (logs rarely hold the tokens).
INFORMATION = ("full", "partial")
TRACE_KINDS = ("greedy", "sampling")
DRAFTER_KINDS = ("model", "ngram", "early_exit", "skip", "quant", "hf", "rest", "suffix", "medusa", "eagle",
                 "eagle3", "synthetic", "logged")
#: optional drafter fields: ``scoring`` (how its trace was scored: teacher-forced, lookup, or
#: per-position drafting), ``draft_passes`` ("per depth" or "one": every depth from one pass,
#: as Medusa heads), ``max_depth`` (the most tokens it can draft; arms above are refused);
#: several-file engine-log imports (``traces.importers.arm_entry``): ``structure`` ("chain" or
#: "tree": a tree method gives only its logged tree), ``logged_arms`` (the default arm set's
#: arms of this method), ``arms_note`` and, for a chain logged at one K, ``no_cost`` (why its
#: k < K arms have no measured step cost)

MANIFEST_REQUIRED = (
    "schema_version",
    "kind",
    "synthetic",
    "target",
    "drafters",
    "k_max",
    "decoding",
    "prompt_set",
    "hardware",
    "software",
    "seed",
    "created_utc",
    "toolkit_version",
)
