"""Stochastic settings: each arm's emitted count drawn i.i.d. per round (Assumption D.4).

``law="empirical"`` (the default): arm ``(d, K)`` on prompt ``p`` emits ``y`` with the
empirical law of the tokens emitted per round along *its own* fixed-arm replay path
(:func:`round_counts`: rounds start at ``t = 0``, emit ``min(K, L_d(t)) + 1`` and jump), so
a fixed arm's expected MAT is its replay MAT up to the last round's truncation.  On a
sampling trace a drafter with a draft distribution has a random path; its law is the
expected-occupation law (every position weighted by the probability that a round of the arm
starts there, each round's law from ``beta``), exact in the same sense for the
expectations.  On an engine log (``traces.schema.INFORMATION`` partial) the law is that of
its logged steps, i.e. the engine's own rounds (exact for every K up to the logged one); for
an adaptive-length log (steps at varying draft lengths, censored at their own) the law of
``min(L, K)`` is the Kaplan-Meier estimate from the prompt's steps (``traces.censored``).
``law="positions"``: the law of ``min(K, L_d(t)) + 1`` over *all* positions of the output
(the earlier ``empirical`` law, kept for comparison bit for bit): a long accepted run covers many
positions, so it over-weights long accepts against the rounds the arm plays.
``law="tgd"``: a truncated geometric law (BanditSpec Prop. 4.5) whose acceptance rate is
fitted per (prompt, arm) by matching the mean accepted per round of the arm's own rounds.
``law="autocorrelated"``: the empirical (rounds) law, but in blocks of ``BLOCK`` rounds a
hidden state (drawn per block, shared by all arms) swaps each arm's law for the two-point
law on ``{1, K+1}`` with the same mean: the conditional mean given the past stays ``mu_i``
(Assumption 4.1 holds exactly) while the spread of the rewards is autocorrelated, as in
real traces.  The output length stays the recorded one.
"""

from __future__ import annotations

import numpy as np

from traces import Arm, Trace, arm_from_name

from .. import rng as crng
from ..kernels import scalar_math as sm
from ..kernels.core import njit, uniform4
from .base import ArmTable, Env, EnvArrays

EMIT_CODE = 1  # this rule's code in ``EnvArrays`` (``simulator.kernels.envs.emit`` dispatches on it)


def tgd_pmf(p: np.ndarray, K: np.ndarray, L: int) -> np.ndarray:
    """Truncated geometric law on {1..K+1}, padded to {1..L+1} (Prop. 4.5).

    ``P(x) = p^(x-1) (1-p)`` for ``x <= K`` and ``P(K+1) = p^K``.

    >>> tgd_pmf(np.array([0.5]), np.array([2]), 3).round(3).tolist()
    [[0.5, 0.25, 0.25, 0.0]]
    """
    p = np.asarray(p, float)[..., None]
    K = np.asarray(K)[..., None]
    x = np.arange(1, L + 2)
    pmf = np.where(x <= K, sm.power(p, x - 1) * (1 - p), 0.0)
    return np.where(x == K + 1, sm.power(p, K), pmf)


def fit_tgd_rate(drafts_accepted: float, k: int) -> float:
    """``p`` with ``E[min(G, k)] = sum_{i<=k} p^i = drafts_accepted`` (G geometric): the mean
    number of draft tokens accepted per round, the bonus token not included."""
    m = float(drafts_accepted)
    if m <= 0:
        return 0.0
    if m >= k - 1e-9:
        return 1.0 - 1e-9
    from scipy.optimize import brentq  # here, not at import: scipy.optimize costs ~1 s per command

    return float(brentq(lambda p: sum(p ** i for i in range(1, k + 1)) - m, 0.0, 1.0 - 1e-12))


