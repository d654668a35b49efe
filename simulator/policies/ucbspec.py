"""UCBSpec (BanditSpec, Algorithm 4 / 8), vectorised over lanes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels import scalar_math as sm
from ..kernels.core import njit
from ..kernels.learners import Kernel, Tables, argmax
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


# ---------------------------------------------------------------- compiled form (one lane)
# st rows: 0 pulls, 1 mean (sums / n), 2 a = (1+n)/n^2, 3 1 + 2 b, 4 sums; ftab: half_ (radius
# scale per arm); prm[2] = delta.  Row 1 and 3 cache what ``index`` recomputes: the same values.
@njit(inline="always")
def _select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    t = ist[0]
    if t < A:
        return t
    c = 4.0 * math.log(max(t, 1))
    for i in range(A):
        tmp[i] = st[1, i] + ftab[i] * math.sqrt(st[2, i] * (st[3, i] + c))
    return argmax(tmp, A)  # a separate pass, so the loop above vectorises


@njit(inline="always")
def _update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1
    st[0, arm] += 1.0
    st[4, arm] += r
    n = st[0, arm]
    st[1, arm] = st[4, arm] / n
    st[2, arm] = (1 + n) / (n * n)
    st[3, arm] = 1.0 + 2.0 * math.log(A * math.sqrt(1 + n) / prm[2])


@register
@dataclass
class UCBSpec(Policy):
    """Round-robin over the K arms, then ``argmax_i mu_hat_i + cr_{i,t-1}``.

    Anytime (``t^2`` inside the log, no doubling); ties go to the lowest arm index.

    Reward-range rule: one radius scale for every arm, ``w/2`` with ``w`` the largest width of
    an arm's reward range over the arm set (``PolicyContext.common_width``): ``L`` for tokens,
    as in Eq. 6 (rewards in ``[1, L+1]``, ``sigma = L/2``), the widest throughput range for a
    throughput reward.  It is the smallest scale that is a sub-Gaussian constant of every
    arm's reward, so the paper's confidence bound holds for each arm; a plain-decoding arm
    gets the same radius as the others and is played whenever its index is highest.
    ``width="per-arm"`` scales arm ``i``'s radius by its own range (``K_i`` for tokens, radius
    0 for plain decoding): the toolkit's earlier default, not the paper's UCBSpec.
    ``scale`` multiplies every radius: any value but 1 is not the paper's guarantee, and the
    outputs say so (``notes``).

    Parameters
    ----------
    delta : float
        Confidence parameter (Theorem 4.3 uses 1/2).
    width : {"common", "per-arm"}
        One width for all arms (the paper's, default) or each arm's own.
    scale : float
        Radius multiplier (1 = Eq. 6).
    """

    name: ClassVar[str] = "ucbspec"
    kernel: ClassVar[Kernel] = Kernel("ucbspec", _select, _update)
    delta: float = param(0.5, gt=0, lt=1, source="BanditSpec: confidence delta in (0, 1)")
    width: str = param("common", choices=("common", "per-arm"),
                       source="common: BanditSpec Eq. 6 (one L/2 for all arms); per-arm: each arm's own range")
    scale: float = param(1.0, gt=0, source="radius multiplier: 1 is Eq. 6; other values: not the paper's guarantee")

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        K = ctx.n_arms
        self.counts_ = np.zeros((n_lanes, K))
        self.sums_ = np.zeros((n_lanes, K))
        self.t_ = np.zeros(n_lanes, dtype=np.int64)  # rounds completed
        self.half_ = self.half_widths(ctx)

    def half_widths(self, ctx: PolicyContext) -> np.ndarray:
        """The radius scale of every arm, shape (n_arms,): ``scale * w / 2`` with ``w`` the
        common width (``width="common"``) or the arm's own (``"per-arm"``); the compiled
        form reads the same array (``kernel_tables``)."""
        lo, hi = ctx.arm_range()
        half = (hi - lo) / 2 if self.width == "per-arm" else np.full(ctx.n_arms, ctx.common_width() / 2)
        return half * self.scale

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        """``delta``; the radius scale of every arm (``half_``, the numpy policy's own array)."""
        return Tables(prm=(self.delta,), ftab=self.half_)

    def notes(self) -> tuple[str, ...]:
        """Which radius width runs; ``"not the paper's ..."`` for ``per-arm`` and ``scale != 1``."""
        out = [("radius width per-arm (each arm's own reward range) - not the paper's UCBSpec"
                if self.width == "per-arm" else
                "radius width common (the largest arm reward range, one for all arms: BanditSpec Eq. 6)")]
        if self.scale != 1:
            out.append(f"radius scaled by {self.scale:g} - not the paper's guarantee")
        return tuple(out)

    def resolved(self, ctx: PolicyContext) -> dict:
        """The parameters, and the width the radius uses in ``ctx`` (one number, or one per arm)."""
        lo, hi = ctx.arm_range()
        out = super().resolved(ctx)
        out["radius_width"] = (ctx.common_width() if self.width == "common" else
                               {a: float(h - x) for a, x, h in zip(ctx.arm_names, lo, hi, strict=True)})
        return out

    def index(self) -> np.ndarray:
        """``UCB_{i,t-1}`` per lane and arm (``inf`` for unpulled arms)."""
        K = self.ctx_.n_arms
        n = self.counts_
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = self.sums_ / n
            # Eq. 6 with log(K t^2 sqrt(1+n)/delta) split into its pull part b and round part
            # 4 log t: the same value (``ucbspec_radius``), the same operations as the kernel
            a = (1 + n) / n**2
            b = sm.log(K * np.sqrt(1 + n) / self.delta)
            c = 4 * sm.log(np.maximum(self.t_, 1))[:, None]
            cr = self.half_[None, :] * np.sqrt(a * (1 + 2 * b + c))
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
