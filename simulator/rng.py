"""Counter-based random numbers: ``u = H(key, c1, c2, ...)``.

Every random number the simulator uses is a pure function of the root seed (through
``numpy.random.SeedSequence``), a stream name and integer counters such as
(prompt, run, round, arm).  Consequences, all tested:

* common random numbers: round ``s`` of run ``r`` on prompt ``p`` draws the same
  environment randomness whichever policy is being simulated;
* results do not depend on how lanes are batched or split over workers;
* the vectorised policies and their scalar reference twins see identical draws.

The hash chains the SplitMix64 finaliser over the counters (Steele et al., 2014); it is
not cryptographic, and is plenty for Monte Carlo.
"""

from __future__ import annotations

import zlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def stream_key(seed: int, stream: str) -> np.uint64:
    """64-bit key of a named stream, derived from the root seed via ``SeedSequence``."""
    tag = zlib.crc32(stream.encode())
    return np.random.SeedSequence([int(seed), tag]).generate_state(1, dtype=np.uint64)[0]


def _mix(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def uniform(key: np.uint64, *counters: np.ndarray | int) -> np.ndarray:
    """Uniforms in [0, 1), broadcast over the counter arrays (all integers >= 0)."""
    with np.errstate(over="ignore"):
        h = np.asarray(key, dtype=np.uint64)
        for c in counters:
            h = _mix(h ^ (np.asarray(c).astype(np.uint64) * _GOLDEN + _GOLDEN))
        return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


# -- the one recipe for keys: stream names and lane counters live here only ----------------------
LANE_SHIFT = 20  # a lane of (prompt p, run r) is counter p * 2^20 + r: runs < 2^20 per prompt
MAX_RUNS = 1 << LANE_SHIFT


def lane_key(prompt: np.ndarray | int, run: np.ndarray | int) -> np.ndarray:
    """Counter of the (prompt, run) lane in the per-prompt policy stream."""
    return np.asarray(prompt, dtype=np.int64) * np.int64(MAX_RUNS) + np.asarray(run, dtype=np.int64)


def policy_key(seed: int, carry: bool = False) -> np.uint64:
    """Policy randomness: per (prompt, run) lane, or per run when state is carried across prompts."""
    return stream_key(seed, "policy:carry" if carry else "policy")


def env_key(seed: int, name: str) -> np.uint64:
    """Environment randomness of setting ``name`` (``replay-sampling``, ``stochastic:LAW``)."""
    return stream_key(seed, f"env:{name}")


def serve_key(seed: int, policy_spec: str) -> np.uint64:
    """Batch-serving policy randomness, one stream per policy configuration."""
    return stream_key(seed, f"serve:{policy_spec}")


def bootstrap_key(seed: int, n: int) -> np.uint64:
    """Prompt-bootstrap resampling of ``n`` prompts (shared by every policy: paired intervals)."""
    return stream_key(seed, f"bootstrap:{n}")
