"""The one lockstep loop: per-prompt learning, state carried across prompts, and batch serving.

A *lane* is one row of a policy's state (one run of one prompt, one run through the prompt
stream, or one served batch); a lane holds one or more *sequences* (outputs being decoded).
Every round each active lane plays one arm; each of its unfinished sequences advances by what
that arm emits at its own position; the lane pays ``cost(...)`` and learns ``reward(...)``.
The callers differ only in their lanes, their cost and reward rules and what they do when a
sequence finishes (``simulator.runner`` records it and, with carried state, starts the
lane's next prompt; ``simulator.serving`` lets it leave the batch).

Random numbers: the policy's uniforms for lane ``l`` in its ``g``-th round are
``uniform(key, lane_key[l], g, j)`` (``simulator.rng``), whatever the batching.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import rng as crng
from .envs import Env
from .policies import Policy
from .policies.base import call_policy, select_arms


@dataclass
class State:
    """What the loop tracks; callbacks may read it and ``on_finish`` may restart sequences."""

    seq_lane: np.ndarray  # (S,) lane of each sequence
    prompt: np.ndarray  # (S,) current environment prompt of each sequence
    run: np.ndarray  # (S,) run counter the environment sees
    n_lanes: int
    n_arms: int
    pos: np.ndarray = field(init=False)  # (S,) position in the output
    rnd: np.ndarray = field(init=False)  # (S,) rounds of the sequence in its current prompt
    alive: np.ndarray = field(init=False)  # (S,) not finished
    grnd: np.ndarray = field(init=False)  # (lanes,) rounds the lane played (the policy stream's counter)
    time_s: np.ndarray = field(init=False)  # (lanes,) seconds, feedback included
    feedback_s: np.ndarray = field(init=False)  # (lanes,) of which scoring unplayed drafters
    tokens: np.ndarray = field(init=False)  # (lanes,) tokens emitted
    pulls: np.ndarray = field(init=False)  # (lanes, arms)

    def __post_init__(self) -> None:
        S = len(self.seq_lane)
        self.pos = np.zeros(S, dtype=np.int64)
        self.rnd = np.zeros(S, dtype=np.int64)
        self.alive = np.ones(S, dtype=bool)
        self.grnd = np.zeros(self.n_lanes, dtype=np.int64)
        self.time_s = np.zeros(self.n_lanes)
        self.feedback_s = np.zeros(self.n_lanes)
        self.tokens = np.zeros(self.n_lanes)
        self.pulls = np.zeros((self.n_lanes, self.n_arms), dtype=np.int64)


# cost(state, arms, n_active) -> (seconds, feedback seconds) per lane
CostFn = Callable[[State, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
# reward(state, arms, emitted, n_active, round_seconds) -> reward per lane
RewardFn = Callable[[State, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def lockstep(env: Env, state: State, cost: CostFn, *, policy: Policy | None = None, fixed_arm: int | None = None,
             reward: RewardFn | None = None, key: np.uint64 | None = None, lane_key: np.ndarray | None = None,
             on_finish: Callable[[State, np.ndarray], None] | None = None,
             history: list | None = None) -> State:
    """Run until every sequence has finished; return the final ``state``.

    ``policy`` (reset by the caller) or ``fixed_arm`` chooses; full-information policies get
    the verified positions of their lane's single sequence, every unverified entry zeroed.
    ``history``, if a list, receives per round (position, arm, emitted, prompt) of every lane
    (-1 once done) for lanes of one sequence.
    """
    L1 = env.n_arms
    full = policy is not None and policy.feedback == "full"
    one_seq = len(state.seq_lane) == state.n_lanes
    if (full or history is not None) and not one_seq:
        raise ValueError("full-information feedback and histories need one sequence per lane")
    W = int(env.table.L) + 1
    j = np.arange(max(policy.n_random, 1)) if policy is not None else None
    lanes = np.arange(state.n_lanes)
    while True:
        n_act = np.bincount(state.seq_lane[state.alive], minlength=state.n_lanes)
        active = n_act > 0
        if not active.any():
            return state
        if policy is None:
            arms = np.full(state.n_lanes, fixed_arm, dtype=np.int64)
        else:
            u = crng.uniform(key, lane_key[:, None], state.grnd[:, None], j[None, :])
            if policy.reads_batch:
                call_policy(policy, "on_batch", n_act)
            arms = select_arms(policy, u, state.n_lanes, L1)
        idx = np.flatnonzero(state.alive)  # finished sequences take no part
        e = np.zeros(len(state.seq_lane), dtype=np.int64)
        e[idx] = env.emit(state.prompt[idx], state.run[idx], state.rnd[idx], state.pos[idx],
                          arms[state.seq_lane[idx]])
        emitted = np.bincount(state.seq_lane, weights=e, minlength=state.n_lanes)
        if history is not None:
            history.append((np.where(active, state.pos, -1), np.where(active, arms, -1), e, state.prompt.copy()))
        c, fb = cost(state, arms, n_act)
        if policy is not None:
            r = reward(state, arms, emitted, n_act, c)
            if full:
                where = state.pos[:, None] + np.arange(W)[None, :]
                verified = (np.arange(W)[None, :] < e[:, None]) & active[:, None]
                gamma = np.where(verified[..., None], env.gamma(state.prompt, where), 0.0)
                call_policy(policy, "update_full", arms, r, active, where, verified, gamma)
            else:
                call_policy(policy, "update", arms, r, active)
        act = lanes[active]
        state.pulls[act, arms[act]] += 1
        state.time_s[act] += c[act] + fb[act]
        state.feedback_s[act] += fb[act]
        state.tokens += emitted
        state.pos += e
        state.rnd += state.alive
        state.grnd += active
        finished = np.flatnonzero(state.alive & (state.pos >= env.lengths[state.prompt]))
        if len(finished):
            state.alive[finished] = False
            if on_finish is not None:
                on_finish(state, finished)
