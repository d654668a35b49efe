"""Growth rates of regret with an interval, and the verdict rule every check uses.

A theorem about a rate (Theorem 4.4: ``Reg ~ c log len``; Theorem 5.3: ``Reg = O(sqrt len)``)
is a statement about a slope, so the checks fit slopes, not finite-length levels:

* ``kind="log"``: slope of mean regret against ``log(len)`` (rounds per e-fold), the
  quantity Theorem 4.4 bounds below by ``c``;
* ``kind="loglog"``: slope of ``log(mean regret)`` against ``log(len)`` (the exponent).

The interval combines two errors: Monte Carlo error (bootstrap over runs, each length's
runs resampled independently) and the departure of the points from a straight line (the
least-squares standard error of the slope, t quantile with ``P - 2`` degrees of freedom).
Deterministic policies have no Monte Carlo error; their interval is the fit's alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z = 1.96
TOL_SLOPE = 0.1  # a "slope near s" claim passes when the whole interval lies in s +- 0.1


@dataclass(frozen=True)
class SlopeFit:
    """Fitted slope and its 95% interval over lengths ``n_from..n_to`` (``points`` of them)."""

    slope: float
    lo: float
    hi: float
    n_from: int
    n_to: int
    points: int

    @property
    def finite(self) -> bool:
        return bool(np.isfinite([self.slope, self.lo, self.hi]).all())

    def label(self) -> str:
        return f"{self.slope:.2f} [{self.lo:.2f}, {self.hi:.2f}]"


def _ols_slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and its standard error (NaN with fewer than three points)."""
    if len(x) < 3 or not np.isfinite(y).all():
        return float("nan"), float("nan")
    xc = x - x.mean()
    b = float(xc @ (y - y.mean()) / (xc @ xc))
    resid = y - y.mean() - b * xc
    return b, float(np.sqrt(resid @ resid / (len(x) - 2) / (xc @ xc)))


def fit_slope(lengths: np.ndarray, samples: np.ndarray, kind: str, window: np.ndarray | None = None,
              n_boot: int = 1000, seed: int = 0) -> SlopeFit:
    """Slope of regret against ``log(len)`` (``kind="log"``) or log-log (``"loglog"``).

    Parameters
    ----------
    lengths : (P,) output lengths.
    samples : (P, R) regret of every run at every length (rounds).
    kind : ``"log"`` or ``"loglog"``.
    window : boolean (P,) mask of the lengths to fit (default all).

    Returns NaN (which every check treats as a failure) when fewer than three lengths are in
    the window or, for ``"loglog"``, when the mean regret is not positive at every length:
    then no exponent is defined.

    >>> n = np.array([1e3, 1e4, 1e5])
    >>> f = fit_slope(n, np.sqrt(n)[:, None] * np.ones((3, 4)), "loglog")
    >>> round(f.slope, 6), round(f.hi - f.lo, 6)
    (0.5, 0.0)
    """
    lengths = np.asarray(lengths, float)
    samples = np.asarray(samples, float)
    w = np.ones(len(lengths), bool) if window is None else np.asarray(window, bool)
    n, s = lengths[w], samples[w]
    x = np.log(n)
    nan = SlopeFit(float("nan"), float("nan"), float("nan"), int(n.min(initial=0)), int(n.max(initial=0)),
                   len(n))

    def transform(m: np.ndarray) -> np.ndarray:
        if kind == "log":
            return m
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(m > 0, np.log(np.where(m > 0, m, 1.0)), np.nan)

    if kind not in ("log", "loglog"):
        raise ValueError(f"kind: expected 'log' or 'loglog', got {kind!r}")
    b, se_fit = _ols_slope(x, transform(s.mean(axis=1)))
    if not np.isfinite(b):
        return nan
    R = s.shape[1]
    se_mc = 0.0
    if R > 1 and np.ptp(s, axis=1).max() > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, R, size=(n_boot, len(n), R))
        means = np.take_along_axis(s[None], idx, axis=2).mean(axis=2)  # (boot, P)
        y = transform(means)
        ok = np.isfinite(y).all(axis=1)
        if ok.mean() < 0.95:  # the mean regret is often <= 0: no exponent to speak of
            return nan
        yc = y[ok] - y[ok].mean(axis=1, keepdims=True)
        xc = x - x.mean()
        se_mc = float(np.std(yc @ xc / (xc @ xc), ddof=1))
    from scipy import stats  # here, not at import: scipy.stats costs ~1.5 s per command

    half = float(np.hypot(Z * se_mc, stats.t.ppf(0.975, len(n) - 2) * se_fit))
    return SlopeFit(b, b - half, b + half, int(n.min()), int(n.max()), len(n))


def verdict(ok: bool, value: float, bound: float, vacuous: bool = False) -> str:
    """``"pass"``, ``"fail"`` or ``"vacuous"``: a check never passes on NaN, and one whose
    bound no policy could exceed is ``"vacuous"`` rather than passed.

    >>> verdict(True, float("nan"), 1.0), verdict(True, 1.0, 2.0, vacuous=True), verdict(False, 3.0, 2.0)
    ('fail', 'vacuous', 'fail')
    """
    if not (np.isfinite(value) and np.isfinite(bound)):
        return "fail"
    if vacuous:
        return "vacuous"
    return "pass" if ok else "fail"
