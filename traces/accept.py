"""The acceptance rule of the format: ``L_d(t)`` from per-position correct-prediction bits.

``accept[t] = L_d(t)`` is the run of consecutive correct draft tokens starting at position
``t`` (bonus token excluded), capped at ``k_max`` (``docs/trace_format.md``, Conventions).
Real collection (``gpu_collect``) and synthetic generators both build it here.
"""

from __future__ import annotations

import numpy as np


def run_lengths(bits: np.ndarray, k_max: int) -> np.ndarray:
    """``L[..., t]`` = number of consecutive ``True`` from ``t`` on, capped at ``k_max``.

    >>> run_lengths(np.array([1, 1, 0, 1, 1, 1], dtype=bool), 2).tolist()
    [2, 1, 0, 2, 2, 1]
    """
    n = bits.shape[-1]
    out = np.zeros(bits.shape, dtype=np.int64)
    nxt = np.zeros(bits.shape[:-1], dtype=np.int64)
    for t in range(n - 1, -1, -1):
        nxt = np.where(bits[..., t], nxt + 1, 0)
        out[..., t] = nxt
    return np.minimum(out, k_max)
