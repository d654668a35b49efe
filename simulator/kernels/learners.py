"""The building blocks of every compiled learner, and ``Kernel``: a learner's compiled form.

A learner is one file (``simulator/policies/*.py``): its dataclass (parameters, validation,
the paper's equations), its numpy ``reset``/``select``/``update`` over lanes and its compiled
``init``/``on_prompt``/``select``/``update`` for one lane, declared as ``kernel = Kernel(...)``.
The lane loops (``simulator.kernels.loops``, ``core.iid_curve``) take those functions as
arguments: each learner compiles its own specialisation of each loop, once, into numba's
on-disk cache.  The compiled functions repeat the numpy policy's operations in its order
(sums in index order, ``simulator.policies.base.rowsum``), so both engines choose the same
arms on the same uniforms (``tests/test_kernels.py``).

The compiled functions of a learner, one lane at a time (``st`` float state, ``rows x cols``;
``ist`` int state, ``ist[0]`` = rounds learned from, ``ist[BATCH]`` (the last slot) = the number of
unfinished sequences in the lane's batch this round, written by the loop before ``select``
(1 outside batch serving), ``ist[1:BATCH]`` the learner's own; ``prm`` floats with ``prm[0]``/``prm[1]``
the reward range over the arm set, then the learner's own; ``itab`` ints; ``ftab`` floats,
all built by the policy's ``kernel_tables``)::

    init(A, st, ist, prm, itab)
    on_prompt(st, ist, prm, itab, prompt)
    select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp) -> arm
    update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp)

``g`` is the lane's round counter (its uniforms' counter); ``r`` the reward of the played arm;
full-information learners read ``F`` (per prompt, expert and position: their losses) and the
verified positions ``pos .. pos+e-1`` instead.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .core import AVAILABLE, njit

_NDTRI_P0 = np.array([-5.99633501014107895267E1, 9.80010754185999661536E1, -5.66762857469070293439E1,
                      1.39312609387279679503E1, -1.23916583867381258016E0])
_NDTRI_Q0 = np.array([1.95448858338141759834E0, 4.67627912898881538453E0, 8.63602421390890590575E1,
                      -2.25462687854119370527E2, 2.00260212380060660359E2, -8.20372256168333339912E1,
                      1.59056225126211695515E1, -1.18331621121330003142E0])
_NDTRI_P1 = np.array([4.05544892305962419923E0, 3.15251094599893866154E1, 5.71628192246421288162E1,
                      4.40805073893200834700E1, 1.46849561928858024014E1, 2.18663306850790267539E0,
                      -1.40256079171354495875E-1, -3.50424626827848203418E-2, -8.57456785154685413611E-4])
_NDTRI_Q1 = np.array([1.57799883256466749731E1, 4.53907635128879210584E1, 4.13172038254672030440E1,
                      1.50425385692907503408E1, 2.50464946208309415979E0, -1.42182922854787788574E-1,
                      -3.80806407691578277194E-2, -9.33259480895457427372E-4])
_NDTRI_P2 = np.array([3.23774891776946035970E0, 6.91522889068984211695E0, 3.93881025292474443415E0,
                      1.33303460815807542389E0, 2.01485389549179081538E-1, 1.23716634817820021358E-2,
                      3.01581553508235416007E-4, 2.65806974686737550832E-6, 6.23974539184983293730E-9])
_NDTRI_Q2 = np.array([6.02427039364742014255E0, 3.67983563856160859403E0, 1.37702099489081330271E0,
                      2.16236993594496635890E-1, 1.34204006088543189037E-2, 3.28014464682127739104E-4,
                      2.89247864745380683936E-6, 6.79019408009981274425E-9])


@njit(inline="always")
def _polevl(x, c):
    a = c[0]
    for i in range(1, len(c)):
        a = a * x + c[i]
    return a


@njit(inline="always")
def _p1evl(x, c):
    a = x + c[0]
    for i in range(1, len(c)):
        a = a * x + c[i]
    return a


@njit(inline="always")
def ndtri_inline(y0):
    """Inverse standard normal CDF for ``0 < y0 < 1``: Cephes ``ndtri``, the algorithm of
    ``scipy.special.ndtri``, operation for operation (bit-identical; tested)."""
    code, y = 1, y0
    if y > 1.0 - 0.13533528323661269189:
        y, code = 1.0 - y, 0
    if y > 0.13533528323661269189:
        y = y - 0.5
        y2 = y * y
        x = y + y * (y2 * _polevl(y2, _NDTRI_P0) / _p1evl(y2, _NDTRI_Q0))
        return x * 2.50662827463100050242E0
    x = math.sqrt(-2.0 * math.log(y))
    x0 = x - math.log(x) / x
    z = 1.0 / x
    if x < 8.0:
        x1 = z * _polevl(z, _NDTRI_P1) / _p1evl(z, _NDTRI_Q1)
    else:
        x1 = z * _polevl(z, _NDTRI_P2) / _p1evl(z, _NDTRI_Q2)
    x = x0 - x1
    return -x if code != 0 else x


@njit(cache=True)
def ndtri(y0):
    """``ndtri_inline`` callable from Python (the learners inline ``ndtri_inline``)."""
    return ndtri_inline(y0)


@njit(inline="always")
def argmax(v, n):
    best, bv = 0, v[0]
    for i in range(1, n):
        if v[i] > bv:
            best, bv = i, v[i]
    return best


@njit(inline="always")
def categorical(st, row, n, u):
    """``simulator.policies.base.samplecategorical`` on ``st[row, :n]``: the number of prefix
    sums <= u.  (Rows are passed as indices, not views: a view costs reference counting
    every round.)"""
    acc, cnt = 0.0, 0
    for i in range(n):
        acc += st[row, i]
        if acc <= u:
            cnt += 1
    return min(cnt, n - 1)


@njit(inline="always")
def exp_weights(st, lrow, prow, n, eta):
    """``p ∝ exp(-eta (L - min L))`` with ``L = st[lrow]``, normalised by a sum in index order,
    into ``st[prow]``."""
    m = st[lrow, 0]
    for i in range(1, n):
        m = min(m, st[lrow, i])
    s = 0.0
    for i in range(n):
        st[prow, i] = math.exp(-eta * (st[lrow, i] - m))
        s += st[prow, i]
    for i in range(n):
        st[prow, i] = st[prow, i] / s


@njit(inline="always")
def bern_kl(p, q):
    p = min(max(p, 1e-12), 1 - 1e-12)
    q = min(max(q, 1e-12), 1 - 1e-12)
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


@njit(inline="always")
def normalhedge(st, N):
    """``simulator.policies.hedgespec.normalhedge_probs`` for one lane: regrets ``st[1]``, weights into ``st[2]``."""
    m, pos = 0.0, False
    for i in range(N):
        r = max(st[1, i], 0.0)
        m = max(m, r)
        pos = pos or r > 0
    if not pos:
        for i in range(N):
            st[2, i] = 1.0 / N
        return
    m = max(m, 1e-12)
    lo = math.log(m * m / (2 * (1 + math.log(N))) + 1e-300)
    hi = math.log(m * m / 2 + 1e-300) + 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        c = math.exp(mid)
        s = 0.0
        for i in range(N):
            r = max(st[1, i], 0.0)
            s += math.exp(min(r * r / (2 * c), 700.0))
        if s / N - np.e > 0:
            lo = mid
        else:
            hi = mid
    c = math.exp((lo + hi) / 2)
    top = -np.inf
    for i in range(N):
        r = max(st[1, i], 0.0)
        st[2, i] = math.log(max(r, 1e-300)) - math.log(c) + r * r / (2 * c) if r > 0 else -np.inf
        top = max(top, st[2, i])
    s = 0.0
    for i in range(N):
        st[2, i] = math.exp(st[2, i] - top) if st[1, i] > 0 else 0.0
        s += st[2, i]
    s = max(s, 1e-300)
    for i in range(N):
        st[2, i] = st[2, i] / s



@njit(inline="always")
def no_init(A, st, ist, prm, itab):
    """``init`` of a learner whose state starts at zero."""


@njit(inline="always")
def no_on_prompt(st, ist, prm, itab, prompt):
    """``on_prompt`` of a learner that ignores prompt boundaries."""


def _stable_id(fn: Any) -> str:
    """A name for a compiled function that is the same in every process and changes with its
    source (its file's, the engine's and the environments' in ``simulator/envs``, which hold the
    compiled emission rules the loops inline, ``kernels.envs.RULES``): numba's on-disk cache of a
    loop specialised to the function finds it again in a new process, and never serves a stale
    one after an edit."""
    h = hashlib.sha256()
    here = Path(__file__)
    files = (fn.py_func.__code__.co_filename, __file__, str(here.with_name("core.py")), str(here.with_name("envs.py")),
             *map(str, sorted((here.parents[1] / "envs").glob("*.py"))))  # the environments' compiled rules
    for f in files:
        try:
            h.update(Path(f).read_bytes())
        except OSError:  # source not on disk (an interactive session): one id per process
            h.update(str(id(fn)).encode())
    return f"specregret-kernel:{fn.py_func.__module__}.{fn.py_func.__qualname__}:{h.hexdigest()[:20]}"


_NAMED: dict[str, Any] = {}


def _name(fn: Any) -> None:
    if not AVAILABLE or fn in _NAMED.values():
        return
    uid = _stable_id(fn)
    if uid in _NAMED:  # the same source loaded twice (a reloaded module): a new id
        uid = f"{uid}:{len(_NAMED)}"
    try:
        fn._set_uuid(uid)
    except AssertionError:  # numba already gave it a random id: it compiles in every process
        return
    _NAMED[uid] = fn


@dataclass(frozen=True)
class Kernel:
    """A learner's compiled form: its name (``python -m simulator policies``) and its numba
    functions (signatures in the module docstring).  A policy class declares it as
    ``kernel = Kernel(...)`` and builds its tables in ``kernel_tables``."""

    name: str
    select: Any
    update: Any
    init: Any = no_init
    on_prompt: Any = no_on_prompt

    def __post_init__(self) -> None:
        for fn in (self.select, self.update, self.init, self.on_prompt):
            _name(fn)

    def functions(self) -> tuple:
        """The four functions in the lane loops' argument order."""
        return self.init, self.on_prompt, self.select, self.update


