"""Arm-selection policies.  ``REGISTRY`` maps names to classes; ``make_policy`` parses
``NAME[:key=value,...]``."""

from __future__ import annotations

import importlib
import pkgutil

from .base import REGISTRY, Policy, PolicyContext, PolicyError, make_policy, register

# every other module of this package is a learner file that registers itself: adding a
# built-in learner is adding one file (its dataclass, numpy methods and compiled form)
_NOT_LEARNERS = {"base", "check", "common", "errors", "plugins", "reference"}
for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _mod not in _NOT_LEARNERS:
        importlib.import_module(f"{__name__}.{_mod}")

__all__ = ["REGISTRY", "Policy", "PolicyContext", "PolicyError", "make_policy", "register"]
