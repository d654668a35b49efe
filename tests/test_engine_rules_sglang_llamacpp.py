"""SGLang's ``--speculative-adaptive`` and llama.cpp's adaptive draft length as policies
(issue 19): golden sequences worked out by hand from the engines' code paths, asserted on the
numpy form and on the compiled form; conformance; bit-equal engines in single-request decoding
with the state carried across prompts and in batch serving; parameter errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simulator import kernels
from simulator.kernels.core import BATCH, IST
from simulator.kernels.learners import learner_args
from simulator.policies import PolicyContext, PolicyError, make_policy
from simulator.policies.check import check_policy

ARMS = ("plain@0", "a@1", "a@2", "a@3", "a@4")  # arm index = K
RULES = ("sglang-adaptive", "llamacpp-adaptive")


def _ctx() -> PolicyContext:
    return PolicyContext(n_arms=len(ARMS), arm_names=ARMS, L=4, reward_lo=1.0, reward_hi=5.0, drafter_names=("a",))


def _numpy_arms(spec: str, rounds: list[tuple[int, float]]) -> list[int]:
    """The numpy form over ``(batch size, reward)`` rounds; the reward is tokens per sequence."""
    p = make_policy(spec)
    p.reset(1, _ctx())
    out = []
    for bs, y in rounds:
        if p.reads_batch:
            p.on_batch(np.array([bs]))
        arm = p.select(np.zeros((1, 1)))
        out.append(int(arm[0]))
        p.update(arm, np.array([y]), np.array([True]))
    return out


def _compiled_arms(spec: str, rounds: list[tuple[int, float]]) -> list[int]:
    """The compiled functions for one lane, driven as the lane loops drive them."""
    ctx = _ctx()
    la = learner_args(make_policy(spec), ctx)
    init, _, select, update = la.kernel.functions()
    A = ctx.n_arms
    st, ist, tmp = np.zeros((la.rows, la.cols)), np.zeros(IST, dtype=np.int64), np.zeros(max(A, la.cols, 4))
    F = np.zeros((1, 1, 1))
    init(A, st, ist, la.prm, la.itab)
    out = []
    for g, (bs, y) in enumerate(rounds):
        ist[BATCH] = bs
        arm = select(A, st, ist, la.prm, la.itab, la.ftab, np.uint64(1), np.int64(0), g, tmp)
        out.append(int(arm))
        update(arm, float(y), A, st, ist, la.prm, la.itab, la.ftab, F, 0, 0, 0, tmp)
    return out


def _both(spec: str, rounds: list[tuple[int, float]]) -> tuple[list[int], list[int]]:
    return _numpy_arms(spec, rounds), (_compiled_arms(spec, rounds) if kernels.AVAILABLE else None)


# ------------------------------------------------------------------ SGLang, adaptive_spec_params.py
SGL_TIERS = ("sglang-adaptive:candidate_steps=1:1+2+4/4:0+1,down_hysteresis=1:-0.25/4:0,"
             "warmup_batches=2,update_interval=2,ema_alpha=0.5")
# (batch size, tokens per sequence = accepted drafts + 1)
SGL_ROUNDS = [(1, 3), (2, 3), (1, 3), (3, 3), (4, 1), (1, 1), (5, 1), (2, 2), (8, 1), (6, 1), (4, 1), (4, 1),
              (4, 1), (1, 1)]
# Slots: key 1 (bs 1..3) tiers [1, 2, 4], down -0.25; key 4 (bs >= 4) tiers [0, 1], down 0.
# Start (_init_adaptive_speculative_params): union [0, 1, 2, 4][4 // 2] = 2.  Slot 1 holds 2:
# steps 2, ema 1.0.  Slot 4 lacks 2: its middle [0, 1][1] = 1, ema 0.0.
#  r1  bs1 -> slot 1, steps 2 (a@2); acc 2: ema .5*1 + .5*2 = 1.5; count 1 <= warmup 2
#  r2  bs2 -> slot 1, a@2; acc 2: ema 1.75; count 2 <= 2
#  r3  bs1 -> a@2; ema 1.875; count 3: (3 - 2) % 2 = 1, no recompute
#  r4  bs3 -> a@2; ema 1.9375; count 4: recompute.  down: prev 1, 1 - .5 - .25 = .25, 1.9375 > .25;
#      up: 2 - .5 = 1.5 < 1.9375 -> tier 4 (the last)                               -> steps 4
#  r5  bs4 -> slot 4 (largest key <= 4), steps 1 (a@1); acc 0: ema 0.0; count 1
#  r6  bs1 -> slot 1, steps 4 (a@4); acc 0: ema .5 * 1.9375 = .96875; count 5: no
#  r7  bs5 -> slot 4, a@1; acc 0: ema 0; count 2 <= 2
#  r8  bs2 -> slot 1, a@4; acc 1: ema .984375; count 6: recompute.  down: prev 2, 1.5 - .25 = 1.25
#      >= .984 -> tier 2; prev 1, .25 < .984 stop; moved down, no up                  -> steps 2
#  r9  bs8 -> slot 4, a@1; ema 0; count 3: no
#  r10 bs6 -> slot 4, a@1; ema 0; count 4: recompute.  down: prev 0, 0.5 + 0 = .5 >= 0 -> steps 0
#  r11 bs4 -> slot 4, steps 0 (plain@0); no EMA update at steps 0; count 5: no
#  r12 bs4 -> plain@0; count 6: recompute from 0: probe the next tier, 1 (ema 0 is not < 0)
#  r13 bs4 -> slot 4, a@1
#  r14 bs1 -> slot 1, still steps 2 (a@2)
SGL_EXPECTED = [2, 2, 2, 2, 1, 4, 1, 4, 1, 1, 0, 0, 1, 2]

SGL_CEILING = ("sglang-adaptive:candidate_steps=1:0+1+3,down_hysteresis=0,ceiling_coeff=1.0,"
               "warmup_batches=0,update_interval=1,ema_alpha=0.5,speculative_num_steps=0")
SGL_CEILING_ROUNDS = [(1, 1), (1, 2), (1, 1), (1, 2), (1, 4), (1, 2), (1, 1)]
# One slot, tiers [0, 1, 3], start 0: ema = 0 - 1 = -1.  Every round recomputes.
#  r1 plain@0; from 0: probe tier 1, and ema -1 < 0 becomes 1 - 1 = 0                   -> steps 1
#  r2 a@1, acc 1: ema .5; down: prev 0, .5 + 0 = .5 >= .5 (<=, inclusive)                -> steps 0
#  r3 plain@0; probe tier 1 (ema .5 stays)                                              -> steps 1
#  r4 a@1, acc 1: ema .75; down: .75 > .5; up: 1 - .5 = .5 < .75 -> tier 3; ceiling
#     max(1, ceil(.75 * 1)) = 1, but target 3 > old 1: the ceiling only caps downward    -> steps 3
#  r5 a@3, acc 3: ema 1.875; down: prev 1, .5 < 1.875; no tier above; ceiling ceil(1.875) = 2,
#     target 3 > 2 and 3 <= old 3: cap to the largest tier <= 2                          -> steps 1
#  r6 a@1, acc 1: ema 1.4375; up to 3; ceiling 2 but 3 > old 1                           -> steps 3
#  r7 a@3
SGL_CEILING_EXPECTED = [0, 1, 0, 1, 3, 1, 3]


@pytest.mark.parametrize("spec, rounds, expected", [(SGL_TIERS, SGL_ROUNDS, SGL_EXPECTED),
                                                    (SGL_CEILING, SGL_CEILING_ROUNDS, SGL_CEILING_EXPECTED)],
                         ids=["tiers-warmup-interval-hysteresis", "zero-probe-ceiling"])
def test_sglang_golden_sequence_from_the_engine_code(spec, rounds, expected):
    got_numpy, got_compiled = _both(spec, rounds)
    assert got_numpy == expected, f"numpy form: {got_numpy}"
    if got_compiled is not None:
        assert got_compiled == expected, f"compiled form: {got_compiled}"


def test_sglang_defaults_are_the_engine_defaults():
    """DEFAULT_ADAPTIVE_CONFIG; with the arms K <= 4 the tiers 5 and 7 are dropped; the start is
    the engine's 3 (middle of [0, 1, 3, 5, 7]); slot 32 starts at 1, slot 64 at 0."""
    p = make_policy("sglang-adaptive")
    assert (p.ema_alpha, p.update_interval, p.warmup_batches) == (0.2, 5, 10)
    p.reset(1, _ctx())
    assert p.keys_ == [1, 8, 32, 64]
    assert p.down_ == [-0.25, 0.0, 0.0, 0.0] and p.up_ == [0.0] * 4 and p.ceil_ == [0.0] * 4
    assert p.steps()[0].tolist() == [3, 3, 1, 0]
    assert p.ema_[0].tolist() == [2.0, 2.0, 0.0, -1.0]
    p.on_batch(np.array([70]))
    assert p.select(np.zeros((1, 1))).tolist() == [0]  # BS >= 64: plain decoding


