"""The policy protocol, the registry, and policy-spec parsing.

A policy is a small dataclass: hyperparameters are its fields, validated in
``__post_init__``; learned state is set in ``reset`` as arrays with a leading lanes axis
and ends in ``_``.  One object simulates many independent lanes (runs x prompts) at once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from traces import Arm, arm_from_name

from .errors import PolicyError

REWARDS = ("tokens", "throughput")


@dataclass(frozen=True)
class PolicyContext:
    """What a policy may know before the first round.

    Attributes
    ----------
    n_arms : int
    arm_names : tuple of str
    L : int
        Maximum speculation length among the arms (BanditSpec's L).
    reward_lo, reward_hi : float
        Range of the per-round reward over the arm set (tokens: ``[1, L+1]``).
    reward_kind : {"tokens", "throughput"}
        What the reward is: tokens emitted per round (BanditSpec's ``Y``), or the round's
        throughput relative to plain decoding, ``y * c(plain) / c(arm)``.
    arm_lo, arm_hi : ndarray (n_arms,) or None
        The range of each arm's own reward (tokens: ``[1, K_i + 1]``; throughput:
        ``[c0/c_i, (K_i + 1) c0/c_i]``); ``None`` means ``[reward_lo, reward_hi]`` for all.
    objective : {"rounds", "time"}
        What the run optimises (the oracle's default criterion).
    hindsight_best : dict or None
        Best fixed arm per environment prompt by objective (``"rounds"``, ``"time"``), for
        the ``oracle`` baseline only: it is knowledge of the future and no learner reads it.
    drafter_names : tuple of str
        The trace's drafters, in the order of ``gamma`` in full-information feedback.
    arm_cost_s : ndarray (n_arms,) or None
        Seconds per round of each arm (mean over prompts), if the trace has costs.
    """

    n_arms: int
    arm_names: tuple[str, ...]
    L: int
    reward_lo: float
    reward_hi: float
    reward_kind: str = "tokens"
    objective: str = "rounds"
    arm_lo: np.ndarray | None = None
    arm_hi: np.ndarray | None = None
    hindsight_best: dict[str, np.ndarray] | None = None
    drafter_names: tuple[str, ...] = ()
    arm_cost_s: np.ndarray | None = None

    @property
    def arms(self) -> tuple[Arm, ...]:
        """The arms, parsed once from ``arm_names`` (the one arm parser: ``traces.arm_from_name``)."""
        return tuple(arm_from_name(n) for n in self.arm_names)

    def arm_range(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)`` of every arm's reward, shape (n_arms,) each."""
        if self.arm_lo is None or self.arm_hi is None:
            return np.full(self.n_arms, float(self.reward_lo)), np.full(self.n_arms, float(self.reward_hi))
        return np.asarray(self.arm_lo, float), np.asarray(self.arm_hi, float)


@dataclass
class Policy:
    """Base class; see the module docstring."""

    name: ClassVar[str] = "policy"
    feedback: ClassVar[str] = "bandit"  # "bandit" or "full"
    n_random: ClassVar[int] = 0  # uniforms per lane per round the policy consumes
    # reward kinds the policy can learn from, the first its default; () = reads no reward
    rewards: ClassVar[tuple[str, ...]] = REWARDS
    kernel: ClassVar[str] = ""  # its compiled kernel (simulator.kernels); declared by the class itself
    shorthand: ClassVar[str] = ""  # the field ``NAME:VALUE`` sets (``fixed:ARM``, ``oracle:rounds``)
    reward: str = ""  # "" = the run's objective decides (rounds -> tokens, time -> throughput)

    def reward_for(self, objective: str) -> str:
        """The reward this policy learns from in a run with ``objective``."""
        if self.reward:
            return self.reward
        natural = "throughput" if objective == "time" else "tokens"
        return natural if natural in self.rewards else (self.rewards[0] if self.rewards else "tokens")

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        self.ctx_ = ctx
        self.n_lanes_ = n_lanes

    def on_prompt_start(self, lanes: np.ndarray, prompts: np.ndarray) -> None:
        """Called when ``lanes`` begin environment prompts ``prompts`` (carry-state mode)."""

    def select(self, u: np.ndarray) -> np.ndarray:
        """Arm index per lane, shape (n_lanes,); ``u`` is (n_lanes, n_random) uniforms."""
        raise NotImplementedError

    def update(self, arms: np.ndarray, rewards: np.ndarray, active: np.ndarray) -> None:
        """Bandit feedback: reward of the played arm, for lanes where ``active``."""

    def update_full(self, arms: np.ndarray, rewards: np.ndarray, active: np.ndarray,
                    positions: np.ndarray, verified: np.ndarray, gamma: np.ndarray) -> None:
        """Full-information feedback (``feedback = "full"`` policies): the positions this
        round verified, ``positions`` (n_lanes, W) with mask ``verified``, and every trace
        drafter's acceptance probability there, ``gamma`` (n_lanes, W, n_drafters): the 0/1
        teacher-forced match in greedy traces, ``alpha`` in sampling traces.  Nothing about
        unverified positions is ever passed."""

    def spec(self) -> str:
        """Canonical ``name[:k=v,...]`` string of this configuration."""
        params = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.init and getattr(self, f.name) != f.default}
        if self.shorthand and list(params) == [self.shorthand]:
            return f"{self.name}:{params[self.shorthand]}"
        if not params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in params.items())


