"""Accepted lengths censored at each step's own draft length (adaptive-length engine logs).

A step that drafted ``k`` tokens and accepted ``a`` of them says ``min(L, k) = a`` about the
drafter's run ``L`` at that step: exact when ``a < k``, right-censored (``L >= k``) when
``a = k``.  With ``k`` varying from step to step (transformers' heuristic schedule, vLLM's
variable drafting budgets), ``min(a, K)`` for a ``K`` above a step's ``k`` is unknown, so the
law of ``min(L, K)`` is estimated by the Kaplan-Meier (product-limit) estimator of
``S(i) = P(L >= i)``:

* hazard ``h(j) = P(L = j | L >= j) = d_j / n_j`` with ``d_j`` the uncensored steps at
  ``a = j`` and ``n_j`` the steps known to reach ``j`` and to say whether they stop there
  (uncensored ``a >= j``, censored ``a > j``);
* ``S(i) = prod_{j < i} (1 - h(j))``; the law of ``min(L, K)`` is ``S(j) - S(j+1)`` at
  ``j < K`` and ``S(K)`` at ``K``.

``S(i)`` is identified while some step is at risk at ``i - 1`` (:func:`identified_k`); arms
above are refused.  The estimator stays consistent when ``k`` is chosen from the past steps
(a predictable censoring time, as every schedule here is).  Per prompt, a hazard with no step
at risk on that prompt falls back to the drafter's pooled hazard over all prompts
(:func:`prompt_survival`).
"""

from __future__ import annotations

import numpy as np


def risk_counts(a: np.ndarray, k: np.ndarray, J: int) -> tuple[np.ndarray, np.ndarray]:
    """``(d_j, n_j)`` for ``j = 0..J-1`` from steps that accepted ``a`` of ``k`` drafted.

    >>> d, n = risk_counts(np.array([0, 2, 2]), np.array([3, 2, 4]), 3)
    >>> d.tolist(), n.tolist()
    ([1, 0, 1], [3, 2, 1])
    """
    a = np.asarray(a, np.int64)
    cens = a >= np.asarray(k, np.int64)
    # uncensored a reaches j..a (risk at every j <= a); censored a is at risk at j < a only
    last = np.where(cens, a - 1, a)
    n = np.bincount(np.clip(last + 1, 0, J), minlength=J + 1)[::-1].cumsum()[::-1][1:J + 1]
    d = np.bincount(a[~cens & (a < J)], minlength=J)[:J]
    return d.astype(np.int64), n.astype(np.int64)


def identified_k(a: np.ndarray, k: np.ndarray) -> int:
    """The largest ``K`` whose law ``min(L, K)`` the steps identify: ``S(K)`` needs a step at
    risk at ``K - 1`` (an uncensored ``a >= K - 1`` or a censored ``a >= K``).

    >>> identified_k(np.array([1, 3]), np.array([5, 3]))
    3
    """
    a = np.asarray(a, np.int64)
    cens = a >= np.asarray(k, np.int64)
    return int(max(np.max(np.where(cens, a, a + 1), initial=0), 0))


def survival(a: np.ndarray, k: np.ndarray, J: int, fallback: np.ndarray | None = None) -> np.ndarray:
    """Kaplan-Meier ``S(i) = P(L >= i)`` for ``i = 0..J``; hazards with no step at risk come
    from ``fallback`` (a pooled hazard, length ``J``) or are 0.

    >>> survival(np.array([0, 1, 1]), np.array([1, 1, 3]), 2).tolist()
    [1.0, 0.6666666666666667, 0.0]
    """
    d, n = risk_counts(a, k, J)
    h = np.divide(d, n, out=np.zeros(J), where=n > 0)
    if fallback is not None:
        h = np.where(n > 0, h, fallback)
    return np.concatenate([[1.0], np.cumprod(1.0 - h)])


def pooled_hazard(a: np.ndarray, k: np.ndarray, J: int) -> np.ndarray:
    """The hazards ``h(0..J-1)`` over all of a drafter's steps (0 where none is at risk)."""
    d, n = risk_counts(a, k, J)
    return np.divide(d, n, out=np.zeros(J), where=n > 0)


def capped_law(S: np.ndarray, K: int) -> np.ndarray:
    """The law of ``min(L, K)`` on ``0..K`` from ``S`` (``S[i] = P(L >= i)``, length > K).

    >>> capped_law(np.array([1.0, 0.5, 0.25, 0.0]), 2).tolist()
    [0.5, 0.25, 0.25]
    """
    S = np.asarray(S, float)[: K + 1]
    return np.append(S[:-1] - S[1:], S[-1])


def prompt_survival(steps: list[tuple[np.ndarray, np.ndarray]], J: int) -> np.ndarray:
    """``(n_prompts, J + 1)``: each prompt's Kaplan-Meier ``S`` from its own ``(a, k)`` steps,
    hazards with no step at risk on that prompt taken from the pooled hazard."""
    a_all = np.concatenate([a for a, _ in steps]) if steps else np.zeros(0, np.int64)
    k_all = np.concatenate([k for _, k in steps]) if steps else np.zeros(0, np.int64)
    pooled = pooled_hazard(a_all, k_all, J)
    return np.stack([survival(a, k, J, pooled) for a, k in steps]) if steps else np.zeros((0, J + 1))
