"""The compiled engine's emission: a dispatcher over the environments' own compiled rules.

Each environment module (``simulator/envs``) holds its rule as a scalar ``njit`` function
beside its numpy ``emit`` (the definition), and its class builds the rule's arrays
(``Env.kernel_arrays`` -> :class:`~simulator.envs.base.EnvArrays`, whose ``code`` picks the
rule).  ``emit(...)`` returns the tokens arm ``a`` emits in round ``rnd`` of prompt ``p`` at
position ``pos`` of run ``run``, capped at what remains, on the environments' counter-based
draws, bit for bit:

* ``replay.emit_replay`` (greedy, trees, sampling);
* ``stochastic.emit_stochastic`` (every law);
* ``adversarial.emit_adversarial`` (every stream: a round-indexed table).

The lane loops call ``emit`` with the codes as values, so one compiled loop per learner
serves every environment (handing the loops the rule as a function would compile each
learner once per environment).
"""

from __future__ import annotations

import numpy as np

from ..envs.adversarial import EMIT_CODE as ADVERSARIAL
from ..envs.adversarial import emit_adversarial
from ..envs.base import EnvArrays
from ..envs.replay import EMIT_CODE as REPLAY
from ..envs.replay import emit_replay
from ..envs.stochastic import EMIT_CODE as STOCHASTIC
from ..envs.stochastic import emit_stochastic
from .core import njit

assert len({REPLAY, STOCHASTIC, ADVERSARIAL}) == 3, "simulator/envs/*.py: EMIT_CODE must differ per rule"
RULES = (emit_replay, emit_stochastic, emit_adversarial)  # their source is part of a compiled loop's id

__all__ = ["ADVERSARIAL", "REPLAY", "RULES", "STOCHASTIC", "EnvArrays", "emit", "emit_lanes"]


@njit(inline="always")
def emit(code, lengths, acc, d_idx, kk, tree_slot, tree_acc, stoch, beta, key, cdf, cdf2, block, Y,
         p, run, rnd, pos, a):
    if code == REPLAY:
        return emit_replay(lengths, acc, d_idx, kk, tree_slot, tree_acc, stoch, beta, key, p, run, pos, a)
    if code == STOCHASTIC:
        return emit_stochastic(lengths, key, cdf, cdf2, block, p, run, rnd, pos, a)
    return emit_adversarial(lengths, Y, p, rnd, pos, a)


@njit  # not cached: numba's cache is keyed on this file only, not on the rules it inlines
def emit_lanes(code, lengths, acc, d_idx, kk, tree_slot, tree_acc, stoch, beta, key, cdf, cdf2, block, Y,
               prompt, run, rnd, pos, arms):
    """``emit`` for each lane of arrays ``prompt, run, rnd, pos, arms``: what
    ``simulator.envs.check.check_env`` compares with the environment's numpy ``emit``."""
    out = np.zeros(len(prompt), dtype=np.int64)
    for i in range(len(prompt)):
        out[i] = emit(code, lengths, acc, d_idx, kk, tree_slot, tree_acc, stoch, beta, key, cdf, cdf2, block, Y,
                      prompt[i], run[i], rnd[i], pos[i], arms[i])
    return out
