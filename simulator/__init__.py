"""specregret simulator: environments, policies, runner, metrics.  No torch here."""

from __future__ import annotations

from .envs import SETTINGS, make_env
from .policies import REGISTRY, make_policy
from .runner import RunConfig, run_experiment

__all__ = ["REGISTRY", "SETTINGS", "RunConfig", "make_env", "make_policy", "run_experiment"]