@dataclass
class Tables:
    """A learner's tables for its compiled form (``Policy.kernel_tables``): its own floats
    (``prm`` after the reward range), ints, floats, and the shape of ``st`` (default ``(5, A)``)."""

    prm: tuple = ()
    itab: np.ndarray | None = None
    ftab: np.ndarray | None = None
    shape: tuple[int, int] | None = None


@dataclass
class LearnerArgs:
    """A learner's compiled functions and tables, as the lane loops take them."""

    kernel: Kernel
    prm: np.ndarray  # float64
    itab: np.ndarray  # int64
    ftab: np.ndarray  # float64
    rows: int
    cols: int

    def args(self) -> tuple:
        return (*self.kernel.functions(), self.prm, self.itab, self.ftab, self.rows, self.cols)


def has_kernel(policy: Any) -> bool:
    """A class has a compiled form when it declares one itself: a subclass (a user's variant
    of a built-in learner) runs on numpy unless it declares its own."""
    cls = policy if isinstance(policy, type) else type(policy)
    return isinstance(cls.__dict__.get("kernel"), Kernel)


def learner_args(policy: Any, ctx: Any) -> LearnerArgs:
    """The compiled functions and tables of ``policy`` in context ``ctx`` (``policy`` is reset
    on one lane; its ``kernel_tables`` reads what ``reset`` built, so both engines share one
    construction)."""
    if not has_kernel(policy):
        raise ValueError(f"policy {policy.spec()!r} has no compiled kernel")
    policy.reset(1, ctx)
    t = policy.kernel_tables(ctx)
    A = ctx.n_arms
    prm = np.array([ctx.reward_lo, ctx.reward_hi, *t.prm], np.float64)
    itab = np.ascontiguousarray(t.itab if t.itab is not None else np.zeros(1, np.int64), np.int64)
    ftab = np.ascontiguousarray(t.ftab if t.ftab is not None else np.zeros(A), np.float64)
    rows, cols = t.shape if t.shape is not None else (5, A)
    return LearnerArgs(type(policy).kernel, prm, itab, ftab, int(rows), int(cols))
