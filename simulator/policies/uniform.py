"""Baseline: an arm drawn uniformly at random each round."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels.core import njit, uniform3
from ..kernels.learners import Kernel
from .base import Policy, register
from .common import count_update


@njit(inline="always")
def _uniform_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    return min(int(uniform3(key, lane_key, g, 0) * A), A - 1)


@register
@dataclass
class Uniform(Policy):
    """Each round an arm uniformly at random."""

    name: ClassVar[str] = "uniform"
    kernel: ClassVar[Kernel] = Kernel("uniform", _uniform_select, count_update)
    n_random: ClassVar[int] = 1
    rewards: ClassVar[tuple[str, ...]] = ()

    def select(self, u: np.ndarray) -> np.ndarray:
        return np.minimum((u[:, 0] * self.ctx_.n_arms).astype(np.int64), self.ctx_.n_arms - 1)
