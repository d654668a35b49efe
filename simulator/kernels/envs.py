"""Every setting's emission rule as scalar numba code (``simulator/envs`` is the definition).

``emit(...)`` returns the tokens arm ``a`` emits in round ``rnd`` of prompt ``p`` at position
``pos`` of run ``run``, capped at what remains; the random numbers are the environments'
counter-based draws, bit for bit:

* replay, greedy: ``min(K, L_d(t)) + 1`` (a tree arm: its accepted depth from the ranks);
* replay, sampling: drafters with a draft distribution accept the leading successes of
  ``uniform(key, p, run, t + j, d) < beta[p, d, t + j]``;
* stochastic: ``1 + #{cdf[p, a, :-1] <= uniform(key, p, run, rnd, a)}``, the autocorrelated
  law switching to ``cdf2`` when ``uniform(key, p, run, rnd // BLOCK, 2^30) < 1/2``;
* adversarial: ``Y[p, a, min(rnd, S - 1)]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .core import njit, uniform4

REPLAY, STOCHASTIC, ADVERSARIAL = 0, 1, 2


@dataclass
class EnvArrays:
    """The arrays ``emit`` reads, typed once (unused ones are empty of the right rank)."""

    code: int
    lengths: np.ndarray  # (P,) int64
    acc: np.ndarray  # (P, D, T) int16: L_d(t)
    d_idx: np.ndarray  # (A,) int64
    kk: np.ndarray  # (A,) int64
    tree_slot: np.ndarray  # (A,) int64, -1 for chains
    tree_acc: np.ndarray  # (S, P, T) int64
    stoch: np.ndarray  # (A,) bool: sampled arm (sampling traces)
    beta: np.ndarray  # (P, D, T) float64
    key: np.uint64
    cdf: np.ndarray  # (P, A, L1) float64
    cdf2: np.ndarray  # (P, A, L1) float64
    block: int  # autocorrelated block length, 0 = not autocorrelated
    Y: np.ndarray  # (P, A, S) int64

    def args(self) -> tuple:
        return (self.code, self.lengths, self.acc, self.d_idx, self.kk, self.tree_slot, self.tree_acc, self.stoch,
                self.beta, np.uint64(self.key), self.cdf, self.cdf2, self.block, self.Y)


def env_arrays(env) -> EnvArrays:
    """Arrays of a ``ReplayEnv``, ``StochasticEnv`` or ``AdversarialEnv`` (exact types only)."""
    from ..envs.adversarial import AdversarialEnv
    from ..envs.replay import ReplayEnv
    from ..envs.stochastic import StochasticEnv

    A = env.n_arms
    i3, f3 = np.zeros((1, 1, 1), np.int64), np.zeros((1, 1, 1))
    base = dict(lengths=np.asarray(env.lengths, np.int64), acc=np.zeros((1, 1, 1), np.int16),
                d_idx=env.table.drafter_idx.astype(np.int64), kk=env.table.k.astype(np.int64),
                tree_slot=np.full(A, -1, np.int64), tree_acc=i3, stoch=np.zeros(A, bool), beta=f3,
                key=np.uint64(0), cdf=f3, cdf2=f3, block=0, Y=i3)
    if type(env) is ReplayEnv:
        base.update(acc=np.ascontiguousarray(env.accept, np.int16), tree_slot=env._tree_slot.astype(np.int64))
        if len(env._tree_acc):
            base["tree_acc"] = np.ascontiguousarray(env._tree_acc, np.int64)
        if env.sampling:
            base.update(stoch=env._stoch_arm.astype(bool), beta=np.ascontiguousarray(env._beta, np.float64),
                        key=env.key)
        return EnvArrays(REPLAY, **base)
    if type(env) is StochasticEnv:
        auto = env.law == "autocorrelated"
        base.update(key=env.key, cdf=np.ascontiguousarray(env.cdf, np.float64),
                    cdf2=np.ascontiguousarray(env.cdf2 if auto else f3, np.float64), block=env.BLOCK if auto else 0)
        return EnvArrays(STOCHASTIC, **base)
    if type(env) is AdversarialEnv:
        base.update(Y=np.ascontiguousarray(env.Y, np.int64))
        return EnvArrays(ADVERSARIAL, **base)
    raise TypeError(f"no compiled emission for environment {type(env).__name__}")


@njit(inline="always")
def emit(code, lengths, acc, d_idx, kk, tree_slot, tree_acc, stoch, beta, key, cdf, cdf2, block, Y,
         p, run, rnd, pos, a):
    left = lengths[p] - pos
    if code == REPLAY:
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
    if code == STOCHASTIC:
        u = uniform4(key, p, run, rnd, a)
        y = 1
        if block > 0 and uniform4(key, p, run, rnd // block, 1 << 30) < 0.5:
            for j in range(cdf2.shape[2] - 1):
                if cdf2[p, a, j] <= u:
                    y += 1
        else:
            for j in range(cdf.shape[2] - 1):
                if cdf[p, a, j] <= u:
                    y += 1
        return min(y, left)
    return min(Y[p, a, min(rnd, Y.shape[2] - 1)], left)
