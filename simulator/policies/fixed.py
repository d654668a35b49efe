"""Baseline: one fixed arm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels.core import njit
from ..kernels.learners import Kernel, Tables
from .base import Policy, PolicyContext, PolicyError, register
from .common import count_update


@njit(inline="always")
def _fixed_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    return itab[0]


@register
@dataclass
class Fixed(Policy):
    """``ALG_i``: always play ``arm`` (BanditSpec's comparator class)."""

    name: ClassVar[str] = "fixed"
    kernel: ClassVar[Kernel] = Kernel("fixed", _fixed_select, count_update)
    shorthand: ClassVar[str] = "arm"
    rewards: ClassVar[tuple[str, ...]] = ()
    arm: str = ""

    def __post_init__(self) -> None:
        if "@" not in self.arm:
            raise PolicyError(f"policy fixed: arm must be DRAFTER@K, got {self.arm!r}")

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        names = list(ctx.arm_names)
        if self.arm not in names:
            raise PolicyError(f"policy fixed:{self.arm}: arm not in the arm set {names}")
        self.index_ = names.index(self.arm)

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        return Tables(itab=np.array([self.index_]))

    def select(self, u: np.ndarray) -> np.ndarray:
        return np.full(self.n_lanes_, self.index_, dtype=np.int64)
