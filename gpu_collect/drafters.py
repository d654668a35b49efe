"""Drafter kinds.  Adding a kind is one small class registered in ``KINDS`` (the interface is
``gpu_collect.drafter_base``; the hidden-state heads are ``gpu_collect.head_drafters``).

Every drafter answers three questions about a fixed target output ``y`` (prompt ``x``):

* ``greedy_accept``: ``L_d(t)`` for every position, capped at ``k_max``.  Model drafters
  draft greedily one token at a time, so ``L_d(t)`` is the run of correct one-step
  predictions under teacher forcing (one forward pass); n-gram drafters draft from the
  context ``x + y_<t`` directly.
* ``sampling_probs``: per position ``alpha = sum_v min(p, q)`` and
  ``beta = min(1, q(y_t) / p(y_t))``, ``p`` and ``q`` warped alike by the temperature, top-k
  and top-p (``gpu_collect.sampling``).
* ``draft``: ``k`` draft tokens (and their proposal distributions) for the live loop.
* ``greedy_ranks`` / ``candidates`` (model drafters, which read tokens only): the rank of the
  target's token among the drafter's candidates at every position, from the same
  teacher-forced pass, and the top-b candidates after a prefix for the live tree loop.  Ranks
  order the vocabulary by descending logit, ties to the lower token id, in both.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from traces.schema import RANK_CAP

from .drafter_base import Drafter, Seq, alpha_beta, bits_to_accept, chain_from_ranks, token_ranks, top_candidates
from .head_drafters import HEAD_KINDS
from .models import CollectError, load_model, same_tokenizer
from .sampling import Sampling, as_sampling
from .surgery import int8_copy, layer_submodel, rtn_copy

__all__ = ["KINDS", "Drafter", "Seq", "alpha_beta", "make_drafter", "token_ranks", "top_candidates"]


class ModelDrafter(Drafter):
    """A drafter that is a causal LM sharing the target's tokenizer."""

    model_: Any = None

    def logits(self, seq: Seq) -> torch.Tensor:
        with torch.no_grad():
            out = self.model_(seq.ids, use_cache=False)
        return out.logits[0, seq.positions()].float()

    ranks_kind = "token-input"

    def greedy_accept(self, seq: Seq, k_max: int) -> np.ndarray:
        # rank 0 = the argmax (ties to the lower id, as torch.argmax): one teacher-forced pass
        # serves both acceptance and ranks (two passes cost one extra forward per drafter)
        return bits_to_accept(self.greedy_ranks(seq, RANK_CAP) == 0, k_max)

    def greedy_ranks(self, seq: Seq, cap: int) -> np.ndarray:
        # the cache holds the Seq itself: an id() key could be reused by the next prompt's Seq
        c = self.__dict__.get("_ranks")
        if not (c and c[0] is seq and c[1] == cap):
            self._ranks = (seq, cap, token_ranks(self.logits(seq), seq.output_ids, cap))
        return self._ranks[2]

    @torch.no_grad()
    def candidates(self, ids: list[int], b: int) -> list[int]:
        logits = self.model_(torch.tensor([ids], device=self.target_.device), use_cache=False).logits[0, -1]
        return top_candidates(logits, b)

    def sampling_probs(self, seq: Seq, sampling: Sampling | float):
        return alpha_beta(seq.target_logits(), self.logits(seq), seq.output_ids, sampling)

    @torch.no_grad()
    def draft(self, ids, k, sampling, gen):
        s = as_sampling(sampling)
        device = self.target_.device
        cur = torch.tensor([ids], device=device)
        past, out_tokens, qs = None, [], []
        for _ in range(k):
            o = self.model_(input_ids=cur, past_key_values=past, use_cache=True)
            past = o.past_key_values
            logits = o.logits[0, -1].float()
            if not s.greedy:
                q = s.probs(logits)
                x = int(torch.multinomial(q.cpu(), 1, generator=gen).item())
                qs.append(q)
            else:
                x = int(logits.argmax())
            out_tokens.append(x)
            cur = torch.tensor([[x]], device=device)
        return out_tokens, (None if s.greedy else qs)


