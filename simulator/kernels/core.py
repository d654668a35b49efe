"""Building blocks of the compiled engine: the counter-based uniforms (same bits as
``simulator.rng``), UCBSpec's cached radius and exponential weights, and the long-horizon
curve kernels (``simulator.curves``).

UCBSpec caches the pull-dependent part of its radius so a round costs one ``sqrt`` per arm,
``cr_i = (L/2) sqrt(a_i (1 + 2 b_i + 4 log t))``, ``a_i = (1+n_i)/n_i^2``,
``b_i = log(K sqrt(1+n_i) / delta)`` (BanditSpec Eq. 6 / 19 rearranged); the numpy UCBSpec
computes the same expression in the same order, so both engines choose the same arms.

``numba`` is optional: ``AVAILABLE`` is False without it and the runner uses numpy.
"""

from __future__ import annotations

import math

import numpy as np

try:  # pragma: no cover - exercised when numba is installed (it is a core dependency)
    from numba import njit, prange

    AVAILABLE = True
except ImportError:  # pragma: no cover
    AVAILABLE = False

    def njit(*a, **k):  # type: ignore[no-redef]
        return (lambda f: f) if not (a and callable(a[0])) else a[0]

    prange = range  # type: ignore[assignment]

from ..rng import MAX_RUNS  # noqa: E402  (the lane counter recipe, as a compile-time constant)

UCBSPEC, EXP3SPEC, HEDGE = 0, 1, 2
CURVE_POLICIES = {"ucbspec": UCBSPEC, "exp3spec": EXP3SPEC}

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


# ---------------------------------------------------------------------------- learners
@njit(inline="always")
def ucb_select(t, K, counts, sums, a_c, b_c, half_width):
    """``half_width[i]``: arm i's radius scale, ``w/2`` with ``w`` the common width (one
    for all arms, BanditSpec Eq. 6; ``UCBSpec.half_widths``)."""
    if t < K:  # round-robin initialisation
        return t
    c = 4.0 * math.log(max(t, 1))
    best, best_v = 0, -np.inf
    for i in range(K):
        v = sums[i] / counts[i] + half_width[i] * math.sqrt(a_c[i] * (1.0 + 2.0 * b_c[i] + c))
        if v > best_v:
            best, best_v = i, v
    return best


@njit(inline="always")
def ucb_update(arm, r, K, counts, sums, a_c, b_c, delta):
    counts[arm] += 1.0
    sums[arm] += r
    n = counts[arm]
    a_c[arm] = (1.0 + n) / (n * n)
    b_c[arm] = math.log(K * math.sqrt(1.0 + n) / delta)


@njit(inline="always")
def exp_weights_select(u, K, cum, p, eta):
    """Exponential weights with the minimum loss shifted out; inverse-CDF draw."""
    m = cum[0]
    for i in range(1, K):
        m = min(m, cum[i])
    s = 0.0
    for i in range(K):
        p[i] = math.exp(-eta * (cum[i] - m))
        s += p[i]
    acc = 0.0
    arm = K - 1
    found = False
    for i in range(K):
        p[i] /= s
        acc += p[i]
        if not found and acc > u:
            arm, found = i, True
    return arm


@njit(inline="always")
def bandit_select(policy, t, A, st, key, lane_key, half, param):
    """UCBSpec or EXP3Spec choice for round ``t`` from the state rows ``st`` (5, A): counts,
    sums (EXP3Spec: cumulative importance-weighted losses), a, b (radius cache), p;
    ``half`` (A,): UCBSpec's radius scale per arm (here one for all: ``(hi - lo) / 2``)."""
    if policy == UCBSPEC:
        return ucb_select(t, A, st[0], st[1], st[2], st[3], half)
    u = uniform3(key, lane_key, t, 0)
    eta = param * math.sqrt(math.log(A) / ((t + 1.0) * A))
    return exp_weights_select(u, A, st[1], st[4], eta)


@njit(inline="always")
def bandit_update(policy, arm, rew, A, st, lo, hi, param):
    if policy == UCBSPEC:
        ucb_update(arm, rew, A, st[0], st[1], st[2], st[3], param)
    else:
        st[1, arm] += ((hi - rew) / max(hi - lo, 1e-12)) / st[4, arm]  # importance-weighted loss


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
def iid_curve(policy, cdf, grid, runs, env_key, pol_key, prompt, lo, hi, param):
    """One long run per ``runs`` entry on i.i.d. arms (``cdf`` (A, L+1)), recording at each
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
        state = np.zeros((5, A))
        n_i = np.zeros(A, dtype=np.int64)
        lane_key = np.int64(prompt) * np.int64(MAX_RUNS) + np.int64(r)
        half = np.full(A, (hi - lo) / 2.0)  # the common width L of Eq. 6: every arm's law is on 1..L+1
        pos, t, c = 0, 0, 0
        while c < C:
            arm = bandit_select(policy, t, A, state, pol_key, lane_key, half, param)
            v = uniform4(env_key, prompt, r, t, arm)
            y = 1
            for j in range(L1 - 1):
                if cdf[arm, j] <= v:
                    y += 1
            bandit_update(policy, arm, float(y), A, state, lo, hi, param)
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
