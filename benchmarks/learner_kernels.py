"""The learner-only benchmark protocol of ``benchmarks/policy_speed.py`` (compiled): R runs of
``n_rounds`` select + update each, from the learners' own compiled functions
(``UCBSpec.kernel``, ``EXP3Spec.kernel``; Hedge from the library's exponential-weights
building blocks).  Kept out of the library: it is a measurement, not a simulation
(``tests/test_kernels.py`` checks it too)."""

from __future__ import annotations

import math

import numpy as np

from simulator.kernels import njit, prange, uniform3
from simulator.kernels.learners import categorical, exp_weights
from simulator.policies.exp3spec import EXP3Spec
from simulator.policies.ucbspec import UCBSpec

__all__ = ["LEARNERS", "learner_rounds"]

LEARNERS = ("ucbspec", "exp3spec", "hedge")
_KEY = np.uint64(12345)


@njit(parallel=True, cache=True)
def _bandit_rounds(select, update, K, R, n_rounds, means, prm, ftab):
    out = np.zeros((R, K), dtype=np.int64)
    for r in prange(R):
        st, ist, tmp = np.zeros((5, K)), np.zeros(4, dtype=np.int64), np.zeros(max(K, 4))
        F = np.zeros((1, 1, 1))
        for t in range(n_rounds):
            arm = select(K, st, ist, prm, ist, ftab, _KEY, r, t, tmp)
            update(arm, float(round(means[arm])), K, st, ist, prm, ist, ftab, F, 0, 0, 1, tmp)
            out[r, arm] += 1
    return out


@njit(parallel=True, cache=True)
def _hedge_rounds(K, R, n_rounds, means, L):
    """Hedge, full information: every arm's loss each round (rows: 0 losses, 1 weights)."""
    out = np.zeros((R, K), dtype=np.int64)
    for r in prange(R):
        st = np.zeros((2, K))
        for t in range(n_rounds):
            eta = math.sqrt(8.0 * math.log(max(K, 2)) / max(t, 1))
            exp_weights(st, 0, 1, K, eta)
            arm = categorical(st, 1, K, uniform3(_KEY, r, t, 0))
            for i in range(K):
                st[0, i] += (L + 1.0 - round(means[i])) / L
            out[r, arm] += 1
    return out


def learner_rounds(name: str, K: int, R: int, n_rounds: int, means: np.ndarray, L: float, delta: float) -> np.ndarray:
    """The benchmark protocol of ``benchmarks/policy_speed.py``: R independent runs of
    ``n_rounds`` select + update each of learner ``name`` (``LEARNERS``), reward
    ``round(means[arm])`` in ``[1, L+1]``; returns the pull counts (R, K) so the work cannot be
    optimised away."""
    means = np.ascontiguousarray(means, np.float64)
    if name == "hedge":
        return _hedge_rounds(K, R, n_rounds, means, float(L))
    kern, p = (UCBSpec.kernel, delta) if name == "ucbspec" else (EXP3Spec.kernel, 1.0)
    prm = np.array([1.0, L + 1.0, p])
    ftab = np.full(K, L / 2.0)  # UCBSpec's radius scale: the common width L of Eq. 6, halved
    return _bandit_rounds(kern.select, kern.update, K, R, n_rounds, means, prm, ftab)
