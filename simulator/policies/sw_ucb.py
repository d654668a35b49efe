"""Sliding-window UCB (Garivier & Moulines 2011).

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
from .base import Policy, PolicyContext, param, register


# SW-UCB: st rows 0 scaled rewards per window slot, 1 arm per slot (-1 empty), 2/3 scratch
# pulls/sums per arm; prm[2] = window, prm[3] = xi
@njit(inline="always")
def _swucb_init(A, st, ist, prm, itab):
    for j in range(int(prm[2])):
        st[1, j] = -1.0


@njit(inline="always")
def _swucb_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    W = int(prm[2])
    for i in range(A):
        st[2, i] = 0.0
        st[3, i] = 0.0
    for j in range(W):  # window slots in slot order, as the numpy policy sums them
        a = int(st[1, j])
        if a >= 0:
            st[2, a] += 1.0
            st[3, a] += st[0, j]
    lw = prm[3] * math.log(max(min(ist[0], W), 1))
    for i in range(A):
        n = st[2, i]
        tmp[i] = st[3, i] / n + math.sqrt(lw / n) if n > 0 else np.inf
    return argmax(tmp, A)


@njit(inline="always")
def _swucb_update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    t = ist[0]
    ist[0] = t + 1
    slot = t % int(prm[2])
    st[1, slot] = arm
    st[0, slot] = (r - prm[0]) / max(prm[1] - prm[0], 1e-12)


@register
@dataclass
class SlidingWindowUCB(Policy):
    """SW-UCB: means and counts over the last ``window`` rounds,
    ``index = mean + sqrt(xi ln(min(t, window)) / n)``; unseen arms first."""

    name: ClassVar[str] = "sw-ucb"
    kernel: ClassVar[Kernel] = Kernel("sw-ucb", _swucb_select, _swucb_update, _swucb_init)
    window: int = param(64, ge=1, le=65536, source="rounds kept per lane (the state is lanes x window)")
    xi: float = param(0.6, ge=0, source="bonus scale; Garivier & Moulines 2011 analyse xi > 1/2")

    def reset(self, n_lanes, ctx):
        super().reset(n_lanes, ctx)
        self.arm_hist_ = np.full((n_lanes, self.window), -1, dtype=np.int64)
        self.x_hist_ = np.zeros((n_lanes, self.window))
        self.t_ = np.zeros(n_lanes, dtype=np.int64)

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        return Tables(prm=(float(self.window), self.xi), shape=(4, max(ctx.n_arms, self.window)))

    def select(self, u):
        K = self.ctx_.n_arms
        onehot = self.arm_hist_[:, :, None] == np.arange(K)[None, None, :]
        n = onehot.sum(axis=1)
        s = (onehot * self.x_hist_[:, :, None]).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            idx = s / n + np.sqrt(self.xi * sm.log(np.clip(np.minimum(self.t_, self.window), 1, None))[:, None] / n)
        return np.argmax(np.where(n > 0, idx, np.inf), axis=1)

    def update(self, arms, rewards, active):
        lanes = np.flatnonzero(active)
        slot = self.t_[lanes] % self.window
        lo, hi = self.ctx_.reward_lo, self.ctx_.reward_hi
        self.arm_hist_[lanes, slot] = arms[lanes]
        self.x_hist_[lanes, slot] = (rewards[lanes] - lo) / max(hi - lo, 1e-12)
        self.t_[lanes] += 1
