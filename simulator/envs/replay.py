"""Exact greedy replay on the recorded positions (the ``replay`` setting)."""

from __future__ import annotations

import numpy as np

from traces import Arm, Trace

from .base import ArmTable, Env, simulate_fixed


class ReplayEnv(Env):
    """Round at position ``t`` with arm ``(d, K)`` emits ``min(min(K, L_d(t)) + 1, N - t)``.

    Deterministic: under greedy verification the output is the target's greedy output
    whichever arm is played, so the trace fixes every counterfactual exactly.
    """

    name = "replay"

    def __init__(self, trace: Trace, arms: list[Arm]):
        self.trace = trace
        self.table = ArmTable.build(trace, arms)
        self.prompt_ids = trace.prompt_ids
        self.categories = trace.categories
        self.lengths = trace.output_lens
        self._acc = trace.accept
        self._T = trace.accept.shape[2]

    def emit_all(self, prompt, run, rnd, pos):
        t = np.minimum(pos, self._T - 1)
        L = self._acc[prompt[:, None], self.table.drafter_idx[None, :], t[:, None]]
        y = np.minimum(L, self.table.k[None, :]) + 1
        return np.minimum(y, (self.lengths[prompt] - pos)[:, None]).astype(np.int64)

    def emit(self, prompt, run, rnd, pos, arms):
        t = np.minimum(pos, self._T - 1)
        L = self._acc[prompt, self.table.drafter_idx[arms], t]
        y = np.minimum(L, self.table.k[arms]) + 1
        return np.minimum(y, self.lengths[prompt] - pos).astype(np.int64)

    def expected_fixed_st(self) -> np.ndarray:
        return simulate_fixed(self).astype(np.float64)
