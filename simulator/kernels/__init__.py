"""The compiled engine (numba): every built-in learner in every setting, one lane per loop.

The numpy policies (``simulator/policies``) and environments (``simulator/envs``) are the
readable definition and the reference twins the truth; the kernels repeat the numpy
arithmetic operation for operation, on the same counter-based random numbers and with the
same transcendental functions (the C library's ``exp``/``log``/``pow``: ``math.*`` here,
``scalar_math`` there, never numpy's SIMD ones), so ``--engine numpy`` and ``--engine numba``
give the same arms, stopping times and pulls on every CPU (``tests/test_kernels.py``,
``tests/test_same_bits.py``).  ``numba`` is optional: ``AVAILABLE`` is False without it.
"""

from __future__ import annotations

import os
import sys

# Intel SVML, if installed, would let LLVM vectorise loops of ``math.exp`` with SVML's own
# exp, whose bits differ from the C library's (``scalar_math``); numba reads this once, at import
if "numba" not in sys.modules:
    os.environ["NUMBA_DISABLE_INTEL_SVML"] = "1"

from .core import (  # noqa: E402
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
from .learners import CODES as KERNEL_POLICIES  # noqa: E402

__all__ = ["AVAILABLE", "CURVE_POLICIES", "EXP3SPEC", "HEDGE", "KERNEL_POLICIES", "UCBSPEC", "exp_weights_select",
           "iid_curve", "njit", "prange", "renewal_rounds", "ucb_select", "ucb_update", "uniform3", "uniform4"]
