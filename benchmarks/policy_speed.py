"""Policy-rounds per second: compiled kernels, vectorised numpy policies and the line-by-line
reference twins, measured side by side in one run (issue "6. Performance and scale-out").

    .venv/bin/python benchmarks/policy_speed.py [--seconds 1.0] [--quick]

A "policy-round" is one select + update for one run.  Rewards are ``round(means[arm])`` from
fixed arm means (the environment is excluded, so this measures the learner).  Hedge is the
full-information learner: every round updates all K losses.  The kernel uses both cores
(numba ``prange`` over runs); numpy and the twins run on one.

It then prints the memory-bandwidth bound for UCBSpec's state and the achieved fraction, and
the end-to-end replay engine (numba vs numpy runner) on the bundled SmolLM2 trace.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from learner_kernels import learner_rounds  # noqa: E402  (benchmarks/ is on sys.path as the script's dir)

from simulator import kernels  # noqa: E402
from simulator import rng as crng  # noqa: E402
from simulator.policies import PolicyContext, make_policy  # noqa: E402
from simulator.policies.hedgespec import hedge_probs  # noqa: E402
from simulator.policies.reference import EXP3SpecReference, HedgeReference, UCBSpecReference  # noqa: E402

L = 8


def kernel_rate(name: str, K: int, R: int, seconds: float) -> float:
    means = np.linspace(1.5, L, K)
    learner_rounds(name, K, R, 8, means, L, 0.5)  # compile / warm up
    n = 64
    while True:  # grow the horizon until one call takes long enough to time
        t0 = time.perf_counter()
        learner_rounds(name, K, R, n, means, L, 0.5)
        dt = time.perf_counter() - t0
        if dt > seconds / 4 or n > 1 << 26:
            break
        n *= 4
    best = dt
    for _ in range(2):
        t0 = time.perf_counter()
        learner_rounds(name, K, R, n, means, L, 0.5)
        best = min(best, time.perf_counter() - t0)
    return n * R / best


def vec_rate(name: str, K: int, R: int, seconds: float) -> float:
    ctx = PolicyContext(n_arms=K, arm_names=tuple(f"d@{i}" for i in range(K)), L=L, reward_lo=1.0,
                        reward_hi=L + 1.0)
    means = np.linspace(1.5, L, K)
    key = crng.stream_key(0, "bench")
    rounds, t0 = 0, time.perf_counter()
    if name == "hedge":
        cum, t = np.zeros((R, K)), np.zeros(R, dtype=np.int64)
        loss = np.broadcast_to((L + 1.0 - np.round(means)) / L, (R, K))
        while time.perf_counter() - t0 < seconds:
            for _ in range(50):
                hedge_probs(cum, t)
                cum += loss
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
                tw.observe(list((L + 1.0 - np.round(means)) / L))
            else:
                a = tw.select(float(rng.random()))
                tw.update(a, float(round(means[a])))
            rounds += 1
    return rounds / (time.perf_counter() - t0)


def copy_bandwidth(nbytes: int, seconds: float = 0.3) -> float:
    """Bytes per second moved (read + write) by ``np.copyto`` on arrays of ``nbytes``."""
    a = np.ones(max(nbytes // 8, 1))
    b = np.empty_like(a)
    np.copyto(b, a)  # first touch: page faults are not bandwidth
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        np.copyto(b, a)
        reps += 1
    return 2 * a.nbytes * reps / (time.perf_counter() - t0)


def bandwidth_report(rate: float, K: int, R: int) -> None:
    state = 4 * K * 8  # counts, sums and the two cached radius terms, float64
    per_round = state + 4 * 8  # read the K-vectors for the argmax, write the pulled arm's 4 entries
    dram = copy_bandwidth(128 << 20)
    cache = copy_bandwidth(R * state)
    need = rate * per_round
    print(f"\nmemory bound, UCBSpec K={K} R={R}: state {state} B/run ({R * state / 1024:.0f} KiB for all runs);"
          f" a round touches {per_round} B")
    print(f"  achieved {rate / 1e6:.1f} M rounds/s = {need / 1e9:.1f} GB/s if every round streamed its state")
    print(f"  DRAM copy bandwidth {dram / 1e9:.1f} GB/s (1 core) -> bound {dram / per_round / 1e6:.1f} M rounds/s, "
          f"achieved fraction {need / dram:.2f}")
    print(f"  in-cache copy bandwidth ({R * state / 1024:.0f} KiB) {cache / 1e9:.1f} GB/s -> bound "
          f"{cache / per_round / 1e6:.1f} M rounds/s, achieved fraction {need / cache:.2f}")
    print("  (the kernel keeps one run's state in L1 for its whole horizon, so the bound that binds is "
          "arithmetic: K sqrt + K fused multiply-adds per round)")


def engine_report() -> None:
    from dataclasses import replace

    from simulator.runner import RunConfig, resolve, simulate

    cfg = RunConfig(trace="builtin:smollm2-greedy", policies=("ucbspec",), runs=200,
                    arms="pld@1-4,rtn4@1-4,skip5-24@1-4,early28@1-4", engine="numpy")
    for pol in ("ucbspec", "exp3spec"):
        out = {}
        for eng in ("numpy", "numba"):
            prep = resolve(replace(cfg, engine=eng))
            P = prep.env.n_prompts
            simulate(prep, make_policy(pol), np.arange(2), np.arange(2))  # warm up / compile
            t0 = time.perf_counter()
            res = simulate(prep, make_policy(pol), np.arange(P), np.arange(cfg.runs))
            dt = time.perf_counter() - t0
            out[eng] = (res, dt, int(res["stopping_time"].sum()))
        same = np.array_equal(out["numpy"][0]["pulls"], out["numba"][0]["pulls"])
        rn, rk = out["numpy"][2] / out["numpy"][1], out["numba"][2] / out["numba"][1]
        print(f"replay engine {pol:8} smollm2-greedy, 16 arms, 84 prompts x 200 runs, "
              f"{out['numba'][2]:,} rounds: numpy {rn / 1e6:.2f} M rounds/s, numba {rk / 1e6:.2f} M rounds/s, "
              f"x{rk / rn:.0f}; identical pulls: {same}")


def curve_report() -> None:
    """Long horizons on the log-grid curve engine: memory is runs x grid x arms."""
    from simulator.curves import log_grid, regret_curve
    from simulator.envs.stochastic import tgd_pmf

    pmf = tgd_pmf(np.array([0.5, 0.6, 0.7, 0.8]), np.full(4, 8), 8)
    grid = log_grid(100, 10**6, 4)
    regret_curve("ucbspec", pmf, grid[:2], 2)  # compile
    t0 = time.perf_counter()
    cur = regret_curve("ucbspec", pmf, grid, 200)
    dt = time.perf_counter() - t0
    rounds = int(cur["stopping_time"][:, -1].sum())
    kept = cur["stopping_time"].nbytes + cur["pulls"].nbytes
    print(f"curve engine UCBSpec, 4 TGD arms (L=8), 200 runs to 10^6 tokens ({rounds:,} rounds): {dt:.2f} s "
          f"incl. the exact comparator, {rounds / dt / 1e6:.1f} M rounds/s; recorded {len(grid)} checkpoints: "
          f"{kept / 1024:.0f} KiB (per-round arm + tokens would be {rounds * 16 / 2**20:.0f} MiB)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--quick", action="store_true", help="K = 16 only")
    a = ap.parse_args()
    if not kernels.AVAILABLE:
        print("numba is not installed: kernel columns skipped")
    print(f"{os.cpu_count()} cores; policy-rounds per second")
    print(f"{'policy':9} {'K':>3} {'R':>5} {'kernel':>14} {'numpy':>12} {'loop':>10} {'kernel/loop':>12} "
          f"{'numpy/loop':>11}")
    results = {}
    for name in ("ucbspec", "exp3spec", "hedge"):
        for K in ((16,) if a.quick else (4, 16, 64)):
            ref = ref_rate(name, K, a.seconds)
            for R in (1, 100, 1000):
                k = kernel_rate(name, K, R, a.seconds) if kernels.AVAILABLE else float("nan")
                v = vec_rate(name, K, R, a.seconds)
                results[name, K, R] = k
                print(f"{name:9} {K:3d} {R:5d} {k:14,.0f} {v:12,.0f} {ref:10,.0f} {k / ref:12.0f} {v / ref:11.1f}")
    r = results.get(("ucbspec", 16, 1000), float("nan"))
    ref16 = ref_rate("ucbspec", 16, a.seconds)
    print(f"\ntarget UCBSpec K=16 R=1000: >= 10 M rounds/s -> {r / 1e6:.1f} M "
          f"({'met' if r >= 1e7 else 'NOT met'}); >= 100x the loop -> {r / ref16:.0f}x "
          f"({'met' if r / ref16 >= 100 else 'NOT met'})")
    bandwidth_report(r, 16, 1000)
    print()
    engine_report()
    curve_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
