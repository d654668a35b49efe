"""Stochastic settings: each arm's emitted count drawn i.i.d. per round (Assumption D.4).

``law="empirical"``: arm ``(d, K)`` on prompt ``p`` emits ``y`` with the empirical law of
``min(K, L_d(t)) + 1`` over the prompt's positions (over its logged steps on an engine log:
exact for every K up to the logged one, ``traces.schema.INFORMATION``).  ``law="tgd"``: a
truncated geometric law (BanditSpec Prop. 4.5) whose acceptance rate is fitted per (prompt, drafter) by
matching the mean accepted length at ``k_max``.  ``law="autocorrelated"``: the empirical
law, but in blocks of ``BLOCK`` rounds a hidden state (drawn per block, shared by all arms)
swaps each arm's law for the two-point law on ``{1, K+1}`` with the same mean: the
conditional mean given the past stays ``mu_i`` (Assumption 4.1 holds exactly) while the
spread of the rewards is autocorrelated, as in real traces.  The output length stays the
recorded one.
"""

from __future__ import annotations

import numpy as np

from traces import Arm, Trace, arm_from_name

from .. import rng as crng
from ..kernels import scalar_math as sm
from .base import ArmTable, Env


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


def fit_tgd_rate(mean_accepted: float, k: int) -> float:
    """``p`` with ``E[min(G, k)] = sum_{i<=k} p^i = mean_accepted`` (G geometric)."""
    m = float(mean_accepted)
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


class StochasticEnv(Env):
    name = "stochastic"

    BLOCK = 16
    LAWS = ("empirical", "tgd", "autocorrelated")

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
        self.key = crng.env_key(seed, f"stochastic:{law}")
        L = max(self.table.L, 1)
        P, A = trace.n_prompts, len(arms)
        pmf = np.zeros((P, A, L + 1))
        self.fitted_p = None
        if law in ("empirical", "autocorrelated"):
            for p in range(P):
                for a in range(A):  # accepted per position, 0..K: chains and trees (Trace.accepted)
                    x = trace.accepted(arms[a], p)  # a partial trace: the logged steps only
                    pmf[p, a] = np.bincount(x, minlength=L + 1)[: L + 1] / len(x)
        else:
            if self.table.has_trees:
                raise ValueError("law 'tgd' models chains of i.i.d. acceptances; use --law empirical with tree arms")
            k_max = trace.k_max
            rates = np.zeros((P, len(trace.drafter_names)))
            for p in range(P):
                n = int(self.lengths[p])
                acc = trace.accept[p, :, :n].astype(float)
                acc[acc < 0] = np.nan  # a partial trace: the logged steps only
                means = np.nanmean(acc, axis=1)
                rates[p] = [fit_tgd_rate(m, k_max) for m in means]
            self.fitted_p = rates
            pr = rates[:, self.table.drafter_idx]  # (P, A)
            pmf = tgd_pmf(pr, np.broadcast_to(self.table.k, (P, A)), L)
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
