"""Every setting, law and stream passes check_env on a bare object; a broken env fails it."""

from __future__ import annotations

import numpy as np
import pytest

import traces
from simulator.envs import AdversarialEnv, ReplayEnv, StochasticEnv, make_env
from simulator.envs.adversarial import SYNTHETIC_STREAMS
from simulator.envs.check import check_env
from simulator.envs.stochastic import tgd_pmf
from traces import Arm, resolve_arms

DEMO = "builtin:synthetic-demo"


def _cases():
    tr = traces.load(DEMO)
    arms = resolve_arms("plain@0,strong@1-3,weak@2", tr.drafter_names, tr.k_max)
    yield "replay", make_env("replay", tr, arms)
    yield "replay-sampling", make_env("replay", traces.load("builtin:smollm2-sampling"), [Arm("plain", 0),
                                                                                            Arm("rtn4", 3)])
    for law in StochasticEnv.LAWS:
        yield f"stochastic-{law}", make_env("stochastic", tr, arms, law=law, seed=1)
    for stream in ("recorded", "category-switch"):
        yield f"adversarial-{stream}", make_env("adversarial", tr, arms, stream=stream)
    for stream, kmin in SYNTHETIC_STREAMS.items():
        yield f"adversarial-{stream}", make_env("adversarial", tr, [Arm("strong", max(kmin, 2)),
                                                                    Arm("weak", max(kmin, 2))], stream=stream)
    pmf = tgd_pmf(np.array([0.3, 0.7]), np.array([2, 2]), 2)[None]
    yield "stochastic-from-laws", StochasticEnv.from_laws(pmf, np.array([40]), ["a@2", "b@2"], seed=0)
    Y = np.ones((1, 2, 30), dtype=np.int64) * np.array([[[1], [2]]])
    yield "adversarial-from-sequences", AdversarialEnv.from_sequences(Y, np.array([25]), ["a@1", "b@1"])


CASES = dict(_cases())


@pytest.mark.parametrize("name", sorted(CASES))
def test_env_conforms(name):
    check_env(CASES[name])


def test_check_env_can_fail():
    """Broken on purpose: an env that emits more than remains, and one that draws its own noise."""

    class Overshoot(ReplayEnv):
        def emit(self, prompt, run, rnd, pos, arms):
            return np.maximum(super().emit(prompt, run, rnd, pos, arms), self.lengths[prompt] - pos + 1)

    class Noisy(ReplayEnv):
        def emit_all(self, prompt, run, rnd, pos):
            out = super().emit_all(prompt, run, rnd, pos)
            return np.where(np.random.default_rng().random(out.shape) < 0.5, 1, out)

        def emit(self, prompt, run, rnd, pos, arms):
            return np.take_along_axis(self.emit_all(prompt, run, rnd, pos), arms[:, None], axis=1)[:, 0]

    tr = traces.load(DEMO)
    arms = [Arm("strong", 2), Arm("weak", 2)]
    with pytest.raises(AssertionError, match="never more than the tokens that remain"):
        check_env(Overshoot(tr, arms))
    with pytest.raises(AssertionError, match="pure function"):
        check_env(Noisy(tr, arms))
