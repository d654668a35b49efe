"""Intervals over prompts: the one interval helper of every summary, table and figure.

Prompts are the unit: runs of one prompt share its text, so they are averaged first, and the
prompts are resampled (percentile bootstrap).  Policies compared on the same prompts and
random numbers use the *same* resampled prompt sets, so a paired difference gets its own
interval, usually much narrower than the two marginal ones.  The resampling indices are
counter-based (``simulator.rng``): the same for every policy, worker count and backend.
"""

from __future__ import annotations

import numpy as np

from theory.fits import Z

from . import rng as crng

B_DEFAULT = 2000
LEVEL = 0.95


def bootstrap_indices(n: int, b: int = B_DEFAULT, seed: int = 0) -> np.ndarray:
    """``(b, n)`` prompt indices drawn with replacement, a pure function of ``(n, b, seed)``."""
    u = crng.uniform(crng.bootstrap_key(seed, n), np.arange(b)[:, None], np.arange(n)[None, :])
    return np.minimum((u * n).astype(np.int64), n - 1)


def ratio_ci(num: np.ndarray, den: np.ndarray, b: int = B_DEFAULT, seed: int = 0,
             level: float = LEVEL) -> tuple[float, float, float]:
    """``sum(num) / sum(den)`` over prompts with its bootstrap interval; ``num``/``den`` are
    per-prompt totals (``(P,)``).  A mean is ``ratio_ci(x, ones)``."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    point = float(num.sum() / den.sum())
    if len(num) < 2:
        return point, float("nan"), float("nan")
    idx = bootstrap_indices(len(num), b, seed)
    boot = num[idx].sum(axis=1) / den[idx].sum(axis=1)
    a = (1 - level) / 2
    return point, float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a))


def mean_ci(x: np.ndarray, b: int = B_DEFAULT, seed: int = 0, level: float = LEVEL) -> tuple[float, float, float]:
    """Mean over prompts of per-prompt values ``x`` (``(P,)``) with its bootstrap interval."""
    return ratio_ci(x, np.ones(len(x)), b, seed, level)


def per_prompt(values: np.ndarray, prompt: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """Mean over runs of ``values`` for each prompt (in ``order``, default sorted)."""
    keys = np.unique(prompt) if order is None else np.asarray(order)
    pos = {k: i for i, k in enumerate(keys)}
    ix = np.array([pos[k] for k in prompt])
    s = np.bincount(ix, weights=np.asarray(values, float), minlength=len(keys))
    return s / np.bincount(ix, minlength=len(keys))


def runs_half_width(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """95% normal-approximation half-width of the mean over independent runs along ``axis``
    (synthetic instances, where runs are the unit); 0 for a single (deterministic) run."""
    x = np.asarray(x, float)
    n = x.shape[axis]
    if n < 2:
        return np.zeros(np.delete(x.shape, axis % x.ndim))
    return Z * x.std(axis=axis, ddof=1) / np.sqrt(n)


def verdict(lo: float, hi: float, better_if_negative: bool = True) -> str:
    """Words for a paired difference's interval: does it support a difference?"""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "no interval"
    if hi < 0:
        return "better" if better_if_negative else "worse"
    if lo > 0:
        return "worse" if better_if_negative else "better"
    return "not supported (interval contains 0)"
