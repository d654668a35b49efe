"""Golden tests of vLLM's adaptive K, vLLM's per-batch-size table and TensorRT-LLM's draft-length
schedule, each worked out by hand from the engine's code path (derivations in the comments),
asserted on the numpy form and on the compiled form; then both forms on real runs (replay,
carried state, batch serving) bit for bit, and ``check_policy``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simulator import kernels
from simulator.kernels.core import BATCH, IST
from simulator.kernels.learners import learner_args
from simulator.policies import REGISTRY, PolicyContext, PolicyError, make_policy
from simulator.policies.check import check_policy

ARMS = ("plain@0", "a@1", "a@2", "a@3", "a@4")  # arm index = K


def _ctx(names: tuple[str, ...] = ARMS) -> PolicyContext:
    L = 4
    return PolicyContext(n_arms=len(names), arm_names=names, L=L, reward_lo=1.0, reward_hi=L + 1.0,
                         drafter_names=("a",))


def _numpy_ks(spec: str, batches: list[int], ys: list[float]) -> list[int]:
    """K chosen each round by the numpy form: batch size, select, then reward ``y`` (tokens)."""
    p = make_policy(spec)
    ctx = _ctx()
    p.reset(1, ctx)
    out = []
    for bs, y in zip(batches, ys, strict=True):
        if p.reads_batch:
            p.on_batch(np.array([bs]))
        arm = p.select(np.zeros((1, max(p.n_random, 1))))
        out.append(ctx.arms[int(arm[0])].k)
        p.update(arm, np.array([float(y)]), np.array([True]))
    return out


def _compiled_ks(spec: str, batches: list[int], ys: list[float]) -> list[int]:
    """The same through the compiled functions of one lane (``Kernel``), called one by one."""
    p = make_policy(spec)
    ctx = _ctx()
    la = learner_args(p, ctx)
    init, _, select, update = la.kernel.functions()
    A = ctx.n_arms
    st, ist, tmp = np.zeros((la.rows, la.cols)), np.zeros(IST, dtype=np.int64), np.zeros(max(A, la.cols, 4))
    F = np.zeros((1, 1, 1))
    init(A, st, ist, la.prm, la.itab)
    out = []
    for g, (bs, y) in enumerate(zip(batches, ys, strict=True)):
        ist[BATCH] = bs
        arm = select(A, st, ist, la.prm, la.itab, la.ftab, np.uint64(7), np.int64(0), np.int64(g), tmp)
        out.append(ctx.arms[int(arm)].k)
        update(arm, float(y), A, st, ist, la.prm, la.itab, la.ftab, F, 0, 0, 0, tmp)
    return out


FORMS = [_numpy_ks, pytest.param(_compiled_ks, marks=pytest.mark.skipif(not kernels.AVAILABLE, reason="no numba"))]

# ------------------------------------------------------------------ vLLM adaptive K (#47111)
ADAPTIVE = "vllm-adaptive-k:ema_alpha=0.5,c_draft=0.1,bs_penalty=0.05,cooldown_steps=2,alpha_prior=0.5"
# Scheduler._compute_adaptive_k / update_from_output (vllm cfee1b19), N = num_spec_tokens = 4:
# r1 bs 5: no EMA -> K=4. y=3 (a=2): reached[0..2] += 5, accepted[0..1] += 5, steps 5.
# r2 bs 5: no EMA -> K=4. y=1 (a=0): reached[0] += 5, steps 10 >= 10 -> EMA from prior 0.5:
#    raw = accepted/reached = (5/10, 5/5, 0/5, -) -> EMA (0.5, 0.75, 0.25, 0.5).
# r3 bs 2: overhead 0.05*2 = 0.1; goodput K=1..4: 1.5/1.2=1.25, 1.875/1.3=1.4423,
#    1.96875/1.4=1.4063, 2.015625/1.5=1.3438 -> K=2; |2-4| > 1 -> cooldown 2, prev 2.
#    y=3 (a=2): reached[0,1] += 2, accepted[0,1] += 2, steps 2.
# r4 bs 3: cooldown 2 -> 1, K = prev = 2. y=2 (a=1): reached[0,1] += 3, accepted[0] += 3, steps 5.
# r5 bs 1: cooldown 1 -> 0, K=2. y=1 (a=0): reached[0] += 1, steps 6.
# r6 bs 40: overhead 2.0: goodputs 1.5/3.1, 1.875/3.2, 1.96875/3.3, 2.015625/3.4, all < 1 -> K=0
#    (plain), |0-2| > 1 -> cooldown 2, prev 0.  A K=0 round verifies no draft: nothing counted.
# r7 bs 40: cooldown 2 -> 1, K=0.   r8 bs 2: cooldown 1 -> 0, K=0.
# r9 bs 2: goodputs as r3 -> K=2, |2-0| > 1 -> cooldown 2. y=3: reached/accepted[0,1] += 2, steps 8.
# r10 bs 2: cooldown 2 -> 1, K=2. y=3: += 2, steps 10 -> EMA: reached (2+3+1+2+2, 2+3+0+2+2) = (10, 9),
#    accepted (2+3+0+2+2, 2+0+0+2+2) = (9, 6) -> EMA (0.5+0.5*(0.9-0.5), 0.75+0.5*(6/9-0.75)) =
#    (0.7, 0.70833), positions 3, 4 unreached: (0.25, 0.5).
# r11 bs 2: cooldown 1 -> 0, K=2.  y=3.
# r12 bs 2: goodputs 1.7/1.2=1.4167, 2.19583/1.3=1.6891, 2.31979/1.4=1.6570, 2.38177/1.5=1.5878 -> K=2.
ADAPTIVE_BS = [5, 5, 2, 3, 1, 40, 40, 2, 2, 2, 2, 2]
ADAPTIVE_Y = [3, 1, 3, 2, 1, 1, 1, 1, 3, 3, 3, 3]
ADAPTIVE_K = [4, 4, 2, 2, 2, 0, 0, 0, 2, 2, 2, 2]


@pytest.mark.parametrize("form", FORMS)
def test_vllm_adaptive_k_by_hand(form):
    assert form(ADAPTIVE, ADAPTIVE_BS, ADAPTIVE_Y) == ADAPTIVE_K


@pytest.mark.parametrize("form", FORMS)
def test_vllm_adaptive_k_min_tokens_and_table_cap(form):
    """min_tokens=1 and the Dynamic SD table "1-2:1/3-64:4" capping the step's K (vllm cfee1b19:
    ``min(_compute_adaptive_k(max_k=N), dynamic_sd_lookup[bs])``; the previous K keeps the uncapped one).
    r1, r2 (bs 5): no EMA -> K = min(4, 4) = 4; EMA after r2 = (0.5, 0.75, 0.25, 0.5) as above.
    r3 bs 2: goodput argmax 2 (as above), |2-4| > 1 -> cooldown 2, prev 2; cap 1 -> K=1.
       y=2 (a=1) at K=1: reached[0] += 2, accepted[0] += 2, steps 2.
    r4 bs 40: cooldown 2 -> 1, K = prev = 2 (cap 4). y=2 (a=1): reached[0,1] += 40, accepted[0] += 40,
       steps 42 -> EMA: raw (42/42, 0/40) -> (0.75, 0.375, 0.25, 0.5).
    r5 bs 40: cooldown 1 -> 0, K=2. y=2: raw (1, 0) -> EMA (0.875, 0.1875, 0.25, 0.5).
    r6 bs 40: overhead 2.0: goodputs 1.875/3.1, 2.0390625/3.2, 2.0800781/3.3, 2.1005859/3.4 all < 1
       -> best 0 -> min_tokens = 1; |1-2| = 1: no cooldown; K=1.  y=2: reached[0] += 40,
       accepted[0] += 40, steps 40 -> EMA (0.9375, 0.1875, 0.25, 0.5).
    r7 bs 2: overhead 0.1: goodputs 1.9375/1.2 = 1.6146, 2.1132813/1.3 = 1.6256, 2.1572266/1.4 = 1.5409,
       2.1791992/1.5 = 1.4528 -> 2 (|2-1| = 1: no cooldown); cap 1 -> K=1."""
    spec = ADAPTIVE + ",min_tokens=1,num_speculative_tokens_per_batch_size=1-2:1/3-64:4"
    assert form(spec, [5, 5, 2, 40, 40, 40, 2], [3, 1, 2, 2, 2, 2, 2]) == [4, 4, 1, 2, 2, 1, 1]


@pytest.mark.parametrize("form", FORMS)
def test_vllm_adaptive_k_explores_the_largest_allowed_k(form):
    """epsilon = 1: every step plays the largest K the step allows (N, or the table's cap)."""
    spec = "vllm-adaptive-k:epsilon=1.0,c_draft=5.0,num_speculative_tokens_per_batch_size=1-4:4/5-64:2"
    assert form(spec, [1, 1, 8, 8] * 4, [1] * 16) == [4, 4, 2, 2] * 4


# -------------------------------------------------------------- vLLM num_speculative_tokens_per_batch_size
# build_dynamic_sd_schedule_lookup([(1,4,4),(9,16,2),(40,60,0)], max_bs, num_speculative_tokens=3):
# bs 1-4 -> min(3, 4) = 3; gap 5-8 carries the previous K -> 3; 9-16 -> 2; gap 17-39 -> 2;
# 40-60 -> 0; the tail past 60 carries the last K -> 0.
TABLE = "vllm-batch-table:num_speculative_tokens_per_batch_size=1-4:4/9-16:2/40-60:0,num_speculative_tokens=3"
TABLE_BS = [1, 4, 5, 8, 9, 16, 17, 39, 40, 60, 61, 500]
TABLE_K = [3, 3, 3, 3, 2, 2, 2, 2, 0, 0, 0, 0]


@pytest.mark.parametrize("form", FORMS)
def test_vllm_batch_table_by_hand(form):
    assert form(TABLE, TABLE_BS, [1] * len(TABLE_BS)) == TABLE_K


@pytest.mark.parametrize("table, why", [("1-4:4/3-8:2", "must not overlap"), ("2-4:1", "must start at 1"),
                                        ("1-4", "is not LO-HI:K"), ("1-4:-1", "K values must be >= 0"),
                                        ("1-4:2,5-8:1", "is not LO-HI:K")])
def test_vllm_batch_table_refuses_what_vllm_refuses(table, why):
    with pytest.raises(PolicyError, match=why):  # the class itself: a ',' would end the spec's value
        REGISTRY["vllm-batch-table"](num_speculative_tokens_per_batch_size=table)


# ----------------------------------------------------------------- TensorRT-LLM draft_len_schedule
# get_draft_len_for_batch_size({4:4, 8:2, 32:1}, bs, 4, min_draft_len): bisect_left -> the first key
# >= bs: bs 1-4 -> 4, 5-8 -> 2, 9-32 -> 1; past 32 the floor (0, or min_runtime_draft_len).
SCHED_BS = [1, 4, 5, 8, 9, 32, 33, 100]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("spec, ks", [
    ("trtllm-schedule:draft_len_schedule=4:4/8:2/32:1", [4, 4, 2, 2, 1, 1, 0, 0]),
    ("trtllm-schedule:draft_len_schedule=4:4/8:2/32:1,min_runtime_draft_len=1", [4, 4, 2, 2, 1, 1, 1, 1]),
    # max_concurrency=8 -> {8: max_draft_len}: speculation while bs <= 8
    ("trtllm-schedule:max_concurrency=8", [4, 4, 4, 4, 0, 0, 0, 0]),
    ("trtllm-schedule", [4] * 8),  # neither: always max_draft_len
    ("trtllm-schedule:draft_len_schedule=2:2/6:0/20:1,max_draft_len=2", [2, 0, 0, 1, 1, 0, 0, 0]),
])
def test_trtllm_schedule_by_hand(form, spec, ks):
    assert form(spec, SCHED_BS, [1] * len(SCHED_BS)) == ks


@pytest.mark.parametrize("spec, why", [
    ("draft_len_schedule=4:4/8:2,max_concurrency=8", "mutually exclusive"),
    ("draft_len_schedule=4:3/8:2,max_draft_len=4", "must equal max_draft_len=4"),
    ("draft_len_schedule=4:4/8:5,max_draft_len=4", "<= max_draft_len=4"),
    ("draft_len_schedule=0:4", ">= 1"),
    ("draft_len_schedule=4-4", "is not BATCH_SIZE:DRAFT_LEN"),
])
def test_trtllm_schedule_refuses_what_trtllm_refuses(spec, why):
    with pytest.raises(PolicyError, match=why):
        make_policy(f"trtllm-schedule:{spec}")


def test_a_rule_that_can_turn_speculation_off_needs_plain_decoding():
    ctx = _ctx(("a@1", "a@2", "a@3", "a@4"))
    for spec in ("vllm-adaptive-k", "trtllm-schedule:max_concurrency=4", TABLE):
        with pytest.raises(PolicyError, match="add plain@0"):
            make_policy(spec).reset(1, ctx)
    make_policy("vllm-adaptive-k:min_tokens=1").reset(1, ctx)  # K >= 1 always: no plain arm needed


@pytest.mark.parametrize("spec", ["vllm-adaptive-k", "vllm-adaptive-k:epsilon=0.2,min_tokens=1", "vllm-batch-table",
                                  TABLE, "trtllm-schedule", "trtllm-schedule:max_concurrency=8"])
def test_check_policy(spec):
    check_policy(make_policy(spec), rounds=60)


def test_tuning_knobs_are_parameters():
    for name in ("vllm-adaptive-k", "vllm-batch-table", "trtllm-schedule"):
        p = make_policy(name)
        knob, grid = type(p).tuning
        assert 4 <= len(grid) <= 6
        for v in grid:
            make_policy(f"{name}:{knob}={v}")


# ------------------------------------------------------------ numpy and compiled on real runs
RULES = ("vllm-adaptive-k:drafter=eagle", "vllm-adaptive-k:drafter=eagle,epsilon=0.1,c_draft=0.05",
         "vllm-batch-table:drafter=eagle", "trtllm-schedule:drafter=eagle,max_concurrency=4")


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
@pytest.mark.parametrize("carry", [False, True])
def test_numpy_and_compiled_runs_agree(carry):
    from simulator.runner import RunConfig, resolve, simulate

    cfg = RunConfig(trace="builtin:smollm2-greedy", runs=2, seed=5, arms="plain@0,eagle@1-4,pld@2", engine="numpy",
                    carry_state=carry)
    prep = resolve(cfg)
    prompts = np.arange(min(prep.env.n_prompts, 8))
    for spec in RULES:
        prep.cfg = replace(cfg, engine="numpy")
        a = simulate(prep, make_policy(spec), prompts, np.arange(2))
        prep.cfg = replace(cfg, engine="numba")
        b = simulate(prep, make_policy(spec), prompts, np.arange(2))
        for k in ("stopping_time", "pulls", "time_s"):
            assert np.array_equal(a[k], b[k]), f"{spec}: {k}"


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
def test_serving_numpy_and_compiled_agree_and_the_batch_size_matters():
    from simulator.serving import ServeConfig, run_serving

    pols = ("vllm-adaptive-k", "vllm-adaptive-k:epsilon=0.1,num_speculative_tokens_per_batch_size=1-4:4/5-64:1",
            "vllm-batch-table:num_speculative_tokens_per_batch_size=1-1:4/2-64:1",
            "trtllm-schedule:draft_len_schedule=1:4/3:1")
    cfg = ServeConfig(trace="builtin:smollm2-greedy", arms="plain@0,eagle@1-4", policies=pols, batch_sizes=(1, 6),
                      runs=1, engine="numpy")
    a, _ = run_serving(cfg, progress=False)
    b, _ = run_serving(replace(cfg, engine="numba"), progress=False)
    for col in ("rounds", "tokens", "time_s"):
        assert a[col].tolist() == b[col].tolist(), col
    # at batch size 1 the table plays eagle@4 throughout: its rounds equal the fixed arm's
    one = a[a.batch_size == 1]
    rounds = one.groupby("method").rounds.sum()
    assert rounds["vllm-batch-table:num_speculative_tokens_per_batch_size=1-1:4/2-64:1"] == rounds["eagle@4"]
    six = a[a.batch_size == 6].groupby("method").rounds.sum()
    assert six["vllm-batch-table:num_speculative_tokens_per_batch_size=1-1:4/2-64:1"] != six["eagle@4"]
