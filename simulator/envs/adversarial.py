"""Oblivious adversarial settings (BanditSpec Assumption 5.1): ``y_{i,s}`` fixed before
the run, indexed by round ``s``, never by what the policy did.

``stream="recorded"``: one stream per prompt; arm ``i``'s sequence is the emitted counts
of its own fixed-arm greedy replay on that prompt, in recorded order (cycled if a policy
needs more rounds), so ``ST(ALG_i)`` equals the replay value exactly.

``stream="category-switch"``: one long stream, the prompts grouped by category and
concatenated, each arm's sequence the concatenation of its per-prompt sequences; the
best arm switches when the category does.

Two SYNTHETIC named streams built to make a theorem visible (derivations in docs/theory.md,
"Named adversarial streams"); they need exactly two arms with the same draft length
``K = L`` (arm 0 is the first listed, arm 1 the second; their recorded acceptances are not
used) and last the trace's total output length (one stream, like ``category-switch``):

``stream="sqrt-burst"`` (:func:`sqrt_burst_rewards`): arm 1 is at least as good in every
round, one token better in sparse bursts; EXP3Spec's regret grows like ``sqrt(len)``.

``stream="ucb-trap"`` (:func:`ucb_trap_rewards`): arm 0 is best in a first phase, arm 1
afterwards and overall; UCBSpec keeps playing arm 0 and its regret grows linearly.

Each stream is one entry of :data:`STREAMS` (a :class:`Stream`: name, builder, the claim it
illustrates, the policies and slopes its theory check runs); adding one there adds it to
``--stream``, this environment, ``experiments theory`` check 5 and the figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from traces import Arm, Trace, arm_from_name

from ..kernels.core import njit
from .base import ArmTable, Env, EnvArrays

EMIT_CODE = 2  # this rule's code in ``EnvArrays`` (``simulator.kernels.envs.emit`` dispatches on it)

def sqrt_burst_rewards(rounds: int, L: int) -> np.ndarray:
    """Stream "sqrt-burst", shape (2, rounds): ``y_{0,t} = L`` and
    ``y_{1,t} = L + 1{t in B}``, ``B = {floor(j^2 / L^2) : j >= 1}`` (rounds ``t = 1, 2, ...``).

    Arm 1 is never worse, so ``ST(ALG) >= ST(ALG_1)`` for every policy (Assumption 5.2).
    Its lead after ``T`` rounds is ``|B cap [1, T]| / L ~ sqrt(T)`` in EXP3Spec's loss units
    (Algorithm 9), while ``eta_T = sqrt(log 2 / (2T))``, so the weight ratio stays near
    ``exp(sqrt(log 2 / 2))``: EXP3Spec never concentrates and misses a fixed fraction of the
    ``L sqrt(T)`` bursts, ``Reg ~ sqrt(len / L) / (1 + e^0.59)`` (Theorem 5.3's ``sqrt(len)``).

    >>> sqrt_burst_rewards(12, 2)[1].tolist()
    [3, 3, 2, 3, 2, 3, 2, 2, 3, 2, 2, 3]
    """
    t = np.arange(1, rounds + 1)
    j = np.arange(1, L * int(np.sqrt(rounds)) + L + 2)
    burst = np.isin(t, j**2 // L**2)
    return np.stack([np.full(rounds, L), L + burst]).astype(np.int64)


def ucb_trap_rewards(n: int, L: int, rounds: int | None = None) -> tuple[np.ndarray, int]:
    """Stream "ucb-trap" for output length ``n``, shape (2, rounds), and its first phase ``T1``.

    Rounds ``t <= T1 = n // (5L)`` give ``(y0, y1) = (L+1, L)``, later rounds ``(1, 2)``.  At
    ``n = 5L T1``: ``ST(ALG_1) = (2L+1) T1 < ST(ALG_0) = 4L T1``, so arm 1 is the best fixed arm.
    UCBSpec learns arm 0 in phase 1 (arm 1 pulled ``O(L^2 log T1)`` times, Eq. 33) and keeps
    it while arm 0's mean, built on ``~T1`` pulls of ``L+1``, decays to about 2: ``(L-1) T1``
    rounds of phase 2, each a token short.  Regret ``-> (L-2) T1 / 2 = (L-2) n / (10 L)``.

    >>> Y, T1 = ucb_trap_rewards(40, 4)
    >>> T1, Y[:, 1].tolist(), Y[:, 2].tolist(), Y.shape
    (2, [5, 4], [1, 2], (2, 41))
    """
    T1 = n // (5 * L)
    first = np.arange(rounds if rounds is not None else n + 1) < T1
    return np.stack([np.where(first, L + 1, 1), np.where(first, L, 2)]).astype(np.int64), T1


def recorded_stream(trace: Trace, arms: list[Arm]) -> tuple[list, list[str], list[str], np.ndarray]:
    """Stream "recorded": per prompt, each arm's emitted counts along its own fixed-arm replay;
    returns (per prompt: per arm the counts), prompt ids, categories and lengths."""
    seqs = [[trace.fixed_arm_rounds(a, p) for a in arms] for p in range(trace.n_prompts)]
    return seqs, trace.prompt_ids, trace.categories, trace.output_lens


def category_switch_stream(trace: Trace, arms: list[Arm]) -> tuple[list, list[str], list[str], np.ndarray]:
    """Stream "category-switch": one stream, the prompts grouped by category and concatenated,
    each arm's counts the concatenation of its per-prompt ones (as :func:`recorded_stream`)."""
    seqs = recorded_stream(trace, arms)[0]
    order = sorted(range(trace.n_prompts), key=lambda p: (trace.categories[p], p))
    seqs = [[np.concatenate([seqs[p][a] for p in order]) for a in range(len(arms))]]
    return seqs, ["category-switch"], ["mixed"], np.array([int(trace.output_lens.sum())])


@dataclass(frozen=True)
class Stream:
    """One adversarial stream (``--stream NAME``): the one registry, :data:`STREAMS`, feeds the
    CLI's choices and help, the environment, the theory checks (``experiments theory`` check 5)
    and the figures.

    ``from_trace(trace, arms)`` builds a stream from the trace's recorded rounds (see
    :func:`recorded_stream`); ``rewards(n, L, rounds)`` a SYNTHETIC stream's (2, rounds) values
    for output length ``n`` (exactly one of the two is given); ``k_min`` is the
    smallest draft length it needs; ``policies`` are the learners its check runs, ``slopes`` the
    log-log regret slope each is claimed to show, ``capped`` those run only up to the check's
    shorter lengths (the slow ones).
    """

    name: str
    claim: str  # what it illustrates (CLI help, docs/theory.md "Named adversarial streams")
    from_trace: Callable[[Trace, list[Arm]], tuple] | None = None
    rewards: Callable[[int, int, int], np.ndarray] | None = None
    k_min: int = 0
    policies: tuple[str, ...] = ()
    slopes: dict[str, float] = field(default_factory=dict, hash=False)
    capped: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.from_trace is None) == (self.rewards is None):
            raise ValueError(f"stream {self.name!r}: give exactly one of from_trace (recorded) or rewards (synthetic)")

    @property
    def synthetic(self) -> bool:
        return self.rewards is not None


