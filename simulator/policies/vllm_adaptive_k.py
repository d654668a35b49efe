"""vLLM's adaptive K (pull request #47111): per-position acceptance EMA and a goodput cost model."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels.core import BATCH, njit, uniform3
from ..kernels.learners import Kernel, Tables
from .base import Policy, PolicyContext, PolicyError, param, register
from .vllm_batch_table import k_arms, need_plain, parse_ranges, range_k

EMA_STEPS = 10  # the code's ``self._adaptive_k_steps_since_ema >= 10``


# ---------------------------------------------------------------- compiled form (one lane)
# prm[2:] = ema_alpha, c_draft, min_tokens, cooldown_steps, bs_penalty, alpha_prior, epsilon
# itab = [N, R, arm of K = 0..N, K of each arm (A), R range starts, R range K]
# ist[1] cooldown, ist[2] previous K, ist[3] observations since the last EMA update
# st rows: 0 accepted counts, 1 reached counts, 2 EMA; st[3, 0] = 1 once the EMA exists
@njit(inline="always")
def _init(A, st, ist, prm, itab):
    ist[2] = itab[0]


@njit(inline="always")
def _select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    N, R = itab[0], itab[1]
    bs = ist[BATCH]
    if st[3, 0] == 0.0:  # no EMA yet: max_k
        k = N
    elif ist[1] > 0:  # cooldown
        ist[1] -= 1
        k = max(0, ist[2])
    else:
        prev = ist[2]
        overhead = prm[6] * bs
        min_k = int(prm[4])
        prod, e_total, best_k, best = 1.0, 1.0, 0, 1.0
        for kk in range(1, N + 1):
            a = max(0.001, min(0.999, st[2, kk - 1]))
            prod *= a
            e_total += prod
            if kk < min_k:
                continue
            itl = kk * prm[3] + 1.0 + overhead
            gp = e_total / itl
            if gp >= best:
                best = gp
                best_k = kk
        if min_k > 0 and best_k == 0:
            best_k = min_k
        ist[2] = best_k
        if abs(best_k - prev) > 1:
            ist[1] = int(prm[5])
        k = best_k
    cap = N
    if R > 0:  # num_speculative_tokens_per_batch_size: the K of the last range starting <= bs
        off = 3 + N + A
        idx = 0
        for i in range(R):
            if itab[off + i] <= bs:
                idx = i
        cap = min(itab[off + R + idx], N)
    k = min(k, cap)
    if uniform3(key, lane_key, g, 0) < prm[8]:
        k = cap
    return itab[2 + k]


@njit(inline="always")
def _update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1
    N = itab[0]
    k = itab[3 + N + arm]
    if k > 0:
        w = ist[BATCH]
        acc = int(math.floor(r - 1.0))
        for j in range(min(k, acc + 1)):
            st[1, j] += w
            if j < acc:
                st[0, j] += w
        ist[3] += w
    if ist[3] >= 10:
        if st[3, 0] == 0.0:
            for j in range(N):
                st[2, j] = prm[7]
            st[3, 0] = 1.0
        for j in range(N):
            if st[1, j] > 0:
                st[2, j] += prm[2] * (st[0, j] / st[1, j] - st[2, j])
            st[0, j] = 0.0
            st[1, j] = 0.0
        ist[3] = 0


@register
@dataclass
class VllmAdaptiveK(Policy):
    """vLLM's adaptive K: a per-position EMA of the conditional acceptance rate and the K that
    maximises goodput ``E_acc(K) / (K c_draft + 1 + bs_penalty bs)``, ``E_acc(K) = 1 + sum_i
    prod_{j<=i} alpha_j``, against K = 0 (goodput 1), with a cooldown after a jump.

    Source: vllm-project/vllm pull request #47111 (open, not merged): ``vllm/v1/core/sched/
    scheduler.py`` at commit cfee1b19e32a31554b12a70b5b88695e39738926 (``Scheduler.__init__``,
    ``schedule``, ``update_from_output``, ``_compute_adaptive_k``) and
    ``docs/features/speculative_decoding/adaptive_k.md`` (commit
    7391f105fe6be00e1ebcfa7dc5a4368f76da746c) for the defaults.  What the code does, per step:

    * ``select`` (``_compute_adaptive_k(max_k=num_speculative_tokens)``): no EMA yet -> K = N
      (``num_speculative_tokens``); a cooldown left -> count it down, K = previous K; else
      the goodput argmax over K = 1..N (alphas clipped to [0.001, 0.999]; ties go to the larger
      K; K < ``min_tokens`` skipped; no K beating goodput 1 -> K = 0, or ``min_tokens`` if > 0);
      the previous K is set to it and a jump ``|K - previous| > 1`` starts a cooldown of
      ``cooldown_steps``.  The step's K is then capped by ``num_speculative_tokens_per_batch_size``
      (vLLM's Dynamic SD table, ``vllm-batch-table``) when given.
    * ``update`` (``update_from_output``): a round that verified K >= 1 drafts and accepted ``a``
      adds one to "reached" at positions ``j < min(K, a + 1)`` and to "accepted" at ``j < a``;
      once 10 or more rounds have been counted the EMA (started at ``alpha_prior``) moves by
      ``ema_alpha (accepted/reached - EMA)`` at every reached position and the counts restart.
      A K = 0 round verifies nothing and counts nothing, so with the EMA fixed and a constant
      batch size K = 0 is never left again (as in the code).

    Exploration: PR #44336 (closed; its code is not stored) describes "epsilon-greedy
    exploration (10%) collects data for all positions"; #47111's code has none, so
    ``epsilon = 0`` by default; ``epsilon > 0`` plays, with that probability, the largest K
    allowed in the step (our reading of the description).

    The reward must be tokens (``y = a + 1``); batch serving gives the batch's mean tokens per
    sequence only, so a serving round counts as ``n`` requests (``n`` = unfinished sequences,
    vLLM's ``len(self.running)``) each with ``a = floor(mean - 1)`` accepted.

    Parameters (vLLM's ``adaptive_k_*`` keys without the prefix, vLLM's defaults)
    ----------
    ema_alpha : float
        ``adaptive_k_ema_alpha`` (0.3).
    c_draft : float
        ``adaptive_k_c_draft``, draft:target forward time ratio (0.1144).  The tuned knob.
    min_tokens : int
        ``adaptive_k_min_tokens`` (0: K = 0 allowed).
    cooldown_steps : int
        ``adaptive_k_cooldown_steps`` (2).
    bs_penalty : float
        ``adaptive_k_bs_penalty`` (0.002).
    alpha_prior : float
        ``adaptive_k_alpha_prior`` (0.85), the EMA's starting value.
    epsilon : float
        Exploration probability (not a vLLM key; 0 = #47111's code).
    num_speculative_tokens : int
        vLLM's N (0: the drafter's largest K in the arm set).
    num_speculative_tokens_per_batch_size : str
        The Dynamic SD table capping K (``vllm-batch-table``'s format; "" = none).
    drafter : str
        The drafter whose ``@K`` arms are used (default: the first in the arm set).

    Not modelled: vLLM's K of a step sizes the drafts verified in the next step (here the chosen
    K is played in the same round); verification padded to N tokens (the cost table charges the
    played arm's own cost); per-request acceptance in batch serving (the batch mean, as above);
    ``adaptive_k_for_step or num_spec_tokens`` taking K = 0 for N (a K = 0 round here has no
    drafts at all); ``_compute_adaptive_k`` runs on every ``schedule()`` call, so vLLM's cooldown
    also counts down on steps without decoding (prefill-only steps; a trace has none).
    """

    name: ClassVar[str] = "vllm-adaptive-k"
    kernel: ClassVar[Kernel] = Kernel("vllm-adaptive-k", _select, _update, _init)
    rewards: ClassVar[tuple[str, ...]] = ("tokens",)  # reads accepted tokens
    reads_batch: ClassVar[bool] = True
    n_random: ClassVar[int] = 1
    tuning: ClassVar[tuple[str, tuple]] = ("c_draft", (0.02, 0.05, 0.1144, 0.2, 0.4))
    ema_alpha: float = param(0.3, ge=0, le=1, source="an EMA weight in [0, 1]")
    c_draft: float = param(0.1144, ge=0, source="a time ratio >= 0")
    min_tokens: int = param(0, ge=0, source="a draft length (<= num_speculative_tokens)")
    cooldown_steps: int = param(2, ge=0, source="a number of steps")
    bs_penalty: float = param(0.002, ge=0, source="a cost per request >= 0")
    alpha_prior: float = param(0.85, ge=0, le=1, source="an acceptance rate")
    epsilon: float = param(0.0, ge=0, le=1, source="a probability")
    num_speculative_tokens: int = param(0, ge=0, source="0: the arm set's largest K")
    num_speculative_tokens_per_batch_size: str = ""
    drafter: str = ""

    def __post_init__(self) -> None:
        self.starts_, self.ks_ = (parse_ranges(self.num_speculative_tokens_per_batch_size, self.name,
                                               "num_speculative_tokens_per_batch_size")
                                  if self.num_speculative_tokens_per_batch_size
                                  else (np.zeros(0, np.int64), np.zeros(0, np.int64)))

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        self.arm_of_k_, self.n_ = k_arms(ctx, self.drafter, self.num_speculative_tokens, self.name)
        if self.min_tokens > self.n_:
            raise PolicyError(f"policy {self.name!r}: min_tokens={self.min_tokens}: expected <= "
                              f"num_speculative_tokens={self.n_}")
        if self.min_tokens == 0:
            need_plain(self.arm_of_k_, self.name, "min_tokens=0")
        elif len(self.ks_) and np.minimum(self.ks_, self.n_).min() == 0:
            need_plain(self.arm_of_k_, self.name, "a batch-size range with K=0")
        self.k_of_arm_ = np.zeros(ctx.n_arms, dtype=np.int64)
        self.k_of_arm_[self.arm_of_k_[self.arm_of_k_ >= 0]] = np.flatnonzero(self.arm_of_k_ >= 0)
        N = self.n_
        self.accepted_ = np.zeros((n_lanes, N))
        self.reached_ = np.zeros((n_lanes, N))
        self.ema_ = np.zeros((n_lanes, N))
        self.ema_ready_ = np.zeros(n_lanes, dtype=bool)
        self.cooldown_ = np.zeros(n_lanes, dtype=np.int64)
        self.prev_k_ = np.full(n_lanes, N, dtype=np.int64)
        self.steps_ = np.zeros(n_lanes, dtype=np.int64)
        self.batch_ = np.ones(n_lanes, dtype=np.int64)
        # what select decided, committed by update for the lanes that played
        self.pending_ = (self.cooldown_.copy(), self.prev_k_.copy())

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        itab = np.concatenate([[self.n_, len(self.starts_)], self.arm_of_k_, self.k_of_arm_, self.starts_, self.ks_])
        prm = (self.ema_alpha, self.c_draft, float(self.min_tokens), float(self.cooldown_steps), self.bs_penalty,
               self.alpha_prior, self.epsilon)
        return Tables(prm=prm, itab=itab.astype(np.int64), shape=(4, max(self.n_, 1)))

    def goodput_k(self, bs: np.ndarray) -> np.ndarray:
        """``_compute_adaptive_k``'s argmax over K = 1..N from the EMA, per lane (no state change)."""
        n = len(bs)
        overhead = self.bs_penalty * bs
        prod, e_total = np.ones(n), np.ones(n)
        best_k, best = np.zeros(n, dtype=np.int64), np.ones(n)
        for k in range(1, self.n_ + 1):
            a = np.maximum(0.001, np.minimum(0.999, self.ema_[:, k - 1]))
            prod = prod * a
            e_total = e_total + prod
            if k < self.min_tokens:
                continue
            gp = e_total / (k * self.c_draft + 1.0 + overhead)
            better = gp >= best
            best = np.where(better, gp, best)
            best_k = np.where(better, k, best_k)
        if self.min_tokens > 0:
            best_k = np.where(best_k == 0, self.min_tokens, best_k)
        return best_k

    def select(self, u: np.ndarray) -> np.ndarray:
        bs = np.asarray(self.batch_)
        cooling = self.ema_ready_ & (self.cooldown_ > 0)
        fresh = self.ema_ready_ & ~cooling
        best = self.goodput_k(bs)
        k = np.where(~self.ema_ready_, self.n_, np.where(cooling, np.maximum(0, self.prev_k_), best))
        cd = np.where(cooling, self.cooldown_ - 1, self.cooldown_)
        cd = np.where(fresh & (np.abs(best - self.prev_k_) > 1), self.cooldown_steps, cd)
        self.pending_ = (cd, np.where(fresh, best, self.prev_k_))
        cap = range_k(self.starts_, self.ks_, self.n_, bs) if len(self.starts_) else np.full(len(bs), self.n_)
        k = np.minimum(k, cap)
        k = np.where(u[:, 0] < self.epsilon, cap, k)
        return self.arm_of_k_[k]

    def update(self, arms: np.ndarray, rewards: np.ndarray, active: np.ndarray) -> None:
        self.cooldown_ = np.where(active, self.pending_[0], self.cooldown_)
        self.prev_k_ = np.where(active, self.pending_[1], self.prev_k_)
        k = self.k_of_arm_[arms]
        obs = active & (k > 0)
        w = np.where(obs, np.asarray(self.batch_), 0)
        acc = np.floor(np.where(obs, rewards, 1.0) - 1.0).astype(np.int64)
        j = np.arange(self.n_)[None, :]
        self.reached_ += np.where(j < np.minimum(k, acc + 1)[:, None], w[:, None], 0)
        self.accepted_ += np.where((j < np.minimum(k, acc + 1)[:, None]) & (j < acc[:, None]), w[:, None], 0)
        self.steps_ += w
        due = active & (self.steps_ >= EMA_STEPS)
        if not due.any():
            return
        start = due & ~self.ema_ready_
        self.ema_[start] = self.alpha_prior
        self.ema_ready_ |= due
        with np.errstate(divide="ignore", invalid="ignore"):
            moved = self.ema_ + self.ema_alpha * (self.accepted_ / self.reached_ - self.ema_)
        self.ema_ = np.where(due[:, None] & (self.reached_ > 0), moved, self.ema_)
        self.accepted_[due] = 0.0
        self.reached_[due] = 0.0
        self.steps_[due] = 0
