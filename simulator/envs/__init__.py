"""Environments: ``replay``, ``stochastic``, ``adversarial`` (see each module)."""

from __future__ import annotations

from traces import Arm, Trace

from .adversarial import AdversarialEnv
from .base import ArmTable, Env, simulate_fixed
from .replay import ReplayEnv
from .stochastic import StochasticEnv

SETTINGS = ("replay", "stochastic", "adversarial")


def make_env(setting: str, trace: Trace, arms: list[Arm], *, seed: int = 0,
             law: str = "empirical", stream: str = "recorded") -> Env:
    """Build the environment for ``setting``."""
    if setting == "replay":
        return ReplayEnv(trace, arms, seed=seed)
    if setting == "stochastic":
        return StochasticEnv(trace, arms, law=law, seed=seed)
    if setting == "adversarial":
        return AdversarialEnv(trace, arms, stream=stream)
    raise ValueError(f"setting: expected one of {list(SETTINGS)}, got {setting!r}")


__all__ = ["SETTINGS", "AdversarialEnv", "ArmTable", "Env", "ReplayEnv", "StochasticEnv",
           "make_env", "simulate_fixed"]