STREAMS: dict[str, Stream] = {s.name: s for s in (
    Stream("recorded", "each arm's own fixed-arm replay, round by round: ST(ALG_i) equals the replay value",
           recorded_stream),
    Stream("category-switch", "the prompts grouped by category in one stream: the best arm switches with the "
                              "category, so a switching policy can beat every fixed arm", category_switch_stream),
    Stream("sqrt-burst", "arm 1 never worse, one token better in sparse bursts: EXP3Spec's regret grows like "
                         "sqrt(len) (Theorem 5.3 attained)",
           rewards=lambda n, L, rounds: sqrt_burst_rewards(rounds, L),
           k_min=1, policies=("exp3spec", "ucbspec"), slopes={"exp3spec": 0.5}),
    Stream("ucb-trap", "arm 0 best in a first phase, arm 1 best overall: UCBSpec keeps arm 0 and its regret "
                       "grows linearly (no adversarial guarantee)",
           rewards=lambda n, L, rounds: ucb_trap_rewards(n, L, rounds)[0],
           k_min=3,  # the trap's rewards are L+1 > L > 2 > 1
           policies=("ucbspec", "exp3spec"), slopes={"ucbspec": 1.0}, capped=("exp3spec",)),
)}
# views of the registry: synthetic stream -> the smallest draft length it needs
SYNTHETIC_STREAMS = {s.name: s.k_min for s in STREAMS.values() if s.synthetic}


def synthetic_rewards(stream: str, n: int, L: int, rounds: int | None = None) -> np.ndarray:
    """(2, rounds) rewards of a named synthetic stream for output length ``n`` (``rounds``
    defaults to ``n + 1``: a round emits at least one token)."""
    rounds = n + 1 if rounds is None else rounds
    if stream not in SYNTHETIC_STREAMS:
        raise ValueError(f"stream: expected one of {list(SYNTHETIC_STREAMS)}, got {stream!r}")
    return STREAMS[stream].rewards(n, L, rounds)


