"""specregret traces: the only contract between the GPU side and the math side.

>>> import traces
>>> tr = traces.load("builtin:synthetic-demo")
>>> tr.is_synthetic, tr.k_max
(True, 8)
"""

from __future__ import annotations

from .arms import PLAIN, Arm, ArmError, all_arms, arm_from_name, parse_arm, resolve_arms
from .build import from_arrays
from .io import load, validate, write
from .schema import SCHEMA_VERSION
from .trace import Trace, TraceError

__all__ = [
    "PLAIN", "SCHEMA_VERSION", "Arm", "ArmError", "Trace", "TraceError",
    "all_arms", "arm_from_name", "from_arrays", "load", "parse_arm", "resolve_arms", "validate", "write",
]
