"""Lower bounds of BanditSpec (Theorem 4.4, Proposition 4.5).

Laws are probability vectors over the emitted count ``y in {1, ..., L+1}`` (last axis).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, minimize, minimize_scalar

from .instance import gaps, tgd_mean


def kl_inf(law: np.ndarray, mu_star: float) -> float:
    """``kl_i = inf { KL(P_i, Q) : Q a law on {1..L+1}, E_Q[X] > mu_star }`` (Theorem 4.4).

    Computed through its dual (Honda & Takemura 2010, for laws bounded above by
    ``b = L+1``): ``max_{0 <= lam <= 1/(b - mu*)} E_P[log(1 - lam (X - mu*))]``, a
    one-dimensional concave problem solved with ``scipy.optimize.minimize_scalar``.
    ``0`` if ``P_i`` already has mean ``>= mu_star``; ``inf`` if ``mu_star >= L+1``.

    >>> round(kl_inf(np.array([0.5, 0.5]), 1.75), 4)
    0.1438
    """
    p = np.asarray(law, float)
    x = np.arange(1, len(p) + 1, dtype=float)
    b = x[-1]
    if p @ x >= mu_star:
        return 0.0
    if mu_star >= b:
        return float("inf")
    hi = 1.0 / (b - mu_star)
    m = p > 0

    def neg(lam: float) -> float:
        return -float(p[m] @ np.log(np.maximum(1 - lam * (x[m] - mu_star), 1e-300)))

    res = minimize_scalar(neg, bounds=(0.0, hi), method="bounded", options={"xatol": 1e-12})
    return max(-float(res.fun), 0.0)


def kl_inf_primal(law: np.ndarray, mu_star: float, margin: float = 1e-9) -> float:
    """The same infimum by direct constrained minimisation over the simplex (SLSQP); slower,
    used to cross-check :func:`kl_inf`."""
    p = np.asarray(law, float)
    x = np.arange(1, len(p) + 1, dtype=float)
    if p @ x >= mu_star:
        return 0.0
    m = p > 0

    def kl(q):
        q = np.maximum(q, 1e-300)
        return float(p[m] @ np.log(p[m] / q[m]))

    q0 = 0.5 * p + 0.5 * np.eye(len(p))[-1]
    cons = [{"type": "eq", "fun": lambda q: q.sum() - 1},
            {"type": "ineq", "fun": lambda q: q @ x - mu_star - margin}]
    res = minimize(kl, q0, bounds=[(1e-12, 1)] * len(p), constraints=cons, method="SLSQP",
                   options={"ftol": 1e-14, "maxiter": 500})
    return float(res.fun)


def lai_robbins_constant(laws: np.ndarray) -> float:
    """Theorem 4.4: ``c = sum_{i != i*} (Delta_i / mu*) / kl_i``, so that
    ``liminf Reg / log E[len] >= c`` for consistent policies (Assumption D.4).

    >>> round(lai_robbins_constant(np.array([[0.5, 0.5], [0.25, 0.75]])), 3)
    0.993
    """
    laws = np.asarray(laws, float)
    mu = laws @ np.arange(1, laws.shape[1] + 1)
    best = int(np.argmax(mu))
    d = gaps(mu)
    return float(sum(d[i] / mu[best] / kl_inf(laws[i], mu[best]) for i in range(len(mu))
                     if i != best and d[i] > 0))


def tgd_lower_constant(p: np.ndarray, L: int) -> np.ndarray:
    """Proposition 4.5 closed form for truncated-geometric arms of length ``L``:
    ``H p*(1 - p*^L) / (1 - p*)`` with ``H = sum_{i != i*} 1/(mu* Delta_i)``, from
    ``kl_i <= Delta_i^2 (1-p*) / (p* (1 - p*^L))`` (Eq. 136).

    Finding: as reconstructed, Eq. 136 does not hold everywhere.  For ``L >= 2`` the closed
    form is a valid lower-bound constant (below the exact one of :func:`lai_robbins_constant`,
    for every gap; checked on a grid) where ``p* <= tgd_closed_form_threshold(L)`` (0.77,
    0.88, 0.93, 0.96, 0.98 for L = 2, 3, 4, 6, 8).  Above it the closed form exceeds the exact
    constant once the gaps are small: high acceptance rates and small ``L`` (L = 4,
    p = (0.94, 0.95): ratio 1.39; L = 2, p* = 0.9: 1.2-2.1).  For L = 1 (two-point laws)
    large gaps exceed it too (p = (0.01, 0.3): 1.10).  Checks use :func:`lai_robbins_constant`.

    >>> round(float(tgd_lower_constant(np.array([0.5, 0.8]), 4)), 3)
    0.493
    """
    p = np.asarray(p, float)
    mu = tgd_mean(p, np.full(p.shape, L))
    best = np.argmax(mu, axis=-1)
    pstar = np.take_along_axis(p, best[..., None], -1)[..., 0]
    d = gaps(mu)
    ms = mu.max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        H = np.where(d > 0, 1 / (ms * d), 0.0).sum(axis=-1)
    return H * pstar * (1 - pstar**L) / (1 - pstar)


def tgd_closed_form_ratio_limit(pstar: float, L: int) -> float:
    """Small-gap limit of ``tgd_lower_constant / lai_robbins_constant`` for TGD arms:
    ``kl_i -> Delta_i^2 / (2 Var(P*))`` as ``Delta_i -> 0`` (local quadratic form of
    ``kl_inf``), against Eq. 136's ``Delta_i^2 (1-p*) / (p*(1-p*^L))``, so the ratio tends to
    ``p*(1 - p*^L) / ((1 - p*) 2 Var(P*))``.  For ``L >= 2`` the ratio is largest at small
    gaps near the threshold, so where this limit is <= 1 the ratio is too (grid-checked in
    ``tests/test_theory.py``).

    >>> round(tgd_closed_form_ratio_limit(0.5, 1), 6), round(tgd_closed_form_ratio_limit(0.95, 4), 2)
    (1.0, 1.44)
    """
    law = np.r_[pstar ** np.arange(L) * (1 - pstar), pstar**L]  # TGD(p*, L) on 1..L+1
    x = np.arange(1, L + 2)
    var = float(law @ (x - law @ x) ** 2)
    return float(pstar * (1 - pstar**L) / ((1 - pstar) * 2 * var))


def tgd_closed_form_threshold(L: int) -> float:
    """The acceptance rate ``p_L`` above which Prop. 4.5's closed form exceeds the exact
    Theorem 4.4 constant for small gaps (root of :func:`tgd_closed_form_ratio_limit` = 1).

    >>> [round(tgd_closed_form_threshold(L), 3) for L in (1, 2, 4, 8)]
    [0.5, 0.774, 0.925, 0.979]
    """
    return float(brentq(lambda q: tgd_closed_form_ratio_limit(q, L) - 1.0, 1e-3, 1 - 1e-9))


def upper_lower_gap_tgd(pstar: np.ndarray, L: int) -> np.ndarray:
    """Prop. 4.5: upper and lower bounds match up to constants and
    ``L^2 (1 - p*) / (p* (1 - p*^L))``."""
    pstar = np.asarray(pstar, float)
    return L**2 * (1 - pstar) / (pstar * (1 - pstar**L))
