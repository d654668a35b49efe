"""Oblivious adversarial settings (BanditSpec Assumption 5.1): ``y_{i,s}`` fixed before
the run, indexed by round ``s``, never by what the policy did.

``stream="recorded"``: one stream per prompt; arm ``i``'s sequence is the emitted counts
of its own fixed-arm greedy replay on that prompt, in recorded order (cycled if a policy
needs more rounds), so ``ST(ALG_i)`` equals the replay value exactly.

``stream="category-switch"``: one long stream, the prompts grouped by category and
concatenated, each arm's sequence the concatenation of its per-prompt sequences; the
best arm switches when the category does.
"""

from __future__ import annotations

import numpy as np

from traces import Arm, Trace

from .base import ArmTable, Env


class AdversarialEnv(Env):
    name = "adversarial"

    def __init__(self, trace: Trace, arms: list[Arm], *, stream: str = "recorded"):
        if stream not in ("recorded", "category-switch"):
            raise ValueError(f"stream: expected 'recorded' or 'category-switch', got {stream!r}")
        self.stream = stream
        self.table = ArmTable.build(trace, arms)
        A = len(arms)
        seqs = [[trace.fixed_arm_rounds(a, p) for a in arms] for p in range(trace.n_prompts)]
        if stream == "recorded":
            self.prompt_ids = trace.prompt_ids
            self.categories = trace.categories
            self.lengths = trace.output_lens
        else:
            order = sorted(range(trace.n_prompts), key=lambda p: (trace.categories[p], p))
            seqs = [[np.concatenate([seqs[p][a] for p in order]) for a in range(A)]]
            self.prompt_ids = ["category-switch"]
            self.categories = ["mixed"]
            self.lengths = np.array([int(trace.output_lens.sum())])
        S = int(self.lengths.max())
        self.Y = np.zeros((len(seqs), A, S), dtype=np.int64)
        self._st = np.zeros((len(seqs), A))
        for p, per_arm in enumerate(seqs):
            for a, s in enumerate(per_arm):
                reps = -(-S // len(s))
                self.Y[p, a] = np.tile(s, reps)[:S]
                self._st[p, a] = len(s)

    @classmethod
    def from_sequences(cls, Y: np.ndarray, lengths: np.ndarray, arm_names: list[str],
                       name: str = "sequences") -> AdversarialEnv:
        """An oblivious environment from given round-indexed values ``Y`` (streams, arms,
        rounds) with ``Y >= 1``; stream ``p`` stops after ``lengths[p]`` tokens."""
        env = cls.__new__(cls)
        env.stream = name
        Y = np.asarray(Y, dtype=np.int64)
        P, A, S = Y.shape
        ks = np.array([int(n.rpartition("@")[2]) for n in arm_names])
        env.table = ArmTable([Arm(n.rpartition("@")[0], int(k)) for n, k in zip(arm_names, ks, strict=True)],
                             np.zeros(A, dtype=np.int64), ks)
        env.prompt_ids = [f"{name}-{i}" for i in range(P)]
        env.categories = [name] * P
        env.lengths = np.asarray(lengths, dtype=np.int64)
        env.Y = Y
        cum = np.cumsum(Y, axis=2)
        env._st = (cum < env.lengths[:, None, None]).sum(axis=2) + 1.0
        return env

    def emit_all(self, prompt, run, rnd, pos):
        s = np.minimum(rnd, self.Y.shape[2] - 1)
        y = self.Y[prompt, :, s]
        return np.minimum(y, (self.lengths[prompt] - pos)[:, None])

    def emit(self, prompt, run, rnd, pos, arms):
        s = np.minimum(rnd, self.Y.shape[2] - 1)
        return np.minimum(self.Y[prompt, arms, s], self.lengths[prompt] - pos)

    def expected_fixed_st(self) -> np.ndarray:
        return self._st.copy()

    def describe(self) -> dict:
        return {"name": self.name, "stream": self.stream}
