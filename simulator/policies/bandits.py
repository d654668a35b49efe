"""Textbook bandit baselines (bandit feedback), vectorised over lanes.

Reward-range rule (every learner here): rewards are normalised to ``x = (r - lo) / (hi - lo)``
in [0, 1] with one range for every arm, ``[lo, hi] = [reward_lo, reward_hi]`` over the arm set
(``[1, L+1]`` for tokens), never an arm's own range; losses are ``1 - x``.  The bonuses
(UCB1, KL-UCB, SW-UCB), the prior and ``sigma`` (Thompson) and the rates (EXP3-IX,
Tsallis-INF) are the textbook ones for rewards in [0, 1], and equal rewards are equal
evidence whichever arm produced them.
References: Auer et al. 2002 (UCB1); Garivier & Cappé 2011 (KL-UCB); Agrawal & Goyal 2013
(Gaussian Thompson sampling); Neu 2015 (EXP3-IX); Zimmert & Seldin 2021 (Tsallis-INF,
alpha = 1/2); Garivier & Moulines 2011 (sliding-window UCB).  Scalar twins:
``simulator/policies/reference.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels import scalar_math as sm
from ..kernels.core import njit, uniform3, uniform_last, uniform_prefix
from ..kernels.learners import Kernel, Tables, argmax, categorical, exp_weights, ndtri_inline
from ..kernels.learners import bern_kl as bern_kl_scalar
from .base import Policy, PolicyContext, param, register, rowsum, sample_categorical, softmin_probs


def bern_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``kl(p, q)`` between Bernoulli means, clipped away from 0 and 1."""
    p = np.clip(p, 1e-12, 1 - 1e-12)
    q = np.clip(q, 1e-12, 1 - 1e-12)
    return p * sm.log(p / q) + (1 - p) * sm.log((1 - p) / (1 - q))


# ---------------------------------------------------------------- compiled forms (one lane)
# Counting learners: st rows 0 pulls, 1 sums of rewards scaled to [0, 1] (Thompson: 2 posterior
# mean, 3 its scale, kept by ``update``); prm[2] = the learner's parameter.
@njit(inline="always")
def _counting_update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1
    st[0, arm] += 1
    st[1, arm] += (r - prm[0]) / max(prm[1] - prm[0], 1e-12)


@njit(inline="always")
def _ucb1_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    t = ist[0]
    if t < A:
        return t
    lt = 2 * math.log(max(t, 1))
    for i in range(A):
        n = st[0, i]
        tmp[i] = st[1, i] / n + prm[2] * math.sqrt(lt / n)
    return argmax(tmp, A)


@njit(inline="always")
def _klucb_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    t = ist[0]
    if t < A:
        return t
    tt = float(max(t, 2))
    num = math.log(tt) + prm[2] * math.log(math.log(tt))
    for i in range(A):
        n = max(st[0, i], 1.0)
        budget = num / n
        mean = min(max(st[1, i] / n, 0.0), 1.0)
        lo, hi = mean, 1.0
        for _ in range(40):
            mid = (lo + hi) / 2
            if bern_kl_scalar(mean, mid) <= budget:
                lo = mid
            else:
                hi = mid
        tmp[i] = lo
    return argmax(tmp, A)


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


@njit(inline="always")
def _epsgreedy_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    eps = min(1.0, prm[2] * A / max(ist[0], 1))
    if uniform3(key, lane_key, g, 0) < eps:
        return min(int(uniform3(key, lane_key, g, 1) * A), A - 1)
    for i in range(A):
        tmp[i] = st[1, i] / st[0, i] if st[0, i] > 0 else np.inf
    return argmax(tmp, A)


# Weights learners: st rows 0 importance-weighted losses, 1 probabilities
@njit(inline="always")
def _weights_init(A, st, ist, prm, itab):
    for i in range(A):
        st[1, i] = 1.0 / A


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


@dataclass
class _Counting(Policy):
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


