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

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels import scalar_math as sm
from .base import Policy, PolicyContext, param, register, rowsum, sample_categorical


def bern_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``kl(p, q)`` between Bernoulli means, clipped away from 0 and 1."""
    p = np.clip(p, 1e-12, 1 - 1e-12)
    q = np.clip(q, 1e-12, 1 - 1e-12)
    return p * sm.log(p / q) + (1 - p) * sm.log((1 - p) / (1 - q))


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
    kernel: ClassVar[str] = "ucb1"
    alpha: float = param(1.0, ge=0, source="bonus scale; 0 = greedy, 1 = Auer et al.'s UCB1")

    def select(self, u):
        with np.errstate(divide="ignore", invalid="ignore"):
            idx = self.s_ / self.n_ + self.alpha * np.sqrt(2 * sm.log(np.maximum(self.t_, 1))[:, None] / self.n_)
        return self._round_robin(np.argmax(np.nan_to_num(idx, nan=np.inf), axis=1))


@register
@dataclass
class KLUCB(_Counting):
    """``argmax max{q : n_i kl(mean_i, q) <= ln t + c ln ln t}`` (Bernoulli kl, bisection)."""

    name: ClassVar[str] = "klucb"
    kernel: ClassVar[str] = "klucb"
    c: float = param(0.0, ge=0, source="Garivier & Cappe 2011: c >= 0 (c = 3 in the analysis, 0 in practice)")

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
    kernel: ClassVar[str] = "thompson"
    sigma: float = param(0.5, gt=0, source="a standard deviation: > 0")

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
    kernel: ClassVar[str] = "epsilon-greedy"
    n_random: ClassVar[int] = 2
    c: float = param(1.0, gt=0, source="Auer et al. 2002, epsilon_n-greedy: c > 0")

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
    kernel: ClassVar[str] = "exp3-ix"

    def _eta(self):
        K = self.ctx_.n_arms
        return np.sqrt(2 * sm.log(K) / (K * (self.t_ + 1)))

    def probabilities(self):
        shifted = self.Lhat_ - self.Lhat_.min(axis=1, keepdims=True)
        w = sm.exp(-self._eta()[:, None] * shifted)
        return w / rowsum(w)[:, None]

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
    kernel: ClassVar[str] = "tsallis-inf"

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
    kernel: ClassVar[str] = "sw-ucb"
    window: int = param(64, ge=1, le=65536, source="rounds kept per lane (the state is lanes x window)")
    xi: float = param(0.6, ge=0, source="bonus scale; Garivier & Moulines 2011 analyse xi > 1/2")

    def reset(self, n_lanes, ctx):
        super().reset(n_lanes, ctx)
        self.arm_hist_ = np.full((n_lanes, self.window), -1, dtype=np.int64)
        self.x_hist_ = np.zeros((n_lanes, self.window))
        self.t_ = np.zeros(n_lanes, dtype=np.int64)

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
