"""``check_env``: conformance checks for a bare environment object (Gymnasium's ``check_env``
idea): plain objects in, every failed assertion says what to fix.  The tests run it over every
setting, law and stream."""

from __future__ import annotations

import numpy as np

from .base import ArmTable, Env, EnvArrays, simulate_fixed


def check_env(env: Env, runs: int = 2, deterministic: bool | None = None) -> None:
    """Check ``env``'s attributes, ``emit`` / ``emit_all``, determinism given the counters and its
    fixed-arm comparator.  ``deterministic`` (default: guessed from two runs) also demands that
    ``expected_fixed_st`` equals a simulation of every fixed arm."""
    name = type(env).__name__
    assert isinstance(env, Env), f"{name}: subclass simulator.envs.Env"
    assert isinstance(env.name, str) and env.name, f"{name}.name must be a non-empty string"
    P = env.n_prompts
    assert P >= 1 and len(env.categories) == P, f"{name}: prompt_ids and categories need one entry per prompt"
    assert all(isinstance(p, str) for p in env.prompt_ids), f"{name}.prompt_ids must be strings"
    lengths = np.asarray(env.lengths)
    assert lengths.shape == (P,) and lengths.dtype.kind == "i" and (lengths >= 1).all(), (
        f"{name}.lengths must be integers >= 1, one per prompt")
    t = env.table
    assert isinstance(t, ArmTable), f"{name}.table must be an ArmTable"
    A = env.n_arms
    assert A >= 1 and t.drafter_idx.shape == (A,) and t.k.shape == (A,), f"{name}.table: one entry per arm"
    assert env.context_lens.shape == (P,), f"{name}.context_lens must have one entry per prompt"
    assert isinstance(env.full_information, bool), f"{name}.full_information must be a bool (a class capability)"

    rng = np.random.default_rng(0)
    n = 64
    prompt = rng.integers(0, P, n)
    run = rng.integers(0, runs, n)
    rnd = rng.integers(0, 8, n)
    pos = (rng.random(n) * lengths[prompt]).astype(np.int64)
    arms = rng.integers(0, A, n)
    e = np.asarray(env.emit(prompt, run, rnd, pos, arms))
    assert e.shape == (n,) and e.dtype.kind == "i", f"{name}.emit must return one integer per lane"
    assert (e >= 1).all(), f"{name}.emit: a round emits at least the bonus token (>= 1)"
    assert (e <= lengths[prompt] - pos).all(), f"{name}.emit: never more than the tokens that remain"
    assert np.array_equal(e, env.emit(prompt, run, rnd, pos, arms)), (
        f"{name}.emit must be a pure function of (prompt, run, round, position, arm): draw from simulator.rng")
    full = np.asarray(env.emit_all(prompt, run, rnd, pos))
    assert full.shape == (n, A), f"{name}.emit_all must return (n_lanes, n_arms)"
    assert np.array_equal(full[np.arange(n), arms], e), f"{name}: emit must equal the chosen column of emit_all"
    if type(env).has_compiled_form():
        _check_compiled(env, name, (prompt, run, rnd, pos, arms), e)
    if env.full_information:
        W = int(t.L) + 1
        g = np.asarray(env.gamma(prompt, pos[:, None] + np.arange(W)[None, :]))
        assert g.shape[:2] == (n, W) and ((g >= 0) & (g <= 1)).all(), (
            f"{name}.gamma must return probabilities (n_lanes, W, n_drafters)")

    fixed = np.asarray(env.expected_fixed_st(), float)
    assert fixed.shape == (P, A) and np.isfinite(fixed).all(), f"{name}.expected_fixed_st must be (n_prompts, n_arms)"
    k = t.k.astype(float)
    assert (fixed >= lengths[:, None] / (k[None, :] + 1) - 1e-9).all() and (fixed <= lengths[:, None] + 1e-9).all(), (
        f"{name}.expected_fixed_st must lie in [len/(K+1), len] (BanditSpec Prop. 3.1)")
    sims = [simulate_fixed(env, r) for r in range(runs)]
    if deterministic is None:
        deterministic = all(np.array_equal(sims[0], s) for s in sims[1:])
    if deterministic:
        assert np.allclose(fixed, sims[0]), f"{name}.expected_fixed_st must equal the fixed arms' simulated rounds"


def _check_compiled(env: Env, name: str, lanes: tuple[np.ndarray, ...], e: np.ndarray) -> None:
    """An environment with a compiled form emits in it what its numpy ``emit`` does, lane for lane."""
    from ..kernels import AVAILABLE
    from ..kernels.envs import emit_lanes

    arrays = env.kernel_arrays()
    assert isinstance(arrays, EnvArrays), f"{name}.kernel_arrays must return simulator.envs.base.EnvArrays"
    A = env.n_arms
    assert arrays.kk.shape == (A,) and arrays.tree_slot.shape == (A,) and arrays.stoch.shape == (A,), (
        f"{name}.kernel_arrays: kk, tree_slot and stoch need one entry per arm ({A})")
    if not AVAILABLE:
        return
    got = emit_lanes(*arrays.args(), *(np.asarray(x, np.int64) for x in lanes))
    bad = np.flatnonzero(got != e)
    assert not len(bad), (f"{name}.kernel_arrays: the compiled emission differs from emit at {len(bad)} of "
                          f"{len(e)} lanes, e.g. (prompt, run, round, pos, arm) = "
                          f"{tuple(int(x[bad[0]]) for x in lanes)}: {int(got[bad[0]])} vs {int(e[bad[0]])}")
