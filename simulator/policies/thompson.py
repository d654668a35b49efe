"""Gaussian Thompson sampling (Agrawal & Goyal 2013).

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
from ..kernels.core import njit, uniform_last, uniform_prefix
from ..kernels.learners import Kernel, Tables, argmax, ndtri_inline
from .base import PolicyContext, param, register
from .common import Counting


@njit(inline="always")
def _thompson_init(A, st, ist, prm, itab):
    for i in range(A):  # the prior N(0.5, sigma^2) of every arm
        st[2, i] = 0.5
        st[3, i] = prm[2]


@njit(inline="always")
def _thompson_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    h = uniform_prefix(key, lane_key, g)
    for i in range(A):
        u = min(max(uniform_last(h, i), 1e-12), 1 - 1e-12)
        tmp[i] = st[2, i] + st[3, i] * ndtri_inline(u)
    return argmax(tmp, A)


@njit(inline="always")
def _thompson_update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1
    st[0, arm] += 1
    st[1, arm] += (r - prm[0]) / max(prm[1] - prm[0], 1e-12)
    st[2, arm] = (st[1, arm] + 0.5) / (st[0, arm] + 1)  # only the pulled arm's posterior moves
    st[3, arm] = prm[2] / math.sqrt(st[0, arm] + 1)


@register
@dataclass
class Thompson(Counting):
    """Gaussian Thompson sampling: ``theta_i ~ N(mean_i, sigma^2 / (n_i + 1))`` (prior mean 0.5)."""

    name: ClassVar[str] = "thompson"
    kernel: ClassVar[Kernel] = Kernel("thompson", _thompson_select, _thompson_update, _thompson_init)
    sigma: float = param(0.5, gt=0, source="a standard deviation: > 0")

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        return Tables(prm=(self.sigma,))

    def reset(self, n_lanes, ctx):
        super().reset(n_lanes, ctx)
        self.n_random = ctx.n_arms  # one normal draw per arm per round

    def select(self, u):
        mean = (self.s_ + 0.5) / (self.n_ + 1)
        theta = mean + self.sigma / np.sqrt(self.n_ + 1) * sm.ndtri(np.clip(u, 1e-12, 1 - 1e-12))
        return np.argmax(theta, axis=1)
