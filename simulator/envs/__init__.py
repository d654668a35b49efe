"""Environments: ``replay``, ``stochastic``, ``adversarial`` (see each module)."""

from __future__ import annotations

import numpy as np

from traces import Arm, Trace

from ..costs import prompt_contexts
from .adversarial import AdversarialEnv
from .base import ArmTable, Env, simulate_fixed
from .replay import ReplayEnv
from .stochastic import StochasticEnv

SETTINGS = ("replay", "stochastic", "adversarial")


def make_env(setting: str, trace: Trace, arms: list[Arm], *, seed: int = 0,
             law: str = "empirical", stream: str = "recorded") -> Env:
    """Build the environment for ``setting``, with the context lengths its rounds are costed at:
    per prompt where the environment's prompts are the trace's, else the token-weighted mean."""
    if trace.partial and setting != "stochastic":
        raise ValueError(f"setting {setting!r}: {trace.label} is an engine log (partial information: acceptance "
                         "only where the logged steps started, censored at the logged K), so a policy's own "
                         "trajectory cannot be replayed; use --setting stochastic (the laws of the logged steps)")
    if setting == "replay":
        env: Env = ReplayEnv(trace, arms, seed=seed)
    elif setting == "stochastic":
        env = StochasticEnv(trace, arms, law=law, seed=seed)
    elif setting == "adversarial":
        env = AdversarialEnv(trace, arms, stream=stream)
    else:
        raise ValueError(f"setting: expected one of {list(SETTINGS)}, got {setting!r}")
    ctx = prompt_contexts(trace.prompts["prompt_len"].to_numpy(float), trace.output_lens)
    if list(env.prompt_ids) != list(trace.prompt_ids):
        w = trace.output_lens.astype(float)
        ctx = np.full(env.n_prompts, float((ctx * w).sum() / max(w.sum(), 1.0)))
    env.set_context_lens(ctx)
    return env


__all__ = ["SETTINGS", "AdversarialEnv", "ArmTable", "Env", "ReplayEnv", "StochasticEnv",
           "make_env", "simulate_fixed"]
