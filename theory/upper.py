"""Upper bounds of BanditSpec (Theorems 4.3, 5.3, Remark D.3, Eq. 33).

Every function is vectorised (numpy broadcasting).  ``L`` is the maximum speculation
length (rewards in ``[1, L+1]``), ``K`` the number of arms.  The placement of terms
inside the logarithms is rebuilt from the paper's HTML rendering and checked against the
proofs (papers.md 1.5); where the rebuild is uncertain the docstring says so.
"""

from __future__ import annotations

import numpy as np

from .instance import gaps


def ucbspec_pull_bound(t, delta_i, L, K, delta: float = 0.5):
    """Per-arm pull bound (BanditSpec Eq. 33, via Lemma F.4).

    ``n_{i,t} <= 4 + (2 L^2 / Delta_i^2) (1 + 2 log(L K t^2 / (Delta_i delta)))``.

    >>> round(float(ucbspec_pull_bound(100, 1.0, 4, 4)), 2)
    847.27
    """
    t, d = np.asarray(t, float), np.asarray(delta_i, float)
    return 4 + (2 * L**2 / d**2) * (1 + 2 * np.log(L * K * t**2 / (d * delta)))


def ucbspec_regret_bound(mu, expected_len, L, delta: float = 0.5):
    """Theorem 4.3, explicit pre-O form (from Eq. 42; log-argument placement [inf]).

    ``Reg <= sum_{i != i*} (Delta_i / mu*) (4 + (2L^2/Delta_i^2)(1 + 2 log(L K E[len]^2 /
    (Delta_i delta)))) + pi^2 delta / 6 + K``.

    ``mu`` has the arms on its last axis; ``expected_len`` broadcasts against the rest.

    >>> round(float(ucbspec_regret_bound(np.array([2.0, 3.0]), 1000.0, 2)), 2)
    91.6
    """
    mu = np.asarray(mu, float)
    K = mu.shape[-1]
    d = gaps(mu)
    best = mu.max(axis=-1, keepdims=True)
    n = np.asarray(expected_len, float)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        pulls = ucbspec_pull_bound(n, d, L, K, delta)  # Eq. 33 with t = E[len]
        terms = np.where(d > 0, (d / best) * pulls, 0.0)
    return terms.sum(axis=-1) + np.pi**2 * delta / 6 + K


def exp3spec_regret_bound(output_len, min_fixed_st, L, K):
    """Theorem 5.3 (oblivious adversary, greedy decoding).

    ``Reg <= 2L min{ sqrt(len K log K), 2L K log K + sqrt(min_i ST(ALG_i) K log K) }``.
    Square roots rebuilt from Eq. 79 and Eq. 81.

    >>> round(float(exp3spec_regret_bound(1000, 400, 4, 4)), 1)
    595.7
    """
    n = np.asarray(output_len, float)
    st = np.asarray(min_fixed_st, float)
    klk = K * np.log(K)
    return 2 * L * np.minimum(np.sqrt(n * klk), 2 * L * klk + np.sqrt(st * klk))


def exp3spec_regret_bound_sampling(expected_len, min_expected_fixed_st, L, K):
    """Remark D.3 (sampling decoding): Theorem 5.3 with expectations."""
    return exp3spec_regret_bound(expected_len, min_expected_fixed_st, L, K)


def hedgespec_rate_acceptance(T, N, K, C: float = 1.0):
    """HedgeSpec Theorem 4 (secondary sources; constants not published, so ``C`` is a
    parameter): average per-step regret in acceptance probability ``C sqrt(K log N / T)``
    for ``N`` drafters, draft depth ``K``, ``T`` steps.

    >>> round(float(hedgespec_rate_acceptance(100, 8, 4)), 4)
    0.2884
    """
    T = np.asarray(T, float)
    return C * np.sqrt(K * np.log(N) / T)


def hedgespec_rate_length(T, N, K, C: float = 1.0):
    """HedgeSpec Theorem 4, expected acceptance length: ``C sqrt((K+1)^3 log N / T)``
    (constant unpublished; see :func:`hedgespec_rate_acceptance`)."""
    T = np.asarray(T, float)
    return C * np.sqrt((K + 1) ** 3 * np.log(N) / T)
