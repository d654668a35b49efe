"""Headroom: the clairvoyant per-round switcher, a reference beside the oracles.

The per-prompt oracle plays the best *fixed* arm of each prompt.  The per-round switcher may
change arm every round and knows the whole replay: it is the cheapest path through the
recorded positions, by dynamic programming over the position ``t`` in the output.  From ``t``
arm ``a`` emits ``e_a(t) = min(min(K_a, L_d(t)) + 1, N - t)`` tokens (a tree arm: its accepted
depth + 1; the replay environment's own ``emit_all``) at cost ``c_a``:

* rounds objective: ``c_a = 1``, ``V(t) = 1 + min_a V(t + e_a(t))``, ``V(N) = 0``;
* time objective: ``c_a`` = the arm's round time on the prompt (draft + verify, the run's cost
  model at the prompt's context, what ``time_s`` charges a round), ``V(t) = min_a c_a + V(t + e_a(t))``.

Feedback is free for it: it knows every arm's acceptance without drafting the unplayed ones, so
no policy of the run (a full-information learner's ``feedback_s`` included) can beat it, and no
fixed arm or oracle either (each is one of its paths).  Ties: the fewest-rounds path takes the
faster of its ties, the fastest path the fewer rounds, so each path's other measure is defined.

Only the greedy replay has this exact DP.  A sampling trace's replay draws each round's
acceptance (the path is random), and the stochastic and adversarial settings are not position
replays: there the switcher is ``n/a`` (NaN), and ``not_defined`` says why.
"""

from __future__ import annotations

import numpy as np

COLUMNS_ROUNDS = ("switcher_rounds",)
COLUMNS_TIME = ("switcher_time_s", "switcher_rounds_time_s", "switcher_time_rounds")
LABEL = "per-round switcher"
MAX_CELLS = 1 << 22  # prompts x positions x arms of emitted counts held at once


def not_defined(env) -> str | None:
    """Why the per-round switcher is not defined on ``env``; ``None`` where it is."""
    from .envs.replay import ReplayEnv

    if not isinstance(env, ReplayEnv):
        return (f"setting {env.name}: no position replay (each run's values do not depend on the position), "
                f"so the per-round switcher is defined in the replay setting only")
    if env.sampling:
        return "sampling trace: each round's acceptance is drawn, so no single replay path is exact"
    acc = env.accept
    for p, n in enumerate(env.lengths):
        if (acc[p, :, : int(n)] < 0).any():
            return "partial-information trace: some positions were not observed"
    return None


def switcher_dp(emitted: np.ndarray, lengths: np.ndarray, cost: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Minimum rounds and (with ``cost``) minimum time to emit every prompt's output.

    Parameters
    ----------
    emitted : ndarray (P, T, A)
        Tokens one round of arm ``a`` emits at position ``t`` (>= 1 for ``t < N_p``; entries at
        ``t >= N_p`` are ignored).
    lengths : ndarray (P,)
        Output length ``N_p`` (<= T).
    cost : ndarray (P, A), optional
        Seconds per round of each arm on each prompt.

    Returns
    -------
    dict of (P,) arrays
        ``rounds`` (fewest rounds), ``rounds_time_s`` (time of that path, fastest among the ties),
        ``time_s`` (least time), ``time_rounds`` (rounds of that path, fewest among the ties);
        the time entries are NaN without ``cost``.
    """
    e = np.asarray(emitted, np.int64)
    P, T, A = e.shape
    n = np.asarray(lengths, np.int64)
    if n.shape != (P,) or (n > T).any() or (n < 0).any():
        raise ValueError(f"lengths: expected shape ({P},) with values in 0..{T}")
    c = np.ones((P, A)) if cost is None else np.asarray(cost, np.float64)
    rows = np.arange(P)[:, None]
    vr, tr, vt, rt = (np.zeros((P, T + 1)) for _ in range(4))
    for t in range(T - 1, -1, -1):
        live = t < n
        if not live.any():
            continue
        step = e[:, t, :]
        if (step[live] < 1).any():
            raise ValueError(f"emitted: a round at position {t} emits fewer than 1 token")
        nxt = np.minimum(t + np.maximum(step, 1), T)
        r = 1.0 + vr[rows, nxt]
        best_r = r.min(axis=1, keepdims=True)
        tm_r = np.where(r == best_r, c + tr[rows, nxt], np.inf).min(axis=1)
        tt = c + vt[rows, nxt]
        best_t = tt.min(axis=1, keepdims=True)
        r_t = np.where(tt <= best_t * (1 + 1e-12), 1.0 + rt[rows, nxt], np.inf).min(axis=1)
        vr[:, t] = np.where(live, best_r[:, 0], 0.0)
        tr[:, t] = np.where(live, tm_r, 0.0)
        vt[:, t] = np.where(live, best_t[:, 0], 0.0)
        rt[:, t] = np.where(live, r_t, 0.0)
    nan = np.full(P, np.nan)
    timed = cost is not None
    return {"rounds": vr[:, 0], "rounds_time_s": tr[:, 0] if timed else nan,
            "time_s": vt[:, 0] if timed else nan, "time_rounds": rt[:, 0] if timed else nan}


def env_emitted(env, prompts: np.ndarray) -> np.ndarray:
    """``(len(prompts), T, A)`` tokens every arm emits at every position of ``prompts``
    (``T`` = their longest output), from the environment's own ``emit_all`` (run 0, round 0)."""
    prompts = np.asarray(prompts, np.int64)
    T = int(env.lengths[prompts].max(initial=1))
    pr = np.repeat(prompts, T)
    pos = np.tile(np.arange(T, dtype=np.int64), len(prompts))
    zero = np.zeros(len(pr), np.int64)
    return env.emit_all(pr, zero, zero, pos).reshape(len(prompts), T, env.n_arms)


def switcher_columns(env, cost_s: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per environment prompt, the ``fixed.parquet`` switcher columns: ``switcher_rounds`` and,
    with costs (``cost_s`` (P, A) seconds per round), ``switcher_time_s``,
    ``switcher_rounds_time_s`` (time of the fewest-rounds path), ``switcher_time_rounds``
    (rounds of the fastest path); NaN everywhere where ``not_defined(env)``."""
    P = env.n_prompts
    names = COLUMNS_ROUNDS + (COLUMNS_TIME if cost_s is not None else ())
    out = {k: np.full(P, np.nan) for k in names}
    if not_defined(env) is not None or P == 0:
        return out
    T = int(np.max(env.lengths, initial=1))
    step = max(1, MAX_CELLS // max(T * env.n_arms, 1))
    for lo in range(0, P, step):
        idx = np.arange(lo, min(P, lo + step))
        d = switcher_dp(env_emitted(env, idx), env.lengths[idx], None if cost_s is None else cost_s[idx])
        out["switcher_rounds"][idx] = d["rounds"]
        if cost_s is not None:
            out["switcher_time_s"][idx] = d["time_s"]
            out["switcher_rounds_time_s"][idx] = d["rounds_time_s"]
            out["switcher_time_rounds"][idx] = d["time_rounds"]
    return out
