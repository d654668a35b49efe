"""EXP3-IX (Neu 2015).

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
from ..kernels.core import njit, uniform3
from ..kernels.learners import Kernel, categorical, exp_weights
from .base import register, softmin_probs
from .common import Weights, weights_init


@njit(inline="always")
def _exp3ix_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    eta = math.sqrt(2 * math.log(A) / (A * (ist[0] + 1)))
    exp_weights(st, 0, 1, A, eta)
    return categorical(st, 1, A, uniform3(key, lane_key, g, 0))


@njit(inline="always")
def _exp3ix_update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    t = ist[0]
    ist[0] = t + 1
    gamma = math.sqrt(2 * math.log(A) / (A * (t + 1))) / 2
    st[0, arm] += (prm[1] - r) / max(prm[1] - prm[0], 1e-12) / (st[1, arm] + gamma)


@register
@dataclass
class EXP3IX(Weights):
    """EXP3-IX: ``p ∝ exp(-eta_t Lhat)``, ``Lhat_i += l 1{I=i} / (p_i + gamma_t)``,
    ``eta_t = sqrt(2 ln K / (K t))``, ``gamma_t = eta_t / 2``."""

    name: ClassVar[str] = "exp3-ix"
    kernel: ClassVar[Kernel] = Kernel("exp3-ix", _exp3ix_select, _exp3ix_update, weights_init)

    def _eta(self):
        K = self.ctx_.n_arms
        return np.sqrt(2 * sm.log(K) / (K * (self.t_ + 1)))

    def probabilities(self):
        return softmin_probs(self.Lhat_, self._eta())

    def update(self, arms, rewards, active):
        lanes = np.flatnonzero(active)
        gamma = self._eta()[lanes] / 2
        a = arms[lanes]
        self.Lhat_[lanes, a] += self._loss(rewards[lanes]) / (self.p_[lanes, a] + gamma)
        self.t_[lanes] += 1