class HFDrafter(ModelDrafter):
    """``hf:ID_OR_DIR``: an independent model; refused if its tokenizer differs."""

    kind = "hf"
    trace_kind = "hf"

    def prepare(self, target):
        super().prepare(target)
        dtype = next(target.model.parameters()).dtype
        loaded = load_model(self.arg, target.device, dtype)
        if not same_tokenizer(loaded.tokenizer, target.tokenizer):
            raise CollectError(
                f"drafter {self.spec}: its tokenizer differs from the target's (vocabulary or EOS); "
                "draft tokens could not be verified token for token"
            )
        self.model_ = loaded.model
        self.loaded_info_ = loaded.info

    def params(self):
        return {"spec": self.spec, "model": getattr(self, "loaded_info_", {"id": self.arg})}


class SkipDrafter(ModelDrafter):
    """``skip:5,24``: the target without the listed layers."""

    kind = "skip"
    trace_kind = "skip"

    def layers(self, n_layers: int | None = None) -> list[int]:
        """The skipped layers; with ``n_layers`` (the target's), each checked to be one of them."""
        try:
            out = sorted({int(s) for s in self.arg.split(",") if s.strip()})
        except ValueError:
            raise CollectError(f"drafter {self.spec}: expected skip:I,J,... layer indices") from None
        hi = "n_layers - 1" if n_layers is None else n_layers - 1
        bad = [i for i in out if i < 0 or (n_layers is not None and i >= n_layers)]
        if not out or bad:
            raise CollectError(f"drafter {self.spec}: layer {bad[0] if bad else '(none)'} out of range; expected "
                               f"layer indices in 0..{hi}"
                               + (f" (the target has {n_layers} layers)" if n_layers is not None else ""))
        if n_layers is not None and len(out) >= n_layers:
            raise CollectError(f"drafter {self.spec}: skips all {n_layers} layers of the target; expected at "
                               "least one layer kept")
        return out

    def prepare(self, target):
        super().prepare(target)
        n = target.model.config.num_hidden_layers
        skip = self.layers(n)
        self.model_ = layer_submodel(target.model, [i for i in range(n) if i not in skip])

    def params(self):
        return {"spec": self.spec, "skipped_layers": self.layers()}


class EarlyDrafter(ModelDrafter):
    """``early:L``: exit after layer L through the final norm and head (untrained exit)."""

    kind = "early"
    trace_kind = "early_exit"

    def exit_layer(self) -> int:
        try:
            return int(self.arg)
        except ValueError:
            raise CollectError(f"drafter {self.spec}: expected early:L with an integer L") from None

    def prepare(self, target):
        super().prepare(target)
        L = self.exit_layer()
        n = target.model.config.num_hidden_layers
        if not 1 <= L < n:
            raise CollectError(f"drafter {self.spec}: L must be in 1..{n - 1}")
        self.model_ = layer_submodel(target.model, list(range(L)))

    def logits(self, seq):
        # free: the target's own pass already holds the hidden state after layer L
        m = self.target_.model
        h = seq.target_out().hidden_states[self.exit_layer()][0, seq.positions()]
        with torch.no_grad():
            return m.lm_head(m.model.norm(h)).float()

    def params(self):
        return {"spec": self.spec, "exit_layer": self.exit_layer()}


class QuantDrafter(ModelDrafter):
    """``quant:rtnB`` (B-bit round-to-nearest weights, group 64) or ``quant:int8`` (int8
    weights and per-token int8 activations); both simulated, so no speed gain in torch."""

    kind = "quant"
    trace_kind = "quant"
    BITS: ClassVar[range] = range(2, 9)  # rtn: 1 bit has no symmetric level but 0; above 8 is the target

    def bits(self) -> int | None:
        """B of ``quant:rtnB`` (checked to be in ``BITS``), or None for ``quant:int8``."""
        m = re.fullmatch(r"rtn(\d{1,6})|int8", self.arg)
        if not m:
            raise CollectError(f"drafter {self.spec}: expected quant:rtnB (B bits) or quant:int8")
        if m.group(1) is None:
            return None
        b = int(m.group(1))
        if b not in self.BITS:
            raise CollectError(f"drafter {self.spec}: bits {b} out of range; expected quant:rtnB with B in "
                               f"{self.BITS.start}..{self.BITS.stop - 1}, or quant:int8")
        return b

    def prepare(self, target):
        super().prepare(target)
        bits = self.bits()
        if bits is None:
            self.model_ = int8_copy(target.model)
            self.method_ = "w8a8: int8 per-channel weights, int8 per-token activations (simulated)"
        else:
            self.model_ = rtn_copy(target.model, bits=bits, group=64)
            self.method_ = f"rtn{bits} group 64 (simulated)"

    def params(self):
        return {"spec": self.spec, "method": getattr(self, "method_", self.arg)}