# ------------------------------------------------------------------ llama.cpp, PR #25726's accept()
LLAMA = "llamacpp-adaptive:adaptive_length_threshold=2,adaptive_length_bias=1,n_min=1,n_max=3"
LLAMA_ROUNDS = [(1, y) for y in (1, 1, 1, 2, 3, 4, 3, 1, 2, 1, 1, 1, 1)]
# N = 2, B = 1: success when accepted >= adaptive_n - 1.  adaptive_n starts at n_min = 1.
#  r1  n1 (a@1), acc 0 >= 0 success: correct 1
#  r2  n1, acc 0 success: correct 2 = N -> n 2, correct 0
#  r3  n2 (a@2), acc 0 < 1 failure: wrong 1, correct 0
#  r4  n2, acc 1 >= 1 success: correct 1, wrong 0
#  r5  n2, acc 2 success: correct 2 -> n 3, correct 0
#  r6  n3 (a@3), acc 3 success: correct 1
#  r7  n3, acc 2 >= 2 success: correct 2, but n = n_max: stays 3, correct 0
#  r8  n3, acc 0 failure: wrong 1
#  r9  n3, acc 1 < 2 failure: wrong 2 -> n 2, wrong 0
#  r10 n2, acc 0 failure: wrong 1
#  r11 n2, acc 0 failure: wrong 2 -> n 1
#  r12 n1 (a@1), acc 0 success: correct 1
#  r13 n1
LLAMA_EXPECTED = [1, 1, 2, 2, 2, 3, 3, 3, 3, 2, 2, 1, 1]


