"""Replay on the recorded positions (the ``replay`` setting).

Greedy traces: exact and deterministic.  A round at position ``t`` with arm ``(d, K)``
emits ``min(min(K, L_d(t)) + 1, N - t)``: under greedy verification the output is the
target's greedy output whichever arm is played, so the trace fixes every counterfactual.

Sampling traces: the recorded output ``y`` is a sample from the target, whatever the arm
(speculative sampling is lossless), and given ``y`` the drafted token at position ``t``
is accepted with probability ``beta_t = min(1, q(y_t)/p(y_t))``, independently across
positions.  A round at ``t`` therefore accepts the leading successes of Bernoulli(beta)
draws at ``t, t+1, ..., t+K-1``.  Drafters without a draft distribution (n-gram) are
deterministic given ``y`` and replay their recorded ``accept``.
"""

from __future__ import annotations

import numpy as np

from traces import Arm, Trace

from .. import rng as crng
from ..kernels.core import njit, uniform4
from .base import ArmTable, Env, EnvArrays, simulate_fixed

EMIT_CODE = 0  # this rule's code in ``EnvArrays`` (``simulator.kernels.envs.emit`` dispatches on it)


class ReplayEnv(Env):
    name = "replay"
    full_information = True

    def __init__(self, trace: Trace, arms: list[Arm], *, seed: int = 0):
        self.trace = trace
        self.table = ArmTable.build(trace, arms)
        self.prompt_ids = trace.prompt_ids
        self.categories = trace.categories
        self.lengths = trace.output_lens
        self._acc = trace.accept
        self._T = trace.accept.shape[2]
        self.sampling = trace.manifest["kind"] == "sampling"
        # tree arms: their accepted depth at every position, from the trace's ranks (traces.trees)
        self._tree_slot = np.array([-1] * len(arms), dtype=np.int64)
        trees = [i for i, a in enumerate(arms) if a.is_tree]
        if trees and self.sampling:
            raise ValueError(f"arms {[arms[i].name for i in trees]}: tree arms replay greedy traces only")
        self._tree_acc = np.zeros((len(trees), trace.n_prompts, self._T), dtype=np.int64)
        for s, i in enumerate(trees):
            self._tree_slot[i] = s
            for p in range(trace.n_prompts):
                n = int(self.lengths[p])
                self._tree_acc[s, p, :n] = trace.accepted(arms[i], p)
        if self.sampling:
            stoch = np.array([bool(d.get("stochastic", True)) for d in trace.manifest["drafters"]])
            self._stoch_arm = stoch[self.table.drafter_idx] & (self.table.k > 0)
            self._beta = np.nan_to_num(trace.beta, nan=0.0).astype(np.float64)
            self.key = crng.env_key(seed, "replay-sampling")

    # -- greedy -----------------------------------------------------------------------------
    def _accepted_recorded(self, prompt, d_idx, k, pos):
        L = self._acc[prompt, d_idx, np.minimum(pos, self._T - 1)]
        return np.minimum(L, k)

    # -- sampling: leading successes of Bernoulli(beta) at pos, pos+1, ... ------------------
    def _accepted_sampled(self, prompt, run, d_idx, k, pos):
        kmax = max(int(np.max(k, initial=0)), 1)
        j = np.arange(kmax)
        q = pos[..., None] + j
        qc = np.minimum(q, self._T - 1)
        beta = np.where(q < self._T, self._beta[prompt[..., None], d_idx[..., None], qc], 0.0)
        u = crng.uniform(self.key, prompt[..., None], run[..., None], qc, d_idx[..., None])
        ok = (u < beta) & (j < k[..., None])
        return np.cumprod(ok, axis=-1).sum(axis=-1)

    def _accepted(self, prompt, run, arms, pos):
        d, k = self.table.drafter_idx[arms], self.table.k[arms]
        acc = self._accepted_recorded(prompt, d, k, pos)
        if len(self._tree_acc):
            slot = self._tree_slot[arms]
            tree = slot >= 0
            if tree.any():
                acc = np.where(tree, self._tree_acc[np.maximum(slot, 0), prompt, np.minimum(pos, self._T - 1)], acc)
        if self.sampling:
            st = self._stoch_arm[arms]
            if st.any():
                acc = np.where(st, self._accepted_sampled(prompt, run, d, k, pos), acc)
        return acc

    @property
    def accept(self) -> np.ndarray:
        """The trace's ``L_d(t)`` array (prompts, drafters, positions), read by the kernels."""
        return self._acc

    def gamma(self, prompt: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Per-drafter acceptance probability at ``positions`` (n_lanes, W) -> (n_lanes, W, D):
        the teacher-forced match ``1[L_d(t) >= 1]`` (greedy) or ``alpha`` (sampling); 0 past
        the output.  Only verified positions are ever asked for (see the runner)."""
        n = self.lengths[prompt][:, None]
        t = np.minimum(positions, self._T - 1)
        if self.sampling and self.trace.alpha is not None:
            g = np.nan_to_num(self.trace.alpha[prompt[:, None], :, t], nan=0.0).astype(np.float64)
        else:
            g = (self._acc[prompt[:, None], :, t] >= 1).astype(np.float64)
        return np.where((positions < n)[..., None], g, 0.0)

    def emit(self, prompt, run, rnd, pos, arms):
        y = self._accepted(prompt, run, arms, pos) + 1
        return np.minimum(y, self.lengths[prompt] - pos).astype(np.int64)

    def emit_all(self, prompt, run, rnd, pos):
        A = self.n_arms
        shape = (len(prompt), A)
        arms = np.broadcast_to(np.arange(A), shape)
        bc = [np.broadcast_to(x[:, None], shape) for x in (prompt, run, pos)]
        y = self._accepted(bc[0], bc[1], arms, bc[2]) + 1
        return np.minimum(y, (self.lengths[prompt] - pos)[:, None]).astype(np.int64)

    def expected_fixed_st(self) -> np.ndarray:
        st = simulate_fixed(self).astype(np.float64)
        if self.sampling:
            for a in np.flatnonzero(self._stoch_arm):
                for p in range(self.n_prompts):
                    st[p, a] = expected_rounds_bernoulli(
                        self._beta[p, self.table.drafter_idx[a], : self.lengths[p]], int(self.table.k[a]))
        return st

    def describe(self) -> dict:
        return {"name": self.name, "sampling": self.sampling}

    def kernel_arrays(self) -> EnvArrays:
        """The arrays of :func:`emit_replay`: ``L_d(t)``, the tree arms' depths and, on a sampling
        trace, which arms draw from ``beta`` and the key of those draws."""
        arrays = dict(acc=np.ascontiguousarray(self._acc, np.int16), tree_slot=self._tree_slot.astype(np.int64))
        if len(self._tree_acc):
            arrays["tree_acc"] = np.ascontiguousarray(self._tree_acc, np.int64)
        if self.sampling:
            arrays.update(stoch=self._stoch_arm.astype(bool), beta=np.ascontiguousarray(self._beta, np.float64),
                          key=self.key)
        return EnvArrays.blank(self, EMIT_CODE, **arrays)


@njit(inline="always")
def emit_replay(lengths, acc, d_idx, kk, tree_slot, tree_acc, stoch, beta, key, p, run, pos, a):
    """:meth:`ReplayEnv.emit` for one lane, compiled (the same bits): greedy ``min(K, L_d(t)) + 1``
    (a tree arm: its accepted depth from the ranks); on a sampling trace a drafter with a draft
    distribution accepts the leading successes of ``uniform(key, p, run, t + j, d) < beta[p, d, t + j]``;
    capped at what remains."""
    left = lengths[p] - pos
    d, k = d_idx[a], kk[a]
    if stoch[a]:
        T = beta.shape[2]
        n_acc = 0
        for j in range(k):
            q = pos + j
            if q >= T or not uniform4(key, p, run, q, d) < beta[p, d, q]:
                break
            n_acc += 1
    elif tree_slot[a] >= 0:
        n_acc = tree_acc[tree_slot[a], p, min(pos, acc.shape[2] - 1)]
    else:
        n_acc = min(np.int64(acc[p, d, min(pos, acc.shape[2] - 1)]), k)
    return min(n_acc + 1, left)


def expected_rounds_bernoulli(beta: np.ndarray, K: int) -> float:
    """Exact ``E[ST]`` of arm ``(d, K)`` given per-position acceptance probabilities.

    ``f(N) = 0``, ``f(t) = 1 + sum_a P(a accepted at t) f(min(t + a + 1, N))`` where
    ``P(a) = prod_{j<a} beta_{t+j} (1 - beta_{t+a})`` for ``a < K`` and
    ``prod_{j<K} beta_{t+j}`` for ``a = K``.

    >>> expected_rounds_bernoulli(np.ones(6), 2)
    2.0
    >>> expected_rounds_bernoulli(np.zeros(6), 2)
    6.0
    """
    N = len(beta)
    f = np.zeros(N + 1)
    b = np.append(beta, 0.0)
    for t in range(N - 1, -1, -1):
        total, surv = 0.0, 1.0
        for a in range(K + 1):
            if a == K or t + a >= N:
                total += surv * f[min(t + a + 1, N)]
                break
            total += surv * (1 - b[t + a]) * f[min(t + a + 1, N)]
            surv *= b[t + a]
        f[t] = 1.0 + total
    return float(f[0])
