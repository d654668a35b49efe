"""Engine heuristics: transformers' draft-length schedules and the public BanditSpec code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels import scalar_math as sm
from .base import Policy, PolicyContext, PolicyError, param, register


def _drafter_arms(ctx: PolicyContext, drafter: str) -> dict[int, int]:
    """K -> arm index for the arms ``drafter@K`` (K >= 1) of the arm set."""
    out = {}
    for i, arm in enumerate(ctx.arms):
        if (arm.drafter == drafter or (not drafter and not out)) and arm.k >= 1:
            drafter = arm.drafter
            out[arm.k] = i
    if not out:
        raise PolicyError(f"policy needs arms DRAFTER@1..K of one drafter; arm set: {list(ctx.arm_names)}")
    return out


@register
@dataclass
class Heuristic(Policy):
    """transformers' ``num_assistant_tokens_schedule="heuristic"`` (candidate_generator.py):
    after a round, ``K += 2`` if every drafted token was accepted, else ``K = max(1, K - 1)``.
    The value persists across prompts (it is written back to the assistant's
    generation_config); ``heuristic_transient`` resets it for each prompt.

    Parameters
    ----------
    drafter : str
        The drafter whose ``@K`` arms are used (default: the first in the arm set).
    start : int
        Initial K (transformers' default ``num_assistant_tokens`` is 20 since v4.45, 5
        before; capped at the largest K in the arm set).
    """

    name: ClassVar[str] = "heuristic"
    kernel: ClassVar[str] = "heuristic"
    rewards: ClassVar[tuple[str, ...]] = ("tokens",)  # reads accepted tokens
    drafter: str = ""
    start: int = param(20, ge=1, source="a draft length K >= 1 (capped at the arm set's largest K)")
    transient: ClassVar[bool] = False

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        self.arms_by_k_ = _drafter_arms(ctx, self.drafter)
        self.kmax_ = max(self.arms_by_k_)
        self.k_ = np.full(n_lanes, min(self.start, self.kmax_), dtype=np.int64)
        self._lookup = np.array([self.arms_by_k_.get(k, -1) for k in range(self.kmax_ + 1)])
        if (self._lookup[1:] < 0).any():
            raise PolicyError(f"policy {self.name}: needs every K in 1..{self.kmax_} of the drafter")

    def on_prompt_start(self, lanes: np.ndarray, prompts: np.ndarray) -> None:
        if self.transient:
            self.k_[lanes] = min(self.start, self.kmax_)

    def select(self, u: np.ndarray) -> np.ndarray:
        return self._lookup[self.k_]

    def update(self, arms: np.ndarray, rewards: np.ndarray, active: np.ndarray) -> None:
        all_accepted = rewards >= self.k_ + 1  # y = accepted + 1
        new = np.where(all_accepted, self.k_ + 2, np.maximum(1, self.k_ - 1))
        self.k_ = np.where(active, np.minimum(new, self.kmax_), self.k_)


@register
@dataclass
class HeuristicTransient(Heuristic):
    """``heuristic_transient``: the heuristic schedule, reset at every prompt."""

    name: ClassVar[str] = "heuristic_transient"
    kernel: ClassVar[str] = "heuristic_transient"
    transient: ClassVar[bool] = True


@register
@dataclass
class BanditSpecCode(Policy):
    """A faithful copy of the public BanditSpec code's length bandit
    (``generate_utils.py: ucb_length_spec_generate``, sail-sg/BanditSpec 4e6dd869), not the
    paper's UCBSpec:

    * arms are ``DRAFTER@1..4`` (K = 0 is not an arm there);
    * warm-up while ``out_index < 8`` with ``out_index`` starting at 1: K = 1,2,3,4,1,2,3
      (7 rounds, so K = 4 is pulled once);
    * then ``argmax(mean + sqrt(6 log(out_index) / total_calls))``: the bonus divides by the
      *total* number of calls, so it is the same for every arm and the rule is greedy on the
      empirical mean (first index on ties);
    * the reward is whatever the run uses (the code uses throughput: ``--reward throughput``).

    Reward-range rule: none, as in the code: raw rewards and a bonus that no reward range
    scales (``PolicyContext``'s ranges are unused), so its decisions change with the reward's
    unit; one bonus for every arm.
    """

    name: ClassVar[str] = "banditspec-code"
    kernel: ClassVar[str] = "banditspec-code"
    drafter: str = ""

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        by_k = _drafter_arms(ctx, self.drafter)
        missing = [k for k in (1, 2, 3, 4) if k not in by_k]
        if missing:
            raise PolicyError(f"policy banditspec-code needs arms @1..@4 of one drafter; missing K={missing}")
        self.arm_of_ = np.array([by_k[k] for k in (1, 2, 3, 4)])
        self.sum_ = np.zeros((n_lanes, 4))
        self.calls_ = np.zeros((n_lanes, 4))
        self.out_index_ = np.ones(n_lanes, dtype=np.int64)

    def select(self, u: np.ndarray) -> np.ndarray:
        warm = self.out_index_ < 4 * 2
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(self.calls_ > 0, self.sum_ / self.calls_, 0.0)
            bonus = np.sqrt(6.0 * sm.log(self.out_index_) / self.calls_.sum(axis=1))
        g = np.where(warm, (self.out_index_ - 1) % 4, np.argmax(mean + bonus[:, None], axis=1))
        self.g_ = g
        return self.arm_of_[g]

    def update(self, arms: np.ndarray, rewards: np.ndarray, active: np.ndarray) -> None:
        lanes = np.flatnonzero(active)
        self.sum_[lanes, self.g_[lanes]] += rewards[lanes]
        self.calls_[lanes, self.g_[lanes]] += 1
        self.out_index_[lanes] += 1


