"""Transcendental functions with the same bits in both engines, whatever SIMD the CPU has.

numpy picks the code of ``np.exp``, ``np.log`` and ``np.power`` at run time from the CPU's
SIMD features: on an AVX-512 CPU its own vectorised ``exp``/``log`` and SVML's ``pow``, which
round differently from the C library's scalar functions for about 1 in 20 random arguments
(``exp``, ``pow``) and 1 in 500 (``log``) on the AMD EPYC measured.  The compiled engine calls
the C library (numba lowers ``math.exp`` to libm's ``exp``, one element at a time), so one ulp
of difference changed an EXP3 draw and the two engines' trajectories parted on AVX-512
machines only.

Contract: for float64 arrays (or scalars) ``x``, ``y``

* ``exp(x)``, ``log(x)`` and ``power(x, y)`` hold, element by element, the bits of
  ``math.exp``, ``math.log`` and ``math.pow`` (CPython's ``math`` calls the same C library
  function as the compiled kernels) wherever those return a float (``log(0)`` is ``-inf``,
  ``log(-1)`` is ``nan``, where ``math`` raises);
* ``ndtri(y)`` for ``0 < y < 1`` holds the bits of the kernels' Cephes ``ndtri``
  (``simulator.kernels.learners.ndtri_inline``, itself bit-identical to ``scipy.special.ndtri``);
  outside ``(0, 1)`` its value is unspecified (the policies clip first);

whatever SIMD the CPU has.  They are plain numpy ufuncs (broadcasting, ``out=``, ``np.errstate``
as usual) that ``numba.vectorize`` compiles at first use (module ``__getattr__``; numba caches
the element functions next to this file) without ``fastmath`` and without Intel SVML
(``simulator.kernels`` sets ``NUMBA_DISABLE_INTEL_SVML=1`` before numba is imported;
``USING_SVML`` says whether that held), so each element is one call of the C library function;
a call on an array costs about what ``np.exp`` costs without AVX-512.  ``np.sqrt`` (correctly
rounded by IEEE 754) and squaring (``x ** 2``: numpy multiplies) need no twin.

The numpy policies (``simulator/policies``) and environments (``simulator/envs``) call these
instead of ``np.exp``/``np.log``/``np.power``/``scipy.special.ndtri``;
``tests/test_same_bits.py`` checks the bits and scans those modules.  Without numba (the
compiled engine is then unavailable) they are numpy's and scipy's functions.

Across machines the bits are the C library's, so the two engines agree on every CPU, and
results agree between CPUs that run the same C library code: glibc (2.36 measured) runs an
FMA build of ``exp`` and ``pow`` on CPUs with FMA and AVX2 (x86-64-v3 and newer) and an SSE2
build on older ones, and the two differ in the last bit for about 1 in
1,500 ``exp`` and 1 in 1,250 ``pow`` arguments (``log``: none found in 600,000), so a
pre-AVX2 CPU can give other trajectories than a newer one (each engine still equal to the other).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .core import AVAILABLE

if AVAILABLE:
    from .learners import ndtri_inline

NAMES = ("exp", "log", "power", "ndtri")


# the element functions: one C library call each (numba's cache of ``_ndtri1`` is keyed on this
# file only: after editing ``learners.ndtri_inline``, delete __pycache__/scalar_math.*.nb?; the tests
# compare the two)
def _exp(x: float) -> float:
    return math.exp(x)


def _log(x: float) -> float:
    return math.log(x)


def _pow(x: float, y: float) -> float:
    return math.pow(x, y)


def _ndtri1(y: float) -> float:
    return ndtri_inline(y)


_ONE, _TWO = ["float64(float64)"], ["float64(float64, float64)"]
_ELEMENT = {"exp": (_ONE, _exp), "log": (_ONE, _log), "power": (_TWO, _pow), "ndtri": (_ONE, _ndtri1)}


def _build(name: str):
    """``name`` as a numba ufunc (its element function compiled once, then loaded from numba's
    cache next to this file), or numpy's or scipy's function without numba."""
    if not AVAILABLE:  # pragma: no cover - numba is a core dependency
        from scipy.special import ndtri

        return {"exp": np.exp, "log": np.log, "power": np.power, "ndtri": ndtri}[name]
    import numba

    if numba.config.USING_SVML:  # numba was imported before simulator.kernels, with SVML present
        warnings.warn("numba uses Intel SVML (it was imported before simulator.kernels): the numpy and numba "
                      "engines may differ in the last bit; set NUMBA_DISABLE_INTEL_SVML=1", RuntimeWarning,
                      stacklevel=3)
    sig, f = _ELEMENT[name]
    return numba.vectorize(sig, cache=True)(f).ufunc  # the plain numpy ufunc: no dispatch cost


def __getattr__(name: str):
    """Each function at its first use (the first costs a few tenths of a second: numba starts)."""
    if name == "USING_SVML":
        value = False
        if AVAILABLE:
            import numba

            value = bool(numba.config.USING_SVML)
    elif name in NAMES:
        value = _build(name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = ["USING_SVML", "exp", "log", "ndtri", "power"]  # noqa: F822  (built by __getattr__)