@pytest.mark.parametrize("spec, rounds, expected", [
    (LLAMA, LLAMA_ROUNDS, LLAMA_EXPECTED),
    # n_min = 0: adaptive_n starts at 0, the draft is empty and accept() is never called (the
    # code's TODO): plain decoding however well the drafter would do
    ("llamacpp-adaptive:adaptive_length_threshold=1,n_min=0,n_max=2", [(1, 5.0)] * 4, [0, 0, 0, 0]),
    # threshold 0 (the engine's default) disables the rule: every draft is n_max tokens
    ("llamacpp-adaptive:adaptive_length_threshold=0,n_max=3", [(1, 1.0)] * 4, [3, 3, 3, 3]),
    # a batch's mean accepted count (serving) is compared as it is: 1.5 < 2 - 0 is a failure
    ("llamacpp-adaptive:adaptive_length_threshold=1,n_min=2,n_max=4", [(4, 2.5), (4, 3.0), (4, 4.0)], [2, 2, 3]),
], ids=["threshold-bias-bounds", "n_min-0-never-starts", "disabled", "mean-accepted"])
def test_llamacpp_golden_sequence_from_the_engine_code(spec, rounds, expected):
    got_numpy, got_compiled = _both(spec, rounds)
    assert got_numpy == expected, f"numpy form: {got_numpy}"
    if got_compiled is not None:
        assert got_compiled == expected, f"compiled form: {got_compiled}"


