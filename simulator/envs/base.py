"""The environment protocol: a pure function of (prompt, run, round, position, arm).

Environments never see the policy.  They are functional (Gymnasium's ``FuncEnv`` idea):
the runner owns the lane state (position, round) and asks the environment how many
tokens a round emits, so one environment serves any batching of lanes and any policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from traces import PLAIN, Arm, Trace


@dataclass
class ArmTable:
    """Arms as arrays: drafter index (plain -> 0, with K = 0) and draft length K."""

    arms: list[Arm]
    drafter_idx: np.ndarray
    k: np.ndarray

    @classmethod
    def build(cls, trace: Trace, arms: list[Arm]) -> ArmTable:
        d = np.array([0 if a.drafter == PLAIN else trace.drafter_index(a.drafter) for a in arms])
        return cls(list(arms), d.astype(np.int64), np.array([a.k for a in arms], dtype=np.int64))

    @property
    def has_trees(self) -> bool:
        return any(a.is_tree for a in self.arms)

    @property
    def L(self) -> int:
        """Maximum speculation length among the arms (the paper's L)."""
        return int(self.k.max())


class Env:
    """Base class.  Subclasses set the attributes below and implement ``emit_all``.

    Attributes
    ----------
    name : str
    prompt_ids, categories : list of str, one per environment prompt (or stream)
    lengths : ndarray (n_prompts,)  tokens to emit before the prompt stops
    table : ArmTable
    """

    name: str = "env"
    # capability: reveals every drafter's acceptance at verified positions (``gamma``)
    full_information: ClassVar[bool] = False
    prompt_ids: list[str]
    categories: list[str]
    lengths: np.ndarray
    table: ArmTable

    @property
    def n_prompts(self) -> int:
        return len(self.prompt_ids)

    @property
    def context_lens(self) -> np.ndarray:
        """Context length each environment prompt's rounds are costed at (``make_env`` sets it
        from the trace: ``prompt_len + output_len / 2``); 0 for bare environments."""
        c = getattr(self, "_context", None)
        return np.asarray(c, float) if c is not None else np.zeros(self.n_prompts)

    def set_context_lens(self, context: np.ndarray) -> None:
        context = np.asarray(context, float)
        if context.shape != (self.n_prompts,):
            raise ValueError(f"context lengths: expected shape ({self.n_prompts},), got {context.shape}")
        self._context = context

    @property
    def n_arms(self) -> int:
        return len(self.table.arms)

    def emit_all(self, prompt: np.ndarray, run: np.ndarray, rnd: np.ndarray,
                 pos: np.ndarray) -> np.ndarray:
        """Tokens every arm would emit this round, shape (n_lanes, n_arms), capped."""
        raise NotImplementedError

    def emit(self, prompt: np.ndarray, run: np.ndarray, rnd: np.ndarray, pos: np.ndarray,
             arms: np.ndarray) -> np.ndarray:
        """Tokens the chosen arms emit this round, shape (n_lanes,), capped at what remains."""
        full = self.emit_all(prompt, run, rnd, pos)
        return np.take_along_axis(full, arms[:, None], axis=1)[:, 0]

    def expected_fixed_st(self) -> np.ndarray:
        """``E[ST(ALG_i)]`` for every prompt and fixed arm, shape (n_prompts, n_arms).

        The comparator of stopping-time regret (BanditSpec Eq. 1, 12).
        """
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name}


def simulate_fixed(env: Env, run: int = 0) -> np.ndarray:
    """Stopping time of every fixed arm on every prompt for one run, (n_prompts, n_arms)."""
    P, A = env.n_prompts, env.n_arms
    prompt = np.repeat(np.arange(P), A)
    arms = np.tile(np.arange(A), P)
    runs = np.full(P * A, run)
    pos = np.zeros(P * A, dtype=np.int64)
    rnd = np.zeros(P * A, dtype=np.int64)
    n = env.lengths[prompt]
    active = pos < n
    while active.any():
        e = env.emit(prompt, runs, rnd, pos, arms)
        pos = np.where(active, pos + e, pos)
        rnd = rnd + active
        active = pos < n
    return rnd.reshape(P, A)
