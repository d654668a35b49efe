"""The one sampling warp of the collector and the live loop: temperature, then top-k, then top-p.

Everything that samples or scores under sampling (``collector.generate_sample``, the drafters'
``draft`` and ``sampling_probs``, ``live.speculative_decode``) turns logits into a distribution
through :meth:`Sampling.probs`, so the target's ``p`` and a drafter's ``q`` are warped alike:
speculative sampling then accepts a draft ``x`` with ``min(1, p(x)/q(x))`` and resamples from
``norm(max(0, p - q))`` on the *warped* distributions, and the output is distributed as the
warped target.  A deterministic drafter (n-gram, PLD) has ``q`` = one-hot on its draft.

Followed: transformers 5.25.0 (the version in this environment), ``generation/utils.py``
``GenerationMixin._get_logits_processor`` (order ``TemperatureLogitsWarper``,
``TopKLogitsWarper`` when ``top_k != 0``, ``TopPLogitsWarper`` when ``top_p < 1``;
``min_tokens_to_keep=1`` without beams) and ``generation/logits_process.py`` for each warp;
assisted generation warps the target's candidate logits and the assistant's scores with the same
processors and verifies with ``_speculative_sampling``; for prompt lookup (no candidate logits) it
samples each position from the warped target and keeps the drafts equal to the samples, which is
the one-hot ``q``.  Ties as there: top-k keeps every token tied with the k-th largest logit (so
more than k may stay); top-p sorts ascending with ``torch.sort``, drops the tokens whose
cumulative probability is ``<= 1 - top_p`` and keeps the token that crosses it (the largest is
always kept); of tokens tied at that boundary, ``torch.sort``'s order decides which go.
Off: ``top_k = 0`` (vLLM's -1) and ``top_p = 1``; note that transformers' ``GenerationConfig``
defaults to ``top_k=50``, vLLM and this toolkit to off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .errors import CollectError

FILTERED = float("-inf")  # the logit of a token removed by a warp (probability exactly 0)


def check_top_k(top_k: Any) -> None:
    """Refuse a top-k that is not an integer >= 0 (one line naming ``--top-k``)."""
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0:
        raise CollectError(f"--top-k: expected an integer >= 0 (0 = off; vLLM's -1 for off is 0 here), "
                           f"got {top_k!r}")


def check_top_p(top_p: Any) -> None:
    """Refuse a top-p outside ``(0, 1]`` (nan, inf too; one line naming ``--top-p``)."""
    ok = isinstance(top_p, (int, float)) and not isinstance(top_p, bool) and 0 < top_p <= 1
    if not ok:
        raise CollectError(f"--top-p: expected a number in (0, 1] (1 = off; Spec-Bench's 0 for off is 1 here), "
                           f"got {top_p!r}")


def warp_logits(logits: torch.Tensor, temperature: float, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Temperature, then top-k, then top-p over the last dimension (removed tokens: ``-inf``).

    Parameters
    ----------
    logits : torch.Tensor
        ``(V,)`` or ``(..., V)`` logits (float32 for bit-equality with transformers' warpers).
    temperature : float
        ``> 0``; the logits are divided by it.
    top_k : int
        Keep the ``top_k`` largest (and every token tied with the k-th); 0 = off.
    top_p : float
        Keep the smallest set of the most likely tokens whose probability reaches ``top_p``
        (the token crossing it kept, at least one token); 1 = off.

    Returns
    -------
    torch.Tensor
        The warped logits, same shape; bit-for-bit what transformers' ``TemperatureLogitsWarper``,
        ``TopKLogitsWarper`` and ``TopPLogitsWarper`` give on the same device.
    """
    x = logits / temperature
    if top_k > 0:
        kth = torch.topk(x, min(top_k, x.shape[-1]), dim=-1).values[..., -1:]
        x = x.masked_fill(x < kth, FILTERED)
    if top_p < 1.0:
        ordered, order = torch.sort(x, dim=-1, descending=False)
        drop = ordered.softmax(dim=-1).cumsum(dim=-1) <= 1 - top_p
        drop[..., -1:] = False  # min_tokens_to_keep = 1: the most likely token stays
        x = x.masked_fill(drop.scatter(-1, order, drop), FILTERED)
    return x


@dataclass(frozen=True)
class Sampling:
    """Decoding settings: ``temperature`` 0 is greedy (top-k and top-p then change nothing).

    Parameters
    ----------
    temperature : float
        0 (greedy) or ``> 0``.
    top_k : int
        0 = off, else the number of most likely tokens kept.
    top_p : float
        1 = off, else the nucleus mass in ``(0, 1)``.
    """

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        t = self.temperature
        if not (isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and t >= 0):
            raise CollectError(f"--temperature: expected 0 (greedy) or a finite number > 0, got {t!r}")
        check_top_k(self.top_k)
        check_top_p(self.top_p)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """The sampling distribution over the last dimension: softmax of :func:`warp_logits`."""
        return torch.softmax(warp_logits(logits, self.temperature, self.top_k, self.top_p), dim=-1)

    def record(self) -> dict[str, Any]:
        """The manifest's ``decoding.top_k`` / ``decoding.top_p``: null where the warp is off."""
        return {"top_k": self.top_k or None, "top_p": None if self.top_p == 1 else float(self.top_p)}


def as_sampling(s: Sampling | float) -> Sampling:
    """A :class:`Sampling`; a bare number is a temperature without top-k / top-p."""
    return s if isinstance(s, Sampling) else Sampling(float(s))