REGISTRY: dict[str, type[Policy]] = {}


def register(cls: type[Policy]) -> type[Policy]:
    REGISTRY[cls.name] = cls
    return cls


def _convert(value: str, typ: Any, field: str, name: str) -> Any:
    t = typ if isinstance(typ, type) else {"float": float, "int": int, "str": str,
                                           "bool": bool}.get(str(typ), str)
    try:
        if t is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return value.lower() in ("true", "1")
        return t(value)
    except ValueError:
        raise PolicyError(f"policy {name!r}: {field}={value!r}: expected {t.__name__}") from None


def make_policy(spec: str) -> Policy:
    """Build a policy from ``NAME`` or ``NAME:key=value,...`` (``fixed:ARM`` for fixed arms)."""
    name, _, rest = spec.partition(":")
    if name not in REGISTRY:
        from .plugins import load_entry_points

        load_entry_points()
    if name not in REGISTRY:
        raise PolicyError(f"unknown policy {name!r}; registered: {sorted(REGISTRY)} (a policy of your own: "
                          f"--policy-module MODULE_OR_FILE, docs/simulator.md 'Writing a policy')")
    cls = REGISTRY[name]
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    if rest:
        if cls.shorthand and "=" not in rest:
            rest = f"{cls.shorthand}={rest}"
        for item in rest.split(","):
            k, eq, v = item.partition("=")
            if not eq or k not in fields:
                raise PolicyError(
                    f"policy {spec!r}: unknown parameter {k!r}; expected one of {sorted(fields)}"
                )
            kwargs[k] = _convert(v, fields[k].type, k, name)
    reward = kwargs.get("reward", "")
    if reward and reward not in cls.rewards:
        raise PolicyError(f"policy {spec!r}: reward={reward!r}: expected one of {list(cls.rewards)}"
                          if cls.rewards else f"policy {spec!r}: {name} learns from no reward; drop reward=")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise PolicyError(f"policy {spec!r}: {exc}") from None


def rowsum(x: np.ndarray) -> np.ndarray:
    """Sums over the last axis added in index order (``np.cumsum``), as the compiled kernels
    add; numpy's own ``sum`` is pairwise, which would differ in the last bit and could break a
    near-tie differently between ``--engine numpy`` and ``numba``."""
    return np.cumsum(x, axis=-1)[..., -1]


def sample_categorical(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw per row: smallest i with ``u < p_1 + ... + p_i``."""
    c = np.cumsum(p, axis=1)
    return np.minimum((c <= u[:, None]).sum(axis=1), p.shape[1] - 1)
