"""Policy-rounds per second: vectorised policies against their line-by-line reference twins,
measured side by side in one run (issue 6's replay-engine benchmark, first part).

    .venv/bin/python benchmarks/policy_speed.py [--seconds 1.0]

A "policy-round" is one select + update for one run.  Rewards are drawn from fixed arm means
(the cost of the environment is excluded, so this measures the learner).  Hedge is timed on
its probability computation and loss update (``hedge_probs`` + cumulative loss).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from simulator import rng as crng  # noqa: E402
from simulator.policies import PolicyContext, make_policy  # noqa: E402
from simulator.policies.hedgespec import hedge_probs  # noqa: E402
from simulator.policies.reference import EXP3SpecReference, HedgeReference, UCBSpecReference  # noqa: E402

L = 8


def vec_rate(name: str, K: int, R: int, seconds: float) -> float:
    ctx = PolicyContext(n_arms=K, arm_names=tuple(f"d@{i}" for i in range(K)), L=L, reward_lo=1.0,
                        reward_hi=L + 1.0)
    means = np.linspace(1.5, L, K)
    key = crng.stream_key(0, "bench")
    rounds, t0 = 0, time.perf_counter()
    if name == "hedge":
        cum, t = np.zeros((R, K)), np.zeros(R, dtype=np.int64)
        while time.perf_counter() - t0 < seconds:
            for _ in range(50):
                hedge_probs(cum, t)
                cum += np.random.default_rng(rounds).random((R, K))
                t += 1
                rounds += 1
    else:
        pol = make_policy(name)
        pol.reset(R, ctx)
        act = np.ones(R, dtype=bool)
        lanes = np.arange(R)[:, None]
        while time.perf_counter() - t0 < seconds:
            for _ in range(50):
                u = crng.uniform(key, lanes, rounds, 0)
                arms = pol.select(u)
                pol.update(arms, np.round(means[arms]), act)
                rounds += 1
    return rounds * R / (time.perf_counter() - t0)


def ref_rate(name: str, K: int, seconds: float) -> float:
    means = np.linspace(1.5, L, K)
    if name == "hedge":
        tw = HedgeReference(K)
    else:
        tw = UCBSpecReference(K, L) if name == "ucbspec" else EXP3SpecReference(K, L)
    rng = np.random.default_rng(0)
    rounds, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(50):
            if name == "hedge":
                tw.probabilities()
                tw.observe(list(rng.random(K)))
            else:
                a = tw.select(float(rng.random()))
                tw.update(a, float(round(means[a])))
            rounds += 1
    return rounds / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=1.0)
    a = ap.parse_args()
    print(f"{'policy':9} {'K':>3} {'R':>5} {'vectorised rounds/s':>20} {'reference loop':>15} {'ratio':>8}")
    for name in ("ucbspec", "exp3spec", "hedge"):
        for K in (4, 16, 64):
            ref = ref_rate(name, K, a.seconds)
            for R in (1, 100, 1000):
                v = vec_rate(name, K, R, a.seconds)
                print(f"{name:9} {K:3d} {R:5d} {v:20,.0f} {ref:15,.0f} {v / ref:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
