"""Policy-rounds per second against peer libraries on one 16-arm Bernoulli instance, side by
side in one run (issue "12.").  The peers are a benchmark extra, not dependencies:

    .venv/bin/pip install 'specregret[bench]'      # mabwiser==2.7.4, SMPyBandits==0.9.7
    .venv/bin/python benchmarks/peers.py [--seconds 2]

Instance: arm i pays 1 with probability ``mu_i = 0.1 + 0.8 i / 15`` (our simulator sees it as a
two-point law on {1, 2} tokens per round, the same Bernoulli).  A policy-round is one choice
plus one update.  Ours: ``simulator.runner.simulate_env`` (the compiled engine, both cores)
over many runs of one long output; SMPyBandits' ``UCB`` and MABWiser's ``UCB1``: their own
choose/update loop in Python, one core, as their documentation drives them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator.envs.stochastic import StochasticEnv  # noqa: E402
from simulator.runner import simulate_env  # noqa: E402

K = 16
MU = 0.1 + 0.8 * np.arange(K) / (K - 1)


def ours(policy: str, seconds: float) -> float:
    pmf = np.stack([1 - MU, MU], axis=1)  # P(1 token), P(2 tokens)
    n = 4000
    env = StochasticEnv.from_laws(pmf[None], np.array([n]), [f"b{i}@1" for i in range(K)], law="given")
    simulate_env(env, policy, 4)  # compile / load from cache
    runs = 64
    while True:
        t0 = time.perf_counter()
        res = simulate_env(env, policy, runs)
        dt = time.perf_counter() - t0
        if dt > seconds or runs >= 1 << 16:
            return float(res["stopping_time"].sum()) / dt
        runs *= 2


def smpybandits(seconds: float) -> float:
    import scipy.special

    if not hasattr(scipy.special, "btdtri"):  # removed in scipy 1.15; SMPyBandits 0.9.7 imports it
        scipy.special.btdtri = scipy.special.betaincinv
    from SMPyBandits.Policies import UCB

    rng = np.random.default_rng(0)
    pol = UCB(K)
    pol.startGame()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(200):
            a = pol.choice()
            pol.getReward(a, float(rng.random() < MU[a]))
            n += 1
    return n / (time.perf_counter() - t0)


def mabwiser(seconds: float) -> float:
    from mabwiser.mab import MAB, LearningPolicy

    rng = np.random.default_rng(0)
    arms = list(range(K))
    mab = MAB(arms=arms, learning_policy=LearningPolicy.UCB1(alpha=1.0))
    mab.fit(decisions=arms, rewards=[float(rng.random() < m) for m in MU])
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(20):
            a = mab.predict()
            mab.partial_fit([a], [float(rng.random() < MU[a])])
            n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    rates = {"specregret ucb1 (compiled, 2 cores)": ours("ucb1", a.seconds),
             "specregret ucbspec (compiled, 2 cores)": ours("ucbspec", a.seconds)}
    for name, fn in (("SMPyBandits 0.9.7 UCB", smpybandits), ("MABWiser 2.7.4 UCB1", mabwiser)):
        try:
            rates[name] = fn(a.seconds)
        except ImportError:
            rates[name] = float("nan")
            print(f"note: {name} not installed (pip install 'specregret[bench]')", file=sys.stderr)
    base = rates["specregret ucb1 (compiled, 2 cores)"]
    print(f"{'implementation':<40} {'rounds/s':>14} {'specregret ucb1 / this':>24}")
    for name, r in rates.items():
        print(f"{name:<40} {r:14,.0f} {base / r:24.1f}")


if __name__ == "__main__":
    main()
