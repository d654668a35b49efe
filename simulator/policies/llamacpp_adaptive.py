"""llama.cpp's adaptive draft length (pull request #25726): after N successes in a row the draft
grows by one, after N failures in a row it shrinks by one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels.core import njit
from ..kernels.learners import Kernel, Tables
from .base import Policy, PolicyContext, PolicyError, param, register
from .common import length_arms


# ---------------------------------------------------------------- compiled form (one lane)
# prm[2:6] = threshold, bias, n_min, n_max; itab = arm of K = 0..n_max (-1: not in the arm set)
# ist[1] = adaptive_n, ist[2] = correct_pred, ist[3] = wrong_pred
@njit(inline="always")
def _init(A, st, ist, prm, itab):
    ist[1] = int(prm[4])


@njit(inline="always")
def _select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    if prm[2] > 0.0:
        return itab[ist[1]]
    return itab[int(prm[5])]


@njit(inline="always")
def _update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1
    n = ist[1]
    if prm[2] <= 0.0 or n == 0:  # disabled, or an empty draft (accept is not called)
        return
    if r - 1.0 >= n - prm[3]:
        ist[2] += 1
        ist[3] = 0
    else:
        ist[3] += 1
        ist[2] = 0
    if ist[2] == prm[2]:
        if n < prm[5]:
            ist[1] = n + 1
        ist[2] = 0
    elif ist[3] == prm[2]:
        if n > prm[4]:
            ist[1] = n - 1
        ist[3] = 0


@register
@dataclass
class LlamaCppAdaptive(Policy):
    """llama.cpp's adaptive draft length, pull request ggml-org/llama.cpp#25726 ("spec: add
    initial adaptive draft length heuristic", open, not in ggml-org/llama.cpp master): the rule
    as the PR text states it and as its branch implements it for DFlash/DSpark drafts,
    Us5rName/llama.cpp ``common/speculative.cpp`` (stored version
    63d239d0dcf8e8818bbd9459bfa8a67434aaa274: ``common_speculative_impl_draft_dflash::accept``
    and ``draft``, ``adaptive_n`` per sequence) with its defaults in ``common/common.h``
    (8fcda3101b7907902723c4d2ae4549d1b45d2617).  At that version draft-simple and EAGLE-3 have
    no adaptive length, and the MTP drafter's ``accept`` gates the same counters with a 2-bit
    saturating counter and a 20-round success/failure window (a count only grows while 15 of the
    last 20 rounds agree); that MTP variant is not this rule.

    * A round is a **success** when the target accepts at least ``adaptive_n -
      adaptive_length_bias`` drafted tokens, else a **failure**.
    * ``adaptive_length_threshold`` successes in a row: ``adaptive_n += 1`` (up to ``n_max``);
      that many failures in a row: ``adaptive_n -= 1`` (down to ``n_min``); a success zeroes the
      failure count and vice versa; the count that fired restarts at 0 (also at a bound).
    * ``adaptive_n`` starts at ``n_min`` and lives per sequence slot, across requests (carried
      across prompts).  ``adaptive_length_threshold = 0`` disables the rule: every draft is
      ``n_max`` tokens (the engine's default).  An empty draft (``adaptive_n = 0``) is never
      verified, so the rule never leaves 0 (the code's TODO): ``n_min = 0`` plays ``plain@0``
      once ``adaptive_n`` reaches 0.

    Parameters
    ----------
    adaptive_length_threshold : int
        N (``--spec-draft-adaptive-length-threshold``). The engine's default 0 disables the
        rule; the default here is 11, the value the PR's author reports working well.
    adaptive_length_bias : int
        B (``--spec-draft-adaptive-length-bias``, default 0).
    n_min : int
        ``--spec-draft-n-min``. The engine's default is 0, at which the rule never starts (see
        above); the default here is 1.
    n_max : int
        ``--spec-draft-n-max`` (default 3), capped at the drafter's largest K in the arm set.
    drafter : str
        The drafter whose ``@K`` arms are the lengths (default: the first in the arm set).

    Not modelled: the within-round ``--spec-draft-p-min`` cut (it needs each drafted token's
    draft probability, which a trace does not hold; its default 0 disables it), and in batch
    serving the per-sequence state (the simulator plays one length for the whole batch, so the
    rule reads the batch's mean accepted count).  The rolling-window variant on the PR's
    branch (``common/speculative-adaptive-length.h``, 9dae3687fb7605757a98539c788a9358ba8f9805:
    positive/negative zones, a cooldown in tokens) and the adaptive MTP depth of
    ggml-org/llama.cpp#27210 (an unmerged bucket/drop-pressure state machine) are not this rule.
    """

    name: ClassVar[str] = "llamacpp-adaptive"
    kernel: ClassVar[Kernel] = Kernel("llamacpp-adaptive", _select, _update, _init)
    rewards: ClassVar[tuple[str, ...]] = ("tokens",)  # reads accepted counts
    tuning: ClassVar[tuple[str, tuple]] = ("adaptive_length_threshold", (1, 3, 6, 11, 20))
    drafter: str = ""
    adaptive_length_threshold: int = param(11, ge=0, source="rounds in a row; 0 disables the rule")
    adaptive_length_bias: int = param(0, ge=0, source="tokens short of the draft that still count as success")
    n_min: int = param(1, ge=0, source="--spec-draft-n-min")
    n_max: int = param(3, ge=1, source="--spec-draft-n-max (capped at the arm set's largest K)")

    def __post_init__(self) -> None:
        if self.n_min > self.n_max:
            raise PolicyError(f"policy {self.name!r}: n_min={self.n_min} > n_max={self.n_max}: expected n_min <= n_max")

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        arm_of, drafter = length_arms(ctx, self.drafter, self.name)
        top = max(arm_of)
        self.kmax_ = min(self.n_max, top)
        if self.n_min > self.kmax_:
            raise PolicyError(f"policy {self.name}: n_min={self.n_min} exceeds the largest K {self.kmax_} of "
                              f"{drafter} in the arm set")
        lo = self.n_min if self.adaptive_length_threshold > 0 else self.kmax_
        missing = [k for k in range(lo, self.kmax_ + 1) if k not in arm_of]
        if missing:
            what = ["plain@0" if k == 0 else f"{drafter}@{k}" for k in missing]
            raise PolicyError(f"policy {self.name}: needs the arms {what} (K = {lo}..{self.kmax_}); "
                              f"arm set: {list(ctx.arm_names)}")
        self.arm_of_k_ = np.array([arm_of.get(k, -1) for k in range(self.kmax_ + 1)], dtype=np.int64)
        self.n_ = np.full(n_lanes, self.n_min, dtype=np.int64)
        self.correct_ = np.zeros(n_lanes, dtype=np.int64)
        self.wrong_ = np.zeros(n_lanes, dtype=np.int64)

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        return Tables(prm=(float(self.adaptive_length_threshold), float(self.adaptive_length_bias),
                           float(self.n_min), float(self.kmax_)), itab=self.arm_of_k_)

    def select(self, u: np.ndarray) -> np.ndarray:
        if self.adaptive_length_threshold > 0:
            return self.arm_of_k_[self.n_]
        return np.full(len(self.n_), self.arm_of_k_[self.kmax_])

    def update(self, arms: np.ndarray, rewards: np.ndarray, active: np.ndarray) -> None:
        N = self.adaptive_length_threshold
        if N <= 0:
            return
        live = active & (self.n_ > 0)
        ok = rewards - 1.0 >= self.n_ - float(self.adaptive_length_bias)
        correct = np.where(ok, self.correct_ + 1, 0)
        wrong = np.where(ok, 0, self.wrong_ + 1)
        up, down = correct == N, (correct != N) & (wrong == N)
        n = np.where(up & (self.n_ < self.kmax_), self.n_ + 1, self.n_)
        n = np.where(down & (self.n_ > self.n_min), self.n_ - 1, n)
        correct, wrong = np.where(up, 0, correct), np.where(down, 0, wrong)
        self.n_ = np.where(live, n, self.n_)
        self.correct_ = np.where(live, correct, self.correct_)
        self.wrong_ = np.where(live, wrong, self.wrong_)
