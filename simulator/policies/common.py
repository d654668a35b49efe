"""Shared pieces of the built-in learners: state bases and compiled helpers used by several.

Bandit learners (UCB1, KL-UCB, Thompson, epsilon-greedy, EXP3-IX, Tsallis-INF, SW-UCB),
reward-range rule: rewards are normalised to ``x = (r - lo) / (hi - lo)`` in [0, 1] with one
range for every arm, ``[lo, hi] = [reward_lo, reward_hi]`` over the arm set (``[1, L+1]`` for
tokens), never an arm's own range; losses are ``1 - x``.  The bonuses (UCB1, KL-UCB, SW-UCB), the
prior and ``sigma`` (Thompson) and the rates (EXP3-IX, Tsallis-INF) are the textbook ones for
rewards in [0, 1], and equal rewards are equal evidence whichever arm produced them.  Scalar
twins: ``simulator/policies/reference.py``.

Run-length learners (StructuredUCB, SmartSpec): pulling ``(d, K)`` at position ``t`` reveals
``a = min(K, L_d(t))``: the outcome of every ``(d, K')`` with ``K' <= K`` (``min(K', a)``), and
of every ``K'`` when ``a < K`` (the run ended).  So one censored run-length estimate per drafter
scores every ``K``.  They read accepted tokens, not a reward range (``PolicyContext``'s ranges
are unused); their bonus is on acceptance rates, in [0, 1] for every drafter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels.core import njit
from ..kernels.learners import Tables
from .base import Policy, PolicyContext, PolicyError, sample_categorical


# ---------------------------------------------------------------- compiled forms (one lane)
# Counting learners: st rows 0 pulls, 1 sums of rewards scaled to [0, 1] (Thompson: 2 posterior
# mean, 3 its scale, kept by ``update``); prm[2] = the learner's parameter.
@njit(inline="always")
def counting_update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1
    st[0, arm] += 1
    st[1, arm] += (r - prm[0]) / max(prm[1] - prm[0], 1e-12)


@dataclass
class Counting(Policy):
    """Shared state: pulls and reward sums per arm; round robin first."""

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        self.n_ = np.zeros((n_lanes, ctx.n_arms))
        self.s_ = np.zeros((n_lanes, ctx.n_arms))
        self.t_ = np.zeros(n_lanes, dtype=np.int64)

    def _x(self, r: np.ndarray) -> np.ndarray:
        return (r - self.ctx_.reward_lo) / max(self.ctx_.reward_hi - self.ctx_.reward_lo, 1e-12)

    def update(self, arms, rewards, active) -> None:
        lanes = np.flatnonzero(active)
        self.n_[lanes, arms[lanes]] += 1
        self.s_[lanes, arms[lanes]] += self._x(rewards[lanes])
        self.t_[lanes] += 1

    def _round_robin(self, idx: np.ndarray) -> np.ndarray:
        K = self.ctx_.n_arms
        return np.where(self.t_ < K, np.minimum(self.t_, K - 1), idx)


# Weights learners: st rows 0 importance-weighted losses, 1 probabilities
@njit(inline="always")
def weights_init(A, st, ist, prm, itab):
    for i in range(A):
        st[1, i] = 1.0 / A


@dataclass
class Weights(Policy):
    """Importance-weighted cumulative loss estimates; sampling with one uniform."""

    n_random: ClassVar[int] = 1

    def reset(self, n_lanes, ctx):
        super().reset(n_lanes, ctx)
        self.Lhat_ = np.zeros((n_lanes, ctx.n_arms))
        self.t_ = np.zeros(n_lanes, dtype=np.int64)
        self.p_ = np.full((n_lanes, ctx.n_arms), 1.0 / ctx.n_arms)

    def select(self, u):
        self.p_ = self.probabilities()
        return sample_categorical(self.p_, u[:, 0])

    def _loss(self, r):
        return (self.ctx_.reward_hi - r) / max(self.ctx_.reward_hi - self.ctx_.reward_lo, 1e-12)


# ---------------------------------------------------------------- compiled forms (one lane)
# st rows 0..D-1 at_risk, D..2D-1 passed, 2D..3D-1 scratch survival (drafter d, depth j);
# itab = d_of then k_of (2A); prm[2] = c, prm[3] = D, prm[4] = Kmax; ftab = arm costs (SmartSpec)
@njit(inline="always")
def runlength_update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1
    d, K = itab[arm], itab[A + arm]
    if d >= 0:
        D = int(prm[3])
        a = min(int(r) - 1, K)
        for j in range(1, min(a + 1, K) + 1):
            st[d, j - 1] += 1.0
        for j in range(1, a + 1):
            st[D + d, j - 1] += 1.0


@dataclass
class RunLength(Policy):
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


# ---------------------------------------------------------------- compiled forms (one lane)
@njit(inline="always")
def count_update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1


def length_arms(ctx: PolicyContext, drafter: str, name: str) -> tuple[dict[int, int], str]:
    """The draft-length arms of one drafter for the engines' rules: ``({K: arm index}, drafter)``
    with K = 0 the first ``plain@0`` (if any) and K >= 1 the chains ``drafter@K`` (``drafter``
    empty: the first drafter with an ``@K`` arm); tree arms are skipped.  Refused in one line
    without any ``@K`` arm."""
    arm_of: dict[int, int] = {}
    for i, arm in enumerate(ctx.arms):
        if arm.tree:
            continue
        if arm.k == 0:
            arm_of.setdefault(0, i)
        elif (arm.drafter == drafter or not drafter) and arm.k not in arm_of:
            drafter = arm.drafter
            arm_of[arm.k] = i
    if not any(k > 0 for k in arm_of):
        raise PolicyError(f"policy {name}: needs arms DRAFTER@1..K of one drafter; arm set: {list(ctx.arm_names)}")
    return arm_of, drafter


def drafter_arms(ctx: PolicyContext, drafter: str) -> dict[int, int]:
    """K -> arm index for the arms ``drafter@K`` (K >= 1) of the arm set."""
    out = {}
    for i, arm in enumerate(ctx.arms):
        if (arm.drafter == drafter or (not drafter and not out)) and arm.k >= 1:
            drafter = arm.drafter
            out[arm.k] = i
    if not out:
        raise PolicyError(f"policy needs arms DRAFTER@1..K of one drafter; arm set: {list(ctx.arm_names)}")
    return out
