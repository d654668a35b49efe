"""Baselines: a fixed arm, uniform random, and the best fixed arm in hindsight."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import Policy, PolicyContext, PolicyError, param, register


@register
@dataclass
class Fixed(Policy):
    """``ALG_i``: always play ``arm`` (BanditSpec's comparator class)."""

    name: ClassVar[str] = "fixed"
    kernel: ClassVar[str] = "fixed"
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

    def select(self, u: np.ndarray) -> np.ndarray:
        return np.full(self.n_lanes_, self.index_, dtype=np.int64)


@register
@dataclass
class Uniform(Policy):
    """Each round an arm uniformly at random."""

    name: ClassVar[str] = "uniform"
    kernel: ClassVar[str] = "uniform"
    n_random: ClassVar[int] = 1
    rewards: ClassVar[tuple[str, ...]] = ()

    def select(self, u: np.ndarray) -> np.ndarray:
        return np.minimum((u[:, 0] * self.ctx_.n_arms).astype(np.int64), self.ctx_.n_arms - 1)


@register
@dataclass
class Oracle(Policy):
    """The best fixed arm in hindsight for each prompt, by the run's objective or by ``by``:
    argmin of ``E[ST(ALG_i)]`` (``oracle:rounds``) or of the arm's expected time
    (``oracle:time``).

    It reads the future by construction, so its regret in its own objective is 0: a check
    of the regret computation and an upper limit of per-prompt arm choice, not a method.

    Parameters
    ----------
    by : {"", "rounds", "time"}
        The objective it is best in; "" = the run's objective.
    """

    name: ClassVar[str] = "oracle"
    kernel: ClassVar[str] = "oracle"
    shorthand: ClassVar[str] = "by"
    rewards: ClassVar[tuple[str, ...]] = ()
    by: str = param("", choices=("", "rounds", "time"))

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        by = self.by or ctx.objective
        if ctx.hindsight_best is None or by not in ctx.hindsight_best:
            raise PolicyError(f"policy oracle:{by}: this setting gives no hindsight information for {by!r}"
                              + (" (the trace has no cost table)" if by == "time" and ctx.arm_cost_s is None else
                                 " (the oracle picks one arm per prompt; batch serving has no such arm)"))
        self.best_ = ctx.hindsight_best[by]
        self.arm_ = np.zeros(n_lanes, dtype=np.int64)

    def on_prompt_start(self, lanes: np.ndarray, prompts: np.ndarray) -> None:
        self.arm_[lanes] = self.best_[prompts]

    def select(self, u: np.ndarray) -> np.ndarray:
        return self.arm_.copy()
