"""Epsilon-greedy.

Reward-range rule: rewards are normalised to ``x = (r - lo) / (hi - lo)`` in [0, 1] with one
range for every arm, ``[reward_lo, reward_hi]`` over the arm set (``[1, L+1]`` for tokens), never an
arm's own range; the textbook constants for rewards in [0, 1] (the bandit learners' shared rule,
``simulator/policies/common.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels.core import njit, uniform3
from ..kernels.learners import Kernel, Tables, argmax
from .base import PolicyContext, param, register
from .common import Counting, counting_update


@njit(inline="always")
def _epsgreedy_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    eps = min(1.0, prm[2] * A / max(ist[0], 1))
    if uniform3(key, lane_key, g, 0) < eps:
        return min(int(uniform3(key, lane_key, g, 1) * A), A - 1)
    for i in range(A):
        tmp[i] = st[1, i] / st[0, i] if st[0, i] > 0 else np.inf
    return argmax(tmp, A)


@register
@dataclass
class EpsilonGreedy(Counting):
    """With probability ``eps_t = min(1, c K / t)`` a uniform arm, else the best mean."""

    name: ClassVar[str] = "epsilon-greedy"
    kernel: ClassVar[Kernel] = Kernel("epsilon-greedy", _epsgreedy_select, counting_update)
    n_random: ClassVar[int] = 2
    c: float = param(1.0, gt=0, source="Auer et al. 2002, epsilon_n-greedy: c > 0")

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        return Tables(prm=(self.c,))

    def select(self, u):
        K = self.ctx_.n_arms
        eps = np.minimum(1.0, self.c * K / np.maximum(self.t_, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(self.n_ > 0, self.s_ / self.n_, np.inf)
        explore = u[:, 0] < eps
        return np.where(explore, np.minimum((u[:, 1] * K).astype(np.int64), K - 1), np.argmax(mean, axis=1))
