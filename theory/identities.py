"""Identities from BanditSpec's proofs, as checkable functions."""

from __future__ import annotations

import numpy as np

from .instance import gaps


def wald_expected_length(mu, expected_pulls):
    """Wald-type identity (Eq. 30/34): ``E[len] = sum_i mu_i E[n_{i,ST}]``."""
    return (np.asarray(mu, float) * np.asarray(expected_pulls, float)).sum(axis=-1)


def regret_from_pulls(mu, expected_pulls):
    """Eq. 36: ``Reg = sum_{i != i*} (Delta_i / mu*) E[n_{i,ST}]``.

    >>> float(regret_from_pulls(np.array([2.0, 4.0]), np.array([3.0, 10.0])))
    1.5
    """
    mu = np.asarray(mu, float)
    return (gaps(mu) / mu.max(axis=-1, keepdims=True) * np.asarray(expected_pulls)).sum(axis=-1)


def stopping_time_range(output_len, L):
    """Proposition 3.1: ``len / (L+1) <= ST <= len`` almost surely; returns (lo, hi)."""
    n = np.asarray(output_len, float)
    return n / (L + 1), n
