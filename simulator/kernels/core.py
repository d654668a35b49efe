"""Building blocks of the compiled engine: the counter-based uniforms (same bits as
``simulator.rng``) and the long-horizon curve kernels (``simulator.curves``), which run a
learner's own compiled functions (``simulator.kernels.learners``).

``numba`` is optional: ``AVAILABLE`` is False without it and the runner uses numpy.
"""

from __future__ import annotations

import collections
import os

import numpy as np

# a compiled learner's int state: ist[0] rounds learned from, ist[1:BATCH] its own, ist[BATCH]
# the number of sequences its lane decodes this round (written by the loops; 1 outside serving)
IST = 5
BATCH = IST - 1

# Reading a loop's on-disk cache index rebuilds every learner function named in its keys; numba
# keeps only the last NUMBA_FUNCTION_CACHE_SIZE (default 128) of them alive, and saving a new
# specialisation re-pickles the index: past 128 (about 30 learners, plug-ins and edited versions
# included) a dead one fails with "ReferenceError: underlying object has vanished".  Keep them all.
FUNCTION_CACHE_SIZE = 1 << 16
os.environ.setdefault("NUMBA_FUNCTION_CACHE_SIZE", str(FUNCTION_CACHE_SIZE))

try:  # pragma: no cover - exercised when numba is installed (it is a core dependency)
    from numba import njit, prange
    from numba.core.dispatcher import _MemoMixin

    if (_MemoMixin._recent.maxlen or 0) < FUNCTION_CACHE_SIZE:  # numba was imported before us
        _MemoMixin._recent = collections.deque(_MemoMixin._recent, maxlen=FUNCTION_CACHE_SIZE)
    AVAILABLE = True
except ImportError:  # pragma: no cover
    AVAILABLE = False

    def njit(*a, **k):  # type: ignore[no-redef]
        return (lambda f: f) if not (a and callable(a[0])) else a[0]

    prange = range  # type: ignore[assignment]

from ..rng import MAX_RUNS  # noqa: E402  (the lane counter recipe, as a compile-time constant)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@njit(inline="always")
def _mix(x):
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@njit(inline="always")
def uniform3(key, c1, c2, c3):
    """``simulator.rng.uniform(key, c1, c2, c3)`` for one set of counters (same bits)."""
    return uniform_last(uniform_prefix(key, c1, c2), c3)


@njit(inline="always")
def uniform_prefix(key, c1, c2):
    """The hash state after counters ``c1, c2``: many uniforms that differ in the last counter
    only (one per arm in a round) share it, so it is computed once."""
    h = _mix(key ^ (np.uint64(c1) * _GOLDEN + _GOLDEN))
    return _mix(h ^ (np.uint64(c2) * _GOLDEN + _GOLDEN))


@njit(inline="always")
def uniform_last(h, c3):
    """``uniform3`` from ``uniform_prefix``'s state and the last counter."""
    h = _mix(h ^ (np.uint64(c3) * _GOLDEN + _GOLDEN))
    return np.float64(h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


# ---------------------------------------------------------------------------- long horizons
@njit(inline="always")
def uniform4(key, c1, c2, c3, c4):
    """``simulator.rng.uniform(key, c1, c2, c3, c4)`` for one set of counters (same bits)."""
    h = key
    h = _mix(h ^ (np.uint64(c1) * _GOLDEN + _GOLDEN))
    h = _mix(h ^ (np.uint64(c2) * _GOLDEN + _GOLDEN))
    h = _mix(h ^ (np.uint64(c3) * _GOLDEN + _GOLDEN))
    h = _mix(h ^ (np.uint64(c4) * _GOLDEN + _GOLDEN))
    return np.float64(h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(parallel=True, cache=True)
def iid_curve(init, on_prompt, select, update, prm, itab, ftab, rows, cols, cdf, grid, runs, env_key, pol_key,
              prompt):
    """One long run per ``runs`` entry of a learner (its compiled functions and tables,
    ``simulator.kernels.learners``) on i.i.d. arms (``cdf`` (A, L+1)), recording at each
    output length of the increasing ``grid`` the stopping time and pull counts.

    Memory is O(runs x grid x arms), independent of the number of rounds.  Because UCBSpec and
    EXP3Spec are anytime (they never see the output length), the stopping time at ``grid[c]``
    equals that of a separate run of length ``grid[c]`` on the same random numbers: draws are
    ``uniform(env_key, prompt, run, round, arm)`` as in ``StochasticEnv``, policy uniforms
    ``uniform(pol_key, prompt * 2^20 + run, round, 0)`` as in the runner.
    """
    A, L1 = cdf.shape
    C = len(grid)
    R = len(runs)
    st = np.zeros((R, C), dtype=np.int64)
    pulls = np.zeros((R, C, A), dtype=np.int64)
    for ir in prange(R):
        r = runs[ir]
        state, ist, tmp = np.zeros((rows, cols)), np.zeros(IST, dtype=np.int64), np.zeros(max(A, cols, 4))
        F = np.zeros((1, 1, 1))
        n_i = np.zeros(A, dtype=np.int64)
        lane_key = np.int64(prompt) * np.int64(MAX_RUNS) + np.int64(r)
        init(A, state, ist, prm, itab)
        ist[BATCH] = 1
        on_prompt(state, ist, prm, itab, prompt)
        pos, t, c = 0, 0, 0
        while c < C:
            arm = select(A, state, ist, prm, itab, ftab, pol_key, lane_key, t, tmp)
            v = uniform4(env_key, prompt, r, t, arm)
            y = 1
            for j in range(L1 - 1):
                if cdf[arm, j] <= v:
                    y += 1
            update(arm, float(y), A, state, ist, prm, itab, ftab, F, prompt, pos, y, tmp)
            n_i[arm] += 1
            pos += y
            t += 1
            while c < C and pos >= grid[c]:
                st[ir, c] = t
                pulls[ir, c, :] = n_i
                c += 1
    return st, pulls


@njit(cache=True)
def renewal_rounds(pmf, n_max):
    """``f[n, a] = E[rounds to emit n tokens]`` for i.i.d. per-round tokens with law ``pmf[a]``
    over ``1..L+1``: ``f[0] = 0``, ``f[n] = 1 + sum_x pmf[x] f[max(n - x - 1, 0)]`` (the
    recursion of ``simulator.envs.stochastic.renewal_expected_rounds``)."""
    A, L1 = pmf.shape
    f = np.zeros((n_max + 1, A))
    for n in range(1, n_max + 1):
        for a in range(A):
            s = 1.0
            for x in range(L1):
                s += pmf[a, x] * f[max(n - x - 1, 0), a]
            f[n, a] = s
    return f