# ------------------------------------------------------------------ conformance and engines
@pytest.mark.parametrize("spec", [*RULES, SGL_TIERS, SGL_CEILING, LLAMA,
                                  "llamacpp-adaptive:adaptive_length_threshold=1,n_min=0,n_max=4"])
def test_check_policy(spec):
    check_policy(make_policy(spec))


def test_listed_with_their_parameters_and_tuning_knob():
    import subprocess
    import sys

    from simulator.policies import REGISTRY

    out = subprocess.run([sys.executable, "-m", "simulator", "policies"], capture_output=True, text=True,
                         check=True).stdout
    for name, field in (("sglang-adaptive", "ema_alpha=0.2"), ("llamacpp-adaptive", "adaptive_length_threshold=11")):
        assert f"\n{name} " in out and field in out, name
        knob, grid = REGISTRY[name].tuning
        assert 4 <= len(grid) <= 6 and all(make_policy(f"{name}:{knob}={v}").spec() for v in grid)


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
def test_numpy_and_compiled_engines_agree_with_state_carried_across_prompts():
    from simulator.runner import RunConfig, resolve, simulate

    cfg = RunConfig(trace="builtin:smollm2-greedy", runs=2, seed=3, arms="plain@0,eagle@1-4",
                    carry_state=True, engine="numpy")
    prep = resolve(cfg)
    prompts = np.arange(min(prep.env.n_prompts, 6))
    for spec in (*RULES, "sglang-adaptive:warmup_batches=1,update_interval=1,ceiling_coeff=1.2", LLAMA):
        prep.cfg = replace(cfg, engine="numpy")
        a = simulate(prep, make_policy(spec), prompts, np.arange(2))
        prep.cfg = replace(cfg, engine="numba")
        b = simulate(prep, make_policy(spec), prompts, np.arange(2))
        for k in ("stopping_time", "pulls", "time_s"):
            assert np.array_equal(a[k], b[k]), f"{spec}: {k} differs between numpy and numba"
        assert (a["pulls"].sum(axis=(0, 1)) > 0).sum() >= 1


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
def test_serving_numpy_and_compiled_agree_and_sglang_follows_the_batch():
    from simulator.serving import ServeConfig, run_serving

    pols = (*RULES, "sglang-adaptive:candidate_steps=1:1+2+4/4:0+1,warmup_batches=1,update_interval=1", LLAMA)
    cfg = ServeConfig(trace="builtin:smollm2-greedy", arms="plain@0,eagle@1-4", policies=pols,
                      batch_sizes=(1, 4, 8), runs=1, engine="numpy")
    a, _ = run_serving(cfg, progress=False)
    b, _ = run_serving(replace(cfg, engine="numba"), progress=False)
    for col in ("rounds", "tokens", "time_s"):
        assert a[col].tolist() == b[col].tolist(), col


@pytest.mark.parametrize("spec, words", [
    ("sglang-adaptive:candidate_steps=1:1+x", ["candidate_steps", "BATCH_SIZE:STEP+STEP"]),
    ("sglang-adaptive:candidate_steps=1:1+3/1:2", ["given twice"]),
    ("sglang-adaptive:down_hysteresis=2:0.1", ["down_hysteresis", "not a key of candidate_steps"]),
    ("sglang-adaptive:ema_alpha=0", ["ema_alpha=0", "(0, 1]"]),
    ("llamacpp-adaptive:n_min=4,n_max=2", ["n_min=4", "n_max=2"]),
])
def test_bad_parameters_say_field_and_expected(spec, words):
    with pytest.raises(PolicyError) as exc:
        make_policy(spec)
    assert all(w in str(exc.value) for w in words), str(exc.value)


def test_arm_set_errors_name_the_missing_arms():
    ctx = PolicyContext(n_arms=2, arm_names=("a@1", "a@2"), L=2, reward_lo=1.0, reward_hi=3.0)
    with pytest.raises(PolicyError, match=r"slot 64: none of the candidate steps \[0\]"):
        make_policy("sglang-adaptive").reset(1, ctx)
    with pytest.raises(PolicyError, match=r"plain@0"):
        make_policy("llamacpp-adaptive:n_min=0").reset(1, ctx)
