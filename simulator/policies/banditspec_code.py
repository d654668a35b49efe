"""Engine heuristic: the public BanditSpec code's learner."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels import scalar_math as sm
from ..kernels.core import njit
from ..kernels.learners import Kernel, Tables, argmax
from .base import Policy, PolicyContext, PolicyError, register
from .common import drafter_arms


# BanditSpec's code: ist[1] = out_index, ist[2] = the group of this round; st rows 0 sums,
# 1 calls; itab = arm of K = 1..4
@njit(inline="always")
def _bsc_init(A, st, ist, prm, itab):
    ist[1] = 1


@njit(inline="always")
def _bsc_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    oi = ist[1]
    if oi < 8:
        gi = (oi - 1) % 4
    else:
        tot = st[1, 0] + st[1, 1] + st[1, 2] + st[1, 3]
        bonus = math.sqrt(6.0 * math.log(oi) / tot)
        for i in range(4):
            tmp[i] = (st[0, i] / st[1, i] if st[1, i] > 0 else 0.0) + bonus
        gi = argmax(tmp, 4)
    ist[2] = gi
    return itab[gi]


@njit(inline="always")
def _bsc_update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1
    gi = ist[2]
    st[0, gi] += r
    st[1, gi] += 1
    ist[1] += 1


@register
@dataclass
class BanditSpecCode(Policy):
    """A faithful copy of the public BanditSpec code's length bandit
    (``generate_utils.py: ucb_length_spec_generate``, sail-sg/BanditSpec 4e6dd869), not the
    paper's UCBSpec:

    * arms are ``DRAFTER@1..4`` (K = 0 is not an arm there);
    * warm-up while ``out_index < 8`` with ``out_index`` starting at 1: K = 1,2,3,4,1,2,3
      (7 rounds, so K = 4 is pulled once);
    * then ``argmax(mean + sqrt(6 log(out_index) / total_calls))``: the bonus divides by the
      *total* number of calls, so it is the same for every arm and the rule is greedy on the
      empirical mean (first index on ties);
    * the reward is whatever the run uses (the code uses throughput: ``--reward throughput``).

    Reward-range rule: none, as in the code: raw rewards and a bonus that no reward range
    scales (``PolicyContext``'s ranges are unused), so its decisions change with the reward's
    unit; one bonus for every arm.
    """

    name: ClassVar[str] = "banditspec-code"
    kernel: ClassVar[Kernel] = Kernel("banditspec-code", _bsc_select, _bsc_update, _bsc_init)
    drafter: str = ""

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        by_k = drafter_arms(ctx, self.drafter)
        missing = [k for k in (1, 2, 3, 4) if k not in by_k]
        if missing:
            raise PolicyError(f"policy banditspec-code needs arms @1..@4 of one drafter; missing K={missing}")
        self.arm_of_ = np.array([by_k[k] for k in (1, 2, 3, 4)])
        self.sum_ = np.zeros((n_lanes, 4))
        self.calls_ = np.zeros((n_lanes, 4))
        self.out_index_ = np.ones(n_lanes, dtype=np.int64)

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        return Tables(itab=self.arm_of_)

    def select(self, u: np.ndarray) -> np.ndarray:
        warm = self.out_index_ < 4 * 2
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(self.calls_ > 0, self.sum_ / self.calls_, 0.0)
            bonus = np.sqrt(6.0 * sm.log(self.out_index_) / self.calls_.sum(axis=1))
        g = np.where(warm, (self.out_index_ - 1) % 4, np.argmax(mean + bonus[:, None], axis=1))
        self.g_ = g
        return self.arm_of_[g]

    def update(self, arms: np.ndarray, rewards: np.ndarray, active: np.ndarray) -> None:
        lanes = np.flatnonzero(active)
        self.sum_[lanes, self.g_[lanes]] += rewards[lanes]
        self.calls_[lanes, self.g_[lanes]] += 1
        self.out_index_[lanes] += 1
