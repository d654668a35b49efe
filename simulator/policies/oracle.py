"""Baseline: the best fixed arm in hindsight."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels.core import njit
from ..kernels.learners import Kernel, Tables
from .base import Policy, PolicyContext, PolicyError, param, register
from .common import count_update


@njit(inline="always")
def _oracle_on_prompt(st, ist, prm, itab, prompt):
    ist[1] = itab[prompt]  # itab: the best arm of every prompt


@njit(inline="always")
def _oracle_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    return ist[1]


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
    kernel: ClassVar[Kernel] = Kernel("oracle", _oracle_select, count_update, on_prompt=_oracle_on_prompt)
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
