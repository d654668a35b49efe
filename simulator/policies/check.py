"""``check_policy``: a conformance checker for policies (Gymnasium's ``check_env`` idea),
run over the whole registry by the tests.  Raises ``AssertionError`` with the reason."""

from __future__ import annotations

import numpy as np

from .base import REGISTRY, Policy, make_policy

TRACE = "builtin:synthetic-demo"
ARMS = "plain@0,strong@1-4,copy@1-4"


def default_spec(name: str) -> str:
    """A runnable spec for a registered name (``fixed`` needs an arm)."""
    return {"fixed": "fixed:strong@2"}.get(name, name)


def check_policy(spec: str, setting: str | None = None) -> None:
    from ..runner import RunConfig, prepare, simulate

    pol = make_policy(spec)
    setting = setting or ("replay" if pol.feedback == "full" else "stochastic")
    assert isinstance(pol, Policy), f"{spec}: not a Policy"
    assert pol.feedback in ("bandit", "full"), f"{spec}: feedback must be 'bandit' or 'full'"
    assert type(pol).name in REGISTRY, f"{spec}: not registered"
    prep = prepare(RunConfig(trace=TRACE, setting=setting, policies=(spec,), runs=8, seed=3, arms=ARMS))
    prompts, runs = np.arange(3), np.arange(8)

    # valid arms of the right shape (the runner raises otherwise); same seed, same trajectory
    a = simulate(prep, make_policy(spec), prompts, runs, record=True)
    b = simulate(prep, make_policy(spec), prompts, runs, record=True)
    for k in ("stopping_time", "pulls"):
        assert np.array_equal(a[k], b[k]), f"{spec}: same seed gave a different {k}"
    assert len(a["history"]) == len(b["history"]) and all(
        np.array_equal(x[1], y[1]) for x, y in zip(a["history"], b["history"], strict=True)
    ), f"{spec}: same seed gave different arm sequences"
    # 8 runs at once == 8 single runs
    for r in runs:
        one = simulate(prep, make_policy(spec), prompts, np.array([r]))
        assert np.array_equal(one["stopping_time"][:, 0], a["stopping_time"][:, r]), (
            f"{spec}: run {r} differs when simulated alone")

    # probabilities sum to 1 where exposed; inputs not mutated
    p = make_policy(spec)
    ctx = prep.context(p)
    p.reset(4, ctx)
    p.on_prompt_start(np.arange(4), np.zeros(4, dtype=np.int64))
    rng = np.random.default_rng(0)
    for _ in range(20):
        u = rng.random((4, max(p.n_random, 1)))
        u0 = u.copy()
        arms = p.select(u)
        assert np.array_equal(u, u0), f"{spec}: select mutated its input"
        assert arms.shape == (4,) and arms.dtype.kind == "i", f"{spec}: select must return (n_lanes,) ints"
        assert ((arms >= 0) & (arms < ctx.n_arms)).all(), f"{spec}: arm out of range"
        if hasattr(p, "probabilities"):
            pr = p.probabilities()
            assert np.allclose(pr.sum(axis=1), 1.0) and (pr >= 0).all(), f"{spec}: probabilities"
        rew = rng.integers(1, ctx.L + 2, size=4).astype(float)
        act = np.array([True, True, False, True])
        where = np.arange(ctx.L + 1)[None, :] + 3 * np.arange(4)[:, None] + _ * 8
        ver = np.arange(ctx.L + 1)[None, :] < rew[:, None]
        gam = rng.random((4, ctx.L + 1, len(ctx.drafter_names)))
        inputs = (arms, rew, act, where, ver, gam) if p.feedback == "full" else (arms, rew, act)
        copies = tuple(x.copy() for x in inputs)
        (p.update_full if p.feedback == "full" else p.update)(*inputs)
        assert all(np.array_equal(x, y) for x, y in zip(inputs, copies, strict=True)), (
            f"{spec}: update mutated its inputs")