@register
@dataclass
class UCB1(_Counting):
    """``argmax mean_i + alpha sqrt(2 ln t / n_i)``."""

    name: ClassVar[str] = "ucb1"
    kernel: ClassVar[Kernel] = Kernel("ucb1", _ucb1_select, _counting_update)
    alpha: float = param(1.0, ge=0, source="bonus scale; 0 = greedy, 1 = Auer et al.'s UCB1")

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        return Tables(prm=(self.alpha,))

    def select(self, u):
        with np.errstate(divide="ignore", invalid="ignore"):
            idx = self.s_ / self.n_ + self.alpha * np.sqrt(2 * sm.log(np.maximum(self.t_, 1))[:, None] / self.n_)
        return self._round_robin(np.argmax(np.nan_to_num(idx, nan=np.inf), axis=1))


@register
@dataclass
class KLUCB(_Counting):
    """``argmax max{q : n_i kl(mean_i, q) <= ln t + c ln ln t}`` (Bernoulli kl, bisection)."""

    name: ClassVar[str] = "klucb"
    kernel: ClassVar[Kernel] = Kernel("klucb", _klucb_select, _counting_update)
    c: float = param(0.0, ge=0, source="Garivier & Cappe 2011: c >= 0 (c = 3 in the analysis, 0 in practice)")

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        return Tables(prm=(self.c,))

    def select(self, u):
        t = np.maximum(self.t_, 2).astype(float)[:, None]
        budget = (sm.log(t) + self.c * sm.log(sm.log(t))) / np.maximum(self.n_, 1)
        mean = np.clip(self.s_ / np.maximum(self.n_, 1), 0, 1)
        lo, hi = mean.copy(), np.ones_like(mean)
        for _ in range(40):
            mid = (lo + hi) / 2
            ok = bern_kl(mean, mid) <= budget
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        return self._round_robin(np.argmax(lo, axis=1))


@register
@dataclass
class Thompson(_Counting):
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


@register
@dataclass
class EpsilonGreedy(_Counting):
    """With probability ``eps_t = min(1, c K / t)`` a uniform arm, else the best mean."""

    name: ClassVar[str] = "epsilon-greedy"
    kernel: ClassVar[Kernel] = Kernel("epsilon-greedy", _epsgreedy_select, _counting_update)
    n_random: ClassVar[int] = 2
    c: float = param(1.0, gt=0, source="Auer et al. 2002, epsilon_n-greedy: c > 0")

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        return Tables(prm=(self.c,))

    def select(self, u):
        K = self.ctx_.n_arms
        eps = np.minimum(1.0, self.c * K / np.maximum(self.t_, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(self.n_ > 0, self.s_ / self.n_, np.inf)
        explore = u[:, 0] < eps
        return np.where(explore, np.minimum((u[:, 1] * K).astype(np.int64), K - 1), np.argmax(mean, axis=1))


@dataclass
class _Weights(Policy):
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


@register
@dataclass
class EXP3IX(_Weights):
    """EXP3-IX: ``p ∝ exp(-eta_t Lhat)``, ``Lhat_i += l 1{I=i} / (p_i + gamma_t)``,
    ``eta_t = sqrt(2 ln K / (K t))``, ``gamma_t = eta_t / 2``."""

    name: ClassVar[str] = "exp3-ix"
    kernel: ClassVar[Kernel] = Kernel("exp3-ix", _exp3ix_select, _exp3ix_update, _weights_init)

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
class TsallisINF(_Weights):
    """Tsallis-INF with alpha = 1/2 (best of both worlds), ``eta_t = 2 / sqrt(t)``,
    importance-weighted loss estimates."""

    name: ClassVar[str] = "tsallis-inf"
    kernel: ClassVar[Kernel] = Kernel("tsallis-inf", _tsallis_select, _tsallis_update, _weights_init)

    def probabilities(self):
        return tsallis_probs(self.Lhat_, 2 / np.sqrt(self.t_ + 1.0))

    def update(self, arms, rewards, active):
        lanes = np.flatnonzero(active)
        a = arms[lanes]
        self.Lhat_[lanes, a] += self._loss(rewards[lanes]) / self.p_[lanes, a]
        self.t_[lanes] += 1


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
