"""Learners that use the structure of (drafter x length) arms.

Pulling ``(d, K)`` at position ``t`` reveals ``a = min(K, L_d(t))``: the outcome of every
``(d, K')`` with ``K' <= K`` (``min(K', a)``), and of every ``K'`` when ``a < K`` (the run
ended).  So one censored run-length estimate per drafter scores every ``K``.

Reward-range rule: these learners read accepted tokens, not a reward range (``PolicyContext``'s
ranges are unused); their bonus is on acceptance rates, in [0, 1] for every drafter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels import scalar_math as sm
from ..kernels.core import njit
from ..kernels.learners import Kernel, Tables, argmax
from .base import Policy, PolicyContext, param, register


# ---------------------------------------------------------------- compiled forms (one lane)
# st rows 0..D-1 at_risk, D..2D-1 passed, 2D..3D-1 scratch survival (drafter d, depth j);
# itab = d_of then k_of (2A); prm[2] = c, prm[3] = D, prm[4] = Kmax; ftab = arm costs (SmartSpec)
@njit(inline="always")
def _runlength_update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1
    d, K = itab[arm], itab[A + arm]
    if d >= 0:
        D = int(prm[3])
        a = min(int(r) - 1, K)
        for j in range(1, min(a + 1, K) + 1):
            st[d, j - 1] += 1.0
        for j in range(1, a + 1):
            st[D + d, j - 1] += 1.0


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


@dataclass
class _RunLength(Policy):
    """Per-drafter censored run-length statistics: for depth ``j = 1..Kmax``, ``at_risk[j]``
    = observations that reached depth ``j`` (run >= j-1 observed with a draft of >= j), and
    ``passed[j]`` = those that also accepted the ``j``-th token.  Survival
    ``S(j) = P(L >= j) = prod_{i<=j} passed[i] / at_risk[i]`` (Kaplan-Meier)."""

    rewards: ClassVar[tuple[str, ...]] = ("tokens",)  # reads accepted tokens

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        drafters, d_of, k_of = [], [], []
        for arm in ctx.arms:
            if arm.k > 0 and arm.drafter not in drafters:
                drafters.append(arm.drafter)
            d_of.append(drafters.index(arm.drafter) if arm.k > 0 else -1)
            k_of.append(arm.k)
        self.d_of_, self.k_of_ = np.array(d_of), np.array(k_of)
        self.Kmax_ = max(int(self.k_of_.max()), 1)
        self.at_risk_ = np.zeros((n_lanes, max(len(drafters), 1), self.Kmax_))
        self.passed_ = np.zeros_like(self.at_risk_)
        self.t_ = np.zeros(n_lanes, dtype=np.int64)

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        D = self.at_risk_.shape[1]
        cost = None
        if self.name == "smartspec":  # tokens per second: the arms' costs (tokens per round without them)
            cost = ctx.arm_cost_s.astype(float) if ctx.arm_cost_s is not None else np.ones(ctx.n_arms)
        return Tables(prm=(float(getattr(self, "c", 0.0)), float(D), float(self.Kmax_)),
                      itab=np.concatenate([self.d_of_, self.k_of_]), ftab=cost, shape=(3 * D, self.Kmax_))

    def survival(self, optimism: np.ndarray | float = 0.0) -> np.ndarray:
        """``S(j)`` for j = 1..Kmax, (n_lanes, n_drafters, Kmax); with ``optimism``, each
        conditional acceptance rate is raised by it (capped at 1)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.where(self.at_risk_ > 0, self.passed_ / self.at_risk_, 1.0)
        return np.cumprod(np.minimum(h + optimism, 1.0), axis=2)

    def expected_tokens(self, S: np.ndarray) -> np.ndarray:
        """``E[y] = 1 + sum_{j<=K} S(j)`` of every arm, (n_lanes, n_arms)."""
        cum = np.concatenate([np.zeros(S.shape[:2] + (1,)), np.cumsum(S, axis=2)], axis=2)
        d = np.maximum(self.d_of_, 0)
        out = 1.0 + cum[:, d, self.k_of_]
        return np.where(self.d_of_ >= 0, out, 1.0)

    def update(self, arms, rewards, active) -> None:
        lanes = np.flatnonzero(active)
        d, K = self.d_of_[arms[lanes]], self.k_of_[arms[lanes]]
        keep = d >= 0
        lanes, d, K = lanes[keep], d[keep], K[keep]
        a = np.minimum(rewards[lanes].astype(np.int64) - 1, K)  # accepted (last round may be cut)
        j = np.arange(1, self.Kmax_ + 1)[None, :]
        risk = j <= np.minimum(a + 1, K)[:, None]  # depths drafted and examined
        self.at_risk_[lanes, d] += risk
        self.passed_[lanes, d] += j <= a[:, None]
        self.t_[active] += 1


@register
@dataclass
class StructuredUCB(_RunLength):
    """Optimistic run-length scoring: each drafter's conditional acceptance rates get a
    bonus ``c sqrt(ln t / at_risk)``, and every arm ``(d, K)`` is scored by
    ``1 + sum_{j<=K} S_opt(j)`` (tokens per round; it optimises rounds whatever the run's
    objective).  Drafters never tried are tried first (at their largest K)."""

    name: ClassVar[str] = "structured-ucb"
    kernel: ClassVar[Kernel] = Kernel("structured-ucb", _structured_select, _runlength_update)
    c: float = param(1.0, ge=0, source="bonus scale; 0 = plug-in estimates")

    def select(self, u):
        with np.errstate(divide="ignore"):
            bonus = self.c * np.sqrt(sm.log(np.maximum(self.t_, 2))[:, None, None] / self.at_risk_)
        idx = self.expected_tokens(self.survival(np.where(self.at_risk_ > 0, bonus, 1.0)))
        return np.argmax(idx, axis=1)


@register
@dataclass
class SmartSpec(_RunLength):
    """SmartSpec-style goodput (Liu et al. 2024): per drafter a running acceptance rate
    ``alpha`` (successes / trials of drafted tokens, prior 1/2), expected tokens
    ``(1 - alpha^(K+1)) / (1 - alpha)``, and the arm maximising tokens per second with the
    trace's cost table (tokens per round without one)."""

    name: ClassVar[str] = "smartspec"
    kernel: ClassVar[Kernel] = Kernel("smartspec", _smartspec_select, _runlength_update)

    def select(self, u):
        succ = self.passed_.sum(axis=2)
        trials = self.at_risk_.sum(axis=2)
        alpha = (succ + 0.5) / (trials + 1.0)  # (n_lanes, n_drafters)
        a = alpha[:, np.maximum(self.d_of_, 0)]
        k = self.k_of_[None, :]
        tokens = np.where(self.d_of_ >= 0, (1 - sm.power(a, k + 1)) / (1 - a), 1.0)
        cost = self.ctx_.arm_cost_s if self.ctx_.arm_cost_s is not None else np.ones(len(self.k_of_))
        return np.argmax(tokens / cost[None, :], axis=1)
