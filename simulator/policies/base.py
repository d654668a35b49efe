"""The policy protocol, the registry, and policy-spec parsing.

A policy is a small dataclass: hyperparameters are its fields, each declaring what values it
accepts (``param``: bounds, open or closed, choices; a float must be finite unless it says
otherwise), checked when the object is built, before the class's own ``__post_init__``;
learned state is set in ``reset`` as arrays with a leading lanes axis and ends in ``_``.  One
object simulates many independent lanes (runs x prompts) at once.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from traces import Arm, arm_from_name

from ..kernels import scalar_math as sm
from ..kernels.learners import Tables
from .errors import PolicyError

REWARDS = ("tokens", "throughput")
_TYPES = {"float": float, "int": int, "str": str, "bool": bool}


def param(default: Any, *, gt: float | None = None, ge: float | None = None, lt: float | None = None,
          le: float | None = None, choices: tuple[str, ...] | None = None, finite: bool = True,
          source: str = "") -> Any:
    """A policy hyperparameter with the values it accepts, for a dataclass field.

    Every built-in and plug-in policy gets the check when it is built (``Policy`` runs it
    before the class's own ``__post_init__``): a ``float`` field must be a finite number
    (``finite=False`` allows ``inf``; ``nan`` never passes) within the bounds, an ``int`` field
    an integer within them, a ``str`` field with ``choices`` one of them.  A field declared
    without ``param`` gets the type check only (a float must still be finite).

    Parameters
    ----------
    default : object
        The field's default value.
    gt, ge, lt, le : float, optional
        Open (``gt``, ``lt``) or closed (``ge``, ``le``) lower and upper bounds.
    choices : tuple of str, optional
        The accepted values of a string field.
    finite : bool
        Whether a float must be finite (default True).
    source : str
        Where the range comes from (paper, definition), for the reader of the class.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Demo(Policy):
    ...     delta: float = param(0.5, gt=0, lt=1)
    >>> Demo(delta=2.0)
    Traceback (most recent call last):
    ...
    simulator.policies.errors.PolicyError: policy 'policy': delta=2.0: expected a finite number in (0, 1)
    """
    meta = {"gt": gt, "ge": ge, "lt": lt, "le": le, "choices": choices, "finite": finite, "source": source}
    return dataclasses.field(default=default, metadata={"specregret.param": meta})


def _field_type(f: dataclasses.Field) -> type | None:
    """The field's type as a class (annotations may be strings under ``from __future__``)."""
    return f.type if isinstance(f.type, type) else _TYPES.get(str(f.type))


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def describe_param(f: dataclasses.Field) -> str:
    """What ``f`` accepts, e.g. ``a finite number in (0, 1)`` or ``an integer >= 1``."""
    meta = f.metadata.get("specregret.param", {})
    typ = _field_type(f)
    if meta.get("choices") is not None:
        return f"one of {list(meta['choices'])}"
    what = {float: "a finite number" if meta.get("finite", True) else "a number (not nan)",
            int: "an integer", bool: "true or false", str: "a string"}.get(typ, "a value")
    lo, hi = ((meta.get("gt"), "("), (meta.get("ge"), "[")), ((meta.get("lt"), ")"), (meta.get("le"), "]"))
    lo = next(((v, b) for v, b in lo if v is not None), None)
    hi = next(((v, b) for v, b in hi if v is not None), None)
    if lo and hi:
        return f"{what} in {lo[1]}{_fmt(lo[0])}, {_fmt(hi[0])}{hi[1]}"
    if lo:
        return f"{what} {'>' if lo[1] == '(' else '>='} {_fmt(lo[0])}"
    if hi:
        return f"{what} {'<' if hi[1] == ')' else '<='} {_fmt(hi[0])}"
    return what


def _param_ok(f: dataclasses.Field, value: Any) -> bool:
    meta = f.metadata.get("specregret.param", {})
    typ = _field_type(f)
    if meta.get("choices") is not None:
        return value in meta["choices"]
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if math.isnan(value) or (meta.get("finite", True) and math.isinf(value)):
            return False
    elif typ is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return False
    elif typ is not None:
        return isinstance(value, typ)
    else:
        return True
    gt, ge, lt, le = (meta.get(k) for k in ("gt", "ge", "lt", "le"))
    return not ((gt is not None and not value > gt) or (ge is not None and not value >= ge)
                or (lt is not None and not value < lt) or (le is not None and not value <= le))


def check_params(policy: Policy) -> None:
    """Refuse a policy whose hyperparameters are outside what their fields declare (``param``),
    or whose ``reward`` it cannot learn from: one ``PolicyError`` naming the policy, the
    parameter and the accepted values."""
    cls = type(policy)
    for f in dataclasses.fields(policy):
        if not f.init or f.name == "reward":
            continue
        value = getattr(policy, f.name)
        if not _param_ok(f, value):
            raise PolicyError(f"policy {cls.name!r}: {f.name}={value!r}: expected {describe_param(f)}")
    if policy.reward and policy.reward not in cls.rewards:
        raise PolicyError(f"policy {cls.name!r}: reward={policy.reward!r}: expected one of {list(cls.rewards)}"
                          if cls.rewards else f"policy {cls.name!r}: {cls.name} learns from no reward; drop reward=")


@dataclass(frozen=True)
class PolicyContext:
    """What a policy may know before the first round.

    Attributes
    ----------
    n_arms : int
    arm_names : tuple of str
    L : int
        Maximum speculation length among the arms (BanditSpec's L).
    reward_lo, reward_hi : float
        Range of the per-round reward over the arm set (tokens: ``[1, L+1]``).
    reward_kind : {"tokens", "throughput"}
        What the reward is: tokens emitted per round (BanditSpec's ``Y``), or the round's
        throughput relative to plain decoding, ``y * c(plain) / c(arm)``.
    arm_lo, arm_hi : ndarray (n_arms,) or None
        The range of each arm's own reward (tokens: ``[1, K_i + 1]``; throughput:
        ``[c0/c_i, (K_i + 1) c0/c_i]``); ``None`` means ``[reward_lo, reward_hi]`` for all.
        No built-in learner scales a radius or a rate by an arm's own range (the papers use
        one range for all arms): normalising learners use ``[reward_lo, reward_hi]``, UCBSpec
        ``common_width``; only ``ucbspec:width=per-arm`` reads the per-arm widths.
    objective : {"rounds", "time"}
        What the run optimises (the oracle's default criterion).
    hindsight_best : dict or None
        Best fixed arm per environment prompt by objective (``"rounds"``, ``"time"``), for
        the ``oracle`` baseline only: it is knowledge of the future and no learner reads it.
    drafter_names : tuple of str
        The trace's drafters, in the order of ``gamma`` in full-information feedback.
    arm_cost_s : ndarray (n_arms,) or None
        Seconds per round of each arm (mean over prompts), if the trace has costs.
    """

    n_arms: int
    arm_names: tuple[str, ...]
    L: int
    reward_lo: float
    reward_hi: float
    reward_kind: str = "tokens"
    objective: str = "rounds"
    arm_lo: np.ndarray | None = None
    arm_hi: np.ndarray | None = None
    hindsight_best: dict[str, np.ndarray] | None = None
    drafter_names: tuple[str, ...] = ()
    arm_cost_s: np.ndarray | None = None

    @property
    def arms(self) -> tuple[Arm, ...]:
        """The arms, parsed once from ``arm_names`` (the one arm parser: ``traces.arm_from_name``)."""
        return tuple(arm_from_name(n) for n in self.arm_names)

    def arm_range(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)`` of every arm's reward, shape (n_arms,) each."""
        if self.arm_lo is None or self.arm_hi is None:
            return np.full(self.n_arms, float(self.reward_lo)), np.full(self.n_arms, float(self.reward_hi))
        return np.asarray(self.arm_lo, float), np.asarray(self.arm_hi, float)

    def common_width(self) -> float:
        """The largest width ``hi_i - lo_i`` of an arm's reward range over the arm set: ``L``
        for tokens (BanditSpec's rewards in ``[1, L+1]``), the widest throughput range for a
        throughput reward.  UCBSpec's one radius scale is half of it (``sigma = L/2``).

        >>> PolicyContext(3, ("plain@0", "a@2", "b@4"), 4, 1.0, 5.0, arm_lo=np.ones(3),
        ...               arm_hi=np.array([1.0, 3.0, 5.0])).common_width()
        4.0
        """
        lo, hi = self.arm_range()
        return float((hi - lo).max()) if self.n_arms else 0.0


@dataclass
class Policy:
    """Base class; see the module docstring."""

    name: ClassVar[str] = "policy"
    feedback: ClassVar[str] = "bandit"  # "bandit" or "full"
    n_random: ClassVar[int] = 0  # uniforms per lane per round the policy consumes
    # reward kinds the policy can learn from, the first its default; () = reads no reward
    rewards: ClassVar[tuple[str, ...]] = REWARDS
    # its compiled form (``simulator.kernels.learners.Kernel``), declared by the class itself: a
    # subclass without its own runs on numpy
    kernel: ClassVar[Any] = None
    shorthand: ClassVar[str] = ""  # the field ``NAME:VALUE`` sets (``fixed:ARM``, ``oracle:rounds``)
    # whether its choice depends on the batch size: the loops call ``on_batch`` before every
    # ``select`` (compiled form: ``ist[BATCH]``), with 1 outside batch serving
    reads_batch: ClassVar[bool] = False
    reward: str = ""  # "" = the run's objective decides (rounds -> tokens, time -> throughput)

    def __post_init__(self) -> None:
        check_params(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass's own ``__post_init__`` runs after ``check_params``, whether or not it
        calls ``super().__post_init__()``: every policy, plug-ins included, is checked."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        if own is not None and not getattr(own, "_checks_params", False):
            def __post_init__(self: Policy) -> None:
                check_params(self)
                own(self)

            __post_init__._checks_params = True  # type: ignore[attr-defined]
            __post_init__.__doc__ = own.__doc__
            cls.__post_init__ = __post_init__  # type: ignore[method-assign]

    def reward_for(self, objective: str) -> str:
        """The reward this policy learns from in a run with ``objective``."""
        if self.reward:
            return self.reward
        natural = "throughput" if objective == "time" else "tokens"
        return natural if natural in self.rewards else (self.rewards[0] if self.rewards else "tokens")

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        self.ctx_ = ctx
        self.n_lanes_ = n_lanes

    def on_prompt_start(self, lanes: np.ndarray, prompts: np.ndarray) -> None:
        """Called when ``lanes`` begin environment prompts ``prompts`` (carry-state mode)."""

    def on_batch(self, n_seq: np.ndarray) -> None:
        """Called before ``select`` when the class declares ``reads_batch``: the number of
        unfinished sequences each lane decodes this round, shape (n_lanes,) (batch serving;
        1 in single-request decoding).  The default keeps it as ``self.batch_``."""
        self.batch_ = n_seq

    def select(self, u: np.ndarray) -> np.ndarray:
        """Arm index per lane, shape (n_lanes,); ``u`` is (n_lanes, n_random) uniforms."""
        raise NotImplementedError

    def update(self, arms: np.ndarray, rewards: np.ndarray, active: np.ndarray) -> None:
        """Bandit feedback: reward of the played arm, for lanes where ``active``."""

    def update_full(self, arms: np.ndarray, rewards: np.ndarray, active: np.ndarray,
                    positions: np.ndarray, verified: np.ndarray, gamma: np.ndarray) -> None:
        """Full-information feedback (``feedback = "full"`` policies): the positions this
        round verified, ``positions`` (n_lanes, W) with mask ``verified``, and every trace
        drafter's acceptance probability there, ``gamma`` (n_lanes, W, n_drafters): the 0/1
        teacher-forced match in greedy traces, ``alpha`` in sampling traces.  Nothing about
        unverified positions is ever passed."""

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        """The tables of the compiled form after ``reset(1, ctx)`` (``Tables``: the learner's
        floats after the reward range, ints, floats, the shape of its state); the default:
        none and state ``(5, n_arms)``."""
        return Tables()

    def notes(self) -> tuple[str, ...]:
        """Lines every output prints about this configuration (``config.json``, the summary):
        which variant runs, and ``"not the paper's guarantee"`` for an option outside the
        paper's analysis (``ucbspec:scale=2``).  None by default."""
        return ()

    def resolved(self, ctx: PolicyContext) -> dict[str, Any]:
        """Every hyperparameter's value, defaults included, for ``config.json``; a subclass adds
        what a parameter resolves to in ``ctx`` (UCBSpec: the radius width it uses)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.init and f.name != "reward":
                ok = isinstance(v, bool | int | str) or (isinstance(v, float) and math.isfinite(v))
                out[f.name] = v if ok else repr(v)
        return out

    def spec(self) -> str:
        """Canonical ``name[:k=v,...]`` string of this configuration."""
        params = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.init and getattr(self, f.name) != f.default}
        if self.shorthand and list(params) == [self.shorthand]:
            return f"{self.name}:{params[self.shorthand]}"
        if not params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in params.items())


REGISTRY: dict[str, type[Policy]] = {}


_BUILTIN_PACKAGE = __name__.rpartition(".")[0]  # simulator.policies


def _builtin(cls: type) -> bool:
    return cls.__module__.startswith(_BUILTIN_PACKAGE + ".")


def register(cls: type[Policy]) -> type[Policy]:
    """Add ``cls`` to the registry under ``cls.name``; a plug-in may not take a built-in's name
    (its results would be labelled as the built-in's)."""
    old = REGISTRY.get(cls.name)
    if old is not None and old is not cls and _builtin(old) and not _builtin(cls):
        raise PolicyError(f"policy {cls.name!r}: class {cls.__qualname__} (module {cls.__module__}) reuses the "
                          f"name of a built-in policy; give it a name of its own (name = ...)")
    REGISTRY[cls.name] = cls
    return cls


def _convert(value: str, typ: Any, field: str, name: str) -> Any:
    t = typ if isinstance(typ, type) else _TYPES.get(str(typ), str)
    try:
        if t is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return value.lower() in ("true", "1")
        return t(value)
    except ValueError:
        raise PolicyError(f"policy {name!r}: {field}={value!r}: expected {t.__name__}") from None


def make_policy(spec: str) -> Policy:
    """Build a policy from ``NAME`` or ``NAME:key=value,...`` (``fixed:ARM`` for fixed arms)."""
    name, _, rest = spec.partition(":")
    if name not in REGISTRY:
        from .plugins import load_entry_points

        load_entry_points()
    if name not in REGISTRY:
        raise PolicyError(f"unknown policy {name!r}; registered: {sorted(REGISTRY)} (a policy of your own: "
                          f"--policy-module MODULE_OR_FILE, docs/simulator.md 'Writing a policy')")
    cls = REGISTRY[name]
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    if rest:
        if cls.shorthand and "=" not in rest:
            rest = f"{cls.shorthand}={rest}"
        for item in rest.split(","):
            k, eq, v = item.partition("=")
            if not eq or k not in fields:
                raise PolicyError(
                    f"policy {spec!r}: unknown parameter {k!r}; expected one of {sorted(fields)}"
                )
            if k in kwargs:
                raise PolicyError(f"policy {spec!r}: parameter {k!r} given twice; give each parameter once")
            kwargs[k] = _convert(v, fields[k].type, k, name)
    try:  # the values are checked against their fields' declarations by the class (check_params)
        return cls(**kwargs)
    except TypeError as exc:
        raise PolicyError(f"policy {spec!r}: {exc}") from None


def call_policy(policy: Policy, method: str, *args: Any) -> Any:
    """``policy.method(*args)``; an exception from the policy's code becomes one
    ``PolicyError`` naming the policy, the method and what it raised."""
    try:
        return getattr(policy, method)(*args)
    except PolicyError:
        raise
    except Exception as exc:
        raise PolicyError(f"policy {policy.spec()}: {method} raised {type(exc).__name__}: {exc}") from exc


def select_arms(policy: Policy, u: np.ndarray, n_lanes: int, n_arms: int) -> np.ndarray:
    """``policy.select(u)`` checked before any cast: an integer array of shape ``(n_lanes,)``
    with every arm in ``0..n_arms-1``, returned as int64; else one ``PolicyError`` naming the
    policy and what it returned.  The one check of every numpy engine path (one dtype test and
    a min/max per round)."""
    arms = call_policy(policy, "select", u)
    expected = f"expected {n_lanes} integer arms in 0..{n_arms - 1} (an int array of shape ({n_lanes},))"
    if arms is None or not isinstance(arms, np.ndarray | list | tuple):
        what = "None" if arms is None else f"a {type(arms).__name__}"
        raise PolicyError(f"policy {policy.spec()}: select returned {what}; {expected}")
    try:
        arms = np.asarray(arms)
    except ValueError:  # a ragged list
        raise PolicyError(f"policy {policy.spec()}: select returned a ragged {type(arms).__name__}; "
                          f"{expected}") from None
    if arms.dtype.kind not in "iu":
        raise PolicyError(f"policy {policy.spec()}: select returned {arms.dtype} arms, e.g. "
                          f"{arms.ravel()[:4].tolist()}; {expected}")
    if arms.shape != (n_lanes,):
        raise PolicyError(f"policy {policy.spec()}: select returned arms of shape {arms.shape}; {expected}")
    if n_lanes and (arms.min() < 0 or arms.max() >= n_arms):
        bad = arms[(arms < 0) | (arms >= n_arms)]
        raise PolicyError(f"policy {policy.spec()}: select returned arms outside 0..{n_arms - 1}, e.g. "
                          f"{bad[:4].tolist()}; {expected}")
    return arms.astype(np.int64, copy=False)


def rowsum(x: np.ndarray) -> np.ndarray:
    """Sums over the last axis added in index order (``np.cumsum``), as the compiled kernels
    add; numpy's own ``sum`` is pairwise, which would differ in the last bit and could break a
    near-tie differently between ``--engine numpy`` and ``numba``."""
    return np.cumsum(x, axis=-1)[..., -1]


def softmin_probs(cum_loss: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Exponential weights ``p ∝ exp(-eta L)`` per lane (``cum_loss`` (n, K), ``eta`` (n,)),
    shifted by the smallest loss (it cancels) and normalised in index order: the numpy form of
    ``simulator.kernels.learners.exp_weights`` (EXP3Spec, EXP3-IX, HedgeSpec)."""
    shifted = cum_loss - cum_loss.min(axis=1, keepdims=True)
    w = sm.exp(-np.asarray(eta)[:, None] * shifted)
    return w / rowsum(w)[:, None]


def sample_categorical(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw per row: smallest i with ``u < p_1 + ... + p_i``."""
    c = np.cumsum(p, axis=1)
    return np.minimum((c <= u[:, None]).sum(axis=1), p.shape[1] - 1)
