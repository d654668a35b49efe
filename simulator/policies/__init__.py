"""Arm-selection policies.  ``REGISTRY`` maps names to classes; ``make_policy`` parses
``NAME[:key=value,...]``."""

from __future__ import annotations

from . import bandits, baselines, engine, exp3spec, hedgespec, structured, ucbspec  # noqa: F401  (registration)
from .base import REGISTRY, Policy, PolicyContext, PolicyError, make_policy, register

__all__ = ["REGISTRY", "Policy", "PolicyContext", "PolicyError", "make_policy", "register"]