class NgramDrafter(Drafter):
    """``ngram:N``: prompt lookup with an N-gram (transformers' PromptLookupCandidateGenerator:
    the earliest earlier match of the last N tokens, its continuation, cut before EOS)."""

    kind = "ngram"
    trace_kind = "ngram"
    stochastic = False
    scoring = "lookup on the target prefix (reads tokens only: exact under greedy verification)"

    def sizes(self) -> list[int]:
        try:
            n = int(self.arg)
        except ValueError:
            raise CollectError(f"drafter {self.spec}: expected ngram:N with an integer N >= 1") from None
        if n < 1:
            raise CollectError(f"drafter {self.spec}: N must be >= 1")
        return [n]

    def params(self):
        return {"spec": self.spec, "ngram_sizes": self.sizes()}

    def lookup(self, ctx: np.ndarray, k: int) -> np.ndarray:
        L = len(ctx)
        for n in self.sizes():
            if n >= L:
                continue
            win = sliding_window_view(ctx, n)
            hits = np.flatnonzero((win == ctx[-n:]).all(axis=1))
            for idx in hits:
                start = idx + n
                end = min(start + k, L)
                if start < end:
                    cand = ctx[start:end]
                    eos = np.flatnonzero(np.isin(cand, self.eos_))
                    return cand[: eos[0]] if len(eos) else cand
        return ctx[:0]

    def prepare(self, target):
        super().prepare(target)
        eos = target.tokenizer.eos_token_id
        self.eos_ = np.array([eos] if eos is not None else [], dtype=np.int64)

    def greedy_accept(self, seq, k_max):
        ctx = np.asarray(seq.prompt_ids + seq.output_ids, dtype=np.int64)
        P, y = len(seq.prompt_ids), np.asarray(seq.output_ids)
        out = np.zeros(len(y), dtype=np.int64)
        for t in range(len(y)):
            d = self.lookup(ctx[: P + t], k_max)
            ref = y[t : t + len(d)]
            m = d[: len(ref)] == ref
            out[t] = len(m) if m.all() else int(np.argmin(m))
        return out

    def sampling_probs(self, seq, sampling):
        # deterministic proposal: q = one-hot on the first draft token x_t (p warped: top-k/top-p too)
        p = as_sampling(sampling).probs(seq.target_logits()).cpu().numpy()
        ctx = np.asarray(seq.prompt_ids + seq.output_ids, dtype=np.int64)
        P, y = len(seq.prompt_ids), seq.output_ids
        alpha = np.zeros(len(y))
        beta = np.zeros(len(y))
        for t in range(len(y)):
            d = self.lookup(ctx[: P + t], 1)
            if len(d):
                alpha[t] = p[t, d[0]]
                beta[t] = float(d[0] == y[t])
        return alpha, beta

    def draft(self, ids, k, sampling, gen):
        return self.lookup(np.asarray(ids, dtype=np.int64), k).tolist(), None


