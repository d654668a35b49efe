"""The environment protocol: a pure function of (prompt, run, round, position, arm).

Environments never see the policy.  They are functional (Gymnasium's ``FuncEnv`` idea):
the runner owns the lane state (position, round) and asks the environment how many
tokens a round emits, so one environment serves any batching of lanes and any policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass
class EnvArrays:
    """An environment's compiled form: the arrays its scalar emission rule reads, typed once.

    ``code`` names the rule (``EMIT_CODE`` of ``replay``, ``stochastic`` or ``adversarial``:
    each module holds its rule as an ``njit`` function, ``simulator.kernels.envs.emit``
    dispatches on the code); the arrays a rule does not read stay empty of the right rank
    (:meth:`blank`).  An environment whose rule is one of these (an oblivious table ``Y``, i.i.d.
    laws ``cdf``, a replay) builds its arrays in ``Env.kernel_arrays`` and runs compiled.
    """

    code: int
    lengths: np.ndarray  # (P,) int64
    d_idx: np.ndarray  # (A,) int64
    kk: np.ndarray  # (A,) int64
    acc: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 1), np.int16))  # (P, D, T) int16: L_d(t)
    tree_slot: np.ndarray | None = None  # (A,) int64, -1 for chains (default: all -1)
    tree_acc: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 1), np.int64))  # (S, P, T) int64
    stoch: np.ndarray | None = None  # (A,) bool: sampled arm (sampling traces; default: none)
    beta: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 1)))  # (P, D, T) float64
    key: np.uint64 = np.uint64(0)
    cdf: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 1)))  # (P, A, L1) float64
    cdf2: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 1)))  # (P, A, L1) float64
    block: int = 0  # autocorrelated block length, 0 = not autocorrelated
    Y: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 1), np.int64))  # (P, A, S) int64

    def __post_init__(self) -> None:
        A = len(self.kk)
        if self.tree_slot is None:
            self.tree_slot = np.full(A, -1, np.int64)
        if self.stoch is None:
            self.stoch = np.zeros(A, bool)

    @classmethod
    def blank(cls, env: Env, code: int, **arrays) -> EnvArrays:
        """``env``'s lengths and arm table, rule ``code`` and the given ``arrays``; the rest empty."""
        return cls(code, np.asarray(env.lengths, np.int64), env.table.drafter_idx.astype(np.int64),
                   env.table.k.astype(np.int64), **arrays)

    def args(self) -> tuple:
        """The arrays in the order of ``simulator.kernels.envs.emit`` (and the lane loops)."""
        return (self.code, self.lengths, self.acc, self.d_idx, self.kk, self.tree_slot, self.tree_acc, self.stoch,
                self.beta, np.uint64(self.key), self.cdf, self.cdf2, self.block, self.Y)


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

    @classmethod
    def has_compiled_form(cls) -> bool:
        """Whether this class runs in the compiled engine: it defines ``kernel_arrays`` itself.
        A subclass that does not (a user's variant of a built-in environment, whose ``emit`` may
        differ) runs on numpy, as a policy subclass without its own ``kernel`` does."""
        return cls is not Env and "kernel_arrays" in cls.__dict__

    def kernel_arrays(self) -> EnvArrays:
        """The arrays of this environment's compiled emission rule (:class:`EnvArrays`); only
        where :meth:`has_compiled_form` (``simulator.envs.check.check_env`` compares both forms)."""
        raise NotImplementedError(f"environment {type(self).__name__} has no compiled emission")


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
