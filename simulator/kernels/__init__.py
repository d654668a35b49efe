"""The compiled engine (numba): every learner with a compiled form in every setting, one lane per loop.

Each learner's compiled functions live in its own file next to its numpy policy
(``simulator/policies``, ``learners.Kernel``); the loops here take them as arguments.  The
numpy policies and environments (``simulator/envs``) are the readable definition and the
reference twins the truth; the compiled functions repeat the numpy
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
                   iid_curve,
                   njit,
                   prange,
                   renewal_rounds,
                   uniform3,
                   uniform4,
)

__all__ = ["AVAILABLE", "iid_curve", "njit", "prange", "renewal_rounds", "uniform3", "uniform4"]
