"""SmartSpec: goodput from a running acceptance rate per drafter.

Reward-range rule: none; it reads accepted tokens, not a reward range (``PolicyContext``'s ranges are
unused), and its bonus is on acceptance rates, in [0, 1] for every drafter
(``simulator/policies/common.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels import scalar_math as sm
from ..kernels.core import njit
from ..kernels.learners import Kernel, argmax
from .base import register
from .common import RunLength, runlength_update


@njit(inline="always")
def _smartspec_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    D, Km = int(prm[3]), int(prm[4])
    for i in range(A):  # goodput with a running acceptance rate per drafter
        d, k = max(itab[i], 0), itab[A + i]
        succ, trials = 0.0, 0.0
        for j in range(Km):
            succ += st[D + d, j]
            trials += st[d, j]
        a = (succ + 0.5) / (trials + 1.0)
        tok = (1 - math.pow(a, float(k + 1))) / (1 - a) if itab[i] >= 0 else 1.0
        tmp[i] = tok / ftab[i]
    return argmax(tmp, A)


@register
@dataclass
class SmartSpec(RunLength):
    """SmartSpec-style goodput (Liu et al. 2024): per drafter a running acceptance rate
    ``alpha`` (successes / trials of drafted tokens, prior 1/2), expected tokens
    ``(1 - alpha^(K+1)) / (1 - alpha)``, and the arm maximising tokens per second with the
    trace's cost table (tokens per round without one)."""

    name: ClassVar[str] = "smartspec"
    kernel: ClassVar[Kernel] = Kernel("smartspec", _smartspec_select, runlength_update)

    def select(self, u):
        succ = self.passed_.sum(axis=2)
        trials = self.at_risk_.sum(axis=2)
        alpha = (succ + 0.5) / (trials + 1.0)  # (n_lanes, n_drafters)
        a = alpha[:, np.maximum(self.d_of_, 0)]
        k = self.k_of_[None, :]
        tokens = np.where(self.d_of_ >= 0, (1 - sm.power(a, k + 1)) / (1 - a), 1.0)
        cost = self.ctx_.arm_cost_s if self.ctx_.arm_cost_s is not None else np.ones(len(self.k_of_))
        return np.argmax(tokens / cost[None, :], axis=1)
