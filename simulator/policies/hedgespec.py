"""HedgeSpec (Not-a-Bandit, arXiv 2510.20064): full-information drafter selection.

After each verification the runner reveals, for every verified position ``t``, every
drafter's acceptance probability ``gamma_t[d]`` (greedy: the 0/1 teacher-forced match;
sampling: ``alpha``).  Losses per position:

* ``loss="acceptance"``: ``f_t[d] = 1 - gamma_t[d]`` (available at once);
* ``loss="length"``: ``f_t[d] = 1 - AcceptLength_t[d] / (K_max + 1)`` with
  ``AcceptLength = 1 + sum_{k<=K} prod_{j<k} gamma_{t+j}`` (Theorem 3, closed form).  It
  needs ``gamma`` at ``t .. t+K-1``: positions not yet verified are censored, so the loss of
  ``t`` is held back until its whole window is verified (delayed feedback, delay <= 2K).
  One normaliser ``K_max + 1`` (the largest K among the experts) for every drafter, so a
  drafter that emits more tokens always has the smaller loss.

The learner weighs drafters (each played at its largest ``K`` in the arm set) with Hedge
(anytime ``eta_t = sqrt(8 ln N / t)``, or a fixed ``eta``) or NormalHedge (parameter-free,
Chaudhuri, Freund and Hsu 2009), and samples the drafter to play.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels import scalar_math as sm
from ..kernels.core import njit, uniform3
from ..kernels.learners import Kernel, Tables, categorical, exp_weights, normalhedge
from .base import Policy, PolicyContext, PolicyError, param, register, rowsum, sample_categorical, softmin_probs


def hedge_probs(cum_loss: np.ndarray, t: np.ndarray, eta: float = 0.0) -> np.ndarray:
    """Exponential weights ``p ∝ exp(-eta_t L)``; ``eta_t = sqrt(8 ln N / t)`` when ``eta`` is 0
    (uniform before any loss).  Shapes (n, N), (n,) -> (n, N)."""
    N = cum_loss.shape[1]
    e = eta if eta > 0 else np.sqrt(8 * sm.log(max(N, 2)) / np.maximum(t, 1))
    return softmin_probs(cum_loss, np.broadcast_to(e, t.shape))


def normalhedge_probs(regret: np.ndarray, iters: int = 60) -> np.ndarray:
    """NormalHedge weights from cumulative regrets ``R_i`` (n, N):
    ``w_i ∝ ([R_i]_+ / c) exp([R_i]_+^2 / (2c))`` with ``c`` solving
    ``(1/N) sum_i exp([R_i]_+^2 / (2c)) = e`` (bisection on ``log c``); uniform if no
    ``R_i > 0``."""
    n, N = regret.shape
    Rp = np.maximum(regret, 0.0)
    pos = (Rp > 0).any(axis=1)
    m = np.maximum(Rp.max(axis=1), 1e-12)
    lo = sm.log(m**2 / (2 * (1 + sm.log(N))) + 1e-300)  # there the mean exceeds e
    hi = sm.log(m**2 / 2 + 1e-300) + 5.0  # there it is below e
    for _ in range(iters):
        mid = (lo + hi) / 2
        c = sm.exp(mid)[:, None]
        f = rowsum(sm.exp(np.minimum(Rp**2 / (2 * c), 700.0))) / N - np.e
        lo = np.where(f > 0, mid, lo)
        hi = np.where(f > 0, hi, mid)
    c = sm.exp((lo + hi) / 2)[:, None]
    logw = np.where(Rp > 0, sm.log(np.maximum(Rp, 1e-300)) - sm.log(c) + Rp**2 / (2 * c), -np.inf)
    logw -= np.where(pos, logw.max(axis=1), 0.0)[:, None]
    w = np.where(Rp > 0, sm.exp(logw), 0.0)
    p = np.where(pos[:, None], w / np.maximum(rowsum(w), 1e-300)[:, None], 1.0 / N)
    return p


# ---------------------------------------------------------------- compiled form (one lane)
# st rows 0 cumulative losses, 1 regrets, 2 probabilities (N experts); ist[1] verified
# positions, ist[2] released ones; prm[2] eta, prm[3] N, prm[4] window, prm[5] normalhedge,
# prm[6] acceptance loss; itab = arm_of, K, col (3N)
@njit(inline="always")
def _init(A, st, ist, prm, itab):
    N = int(prm[3])
    for i in range(N):
        st[2, i] = 1.0 / N


@njit(inline="always")
def _on_prompt(st, ist, prm, itab, prompt):
    ist[1] = 0  # a new output: positions restart (pending censored losses dropped)
    ist[2] = 0


@njit(inline="always")
def _select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    t = ist[0]
    N = int(prm[3])
    if prm[5] == 0.0:  # hedge
        eta = prm[2] if prm[2] > 0 else math.sqrt(8 * math.log(max(N, 2)) / max(t, 1))
        exp_weights(st, 0, 2, N, eta)
    else:
        normalhedge(st, N)
    return itab[categorical(st, 2, N, uniform3(key, lane_key, g, 0))]


@njit(inline="always")
def _update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, f):
    """Positions ``pos .. pos+e-1`` were verified: release every position whose window is
    verified (``HedgeSpec.update_full``).  ``F`` holds every expert's loss per (prompt,
    expert, position) (``HedgeSpec.expert_losses``); ``f`` is scratch for the experts' losses."""
    N, W = int(prm[3]), int(prm[4])
    ist[1] = max(ist[1], pos + e)
    while ist[2] + W <= ist[1]:
        t = ist[2]
        pf = 0.0
        for i in range(N):
            f[i] = F[prompt, i, t]
            pf += st[2, i] * f[i]
        for i in range(N):
            st[1, i] += pf - f[i]
            st[0, i] += f[i]
        ist[0] += 1
        ist[2] += 1


