"""Review of the engines' adaptive rules (issue 31): golden sequences reworked independently from
the engines' code at the boundaries the other tests leave open, on the numpy and compiled forms."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import kernels
from simulator.kernels.core import BATCH, IST
from simulator.kernels.learners import learner_args
from simulator.policies import PolicyContext, make_policy

ARMS = ("plain@0", "a@1", "a@2", "a@3", "a@4")  # arm index = K


def _ctx() -> PolicyContext:
    return PolicyContext(n_arms=len(ARMS), arm_names=ARMS, L=4, reward_lo=1.0, reward_hi=5.0, drafter_names=("a",))


def _numpy(spec: str, rounds: list[tuple[int, float]]) -> list[int]:
    p = make_policy(spec)
    p.reset(1, _ctx())
    out = []
    for bs, y in rounds:
        if p.reads_batch:
            p.on_batch(np.array([bs]))
        arm = p.select(np.zeros((1, max(p.n_random, 1))))
        out.append(int(arm[0]))
        p.update(arm, np.array([y]), np.array([True]))
    return out


def _compiled(spec: str, rounds: list[tuple[int, float]]) -> list[int]:
    ctx = _ctx()
    la = learner_args(make_policy(spec), ctx)
    init, _, select, update = la.kernel.functions()
    A = ctx.n_arms
    st, ist, tmp = np.zeros((la.rows, la.cols)), np.zeros(IST, dtype=np.int64), np.zeros(max(A, la.cols, 4))
    init(A, st, ist, la.prm, la.itab)
    out = []
    for g, (bs, y) in enumerate(rounds):
        ist[BATCH] = bs
        arm = select(A, st, ist, la.prm, la.itab, la.ftab, np.uint64(3), np.int64(0), np.int64(g), tmp)
        out.append(int(arm))
        update(arm, float(y), A, st, ist, la.prm, la.itab, la.ftab, np.zeros((1, 1, 1)), 0, 0, 0, tmp)
    return out


FORMS = [_numpy, pytest.param(_compiled, marks=pytest.mark.skipif(not kernels.AVAILABLE, reason="no numba"))]

CASES = [
    # SGLang AdaptiveStepSlot._recompute_params (sglang 015c8726), ema_alpha 1 (ema = batch mean),
    # warmup 0, interval 1: every round recomputes.  Start 4, ema 3.
    #  r1 a@4, acc 1.25: down 1.25 <= 2.5, <= 1.5, > .5 -> steps 2; ceil(1.25) = 2, 2 > 2 no  -> 2
    #  r2 a@2, acc 1.75: up 1.75 > 1.5 -> 3, 1.75 <= 2.5; ceiling 2 but 3 > old 2             -> 3
    #  r3 a@3, acc 2.25: no down (> 1.5), no up (<= 2.5); ceiling 3, 3 > 3 no                  -> 3
    #  r4 a@3, acc 1.75: no down, no up; ceiling 2, target 3 > 2 and 3 <= old 3: capped        -> 2
    #  r5 a@2.
    ("sglang-adaptive:candidate_steps=1:1+2+3+4,ceiling_coeff=1,down_hysteresis=0,warmup_batches=0,"
     "update_interval=1,ema_alpha=1,speculative_num_steps=4",
     [(1, 2.25), (1, 2.75), (1, 3.25), (1, 2.75), (1, 1.0)], [4, 2, 3, 3, 2]),
    # llama.cpp DFlash accept (Us5rName 63d239d0): success iff n_accepted >= adaptive_n - bias (inclusive).
    # threshold 1, bias 1, n 1..3 from 1: acc 0 >= 0 up; acc 1 >= 1 up; acc 1 < 2 down; acc 0 < 1 down.
    ("llamacpp-adaptive:adaptive_length_threshold=1,adaptive_length_bias=1,n_min=1,n_max=3",
     [(1, 1.0), (1, 2.0), (1, 2.0), (1, 1.0), (1, 1.0)], [1, 2, 3, 2, 1]),
    # TensorRT-LLM get_draft_len_for_batch_size (011d0933): a scheduled 0 inside the schedule is
    # floored at min_draft_len too: {2: 2, 6: 0}, floor 1 -> bs 1, 2: 2; 3..6: max(0, 1); 7+: 1.
    ("trtllm-schedule:draft_len_schedule=2:2/6:0,max_draft_len=2,min_runtime_draft_len=1",
     [(1, 1.0), (2, 1.0), (3, 1.0), (6, 1.0), (7, 1.0)], [2, 2, 1, 1, 1]),
]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("spec, rounds, expected", CASES, ids=["sglang-ceiling-at-old", "llamacpp-bias-inclusive",
                                                               "trtllm-floor-inside"])
def test_reworked_golden_sequences(form, spec, rounds, expected):
    assert form(spec, rounds) == expected
