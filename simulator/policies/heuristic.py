"""Engine heuristic: transformers' draft-length schedules (``heuristic`` and its
``heuristic_transient`` variant, which restarts the schedule at each prompt)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels.core import njit
from ..kernels.learners import Kernel, Tables
from .base import Policy, PolicyContext, PolicyError, param, register
from .common import drafter_arms


# ---------------------------------------------------------------- compiled forms (one lane)
# Heuristic: ist[1] = K; prm[2] = start, prm[3] = the largest K; itab = arm of each K
@njit(inline="always")
def _heuristic_init(A, st, ist, prm, itab):
    ist[1] = min(int(prm[2]), int(prm[3]))


@njit(inline="always")
def _transient_on_prompt(st, ist, prm, itab, prompt):
    ist[1] = min(int(prm[2]), int(prm[3]))


@njit(inline="always")
def _heuristic_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    return itab[ist[1]]


@njit(inline="always")
def _heuristic_update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1
    k = ist[1]
    new = k + 2 if r >= k + 1 else max(1, k - 1)
    ist[1] = min(new, int(prm[3]))


@register
@dataclass
class Heuristic(Policy):
    """transformers' ``num_assistant_tokens_schedule="heuristic"`` (candidate_generator.py):
    after a round, ``K += 2`` if every drafted token was accepted, else ``K = max(1, K - 1)``.
    The value persists across prompts (it is written back to the assistant's
    generation_config); ``heuristic_transient`` resets it for each prompt.

    Parameters
    ----------
    drafter : str
        The drafter whose ``@K`` arms are used (default: the first in the arm set).
    start : int
        Initial K (transformers' default ``num_assistant_tokens`` is 20 since v4.45, 5
        before; capped at the largest K in the arm set).
    """

    name: ClassVar[str] = "heuristic"
    kernel: ClassVar[Kernel] = Kernel("heuristic", _heuristic_select, _heuristic_update, _heuristic_init)
    rewards: ClassVar[tuple[str, ...]] = ("tokens",)  # reads accepted tokens
    drafter: str = ""
    start: int = param(20, ge=1, source="a draft length K >= 1 (capped at the arm set's largest K)")
    transient: ClassVar[bool] = False
    # the main knob and its grid (``python -m experiments engine-rules`` tunes it on half the prompts)
    tuning: ClassVar[tuple[str, tuple]] = ("start", (1, 2, 4, 8))

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        self.arms_by_k_ = drafter_arms(ctx, self.drafter)
        self.kmax_ = max(self.arms_by_k_)
        self.k_ = np.full(n_lanes, min(self.start, self.kmax_), dtype=np.int64)
        self._lookup = np.array([self.arms_by_k_.get(k, -1) for k in range(self.kmax_ + 1)])
        if (self._lookup[1:] < 0).any():
            raise PolicyError(f"policy {self.name}: needs every K in 1..{self.kmax_} of the drafter")

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        return Tables(prm=(float(self.start), float(self.kmax_)), itab=self._lookup)

    def on_prompt_start(self, lanes: np.ndarray, prompts: np.ndarray) -> None:
        if self.transient:
            self.k_[lanes] = min(self.start, self.kmax_)

    def select(self, u: np.ndarray) -> np.ndarray:
        return self._lookup[self.k_]

    def update(self, arms: np.ndarray, rewards: np.ndarray, active: np.ndarray) -> None:
        all_accepted = rewards >= self.k_ + 1  # y = accepted + 1
        new = np.where(all_accepted, self.k_ + 2, np.maximum(1, self.k_ - 1))
        self.k_ = np.where(active, np.minimum(new, self.kmax_), self.k_)


@register
@dataclass
class HeuristicTransient(Heuristic):
    """``heuristic_transient``: the heuristic schedule, reset at every prompt."""

    name: ClassVar[str] = "heuristic_transient"
    kernel: ClassVar[Kernel] = Kernel("heuristic_transient", _heuristic_select, _heuristic_update, _heuristic_init,
                                           _transient_on_prompt)
    transient: ClassVar[bool] = True
