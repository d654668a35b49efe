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


class PolicyError(ValueError):
    """Unknown policy name or invalid hyperparameter."""


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
        Range of the per-round reward (tokens: ``[1, L+1]``).
    hindsight_best : ndarray or None
        Best fixed arm per environment prompt, for the ``oracle`` baseline only: it is
        knowledge of the future and no learning policy reads it.
    """

    n_arms: int
    arm_names: tuple[str, ...]
    L: int
    reward_lo: float
    reward_hi: float
    hindsight_best: np.ndarray | None = None
    drafter_names: tuple[str, ...] = ()  # the trace's drafters, in the order of FullFeedback.gamma
    arm_cost_s: np.ndarray | None = None  # seconds per round of each arm, if the trace has costs


@dataclass
class Policy:
    """Base class; see the module docstring."""

    name: ClassVar[str] = "policy"
    feedback: ClassVar[str] = "bandit"  # "bandit" or "full"
    n_random: ClassVar[int] = 0  # uniforms per lane per round the policy consumes

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
        if self.name == "fixed":
            return f"fixed:{params.get('arm', '')}"
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
        raise PolicyError(f"unknown policy {name!r}; registered: {sorted(REGISTRY)}")
    cls = REGISTRY[name]
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    if rest:
        if name == "fixed" and "=" not in rest:
            rest = f"arm={rest}"
        for item in rest.split(","):
            k, eq, v = item.partition("=")
            if not eq or k not in fields:
                raise PolicyError(
                    f"policy {spec!r}: unknown parameter {k!r}; expected one of {sorted(fields)}"
                )
            kwargs[k] = _convert(v, fields[k].type, k, name)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise PolicyError(f"policy {spec!r}: {exc}") from None


def sample_categorical(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw per row: smallest i with ``u < p_1 + ... + p_i``."""
    c = np.cumsum(p, axis=1)
    return np.minimum((c <= u[:, None]).sum(axis=1), p.shape[1] - 1)
