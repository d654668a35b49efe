"""UCBSpec (BanditSpec, Algorithm 4 / 8), vectorised over lanes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels import scalar_math as sm
from .base import Policy, PolicyContext, param, register


def ucbspec_radius(n: np.ndarray, t: np.ndarray, K: int, L: float, delta: float) -> np.ndarray:
    """Self-normalised confidence radius ``cr_{i,t}`` (BanditSpec Eq. 6 / 19).

    ``cr = (L/2) sqrt((1+n)/n^2 (1 + 2 log(K t^2 sqrt(1+n) / delta)))``.  ``L`` is the
    width of the reward range (``L`` for rewards in ``[1, L+1]``), so ``L/2`` is the
    sub-Gaussian scale of the centred reward.  The placement of the terms is rebuilt from
    the paper's HTML rendering and its Lemma F.3 (papers.md 1.3, high confidence).

    >>> round(float(ucbspec_radius(np.array(1.0), np.array(4.0), 4, 8.0, 0.5)), 4)
    19.0974
    """
    n = np.asarray(n, float)
    t = np.asarray(t, float)
    return (L / 2) * np.sqrt((1 + n) / n**2 * (1 + 2 * sm.log(K * t**2 * np.sqrt(1 + n) / delta)))


@register
@dataclass
class UCBSpec(Policy):
    """Round-robin over the K arms, then ``argmax_i mu_hat_i + cr_{i,t-1}``.

    Anytime (``t^2`` inside the log, no doubling); ties go to the lowest arm index.  The radius
    of arm ``i`` is scaled by the width of *its* reward range (``PolicyContext.arm_range``):
    ``K_i`` for tokens (the paper's ``L`` when every arm drafts ``L``), ``K_i c0 / c_i`` for
    relative throughput; a plain-decoding arm (width 0) has radius 0.

    Parameters
    ----------
    delta : float
        Confidence parameter (Theorem 4.3 uses 1/2).
    """

    name: ClassVar[str] = "ucbspec"
    kernel: ClassVar[str] = "ucbspec"
    delta: float = param(0.5, gt=0, lt=1, source="BanditSpec: confidence delta in (0, 1)")

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        K = ctx.n_arms
        self.counts_ = np.zeros((n_lanes, K))
        self.sums_ = np.zeros((n_lanes, K))
        self.t_ = np.zeros(n_lanes, dtype=np.int64)  # rounds completed

    def index(self) -> np.ndarray:
        """``UCB_{i,t-1}`` per lane and arm (``inf`` for unpulled arms)."""
        K = self.ctx_.n_arms
        lo, hi = self.ctx_.arm_range()
        width = (hi - lo)[None, :]
        n = self.counts_
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = self.sums_ / n
            # Eq. 6 with log(K t^2 sqrt(1+n)/delta) split into its pull part b and round part
            # 4 log t: the same value (``ucbspec_radius``), the same operations as the kernel
            a = (1 + n) / n**2
            b = sm.log(K * np.sqrt(1 + n) / self.delta)
            c = 4 * sm.log(np.maximum(self.t_, 1))[:, None]
            cr = (width / 2) * np.sqrt(a * (1 + 2 * b + c))
        return np.where(n > 0, mean + cr, np.inf)

    def select(self, u: np.ndarray) -> np.ndarray:
        K = self.ctx_.n_arms
        rr = self.t_ < K
        arms = np.argmax(self.index(), axis=1)
        return np.where(rr, np.minimum(self.t_, K - 1), arms)

    def update(self, arms: np.ndarray, rewards: np.ndarray, active: np.ndarray) -> None:
        lanes = np.flatnonzero(active)
        self.counts_[lanes, arms[lanes]] += 1
        self.sums_[lanes, arms[lanes]] += rewards[lanes]
        self.t_[lanes] += 1