class AdversarialEnv(Env):
    name = "adversarial"

    def __init__(self, trace: Trace, arms: list[Arm], *, stream: str = "recorded"):
        if stream not in STREAMS:
            raise ValueError(f"stream: expected one of {list(STREAMS)}, got {stream!r}")
        if stream in SYNTHETIC_STREAMS:
            ks = {a.k for a in arms}
            if len(arms) != 2 or len(ks) != 1 or min(ks) < SYNTHETIC_STREAMS[stream]:
                raise ValueError(f"stream {stream!r} (synthetic) needs exactly 2 arms with the same K >= "
                                 f"{SYNTHETIC_STREAMS[stream]}, got {[a.name for a in arms]}")
            n = int(trace.output_lens.sum())
            env = AdversarialEnv.synthetic(stream, [n], arms[0].k, [a.name for a in arms])
            self.__dict__.update(env.__dict__)
            self.table = ArmTable.build(trace, arms)
            self.prompt_ids = [stream]
            return
        self.stream = stream
        self.table = ArmTable.build(trace, arms)
        A = len(arms)
        seqs, self.prompt_ids, self.categories, self.lengths = STREAMS[stream].from_trace(trace, arms)
        S = int(self.lengths.max())
        self.Y = np.zeros((len(seqs), A, S), dtype=np.int64)
        self._st = np.zeros((len(seqs), A))
        for p, per_arm in enumerate(seqs):
            for a, s in enumerate(per_arm):
                reps = -(-S // len(s))
                self.Y[p, a] = np.tile(s, reps)[:S]
                self._st[p, a] = len(s)

    @classmethod
    def from_sequences(cls, Y: np.ndarray, lengths: np.ndarray, arm_names: list[str],
                       name: str = "sequences") -> AdversarialEnv:
        """An oblivious environment from given round-indexed values ``Y`` (streams, arms,
        rounds) with ``Y >= 1``; stream ``p`` stops after ``lengths[p]`` tokens."""
        env = cls.__new__(cls)
        env.stream = name
        Y = np.asarray(Y, dtype=np.int64)
        P, A, S = Y.shape
        arms = [arm_from_name(n) for n in arm_names]
        env.table = ArmTable(arms, np.zeros(A, dtype=np.int64), np.array([a.k for a in arms], dtype=np.int64))
        env.prompt_ids = [f"{name}-{i}" for i in range(P)]
        env.categories = [name] * P
        env.lengths = np.asarray(lengths, dtype=np.int64)
        env.Y = Y
        cum = np.cumsum(Y, axis=2)
        env._st = (cum < env.lengths[:, None, None]).sum(axis=2) + 1.0
        return env

    @classmethod
    def synthetic(cls, stream: str, lengths, L: int, arm_names: list[str] | None = None) -> AdversarialEnv:
        """One environment prompt per output length in ``lengths``, each the named synthetic
        stream built for that length (``sqrt-burst`` is the same stream cut at each length,
        ``ucb-trap``'s phases scale with it).  Arms default to ``a0@L``, ``a1@L``."""
        lengths = np.asarray(lengths, dtype=np.int64)
        S = int(lengths.max()) + 1
        Y = np.stack([synthetic_rewards(stream, int(n), L, S) for n in lengths])
        env = cls.from_sequences(Y, lengths, arm_names or [f"a0@{L}", f"a1@{L}"], name=stream)
        env.categories = ["synthetic"] * len(lengths)
        return env

    def emit_all(self, prompt, run, rnd, pos):
        s = np.minimum(rnd, self.Y.shape[2] - 1)
        y = self.Y[prompt, :, s]
        return np.minimum(y, (self.lengths[prompt] - pos)[:, None])

    def emit(self, prompt, run, rnd, pos, arms):
        s = np.minimum(rnd, self.Y.shape[2] - 1)
        return np.minimum(self.Y[prompt, arms, s], self.lengths[prompt] - pos)

    def expected_fixed_st(self) -> np.ndarray:
        return self._st.copy()

    def describe(self) -> dict:
        out = {"name": self.name, "stream": self.stream}
        if self.stream in SYNTHETIC_STREAMS:
            out.update(synthetic=True, length=int(self.lengths.max()))
        return out

    def kernel_arrays(self) -> EnvArrays:
        """The arrays of :func:`emit_adversarial`: the round-indexed table ``Y``."""
        return EnvArrays.blank(self, EMIT_CODE, Y=np.ascontiguousarray(self.Y, np.int64))


@njit(inline="always")
def emit_adversarial(lengths, Y, p, rnd, pos, a):
    """:meth:`AdversarialEnv.emit` for one lane, compiled: ``Y[p, a, min(rnd, S - 1)]``, capped
    at what remains."""
    return min(Y[p, a, min(rnd, Y.shape[2] - 1)], lengths[p] - pos)
