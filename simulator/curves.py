"""Regret curves on a log-spaced grid of output lengths from one long run per seed.

``regret_curve`` runs UCBSpec or EXP3Spec once up to the largest length on i.i.d. arms and
records the stopping time and pull counts whenever the output passes a grid point, so memory
is runs x grid x arms whatever the horizon (``simulator.kernels.iid_curve``).  Both policies
are anytime, so each grid point equals a separate simulation of that length on the same
random numbers (tested against the numpy runner).
"""

from __future__ import annotations

import numpy as np

from . import kernels
from . import rng as crng
from .kernels.learners import LearnerArgs
from .policies.exp3spec import EXP3Spec
from .policies.ucbspec import UCBSpec

CURVE_POLICIES = {"ucbspec": UCBSpec, "exp3spec": EXP3Spec}  # anytime learners: one long run serves every length


def log_grid(n_min: int, n_max: int, per_decade: int = 4) -> np.ndarray:
    """Integer output lengths, ``per_decade`` per factor of 10, from ``n_min`` to ``n_max``.

    >>> log_grid(100, 10000, 2).tolist()
    [100, 316, 1000, 3162, 10000]
    """
    k = int(round(np.log10(n_max / n_min) * per_decade))
    return np.unique(np.round(np.logspace(np.log10(n_min), np.log10(n_max), k + 1)).astype(np.int64))


def regret_curve(policy: str, pmf: np.ndarray, grid: np.ndarray, runs: int, seed: int = 0,
                 law: str = "given", param: float | None = None) -> dict:
    """Stopping times ``(runs, C)``, pulls ``(runs, C, A)``, and ``E[ST]`` of every fixed arm at
    every grid length ``(C, A)``, for arms with laws ``pmf`` (A, L+1) over ``1..L+1`` tokens.

    The random streams are those of ``StochasticEnv.from_laws(pmf[None], [n], ..., seed, law)``
    (prompt 0) and of the runner's policy stream, so a one-prompt simulation of any grid length
    reproduces the corresponding column exactly.
    """
    if not kernels.AVAILABLE:
        raise RuntimeError("regret curves need numba (a core dependency of specregret)")
    if policy not in CURVE_POLICIES:
        raise ValueError(f"policy: expected one of {sorted(CURVE_POLICIES)}, got {policy!r}")
    pmf = np.asarray(pmf, float)
    A, L1 = pmf.shape
    cdf = np.cumsum(pmf, axis=1)
    cdf[:, -1] = 1.0
    grid = np.asarray(grid, dtype=np.int64)
    if (np.diff(grid) <= 0).any() or grid[0] < 1:
        raise ValueError("grid: expected increasing output lengths >= 1")
    p = param if param is not None else (0.5 if policy == "ucbspec" else 1.0)
    # rewards in [1, L+1]: the reward range, and UCBSpec's common width L (Eq. 6) for every arm
    prm = np.array([1.0, float(L1), float(p)])
    ftab = np.full(A, (float(L1) - 1.0) / 2.0)
    la = LearnerArgs(CURVE_POLICIES[policy].kernel, prm, np.zeros(1, np.int64), ftab, 5, A)
    st, pulls = kernels.iid_curve(*la.args(), cdf, grid, np.arange(runs, dtype=np.int64),
                                  crng.env_key(seed, f"stochastic:{law}"), crng.policy_key(seed), 0)
    fixed = kernels.renewal_rounds(pmf, int(grid[-1]))[grid]
    return {"stopping_time": st, "pulls": pulls, "fixed_st": fixed, "grid": grid}
