"""StructuredUCB: optimistic censored run-length survival per drafter.

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
from .base import param, register
from .common import RunLength, runlength_update


@njit(inline="always")
def _structured_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    D, Km = int(prm[3]), int(prm[4])
    lt = math.log(max(ist[0], 2))
    for d in range(D):  # optimistic survival S(j) into rows 2D..3D-1
        s = 1.0
        for j in range(Km):
            n = st[d, j]
            h = st[D + d, j] / n if n > 0 else 1.0
            b = prm[2] * math.sqrt(lt / n) if n > 0 else 1.0
            s = s * min(h + b, 1.0)
            st[2 * D + d, j] = s
    for i in range(A):
        d, k = itab[i], itab[A + i]
        if d < 0:
            tmp[i] = 1.0
        else:
            acc = 0.0
            for j in range(k):
                acc += st[2 * D + d, j]
            tmp[i] = 1.0 + acc
    return argmax(tmp, A)


@register
@dataclass
class StructuredUCB(RunLength):
    """Optimistic run-length scoring: each drafter's conditional acceptance rates get a
    bonus ``c sqrt(ln t / at_risk)``, and every arm ``(d, K)`` is scored by
    ``1 + sum_{j<=K} S_opt(j)`` (tokens per round; it optimises rounds whatever the run's
    objective).  Drafters never tried are tried first (at their largest K)."""

    name: ClassVar[str] = "structured-ucb"
    kernel: ClassVar[Kernel] = Kernel("structured-ucb", _structured_select, runlength_update)
    c: float = param(1.0, ge=0, source="bonus scale; 0 = plug-in estimates")

    def select(self, u):
        with np.errstate(divide="ignore"):
            bonus = self.c * np.sqrt(sm.log(np.maximum(self.t_, 2))[:, None, None] / self.at_risk_)
        idx = self.expected_tokens(self.survival(np.where(self.at_risk_ > 0, bonus, 1.0)))
        return np.argmax(idx, axis=1)