@register
@dataclass
class HedgeSpec(Policy):
    """See the module docstring.

    Reward-range rule: HedgeSpec reads no reward and no reward range (``PolicyContext``'s
    ranges are unused); its losses are in [0, 1] with one normaliser for every expert
    (``1`` for acceptance, ``K_max + 1`` for length), where the rate ``sqrt(8 ln N / t)``
    holds.

    Parameters
    ----------
    loss : {"length", "acceptance"}
    learner : {"hedge", "normalhedge"}
    eta : float
        Fixed Hedge learning rate; 0 (default) for the anytime rate.
    """

    name: ClassVar[str] = "hedgespec"
    kernel: ClassVar[Kernel] = Kernel("hedgespec", _select, _update, _init, _on_prompt)
    feedback: ClassVar[str] = "full"
    n_random: ClassVar[int] = 1
    rewards: ClassVar[tuple[str, ...]] = ()  # learns from gamma, not from the round's reward
    loss: str = param("length", choices=("length", "acceptance"))
    learner: str = param("hedge", choices=("hedge", "normalhedge"))
    eta: float = param(0.0, ge=0, source="a learning rate, 0 = the anytime rate sqrt(8 ln N / t)")

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        best: dict[str, tuple[int, int]] = {}
        for i, arm in enumerate(ctx.arms):  # experts: each drafter's longest chain (gamma scores chains)
            if arm.k >= 1 and not arm.is_tree and (arm.drafter not in best or arm.k > best[arm.drafter][1]):
                best[arm.drafter] = (i, arm.k)
        if not best or not ctx.drafter_names:
            raise PolicyError("policy hedgespec needs drafter arms (K >= 1) and a trace's drafters")
        names = list(best)
        self.arm_of_ = np.array([best[d][0] for d in names])
        self.K_ = np.array([best[d][1] for d in names])
        self.col_ = np.array([ctx.drafter_names.index(d) for d in names])
        N = len(names)
        self.window_ = int(self.K_.max()) if self.loss == "length" else 1
        self.buf_ = np.zeros((n_lanes, 0, N))  # gamma of verified positions, grown on demand
        self.verified_ = np.zeros(n_lanes, dtype=np.int64)
        self.released_ = np.zeros(n_lanes, dtype=np.int64)
        self.cum_loss_ = np.zeros((n_lanes, N))
        self.regret_ = np.zeros((n_lanes, N))
        self.t_ = np.zeros(n_lanes, dtype=np.int64)
        self.p_ = np.full((n_lanes, N), 1.0 / N)

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        N = len(self.arm_of_)
        prm = (self.eta, float(N), float(self.window_), float(self.learner == "normalhedge"),
               float(self.loss == "acceptance"))
        return Tables(prm=prm, itab=np.concatenate([self.arm_of_, self.K_, self.col_]), shape=(3, N))

    def expert_losses(self, G: np.ndarray) -> np.ndarray:
        """The loss of every expert at every position, ``(P, N, T)`` from the gamma table ``G``
        ``(P, D, T)``, for the compiled form: it depends on (prompt, expert, position) only, so
        it is computed once for all lanes, with the arithmetic of ``_losses`` in its order (same
        bits)."""
        P, _, T = G.shape
        W, K = self.window_, self.K_
        g = np.concatenate([G, np.zeros((P, G.shape[1], W))], axis=2)[:, self.col_, :]  # (P, N, T + W)
        if self.loss == "acceptance":
            return np.ascontiguousarray(1.0 - g[:, :, :T])
        prod, acc = np.ones((P, len(K), T)), np.zeros((P, len(K), T))
        for j in range(W):
            prod = prod * np.where(j < K[None, :, None], g[:, :, j:j + T], 0.0)
            acc = acc + prod
        return np.ascontiguousarray(1.0 - (1.0 + acc) / (W + 1))

    def on_prompt_start(self, lanes: np.ndarray, prompts: np.ndarray) -> None:
        # a new output: positions restart at 0 (pending censored losses are dropped)
        self.buf_[lanes] = 0.0
        self.verified_[lanes] = 0
        self.released_[lanes] = 0

    def probabilities(self) -> np.ndarray:
        if self.learner == "hedge":
            return hedge_probs(self.cum_loss_, self.t_, self.eta)
        return normalhedge_probs(self.regret_)

    def select(self, u: np.ndarray) -> np.ndarray:
        self.p_ = self.probabilities()
        return self.arm_of_[sample_categorical(self.p_, u[:, 0])]

    def _losses(self, lanes: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Loss of every expert at position ``t`` of each lane, (len(lanes), N)."""
        if self.loss == "acceptance":
            return 1.0 - self.buf_[lanes, t]
        Kmax = self.window_
        idx = t[:, None] + np.arange(Kmax)[None, :]
        g = self.buf_[lanes[:, None], idx]  # (n, Kmax, N)
        g = np.where(np.arange(Kmax)[None, :, None] < self.K_[None, None, :], g, 0.0)
        accept_len = 1.0 + np.cumprod(g, axis=1).sum(axis=1)
        return 1.0 - accept_len / (Kmax + 1)

    def update_full(self, arms, rewards, active, positions, verified, gamma) -> None:
        need = int(positions.max(initial=0)) + self.window_ + 1
        if need > self.buf_.shape[1]:
            grow = np.zeros((self.buf_.shape[0], need - self.buf_.shape[1] + 64, self.buf_.shape[2]))
            self.buf_ = np.concatenate([self.buf_, grow], axis=1)
        ok = verified & active[:, None]
        lane_idx, w = np.nonzero(ok)
        self.buf_[lane_idx, positions[lane_idx, w]] = gamma[lane_idx, w][:, self.col_]
        self.verified_ = np.where(active, np.maximum(self.verified_, np.where(ok, positions + 1, 0).max(axis=1)),
                                  self.verified_)
        # release every position whose whole window is verified, oldest first
        while True:
            ready = np.flatnonzero(active & (self.released_ + self.window_ <= self.verified_))
            if not len(ready):
                break
            t = self.released_[ready]
            f = self._losses(ready, t)
            p = self.p_[ready]
            self.regret_[ready] += rowsum(p * f)[:, None] - f
            self.cum_loss_[ready] += f
            self.t_[ready] += 1
            self.released_[ready] += 1
