"""KL-UCB (Garivier & Cappé 2011).

Reward-range rule: rewards are normalised to ``x = (r - lo) / (hi - lo)`` in [0, 1] with one
range for every arm, ``[reward_lo, reward_hi]`` over the arm set (``[1, L+1]`` for tokens), never an
arm's own range; the textbook constants for rewards in [0, 1] (the bandit learners' shared rule,
``simulator/policies/common.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels import scalar_math as sm
from ..kernels.core import njit
from ..kernels.learners import Kernel, Tables, argmax
from ..kernels.learners import bern_kl as bern_kl_scalar
from .base import PolicyContext, param, register
from .common import Counting, counting_update


def bern_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``kl(p, q)`` between Bernoulli means, clipped away from 0 and 1."""
    p = np.clip(p, 1e-12, 1 - 1e-12)
    q = np.clip(q, 1e-12, 1 - 1e-12)
    return p * sm.log(p / q) + (1 - p) * sm.log((1 - p) / (1 - q))


@njit(inline="always")
def _klucb_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    t = ist[0]
    if t < A:
        return t
    tt = float(max(t, 2))
    num = math.log(tt) + prm[2] * math.log(math.log(tt))
    for i in range(A):
        n = max(st[0, i], 1.0)
        budget = num / n
        mean = min(max(st[1, i] / n, 0.0), 1.0)
        lo, hi = mean, 1.0
        for _ in range(40):
            mid = (lo + hi) / 2
            if bern_kl_scalar(mean, mid) <= budget:
                lo = mid
            else:
                hi = mid
        tmp[i] = lo
    return argmax(tmp, A)


@register
@dataclass
class KLUCB(Counting):
    """``argmax max{q : n_i kl(mean_i, q) <= ln t + c ln ln t}`` (Bernoulli kl, bisection)."""

    name: ClassVar[str] = "klucb"
    kernel: ClassVar[Kernel] = Kernel("klucb", _klucb_select, counting_update)
    c: float = param(0.0, ge=0, source="Garivier & Cappe 2011: c >= 0 (c = 3 in the analysis, 0 in practice)")

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        return Tables(prm=(self.c,))

    def select(self, u):
        t = np.maximum(self.t_, 2).astype(float)[:, None]
        budget = (sm.log(t) + self.c * sm.log(sm.log(t))) / np.maximum(self.n_, 1)
        mean = np.clip(self.s_ / np.maximum(self.n_, 1), 0, 1)
        lo, hi = mean.copy(), np.ones_like(mean)
        for _ in range(40):
            mid = (lo + hi) / 2
            ok = bern_kl(mean, mid) <= budget
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        return self._round_robin(np.argmax(lo, axis=1))
