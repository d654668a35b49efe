"""The learner-only benchmark protocol of ``benchmarks/policy_speed.py`` (compiled): R runs of
``n_rounds`` select + update each, from the library's kernel building blocks.  Kept out of the
library: it is a measurement, not a simulation (``tests/test_kernels.py`` checks it too)."""

from __future__ import annotations

import math

import numpy as np

from simulator.kernels import EXP3SPEC, UCBSPEC, exp_weights_select, njit, prange, ucb_select, ucb_update, uniform3

__all__ = ["learner_rounds"]


@njit(parallel=True, cache=True)
def learner_rounds(policy, K, R, n_rounds, means, L, delta):
    """The benchmark protocol of ``benchmarks/policy_speed.py``: R independent runs of
    ``n_rounds`` select + update each, reward ``round(means[arm])``; returns the pull
    counts (R, K) so the work cannot be optimised away."""
    out = np.zeros((R, K), dtype=np.int64)
    for r in prange(R):
        counts = np.zeros(K)
        sums = np.zeros(K)
        a_c = np.zeros(K)
        b_c = np.zeros(K)
        prob = np.zeros(K)
        half = np.full(K, L / 2.0)
        for t in range(n_rounds):
            if policy == UCBSPEC:
                arm = ucb_select(t, K, counts, sums, a_c, b_c, half)
                ucb_update(arm, float(round(means[arm])), K, counts, sums, a_c, b_c, delta)
            else:
                u = uniform3(np.uint64(12345), r, t, 0)
                if policy == EXP3SPEC:
                    eta = math.sqrt(math.log(K) / ((t + 1.0) * K))
                    arm = exp_weights_select(u, K, sums, prob, eta)
                    sums[arm] += ((L + 1.0 - round(means[arm])) / L) / prob[arm]
                else:  # Hedge, full information: every arm's loss each round
                    eta = math.sqrt(8.0 * math.log(max(K, 2)) / max(t, 1))
                    arm = exp_weights_select(u, K, sums, prob, eta)
                    for i in range(K):
                        sums[i] += (L + 1.0 - round(means[i])) / L
            out[r, arm] += 1
    return out
