"""UCB1 (Auer et al. 2002).

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
from .base import PolicyContext, param, register
from .common import Counting, counting_update


@njit(inline="always")
def _ucb1_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    t = ist[0]
    if t < A:
        return t
    lt = 2 * math.log(max(t, 1))
    for i in range(A):
        n = st[0, i]
        tmp[i] = st[1, i] / n + prm[2] * math.sqrt(lt / n)
    return argmax(tmp, A)


@register
@dataclass
class UCB1(Counting):
    """``argmax mean_i + alpha sqrt(2 ln t / n_i)``."""

    name: ClassVar[str] = "ucb1"
    kernel: ClassVar[Kernel] = Kernel("ucb1", _ucb1_select, counting_update)
    alpha: float = param(1.0, ge=0, source="bonus scale; 0 = greedy, 1 = Auer et al.'s UCB1")

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        return Tables(prm=(self.alpha,))

    def select(self, u):
        with np.errstate(divide="ignore", invalid="ignore"):
            idx = self.s_ / self.n_ + self.alpha * np.sqrt(2 * sm.log(np.maximum(self.t_, 1))[:, None] / self.n_)
        return self._round_robin(np.argmax(np.nan_to_num(idx, nan=np.inf), axis=1))
