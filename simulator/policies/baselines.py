"""Baselines: a fixed arm, uniform random, and the best fixed arm in hindsight."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import Policy, PolicyContext, PolicyError, register


@register
@dataclass
class Fixed(Policy):
    """``ALG_i``: always play ``arm`` (BanditSpec's comparator class)."""

    name: ClassVar[str] = "fixed"
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

    def select(self, u: np.ndarray) -> np.ndarray:
        return np.full(self.n_lanes_, self.index_, dtype=np.int64)


@register
@dataclass
class Uniform(Policy):
    """Each round an arm uniformly at random."""

    name: ClassVar[str] = "uniform"
    n_random: ClassVar[int] = 1

    def select(self, u: np.ndarray) -> np.ndarray:
        return np.minimum((u[:, 0] * self.ctx_.n_arms).astype(np.int64), self.ctx_.n_arms - 1)


@register
@dataclass
class Oracle(Policy):
    """The best fixed arm in hindsight for each prompt (argmin of E[ST(ALG_i)]).

    It reads the future by construction, so its regret is 0 in expectation: a check of
    the regret computation, not a method.
    """

    name: ClassVar[str] = "oracle"

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        if ctx.hindsight_best is None:
            raise PolicyError("policy oracle: the runner gave no hindsight information")
        self.arm_ = np.zeros(n_lanes, dtype=np.int64)

    def on_prompt_start(self, lanes: np.ndarray, prompts: np.ndarray) -> None:
        self.arm_[lanes] = self.ctx_.hindsight_best[prompts]

    def select(self, u: np.ndarray) -> np.ndarray:
        return self.arm_.copy()
