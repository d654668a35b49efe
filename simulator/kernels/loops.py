"""The compiled lockstep loop: ``simulator.lockstep`` for one lane at a time, lanes in parallel.

A lane plays its prompts in order (one prompt: per-prompt learning; every prompt: state
carried, ``--carry-state``); each round it selects, the environment emits, the lane pays
``cost[p, a] + fb_cost[p, a]`` and learns ``e * rscale[p, a]`` (full-information learners
read the verified positions and ``F`` instead).  The learner comes as its four compiled
functions (``simulator.kernels.learners.Kernel``): each learner compiles its own
specialisation of each loop, once.  Lanes are independent and every random number is a
function of counters, so the split over threads, processes or machines never shows.
"""

from __future__ import annotations

import sys

import numpy as np

from .core import AVAILABLE, BATCH, IST, iid_curve, njit, prange
from .envs import emit


@njit(parallel=True, cache=True, nogil=True)  # nogil: results are written meanwhile
def run_lanes(init, on_prompt, select, update, prm, itab, ftab, rows, cols, env_code, lengths, acc, d_idx, kk,
              tree_slot, tree_acc, stoch, beta, ekey, cdf, cdf2, block, Y, F, cost, fb_cost, rscale, prompts, runs,
              carry, pkey):
    """Stopping time, seconds, feedback seconds (P, R) and pulls (P, R, A) of one learner on
    env prompts ``prompts`` x runs ``runs``.  Per-prompt lanes ``(prompt i, run r)`` use the
    policy counter ``prompt * 2^20 + run``; carried lanes (one per run) use ``run``."""
    P, R, A = len(prompts), len(runs), len(kk)
    st_out = np.zeros((P, R), dtype=np.int64)
    tm_out = np.zeros((P, R))
    fb_out = np.zeros((P, R))
    pulls = np.zeros((P, R, A), dtype=np.int32)
    n_lanes = R if carry else P * R
    for lane_u in prange(n_lanes):
        lane = np.int64(lane_u)  # prange may type its index unsigned; int64 keeps the arithmetic integral
        st, ist, tmp = np.zeros((rows, cols)), np.zeros(IST, dtype=np.int64), np.zeros(max(A, cols, 4))
        _lane(lane, init, on_prompt, select, update, prm, itab, ftab, env_code, lengths, acc, d_idx, kk, tree_slot,
              tree_acc, stoch, beta, ekey, cdf, cdf2, block, Y, F, cost, fb_cost, rscale, prompts, runs, carry, pkey,
              st, ist, tmp, st_out, tm_out, fb_out, pulls)
    return st_out, tm_out, fb_out, pulls


