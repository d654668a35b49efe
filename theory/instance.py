"""Instance quantities of BanditSpec's stochastic model (Section 4)."""

from __future__ import annotations

import numpy as np


def gaps(mu: np.ndarray) -> np.ndarray:
    """``Delta_i = mu_{i*} - mu_i`` along the last axis (``mu`` in tokens per round).

    >>> gaps(np.array([2.0, 3.0, 2.5])).tolist()
    [1.0, 0.0, 0.5]
    """
    mu = np.asarray(mu, float)
    return mu.max(axis=-1, keepdims=True) - mu


def hardness(mu: np.ndarray) -> np.ndarray:
    """``H = sum_{i != i*} 1 / (mu_{i*} Delta_i)`` (BanditSpec Section 4.2).

    Arms tied with the best contribute nothing (their gap is 0; they are optimal too).

    >>> round(float(hardness(np.array([2.0, 3.0, 2.5]))), 4)
    1.0
    """
    mu = np.asarray(mu, float)
    d = gaps(mu)
    best = mu.max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        terms = np.where(d > 0, 1.0 / (best * d), 0.0)
    return terms.sum(axis=-1)


def tgd_mean(p: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Mean of the truncated geometric law (Prop. 4.5): ``(1 - p^(K+1)) / (1 - p)``.

    >>> float(tgd_mean(np.array(0.5), np.array(2)))
    1.75
    """
    p = np.asarray(p, float)
    K = np.asarray(K)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = (1 - p ** (K + 1)) / (1 - p)
    return np.where(p >= 1, K + 1.0, m)
