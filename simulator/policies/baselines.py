"""Baselines: a fixed arm, uniform random, and the best fixed arm in hindsight."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels.core import njit, uniform3
from ..kernels.learners import Kernel, Tables
from .base import Policy, PolicyContext, PolicyError, param, register


# ---------------------------------------------------------------- compiled forms (one lane)
@njit(inline="always")
def _count_update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1


@njit(inline="always")
def _fixed_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    return itab[0]


@njit(inline="always")
def _uniform_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    return min(int(uniform3(key, lane_key, g, 0) * A), A - 1)


@njit(inline="always")
def _oracle_on_prompt(st, ist, prm, itab, prompt):
    ist[1] = itab[prompt]  # itab: the best arm of every prompt


@njit(inline="always")
def _oracle_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    return ist[1]


@register
@dataclass
class Fixed(Policy):
    """``ALG_i``: always play ``arm`` (BanditSpec's comparator class)."""

    name: ClassVar[str] = "fixed"
    kernel: ClassVar[Kernel] = Kernel("fixed", _fixed_select, _count_update)
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


@register
@dataclass
class Uniform(Policy):
    """Each round an arm uniformly at random."""

    name: ClassVar[str] = "uniform"
    kernel: ClassVar[Kernel] = Kernel("uniform", _uniform_select, _count_update)
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
    kernel: ClassVar[Kernel] = Kernel("oracle", _oracle_select, _count_update, on_prompt=_oracle_on_prompt)
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

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        return Tables(itab=self.best_)

    def on_prompt_start(self, lanes: np.ndarray, prompts: np.ndarray) -> None:
        self.arm_[lanes] = self.best_[prompts]

    def select(self, u: np.ndarray) -> np.ndarray:
        return self.arm_.copy()
