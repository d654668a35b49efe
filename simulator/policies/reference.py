"""Slow reference twins, written line by line from the papers' algorithm boxes.

One object per run, plain Python scalars, no vectorisation.  Tests feed them the same
rewards and the same uniforms as the vectorised policies and require equal decisions.

A twin is a deliberate second implementation, not a copy to be folded into the learner's
file: each learner's one definition (numpy methods and compiled form) lives in its own file,
and these are written independently from the papers' pseudo-code so that the tests compare
two readings of the paper.  The runner never calls them.
"""

from __future__ import annotations

import math


def sample_by_inversion(p: list[float], u: float) -> int:
    """The first i with u < p_1 + ... + p_i (the last arm if rounding leaves u above the sum)."""
    c = 0.0
    for i, pi in enumerate(p):
        c += pi
        if u < c:
            return i
    return len(p) - 1


class UCBSpecReference:
    """BanditSpec Algorithm 8 (UCBSpec) for rewards ``Y in [1, L+1]``: one radius scale
    ``L/2`` for every arm (Eq. 6), ``L`` the widest reward range over the arms, whatever
    each arm's own range."""

    def __init__(self, K: int, L: float, delta: float = 0.5):
        self.K, self.delta = K, delta
        self.L = float(L)
        self.t = 0                      # rounds completed
        self.n = [0] * K                # n_{i,t}
        self.total = [0.0] * K          # sum of Y_{i,s} 1{I_s = i}

    def ucb(self, i: int) -> float:
        """UCB_{i,t} = mu_hat_{i,t} + cr_{i,t} with the current t and n_{i,t}."""
        n, t = self.n[i], self.t
        mu_hat = self.total[i] / n
        cr = (self.L / 2) * math.sqrt(
            (1 + n) / n**2 * (1 + 2 * math.log(self.K * t**2 * math.sqrt(1 + n) / self.delta))
        )
        return mu_hat + cr

    def select(self, u: float | None = None) -> int:
        t = self.t + 1                  # the round being played
        if t <= self.K:
            return t - 1                # I_t = t (0-based)
        best, best_val = 0, -math.inf
        for i in range(self.K):         # argmax_i UCB_{i,t-1}; first index wins ties
            v = self.ucb(i)
            if v > best_val:
                best, best_val = i, v
        return best

    def update(self, arm: int, y: float) -> None:
        self.t += 1
        self.n[arm] += 1
        self.total[arm] += y


class EXP3SpecReference:
    """BanditSpec Algorithm 9 (EXP3Spec) for rewards ``y in [1, L+1]``."""

    def __init__(self, K: int, L: float):
        self.K, self.L = K, L
        self.t = 0
        self.Z = [0.0] * K              # sum_{s<t} Zhat_{i,s}
        self.p = [1.0 / K] * K

    def probabilities(self) -> list[float]:
        t = self.t + 1
        eta = math.sqrt(math.log(self.K) / (t * self.K))
        m = min(self.Z)                 # shift for stability; cancels in the ratio
        w = [math.exp(-eta * (z - m)) for z in self.Z]
        s = sum(w)
        return [x / s for x in w]

    def select(self, u: float) -> int:
        self.p = self.probabilities()
        return sample_by_inversion(self.p, u)  # I_t ~ p_t

    def update(self, arm: int, y: float) -> None:
        z_hat = (self.L + 1 - y) / (self.L * self.p[arm])
        self.Z[arm] += z_hat
        self.t += 1


class HedgeReference:
    """Exponential weights over N experts (anytime eta_t = sqrt(8 ln N / t)), one run."""

    def __init__(self, N: int, eta: float = 0.0):
        self.N, self.eta = N, eta
        self.L = [0.0] * N
        self.t = 0

    def probabilities(self) -> list[float]:
        eta = self.eta if self.eta > 0 else math.sqrt(8 * math.log(max(self.N, 2)) / max(self.t, 1))
        m = min(self.L)
        w = [math.exp(-eta * (x - m)) for x in self.L]
        s = sum(w)
        return [x / s for x in w]

    def observe(self, losses: list[float]) -> None:
        self.L = [a + b for a, b in zip(self.L, losses, strict=True)]
        self.t += 1


class NormalHedgeReference:
    """NormalHedge (Chaudhuri, Freund, Hsu 2009), one run; c_t by scipy's brentq."""

    def __init__(self, N: int):
        self.N = N
        self.R = [0.0] * N

    def probabilities(self) -> list[float]:
        from scipy.optimize import brentq

        Rp = [max(r, 0.0) for r in self.R]
        if max(Rp) == 0:
            return [1.0 / self.N] * self.N

        def g(logc: float) -> float:
            c = math.exp(logc)
            return sum(math.exp(min(r * r / (2 * c), 700.0)) for r in Rp) / self.N - math.e

        m = max(Rp)
        c = math.exp(brentq(g, math.log(m * m / (2 * (1 + math.log(self.N)))) - 1, math.log(m * m / 2) + 5,
                            xtol=1e-13))
        w = [(r / c) * math.exp(r * r / (2 * c)) if r > 0 else 0.0 for r in Rp]
        s = sum(w)
        return [x / s for x in w]

    def observe(self, losses: list[float], p: list[float]) -> None:
        mix = sum(a * b for a, b in zip(p, losses, strict=True))
        self.R = [r + mix - f for r, f in zip(self.R, losses, strict=True)]


