"""The drafter interface and what every kind shares (``gpu_collect.drafters`` registers kinds).

Every drafter answers, about a fixed target output ``y`` (prompt ``x``):

* ``greedy_accept``: ``L_d(t)`` for every position, capped at ``k_max``;
* ``greedy_ranks``: the rank of the target's token among the drafter's candidates, per
  position (one-step, token-input drafters) or per (position, depth) (retrieval, heads);
* ``sampling_probs``: per position ``alpha = sum_v min(p, q)`` and ``beta = min(1, q/p)``, ``p`` and
  ``q`` warped alike (``gpu_collect.sampling``: temperature, top-k, top-p);
* ``draft`` (and ``candidates`` / ``draft_tree``): drafts for the live loop.

Ranks order the vocabulary by descending logit, ties to the lower token id, everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from traces.accept import run_lengths

from .models import Loaded
from .sampling import Sampling, as_sampling


@dataclass
class Seq:
    """One prompt and its target output, with lazily computed teacher-forced passes."""

    prompt_ids: list[int]
    output_ids: list[int]
    target: Loaded
    _target_out: Any = field(default=None, repr=False)

    @property
    def ids(self) -> torch.Tensor:
        return torch.tensor([self.prompt_ids + self.output_ids], device=self.target.device)

    def positions(self) -> slice:
        """Logit rows predicting ``y_0 .. y_{N-1}``."""
        P = len(self.prompt_ids)
        return slice(P - 1, P - 1 + len(self.output_ids))

    def target_out(self):
        if self._target_out is None:
            with torch.no_grad():
                self._target_out = self.target.model(self.ids, output_hidden_states=True, use_cache=False)
        return self._target_out

    def target_logits(self) -> torch.Tensor:
        return self.target_out().logits[0, self.positions()].float()


def bits_to_accept(correct: np.ndarray, k_max: int) -> np.ndarray:
    return run_lengths(correct.astype(bool), k_max).astype(np.int64)


def chain_from_ranks(ranks: np.ndarray, k_max: int) -> np.ndarray:
    """``L_d(t)`` from depth-indexed ranks ``(N, depth)``: the leading run of rank-0 depths
    (what a greedy chain accepts), capped at ``k_max`` and at what remains of the output."""
    n = len(ranks)
    lead = np.cumprod(ranks == 0, axis=1).sum(axis=1)
    return np.minimum(lead, np.minimum(k_max, n - np.arange(n))).astype(np.int64)


def token_ranks(logits: torch.Tensor, y: list[int], cap: int) -> np.ndarray:
    """Rank of ``y_t`` in row ``t`` of ``logits`` (0 = the argmax; ties to the lower id), capped."""
    yy = torch.tensor(y, device=logits.device)[:, None]
    ly = logits.gather(1, yy)
    ids = torch.arange(logits.shape[1], device=logits.device)[None, :]
    rank = (logits > ly).sum(1) + ((logits == ly) & (ids < yy)).sum(1)
    return torch.clamp(rank, max=cap).cpu().numpy().astype(np.int64)


def top_candidates(logits: torch.Tensor, b: int) -> list[int]:
    """The ``b`` best tokens of one logit row in rank order (descending, ties to the lower id)."""
    order = torch.sort(-logits.float(), stable=True).indices
    return order[:b].tolist()


def alpha_beta(p_logits: torch.Tensor, q_logits: torch.Tensor, y: list[int], sampling: Sampling | float):
    """``alpha_t = sum_v min(p_t, q_t)`` and ``beta_t = min(1, q_t(y_t) / p_t(y_t))``, with ``p`` and
    ``q`` the target's and the drafter's distributions warped alike (temperature, top-k, top-p:
    ``gpu_collect.sampling``); a bare number is a temperature alone."""
    s = as_sampling(sampling)
    p, q = s.probs(p_logits), s.probs(q_logits)
    alpha = torch.minimum(p, q).sum(-1)
    yy = torch.tensor(y, device=p.device)[:, None]
    py, qy = p.gather(1, yy)[:, 0], q.gather(1, yy)[:, 0]
    beta = torch.clamp(qy / py.clamp_min(1e-30), max=1.0)
    return alpha.clamp(0, 1).cpu().numpy(), beta.cpu().numpy()


@dataclass
class Drafter:
    """Base class; ``spec`` is the command-line spec, ``name`` the trace's drafter name."""

    spec: str
    name: str
    arg: str = ""
    kind: ClassVar[str] = ""
    trace_kind: ClassVar[str] = "model"
    stochastic: ClassVar[bool] = True  # has a draft distribution q (model drafters)

    def params(self) -> dict[str, Any]:
        return {"spec": self.spec}

    def prepare(self, target: Loaded) -> None:
        self.target_ = target

    def greedy_accept(self, seq: Seq, k_max: int) -> np.ndarray:
        raise NotImplementedError

    ranks_kind: ClassVar[str] = ""  # "token-input": one-step ranks give every tree exactly
    fills_tree: ClassVar[bool] = False  # draft_tree fills a whole static tree (retrieval, heads)
    greedy_only: ClassVar[bool] = False  # no sampling collection (retrieval, heads, for now)
    scoring: ClassVar[str] = "teacher-forced (reads tokens only: exact under greedy verification)"
    draft_passes: ClassVar[str] = "per depth"  # "one": every depth from one pass (Medusa heads)

    def greedy_ranks(self, seq: Seq, cap: int) -> np.ndarray | None:
        """One-step rank of the target's token at every position, or None (no ranks)."""
        return None

    def candidates(self, ids: list[int], b: int) -> list[int]:
        """The drafter's ``b`` best next tokens after ``ids`` (single-candidate drafters: <= 1)."""
        d, _ = self.draft(ids, 1, 0.0, None)
        return d[:1]

    def sampling_probs(self, seq: Seq, sampling: Sampling | float) -> tuple[np.ndarray, np.ndarray]:
        """Per position ``(alpha, beta)`` under ``sampling`` (a number: a temperature alone)."""
        raise NotImplementedError

    def draft(self, ids: list[int], k: int, sampling: Sampling | float,
              gen: torch.Generator | None) -> tuple[list[int], list[torch.Tensor] | None]:
        """``k`` drafts after ``ids`` and, for a stochastic drafter under sampling, each draft's
        warped distribution ``q`` (None: deterministic or greedy drafts)."""
        raise NotImplementedError

    def draft_tree(self, ids: list[int], paths: tuple[tuple[int, ...], ...], depth: int) -> dict:
        """Drafted token of every rank path of a static tree (``fills_tree`` kinds)."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        out = {"name": self.name, "kind": self.trace_kind, "params": self.params(), "stochastic": self.stochastic,
               "scoring": self.scoring, "draft_passes": self.draft_passes}
        if self.ranks_kind:
            out.update(rank_depth=1, ranks=self.ranks_kind)
        return out
