"""Bounds as functions: numeric checks, lower <= upper, monotonicity, scaling laws."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from simulator.envs.stochastic import tgd_pmf
from theory.fits import fit_slope, verdict

probs = st.floats(0.05, 0.95)


def test_kl_inf_dual_equals_primal_and_bernoulli():
    # two-point law: KL(Bern(0.5) || Bern(0.75)) in closed form
    assert np.isclose(theory.kl_inf(np.array([0.5, 0.5]), 1.75),
                      0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75), atol=1e-8)
    rng = np.random.default_rng(1)
    for _ in range(20):
        p = rng.dirichlet(np.ones(6))
        mu = p @ np.arange(1, 7)
        target = mu + rng.random() * (6 - mu) * 0.9
        assert np.isclose(theory.kl_inf(p, target), theory.kl_inf_primal(p, target), atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(p=st.lists(probs, min_size=2, max_size=4, unique=True), L=st.integers(2, 8))
def test_lower_below_upper_on_tgd(p, L):
    p = np.array(p)
    laws = tgd_pmf(p, np.full(len(p), L), L)
    mu = theory.tgd_mean(p, L)
    if np.sort(mu)[-1] - np.sort(mu)[-2] < 1e-3:
        return
    c = theory.lai_robbins_constant(laws)
    assert c > 0
    for n in (1e3, 1e5):
        assert c * np.log(n) <= theory.ucbspec_regret_bound(mu, n, L)


@settings(max_examples=40, deadline=None)
@given(n=st.floats(10, 1e6), L=st.integers(1, 8), K=st.integers(2, 64))
def test_monotone_and_scaling(n, L, K):
    mu = np.linspace(1.0, L + 1.0, 3)
    assert theory.ucbspec_regret_bound(mu, 2 * n, L) >= theory.ucbspec_regret_bound(mu, n, L)
    assert theory.ucbspec_pull_bound(2 * n, 0.5, L, K) >= theory.ucbspec_pull_bound(n, 0.5, L, K)
    # the first branch of Theorem 5.3 scales like sqrt(len)
    big = 1e12
    r = theory.exp3spec_regret_bound(4 * n, big, L, K) / theory.exp3spec_regret_bound(n, big, L, K)
    assert np.isclose(r, 2.0)
    assert np.isclose(theory.hedgespec_rate_acceptance(4 * n, K, L) * 2,
                      theory.hedgespec_rate_acceptance(n, K, L))
    lo, hi = theory.stopping_time_range(n, L)
    assert lo <= hi


def test_regret_from_pulls_matches_eq36_by_hand():
    # mu = (2, 4): one pull of arm 0 loses 2 tokens = 0.5 rounds of the best arm
    assert theory.regret_from_pulls(np.array([2.0, 4.0]), np.array([3.0, 10.0])) == 1.5


def _closed_over_exact(p, L):
    p = np.array(p)
    return theory.tgd_lower_constant(p, L) / theory.lai_robbins_constant(tgd_pmf(p, np.full(len(p), L), L))


def test_prop45_closed_form_versus_exact_constant():
    """Finding (theory/lower.py): Eq. 136 as reconstructed fails for high p* and small L."""
    assert _closed_over_exact([0.5, 0.6], 4) < 1 and _closed_over_exact([0.7, 0.8], 8) < 1
    assert _closed_over_exact([0.8, 0.9], 2) > 1.3
    assert np.isclose(_closed_over_exact([0.94, 0.95], 4), 1.39, atol=0.01)
    assert np.isclose(_closed_over_exact([0.5, 0.8], 2), 1.011, atol=0.001)


def test_prop45_closed_form_is_a_lower_constant_exactly_below_the_threshold():
    """For L >= 2, below ``p_L`` the closed form is below the exact constant for every gap
    (largest near ``p_L`` with small gaps); above it, it exceeds it once the gap is small.
    L = 1 (two-point laws) is an exception: large gaps exceed it too."""
    expected = {1: 0.5, 2: 0.774, 3: 0.878, 4: 0.925, 6: 0.964, 8: 0.979}
    for L, p_L in expected.items():
        assert np.isclose(theory.tgd_closed_form_threshold(L), p_L, atol=1e-3)
    for L in (2, 4, 8):
        p_L = theory.tgd_closed_form_threshold(L)
        for ps in np.linspace(0.1, p_L - 1e-3, 6):
            for q in np.linspace(0.005, ps - 1e-3, 6):
                assert _closed_over_exact([q, ps], L) <= 1
        assert theory.tgd_closed_form_ratio_limit(p_L - 1e-3, L) < 1
        ps = min(p_L + 0.01, 0.995)
        assert _closed_over_exact([ps - 0.002, ps], L) > 1
    assert _closed_over_exact([0.01, 0.3], 1) > 1.05


def test_fit_slope_recovers_exponents_and_refuses_nan():
    n = np.array([1e3, 3e3, 1e4, 3e4, 1e5])
    rng = np.random.default_rng(0)
    noisy = np.sqrt(n)[:, None] * (1 + 0.2 * rng.standard_normal((5, 200)))
    f = fit_slope(n, noisy, "loglog")
    assert f.lo < 0.5 < f.hi and f.hi - f.lo < 0.1
    g = fit_slope(n, 3.0 * np.log(n)[:, None] + rng.standard_normal((5, 50)), "log")
    assert g.lo < 3.0 < g.hi
    # curvature widens the interval even without Monte Carlo noise
    bent = fit_slope(n, (n**0.5 + n**0.9 / 50)[:, None], "loglog")
    assert bent.hi - bent.lo > 0.05
    assert not fit_slope(n, np.zeros((5, 3)), "loglog").finite  # zero regret: no exponent
    assert not fit_slope(n[:2], np.ones((2, 3)), "loglog").finite  # two points: no interval
    assert verdict(True, f.slope, float("nan")) == "fail"