# -- textbook bandits on rewards x in [0, 1] (one run each) ---------------------------------
class _CountRef:
    def __init__(self, K: int):
        self.K, self.t, self.n, self.s = K, 0, [0] * K, [0.0] * K

    def update(self, arm: int, x: float) -> None:
        self.t += 1
        self.n[arm] += 1
        self.s[arm] += x

    def _argmax(self, vals: list[float]) -> int:
        best, bv = 0, -math.inf
        for i, v in enumerate(vals):
            if v > bv:
                best, bv = i, v
        return best


class UCB1Reference(_CountRef):
    def select(self, u: list[float]) -> int:
        if self.t < self.K:
            return self.t
        return self._argmax([self.s[i] / self.n[i] + math.sqrt(2 * math.log(self.t) / self.n[i])
                             for i in range(self.K)])


class KLUCBReference(_CountRef):
    def select(self, u: list[float]) -> int:
        if self.t < self.K:
            return self.t

        def kl(p: float, q: float) -> float:
            p, q = min(max(p, 1e-12), 1 - 1e-12), min(max(q, 1e-12), 1 - 1e-12)
            return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))

        idx = []
        for i in range(self.K):
            mean = min(max(self.s[i] / self.n[i], 0.0), 1.0)
            budget = math.log(max(self.t, 2)) / self.n[i]
            lo, hi = mean, 1.0
            for _ in range(40):
                mid = (lo + hi) / 2
                if kl(mean, mid) <= budget:
                    lo = mid
                else:
                    hi = mid
            idx.append(lo)
        return self._argmax(idx)


class ThompsonReference(_CountRef):
    def select(self, u: list[float]) -> int:
        from statistics import NormalDist

        z = [NormalDist().inv_cdf(min(max(x, 1e-12), 1 - 1e-12)) for x in u]
        return self._argmax([(self.s[i] + 0.5) / (self.n[i] + 1) + 0.5 / math.sqrt(self.n[i] + 1) * z[i]
                             for i in range(self.K)])


class EpsilonGreedyReference(_CountRef):
    def select(self, u: list[float]) -> int:
        eps = min(1.0, self.K / max(self.t, 1))
        if u[0] < eps:
            return min(int(u[1] * self.K), self.K - 1)
        return self._argmax([self.s[i] / self.n[i] if self.n[i] else math.inf for i in range(self.K)])


class EXP3IXReference:
    def __init__(self, K: int):
        self.K, self.t, self.L, self.p = K, 0, [0.0] * K, [1.0 / K] * K

    def eta(self) -> float:
        return math.sqrt(2 * math.log(self.K) / (self.K * (self.t + 1)))

    def select(self, u: list[float]) -> int:
        m = min(self.L)
        w = [math.exp(-self.eta() * (x - m)) for x in self.L]
        self.p = [x / sum(w) for x in w]
        return sample_by_inversion(self.p, u[0])

    def update(self, arm: int, x: float) -> None:
        self.L[arm] += (1 - x) / (self.p[arm] + self.eta() / 2)
        self.t += 1


class TsallisINFReference(EXP3IXReference):
    def select(self, u: list[float]) -> int:
        eta = 2 / math.sqrt(self.t + 1)
        m = min(self.L)
        lo, hi = m - 2 * math.sqrt(self.K) / eta, m - 2 / eta
        for _ in range(60):
            mid = (lo + hi) / 2
            if sum(4 / (eta * (x - mid)) ** 2 for x in self.L) < 1:
                lo = mid
            else:
                hi = mid
        x0 = (lo + hi) / 2
        w = [4 / (eta * (x - x0)) ** 2 for x in self.L]
        self.p = [x / sum(w) for x in w]
        return sample_by_inversion(self.p, u[0])

    def update(self, arm: int, x: float) -> None:
        self.L[arm] += (1 - x) / self.p[arm]
        self.t += 1


class SlidingWindowUCBReference:
    def __init__(self, K: int, window: int = 64, xi: float = 0.6):
        self.K, self.window, self.xi, self.hist = K, window, xi, []

    def select(self, u: list[float]) -> int:
        recent = self.hist[-self.window:]
        best, bv = 0, -math.inf
        for i in range(self.K):
            xs = [x for a, x in recent if a == i]
            v = math.inf if not xs else (sum(xs) / len(xs) + math.sqrt(
                self.xi * math.log(max(min(len(self.hist), self.window), 1)) / len(xs)))
            if v > bv:
                best, bv = i, v
        return best

    def update(self, arm: int, x: float) -> None:
        self.hist.append((arm, x))