class RestDrafter(Drafter):
    """``rest:FILE``: REST-style retrieval from a datastore of token sequences (``FILE``: UTF-8
    text, one document per line, tokenized with the target's tokenizer; nothing downloaded).
    Each round looks up the longest context suffix (up to 8 tokens) and drafts from the trie of
    the continuations after every match (``gpu_collect.retrieval``): the top-1 path as a chain,
    any static tree by rank.  Ranks are recorded per (position, depth)."""

    kind = "rest"
    trace_kind = "rest"
    stochastic = False
    ranks_kind = "retrieval"
    fills_tree = True
    greedy_only = True
    scoring = "lookup on the target prefix (reads tokens only: exact under greedy verification)"
    max_suffix: ClassVar[int] = 8
    use_ctx: ClassVar[bool] = False  # also look the suffix up in the current prompt and output
    # the corpus's size cap: the index holds every n-gram up to max_suffix of every token, about
    # 2 KB per token (measured on random tokens), so 8 MiB of text (~2M tokens) is ~4 GB
    MAX_CORPUS_BYTES: ClassVar[int] = 8 << 20

    def corpus(self) -> bytes:
        """The datastore file's bytes: a regular file of at most ``MAX_CORPUS_BYTES`` (a FIFO or a
        device such as /dev/zero is refused at once, not read forever), read once."""
        if getattr(self, "corpus_", None) is None:
            from pathlib import Path

            from .prompts import read_regular

            self.corpus_ = read_regular(Path(self.arg), f"drafter {self.spec}: {self.arg}", self.MAX_CORPUS_BYTES)
        return self.corpus_

    def prepare(self, target):
        super().prepare(target)
        import hashlib
        from pathlib import Path

        from .retrieval import Datastore

        path = Path(self.arg)
        text = self.corpus()
        try:
            lines = text.decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise CollectError(f"drafter {self.spec}: {path}: cannot read the datastore as UTF-8 text "
                               f"({exc})") from None
        seqs = [target.tokenizer(line, add_special_tokens=False).input_ids for line in lines if line.strip()]
        self.store_ = Datastore(seqs, self.max_suffix)
        if not self.store_.n_tokens:
            raise CollectError(f"drafter {self.spec}: {path}: the datastore is empty")
        self.desc_ = {"corpus": str(path), "sha256": hashlib.sha256(text).hexdigest(), "documents": len(seqs),
                      "tokens": self.store_.n_tokens, "max_suffix": self.max_suffix,
                      "order": "children by count, ties to the lower token id"}
        self.cache_: tuple = (None, None, None)

    def params(self):
        return {"spec": self.spec, "datastore": getattr(self, "desc_", {"corpus": self.arg})}

    def info(self):
        out = super().info()
        out["rank_depth"] = getattr(self, "k_max_", 1)
        return out

    def greedy_ranks(self, seq, cap):
        """(N, k_max): rank of ``y_{t+j-1}`` in the trie looked up at ``t``, depth ``j``."""
        from .retrieval import path_ranks

        # the cache holds the Seq itself: an id() key could be reused by the next prompt's Seq
        if self.cache_[0] is seq and self.cache_[1] == cap:
            return self.cache_[2]
        k = self.k_max_
        ctx = seq.prompt_ids + seq.output_ids
        P, y = len(seq.prompt_ids), seq.output_ids
        out = np.full((len(y), k), cap, dtype=np.int64)
        for t in range(len(y)):
            path = y[t : t + k]
            out[t, : len(path)] = path_ranks(self.store_.trie(ctx[: P + t], k, self.use_ctx), path, cap)
        self.cache_ = (seq, cap, out)
        return out

    def greedy_accept(self, seq, k_max):
        self.k_max_ = k_max
        return chain_from_ranks(self.greedy_ranks(seq, RANK_CAP), k_max)

    def draft(self, ids, k, sampling, gen):
        from .retrieval import ordered

        node, out = self.store_.trie(list(ids), k, self.use_ctx), []
        while node and len(out) < k:
            tok = ordered(node)[0]
            out.append(tok)
            node = node[tok][1]
        return out, None

    def draft_tree(self, ids: list[int], paths: tuple[tuple[int, ...], ...], depth: int) -> dict:
        from .retrieval import tree_tokens

        return tree_tokens(self.store_.trie(list(ids), depth, self.use_ctx), paths)

    def sampling_probs(self, seq, sampling):
        raise CollectError(f"drafter {self.spec}: retrieval drafters are collected greedily only (for now)")