@njit(cache=True, _nrt=False)
def _lane(lane, init, on_prompt, select, update, prm, itab, ftab, env_code, lengths, acc, d_idx, kk, tree_slot,
          tree_acc, stoch, beta, ekey, cdf, cdf2, block, Y, F, cost, fb_cost, rscale, prompts, runs, carry, pkey,
          st, ist, tmp, st_out, tm_out, fb_out, pulls):
    # one lane, compiled on its own without reference counting (it allocates nothing; the
    # learners and emission rules inline here and would otherwise count references to every
    # array they are handed, every round: 4x slower); the parallel wrapper stays small
    P, R, A = len(prompts), len(runs), len(kk)
    ir = lane if carry else lane % R
    run = runs[ir]
    init(A, st, ist, prm, itab)
    ist[BATCH] = 1
    lane_key = np.int64(run) if carry else np.int64(prompts[lane // R]) * np.int64(1 << 20) + np.int64(run)
    g = 0
    for m in range(P if carry else 1):
        ip = m if carry else lane // R
        p = prompts[ip]
        n = lengths[p]
        on_prompt(st, ist, prm, itab, p)
        pos, rnd, tsum, fsum = 0, 0, 0.0, 0.0
        while pos < n:
            arm = select(A, st, ist, prm, itab, ftab, pkey, lane_key, g, tmp)
            e = emit(env_code, lengths, acc, d_idx, kk, tree_slot, tree_acc, stoch, beta, ekey, cdf, cdf2,
                     block, Y, p, run, rnd, pos, arm)
            c, f = cost[p, arm], fb_cost[p, arm]
            update(arm, e * rscale[p, arm], A, st, ist, prm, itab, ftab, F, p, pos, e, tmp)
            pulls[ip, ir, arm] += 1
            tsum += c + f
            fsum += f
            pos += e
            rnd += 1
            g += 1
        st_out[ip, ir] = rnd
        tm_out[ip, ir] = tsum
        fb_out[ip, ir] = fsum


@njit(parallel=True, cache=True)
def serve_lanes(init, on_prompt, select, update, prm, itab, ftab, rows, cols, env_code, lengths, acc, d_idx, kk,
                tree_slot, tree_acc, stoch, beta, ekey, cdf, cdf2, block, Y, cost, seq_prompt, seq_start, throughput,
                pkey):
    """Batch serving (``simulator.serving``): lane ``l`` decodes prompts
    ``seq_prompt[seq_start[l]:seq_start[l+1]]`` together, one arm per round for all of them;
    a round with ``n`` unfinished sequences costs ``cost[l, n, a]``.  Returns tokens, seconds
    and rounds per lane (a fixed arm: the learner ``fixed``)."""
    n_lanes = len(seq_start) - 1
    A = len(kk)
    tokens = np.zeros(n_lanes)
    secs = np.zeros(n_lanes)
    rounds = np.zeros(n_lanes, dtype=np.int64)
    for lane_u in prange(n_lanes):
        lane = np.int64(lane_u)
        m = seq_start[lane + 1] - seq_start[lane]
        pos, rnd = np.zeros(m, dtype=np.int64), np.zeros(m, dtype=np.int64)
        st, ist, tmp = np.zeros((rows, cols)), np.zeros(IST, dtype=np.int64), np.zeros(max(A, cols, 4))
        _serve_lane(lane, init, on_prompt, select, update, prm, itab, ftab, env_code, lengths, acc, d_idx, kk,
                    tree_slot, tree_acc, stoch, beta, ekey, cdf, cdf2, block, Y, cost, seq_prompt, seq_start,
                    throughput, pkey, pos, rnd, st, ist, tmp,
                    tokens, secs, rounds)
    return tokens, secs, rounds


@njit(cache=True, _nrt=False)
def _serve_lane(lane, init, on_prompt, select, update, prm, itab, ftab, env_code, lengths, acc, d_idx, kk, tree_slot,
                tree_acc, stoch, beta, ekey, cdf, cdf2, block, Y, cost, seq_prompt, seq_start, throughput, pkey, pos,
                rnd, st, ist, tmp, tokens, secs, rounds):
    A = len(kk)
    s0, s1 = seq_start[lane], seq_start[lane + 1]
    init(A, st, ist, prm, itab)
    g, tok, tsum = 0, 0.0, 0.0
    while True:
        n_act = 0
        for j in range(s1 - s0):
            if pos[j] < lengths[seq_prompt[s0 + j]]:
                n_act += 1
        if n_act == 0:
            break
        ist[BATCH] = n_act
        arm = select(A, st, ist, prm, itab, ftab, pkey, lane, g, tmp)
        emitted = 0.0
        for j in range(s1 - s0):
            p = seq_prompt[s0 + j]
            if pos[j] < lengths[p]:
                e = emit(env_code, lengths, acc, d_idx, kk, tree_slot, tree_acc, stoch, beta, ekey, cdf, cdf2,
                         block, Y, p, 0, rnd[j], pos[j], arm)
                emitted += e
                pos[j] += e
                rnd[j] += 1
        c = cost[lane, n_act, arm]
        per_seq = emitted / n_act
        r = per_seq * cost[lane, n_act, 0] / c if throughput else per_seq
        update(arm, r, A, st, ist, prm, itab, ftab, cost, lane, 0, 0, tmp)  # no full information here
        tok += emitted
        tsum += c + 0.0
        g += 1
    tokens[lane] = tok
    secs[lane] = tsum
    rounds[lane] = g


if AVAILABLE:  # say once per process, while it happens, that a loop is being compiled
    from numba.core import event as _event

    class _CompileNotice(_event.Listener):
        """Prints one line the first time this process compiles a lane loop for a learner (a
        new checkout, a new learner, or an edited one; numba caches the result on disk)."""

        said = False

        def on_start(self, event: _event.Event) -> None:
            if self.said or event.data["dispatcher"] not in (run_lanes, serve_lanes, iid_curve):
                return
            self.said = True
            print("note: compiling the engine's loops for this run's learners, about 10-20 s per learner on 2 "
                  "cores (first run in this checkout or after an edit; cached in simulator/kernels/__pycache__ "
                  "afterwards)", file=sys.stderr, flush=True)

        def on_end(self, event: _event.Event) -> None:
            pass

    _event.register("numba:compile", _CompileNotice())
