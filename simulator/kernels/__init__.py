"""The compiled engine (numba): every built-in learner in every setting, one lane per loop.

The numpy policies (``simulator/policies``) and environments (``simulator/envs``) are the
readable definition and the reference twins the truth; the kernels repeat the numpy
arithmetic operation for operation, on the same counter-based random numbers, so
``--engine numpy`` and ``--engine numba`` give the same arms, stopping times and pulls
(``tests/test_kernels.py``).  ``numba`` is optional: ``AVAILABLE`` is False without it.
"""

from __future__ import annotations

from .core import (
                   AVAILABLE,
                   CURVE_POLICIES,
                   EXP3SPEC,
                   HEDGE,
                   UCBSPEC,
                   exp_weights_select,
                   iid_curve,
                   njit,
                   prange,
                   renewal_rounds,
                   ucb_select,
                   ucb_update,
                   uniform3,
                   uniform4,
)
from .learners import CODES as KERNEL_POLICIES

__all__ = ["AVAILABLE", "CURVE_POLICIES", "EXP3SPEC", "HEDGE", "KERNEL_POLICIES", "UCBSPEC", "exp_weights_select",
           "iid_curve", "njit", "prange", "renewal_rounds", "ucb_select", "ucb_update", "uniform3", "uniform4"]