class SuffixDrafter(RestDrafter):
    """``suffix``: SuffixDecoding-style retrieval whose datastore is this collection's earlier
    target outputs (in processing order: turn, then question index) plus the current prompt and
    output so far; longest-suffix lookup (up to 8 tokens) and a trie of continuations as in
    ``rest``.  It reads tokens only, so its ranks are exact; the collector keeps the history,
    so it is refused for a sharded collection (each shard would see another history)."""

    kind = "suffix"
    trace_kind = "suffix"
    use_ctx = True

    def prepare(self, target):
        Drafter.prepare(self, target)
        from .retrieval import Datastore

        self.store_ = Datastore([], self.max_suffix)
        self.desc_ = {"corpus": "earlier outputs of this collection (turn, then question order) + the current "
                                "prompt and output", "max_suffix": self.max_suffix,
                      "order": "children by count, ties to the lower token id"}
        self.cache_ = (None, None, None)

    def set_history(self, outputs: list[list[int]]) -> None:
        """The earlier outputs the next prompt may retrieve from."""
        from .retrieval import Datastore

        self.store_ = Datastore(outputs, self.max_suffix)
        self.cache_ = (None, None, None)


class PLDDrafter(NgramDrafter):
    """``pld[:max=N,min=M]``: prompt lookup trying N-grams of size ``max`` down to ``min``
    (transformers' ``prompt_lookup_num_tokens`` with ``max_matching_ngram_size=max``; vLLM's
    ``prompt_lookup_max`` / ``prompt_lookup_min``).  Defaults ``max=2, min=1``: transformers'
    default.  The bundled traces before 2026-12-02 named ``max=3`` ``pld``; it is ``pld3`` now."""

    kind = "pld"

    def sizes(self) -> list[int]:
        vals = {"max": 2, "min": 1}
        for part in filter(None, (x.strip() for x in self.arg.split(","))):
            key, eq, val = part.partition("=")
            if not eq or key not in vals:
                raise CollectError(f"drafter {self.spec}: expected pld or pld:max=N,min=M, got {part!r}")
            try:
                vals[key] = int(val)
            except ValueError:
                raise CollectError(f"drafter {self.spec}: {key} must be an integer, got {val!r}") from None
        if not 1 <= vals["min"] <= vals["max"]:
            raise CollectError(f"drafter {self.spec}: expected 1 <= min <= max, "
                               f"got min={vals['min']} max={vals['max']}")
        return list(range(vals["max"], vals["min"] - 1, -1))


KINDS: dict[str, type[Drafter]] = {c.kind: c for c in
                                   (HFDrafter, SkipDrafter, EarlyDrafter, QuantDrafter, NgramDrafter,
                                    PLDDrafter, RestDrafter, SuffixDrafter)} | HEAD_KINDS


def default_name(kind: str, arg: str) -> str:
    if kind == "hf":
        return "hf-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", arg.rstrip("/").split("/")[-1])
    if kind == "skip":
        return "skip" + "-".join(s.strip() for s in arg.split(","))
    if kind == "quant":
        return arg
    if kind in ("rest", "suffix") or (kind == "pld" and not arg):
        return kind
    if kind == "pld":
        return "pld-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", arg)
    if kind in HEAD_KINDS:
        return kind + "-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", arg.rstrip("/").split("/")[-1])
    return kind + arg


def make_drafter(spec: str) -> Drafter:
    """Parse ``[NAME=]KIND[:ARG]``, e.g. ``skip:5,24``, ``early:24``, ``fast=pld``."""
    name, eq, rest = spec.partition("=")
    if not eq or ":" in name:
        name, rest = "", spec
    kind, _, arg = rest.partition(":")
    if kind not in KINDS:
        raise CollectError(f"drafter {spec!r}: unknown kind {kind!r}; expected one of {sorted(KINDS)}")
    if kind in ("hf", "skip", "early", "quant", "ngram", "rest", *HEAD_KINDS) and not arg:
        raise CollectError(f"drafter {spec!r}: kind {kind!r} needs an argument ({kind}:...)")
    name = name or default_name(kind, arg)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name == "plain":
        raise CollectError(f"drafter {spec!r}: name {name!r} must use letters, digits, '_', '.', '-'")
    d = KINDS[kind](spec=spec, name=name, arg=arg)
    # validate now, not after the target has loaded
    if isinstance(d, NgramDrafter):
        d.sizes()
    elif isinstance(d, SkipDrafter):
        d.layers()  # the range once the target is loaded (prepare)
    elif isinstance(d, QuantDrafter):
        d.bits()
    elif type(d) is RestDrafter:
        d.corpus()
    return d
