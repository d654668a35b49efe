"""Tsallis-INF, alpha = 1/2 (Zimmert & Seldin 2021).

Reward-range rule: rewards are normalised to ``x = (r - lo) / (hi - lo)`` in [0, 1] with one
range for every arm, ``[reward_lo, reward_hi]`` over the arm set (``[1, L+1]`` for tokens), never an
arm's own range; the textbook constants for rewards in [0, 1] (the bandit learners' shared rule,
``simulator/policies/common.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels.core import njit, uniform3
from ..kernels.learners import Kernel, categorical
from .base import register, rowsum
from .common import Weights, weights_init


@njit(inline="always")
def _tsallis_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    eta = 2 / math.sqrt(ist[0] + 1.0)
    m = st[0, 0]
    for i in range(1, A):
        m = min(m, st[0, i])
    lo, hi = m - 2 * math.sqrt(A) / eta, m - 2 / eta
    for _ in range(60):
        mid = (lo + hi) / 2
        s = 0.0
        for i in range(A):
            v = eta * (st[0, i] - mid)
            s += 4 / (v * v)
        if s < 1:
            lo = mid
        else:
            hi = mid
    x = (lo + hi) / 2
    s = 0.0
    for i in range(A):
        v = eta * (st[0, i] - x)
        st[1, i] = 4 / (v * v)
        s += st[1, i]
    for i in range(A):
        st[1, i] = st[1, i] / s
    return categorical(st, 1, A, uniform3(key, lane_key, g, 0))


@njit(inline="always")
def _tsallis_update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1
    st[0, arm] += (prm[1] - r) / max(prm[1] - prm[0], 1e-12) / st[1, arm]


def tsallis_probs(Lhat: np.ndarray, eta: np.ndarray, iters: int = 60) -> np.ndarray:
    """``p_i = 4 / (eta (Lhat_i - x))^2`` with ``x < min Lhat`` such that ``sum p = 1``."""
    m = Lhat.min(axis=1)
    K = Lhat.shape[1]
    lo = m - 2 * np.sqrt(K) / eta  # sum p <= 1 here
    hi = m - 2 / eta  # sum p >= 1 here (the minimum alone gives 1)
    for _ in range(iters):
        mid = (lo + hi) / 2
        s = rowsum(4 / (eta[:, None] * (Lhat - mid[:, None])) ** 2)
        lo, hi = np.where(s < 1, mid, lo), np.where(s < 1, hi, mid)
    x = (lo + hi) / 2
    p = 4 / (eta[:, None] * (Lhat - x[:, None])) ** 2
    return p / rowsum(p)[:, None]


@register
@dataclass
class TsallisINF(Weights):
    """Tsallis-INF with alpha = 1/2 (best of both worlds), ``eta_t = 2 / sqrt(t)``,
    importance-weighted loss estimates."""

    name: ClassVar[str] = "tsallis-inf"
    kernel: ClassVar[Kernel] = Kernel("tsallis-inf", _tsallis_select, _tsallis_update, weights_init)

    def probabilities(self):
        return tsallis_probs(self.Lhat_, 2 / np.sqrt(self.t_ + 1.0))

    def update(self, arms, rewards, active):
        lanes = np.flatnonzero(active)
        a = arms[lanes]
        self.Lhat_[lanes, a] += self._loss(rewards[lanes]) / self.p_[lanes, a]
        self.t_[lanes] += 1