def renewal_expected_rounds(pmf: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``E[ST]`` of a fixed arm with i.i.d. round law ``pmf`` over {1..L+1}.

    ``f(0) = 0``, ``f(r) = 1 + sum_x P(x) f(max(r - x, 0))``; returns ``f(n)``.
    ``pmf`` has shape (..., L+1) and ``n`` broadcasts against its leading axes.

    >>> float(renewal_expected_rounds(np.array([0.0, 1.0]), np.array(5)))
    3.0
    """
    pmf = np.asarray(pmf, float)
    n = np.asarray(n)
    N = int(n.max())
    L1 = pmf.shape[-1]
    f = np.zeros((N + 1,) + pmf.shape[:-1])
    for r in range(1, N + 1):
        prev = f[np.maximum(r - np.arange(1, L1 + 1), 0)]  # (L1, ...)
        f[r] = 1.0 + np.einsum("x...,...x->...", prev, pmf)
    idx = np.broadcast_to(n, pmf.shape[:-1])
    return np.take_along_axis(f, idx[None], axis=0)[0]


def _sampled(trace: Trace, arm: Arm) -> bool:
    """Whether replay draws ``arm``'s rounds from ``beta`` (a sampling trace's model drafter, a chain)."""
    if trace.manifest.get("kind") != "sampling" or arm.k == 0 or arm.is_tree or trace.beta is None:
        return False
    return bool(trace.manifest["drafters"][trace.drafter_index(arm.drafter)].get("stochastic", True))


def occupation_counts(beta: np.ndarray, K: int, L: int) -> np.ndarray:
    """Expected rounds of arm ``(d, K)`` by accepted count ``0..L``, replay on a sampling trace.

    ``beta`` is the drafter's acceptance probability at the output's positions (``N`` of them;
    0 past the end, as in replay).  A round starting at ``t`` accepts ``a`` with
    ``P_t(a) = prod_{j<a} beta_{t+j} (1 - beta_{t+a})`` (``a < K``), ``prod_{j<K} beta_{t+j}``
    (``a = K``); the next round starts at ``t + a + 1``.  Returns ``sum_t pi_t P_t(.)``, where
    ``pi_t`` is the probability that a round starts at ``t``: its total is ``E[ST]`` (the
    recursion of ``replay.expected_rounds_bernoulli``), its mean ``E[sum y] / E[ST]``.

    >>> occupation_counts(np.ones(6), 2, 2).tolist()
    [0.0, 0.0, 2.0]
    """
    N = len(beta)
    b = np.append(np.asarray(beta, float), np.zeros(K + 1))
    pos = np.arange(N)[:, None] + np.arange(K + 1)  # (N, K+1)
    surv = np.cumprod(np.c_[np.ones(N), b[pos[:, :K]]], axis=1)  # P(first a accepted), a = 0..K
    law = surv.copy()
    law[:, :K] *= 1 - b[pos[:, :K]]  # (N, K+1)
    pi = np.zeros(N + K + 2)
    pi[0] = 1.0
    for t in range(N):
        pi[t + 1: t + K + 2] += pi[t] * law[t]
    counts = np.zeros(L + 1)
    counts[: K + 1] = pi[:N] @ law
    return counts


def round_counts(trace: Trace, arm: Arm, prompt: int, L: int) -> np.ndarray:
    """Rounds of ``arm``'s fixed-arm replay path on ``prompt`` by accepted count ``0..L``.

    Greedy (and n-gram drafters of a sampling trace): rounds start at ``t = 0``, accept
    ``min(K, L_d(t))`` (a tree arm: its depth), emit that plus one and jump, as replay plays
    them; the value is the round's untruncated one (the environment truncates the last round).
    A sampling trace's model drafter: :func:`occupation_counts` (expected counts).  An engine
    log: its logged steps, the engine's own rounds, at ``min(K, .)``.  The total is the
    (expected) number of rounds.
    """
    if _sampled(trace, arm):
        n = int(trace.output_lens[prompt])
        beta = np.nan_to_num(trace.beta[prompt, trace.drafter_index(arm.drafter), :n].astype(np.float64), nan=0.0)
        return occupation_counts(beta, int(arm.k), L)
    if trace.partial and not arm.is_tree and arm.k > 0 and trace.censored(arm.drafter):
        # an adaptive-length log: steps censored at their own k; the Kaplan-Meier law of
        # min(L, K) on this prompt (traces.censored), weighted by the prompt's logged steps
        from traces.censored import capped_law

        law = capped_law(trace.survival(arm.drafter)[prompt], int(arm.k))
        out = np.zeros(L + 1)
        out[: len(law)] = law * len(trace.logged_steps(arm.drafter, prompt)[0])
        return out
    x = trace.accepted(arm, prompt)  # a partial trace: the logged steps only, already the rounds
    if not trace.partial:
        n, t, starts = len(x), 0, []
        while t < n:
            starts.append(t)
            t += int(x[t]) + 1
        x = x[starts]
    return np.bincount(x, minlength=L + 1)[: L + 1].astype(np.float64)


class StochasticEnv(Env):
    name = "stochastic"

    BLOCK = 16
    LAWS = ("empirical", "positions", "tgd", "autocorrelated")
    # the random stream's name per law: ``positions`` keeps the stream the earlier
    # ``empirical`` (positions) law drew from, so its results are bit-identical to it
    STREAM = {"positions": "empirical"}

    @classmethod
    def from_laws(cls, pmf: np.ndarray, lengths: np.ndarray, arm_names: list[str], *, seed: int = 0,
                  law: str = "given") -> StochasticEnv:
        """An environment from laws ``pmf`` (n_prompts, n_arms, L+1) and output lengths."""
        env = cls.__new__(cls)
        env.law = law
        P, A, L1 = pmf.shape
        env.table = ArmTable([arm_from_name(n) for n in arm_names],
                             np.zeros(A, dtype=np.int64), np.full(A, L1 - 1, dtype=np.int64))
        env.prompt_ids = [f"instance-{i}" for i in range(P)]
        env.categories = ["synthetic"] * P
        env.lengths = np.asarray(lengths, dtype=np.int64)
        env.key = crng.env_key(seed, f"stochastic:{law}")
        env.fitted_p = None
        env._set_pmf(np.asarray(pmf, float))
        return env

    def _set_pmf(self, pmf: np.ndarray) -> None:
        self.pmf = pmf
        self.cdf = np.cumsum(pmf, axis=2)
        self.cdf[..., -1] = 1.0
        if self.law == "autocorrelated":
            L1 = pmf.shape[2]
            mu = self.means
            k = np.maximum(self.table.k, 1)[None, :] if len(self.table.k) else 1
            two = np.zeros_like(pmf)
            top = (mu - 1) / k  # mass on K+1 so that the mean is unchanged
            idx = np.minimum(k, L1 - 1) * np.ones_like(mu, dtype=np.int64)
            np.put_along_axis(two, idx[..., None], top[..., None], axis=2)
            two[..., 0] += 1 - top
            self.cdf2 = np.cumsum(two, axis=2)
            self.cdf2[..., -1] = 1.0

    def __init__(self, trace: Trace, arms: list[Arm], *, law: str = "empirical", seed: int = 0):
        if law not in self.LAWS:
            raise ValueError(f"law: expected one of {list(self.LAWS)}, got {law!r}")
        self.law = law
        self.table = ArmTable.build(trace, arms)
        self.prompt_ids = trace.prompt_ids
        self.categories = trace.categories
        self.lengths = trace.output_lens
        self.key = crng.env_key(seed, f"stochastic:{self.STREAM.get(law, law)}")
        L = max(self.table.L, 1)
        P, A = trace.n_prompts, len(arms)
        pmf = np.zeros((P, A, L + 1))
        self.fitted_p = None
        if law == "positions":
            for p in range(P):
                for a in range(A):  # accepted per position, 0..K: chains and trees (Trace.accepted)
                    x = trace.accepted(arms[a], p)  # a partial trace: the logged steps only
                    pmf[p, a] = np.bincount(x, minlength=L + 1)[: L + 1] / len(x)
        else:
            if law == "tgd" and self.table.has_trees:
                raise ValueError("law 'tgd' models chains of i.i.d. acceptances; use --law empirical with tree arms")
            for p in range(P):
                for a in range(A):  # the rounds of the arm's own replay path (round_counts)
                    c = round_counts(trace, arms[a], p, L)
                    pmf[p, a] = c / c.sum()
            if law == "tgd":  # per (prompt, arm): TGD(p, K) has the mean accepted per round of its rounds
                acc = pmf @ np.arange(L + 1)
                self.fitted_p = np.array([[fit_tgd_rate(acc[p, a], int(self.table.k[a])) if self.table.k[a] else 0.0
                                           for a in range(A)] for p in range(P)])
                pmf = tgd_pmf(self.fitted_p, np.broadcast_to(self.table.k, (P, A)), L)
                pmf[:, self.table.k == 0] = np.eye(L + 1)[0]
        self._set_pmf(pmf)

    @property
    def means(self) -> np.ndarray:
        """``mu_i`` per prompt and arm: expected tokens per round, bonus included."""
        return (self.pmf * np.arange(1, self.pmf.shape[2] + 1)).sum(axis=2)

    def _draw(self, prompt, run, rnd, arms):
        u = crng.uniform(self.key, prompt, run, rnd, arms)
        cdf = self.cdf[prompt, arms]  # (..., L+1)
        if self.law == "autocorrelated":
            state = crng.uniform(self.key, prompt, run, rnd // self.BLOCK, 1 << 30) < 0.5
            cdf = np.where(state[..., None], self.cdf2[prompt, arms], cdf)
        return 1 + (cdf[..., :-1] <= u[..., None]).sum(axis=-1)

    def emit_all(self, prompt, run, rnd, pos):
        A = self.n_arms
        arms = np.broadcast_to(np.arange(A), (len(prompt), A))
        y = self._draw(prompt[:, None], run[:, None], rnd[:, None], arms)
        return np.minimum(y, (self.lengths[prompt] - pos)[:, None]).astype(np.int64)

    def emit(self, prompt, run, rnd, pos, arms):
        y = self._draw(prompt, run, rnd, arms)
        return np.minimum(y, self.lengths[prompt] - pos).astype(np.int64)

    def expected_fixed_st(self) -> np.ndarray:
        if self.law == "autocorrelated":
            return self._expected_st_blocks()
        return renewal_expected_rounds(self.pmf, self.lengths[:, None])

    def _expected_st_blocks(self) -> np.ndarray:
        """Exact E[ST] under block-switching laws: a recursion over (tokens left, round
        within the block, block state), with a rolling window of L+2 rows."""
        B = self.BLOCK
        pmfs = np.stack([self.pmf, np.diff(self.cdf2, prepend=0.0, axis=2)])  # (2, P, A, L1)
        L1 = pmfs.shape[-1]
        N = int(self.lengths.max())
        P, A = self.pmf.shape[:2]
        win = np.zeros((L1 + 1, B, 2, P, A))  # win[i] = f(r - i); f(<= 0) = 0
        out = np.zeros((P, A))
        zero = np.zeros((B, 2, P, A))
        for r in range(1, N + 1):
            new = np.ones((B, 2, P, A))
            for y in range(1, L1 + 1):
                prev = win[y - 1] if r - y > 0 else zero
                # next round: same block state, or a fresh 50/50 state at a block boundary
                nxt = np.concatenate([prev[1:], np.broadcast_to(0.5 * (prev[0, 0] + prev[0, 1]),
                                                                (1, 2, P, A))])
                new += pmfs[None, :, :, :, y - 1] * nxt
            win = np.concatenate([new[None], win[:-1]])
            hit = self.lengths == r
            out[hit] = 0.5 * (new[0, 0] + new[0, 1])[hit]
        return out

    def describe(self) -> dict:
        return {"name": self.name, "law": self.law}

    def kernel_arrays(self) -> EnvArrays:
        """The arrays of :func:`emit_stochastic`: the laws' CDFs, the second law and block length
        of ``autocorrelated``, the key of the draws."""
        auto = self.law == "autocorrelated"
        arrays = dict(key=self.key, cdf=np.ascontiguousarray(self.cdf, np.float64), block=self.BLOCK if auto else 0)
        if auto:
            arrays["cdf2"] = np.ascontiguousarray(self.cdf2, np.float64)
        return EnvArrays.blank(self, EMIT_CODE, **arrays)


@njit(inline="always")
def emit_stochastic(lengths, key, cdf, cdf2, block, p, run, rnd, pos, a):
    """:meth:`StochasticEnv.emit` for one lane, compiled (the same bits):
    ``1 + #{cdf[p, a, :-1] <= uniform(key, p, run, rnd, a)}``, the autocorrelated law switching to
    ``cdf2`` when ``uniform(key, p, run, rnd // block, 2^30) < 1/2``; capped at what remains."""
    left = lengths[p] - pos
    u = uniform4(key, p, run, rnd, a)
    y = 1
    if block > 0 and uniform4(key, p, run, rnd // block, 1 << 30) < 0.5:
        for j in range(cdf2.shape[2] - 1):
            if cdf2[p, a, j] <= u:
                y += 1
    else:
        for j in range(cdf.shape[2] - 1):
            if cdf[p, a, j] <= u:
                y += 1
    return min(y, left)
