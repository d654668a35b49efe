"""EXP3Spec (BanditSpec, Algorithm 5 / 9), vectorised over lanes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels import scalar_math as sm
from ..kernels.core import njit, uniform3
from ..kernels.learners import Kernel, Tables, categorical, exp_weights
from .base import Policy, PolicyContext, param, register, sample_categorical, softmin_probs


# ---------------------------------------------------------------- compiled form (one lane)
# st rows: 1 importance-weighted cumulative losses, 4 probabilities; prm[2] = eta_scale
@njit(inline="always")
def _init(A, st, ist, prm, itab):
    for i in range(A):
        st[4, i] = 1.0 / A


@njit(inline="always")
def _select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    eta = prm[2] * math.sqrt(math.log(A) / ((ist[0] + 1.0) * A))
    exp_weights(st, 1, 4, A, eta)
    return categorical(st, 4, A, uniform3(key, lane_key, g, 0))


@njit(inline="always")
def _update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1
    st[1, arm] += (prm[1] - r) / max(prm[1] - prm[0], 1e-12) / st[4, arm]


@register
@dataclass
class EXP3Spec(Policy):
    """Anytime EXP3: ``p_t ∝ exp(-eta_t sum_{s<t} Zhat_s)``, ``eta_t = sqrt(log K / (t K))``.

    Loss ``z = (hi - r) / (hi - lo)`` in [0, 1] (``1 - (y-1)/L`` for tokens) and the
    importance-weighted estimate ``Zhat_i = 1{i = I_t} z / p_{t,i}`` (Algorithm 9 indexing:
    ``p_t`` uses ``Zhat_1..Zhat_{t-1}``).  No explicit exploration mixing.

    Reward-range rule: one range for every arm, ``[lo, hi] = [reward_lo, reward_hi]`` over the
    arm set (``[1, L+1]`` for tokens, as Algorithm 9), never an arm's own range: every loss is
    in [0, 1], where the rate ``eta_t`` (Theorem 5.3) holds, and equal rewards give equal
    losses whichever arm produced them.

    Parameters
    ----------
    eta_scale : float
        Multiplies ``eta_t``; 1 is the paper's rate.
    """

    name: ClassVar[str] = "exp3spec"
    n_random: ClassVar[int] = 1
    kernel: ClassVar[Kernel] = Kernel("exp3spec", _select, _update, _init)
    eta_scale: float = param(1.0, gt=0, source="a learning rate: > 0")

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        self.cum_loss_ = np.zeros((n_lanes, ctx.n_arms))
        self.t_ = np.zeros(n_lanes, dtype=np.int64)
        self.p_ = np.full((n_lanes, ctx.n_arms), 1.0 / ctx.n_arms)

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        return Tables(prm=(self.eta_scale,))

    def probabilities(self) -> np.ndarray:
        """``p_t`` for the coming round, shape (n_lanes, K)."""
        K = self.ctx_.n_arms
        t = (self.t_ + 1).astype(float)
        eta = self.eta_scale * np.sqrt(sm.log(K) / (t * K))
        return softmin_probs(self.cum_loss_, eta)

    def select(self, u: np.ndarray) -> np.ndarray:
        self.p_ = self.probabilities()
        return sample_categorical(self.p_, u[:, 0])

    def update(self, arms: np.ndarray, rewards: np.ndarray, active: np.ndarray) -> None:
        lanes = np.flatnonzero(active)
        lo, hi = self.ctx_.reward_lo, self.ctx_.reward_hi
        z = (hi - rewards[lanes]) / max(hi - lo, 1e-12)  # one arm: a constant reward, any loss works
        self.cum_loss_[lanes, arms[lanes]] += z / self.p_[lanes, arms[lanes]]
        self.t_[lanes] += 1
