"""UCBSpec's radius width (issue "15. Fidelity", item 2) and the reward-range rule of every learner.

By default UCBSpec is the paper's: one radius scale ``w/2`` for every arm (BanditSpec Eq. 6,
``w = L`` for tokens), ``w`` the largest arm reward range.  ``width=per-arm`` (each arm's own
range: the toolkit's earlier default) and ``scale`` are options, labelled in ``config.json``
and the summary.  Every other learner normalises with one range over the arm set.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pytest

from simulator.kernels import scalar_math as sm
from simulator.policies import REGISTRY, PolicyContext, PolicyError, make_policy
from simulator.policies.base import select_arms
from simulator.policies.check import _feedback, default_spec, synthetic_context
from simulator.policies.reference import UCBSpecReference
from simulator.policies.ucbspec import ucbspec_radius

ARMS = ("plain@0", "a@2", "b@4")
# tokens: [1, K_i + 1]; the largest range is L = 4 (radius scale 2 for every arm)
TOKENS = PolicyContext(3, ARMS, 4, 1.0, 5.0, arm_lo=np.ones(3), arm_hi=np.array([1.0, 3.0, 5.0]),
                       drafter_names=("a", "b"))
# throughput-like, unequal bottoms: widths 0, 1.5, 1.75; the common width is the largest, 1.75
# (not the union 2.5 - 0.5 = 2)
THROUGHPUT = PolicyContext(3, ARMS, 4, 0.5, 2.5, reward_kind="throughput", arm_lo=np.array([1.0, 0.5, 0.75]),
                           arm_hi=np.array([1.0, 2.0, 2.5]), drafter_names=("a", "b"))
# (arm, reward) fed in order: n = (1, 2, 3), t = 6 rounds completed
FEED = [(0, 1.0), (1, 2.0), (2, 3.0), (1, 3.0), (2, 5.0), (2, 1.0)]


def _fed(spec: str, ctx: PolicyContext, feed=FEED):
    pol = make_policy(spec)
    pol.reset(1, ctx)
    for arm, r in feed:
        pol.update(np.array([arm]), np.array([r]), np.array([True]))
    return pol


def _radius(pol) -> np.ndarray:
    return (pol.index() - pol.sums_ / pol.counts_)[0]


# Eq. 6 by hand, K = 3, delta = 1/2, t = 6, n = 1, 2, 3:
#   cr = (w/2) sqrt((1+n)/n^2 (1 + 2 ln(3 * 36 sqrt(1+n) / 0.5)))
#   n=1: ln 305.47 = 5.72185 -> sqrt(2 * 12.4437) = 4.98873;  n=2: ln 374.12 = 5.92459 ->
#   sqrt(0.75 * 12.84918) = 3.10433;  n=3: ln 432 = 6.06843 -> sqrt(4/9 * 13.13686) = 2.41632
#   w = 4 (tokens): x2 -> 9.977456, 6.208664, 4.832639;  w = 1.75: x0.875 -> 4.365137, 2.716290, 2.114280
@pytest.mark.parametrize("ctx,w,golden", [(TOKENS, 4.0, [9.977456, 6.208664, 4.832639]),
                                          (THROUGHPUT, 1.75, [4.365137, 2.716290, 2.114280])])
def test_radius_is_eq6_with_one_common_width(ctx, w, golden):
    assert ctx.common_width() == w
    pol = _fed("ucbspec", ctx)
    r = _radius(pol)
    assert np.allclose(r, golden, rtol=0, atol=5e-6), r  # plain@0 (width 0) gets the same scale
    assert np.allclose(r, ucbspec_radius(pol.counts_[0], 6.0, 3, w, 0.5), rtol=1e-14, atol=0)
    twin = UCBSpecReference(3, w)  # the reference twin is the paper's common width
    for arm, y in FEED:
        twin.update(arm, y)
    assert np.allclose(pol.index()[0], [twin.ucb(i) for i in range(3)], rtol=1e-14, atol=0)
    assert make_policy("ucbspec").resolved(ctx)["radius_width"] == w


def test_radius_after_the_round_robin_by_hand():
    # t = 3, n = 1: 2 sqrt(2 (1 + 2 ln(3 * 9 sqrt2 / 0.5))) = 2 sqrt(2 * 9.67112) = 8.795961, every arm
    pol = _fed("ucbspec", TOKENS, FEED[:3])
    assert np.allclose(_radius(pol), 8.795961, rtol=0, atol=5e-6)


def test_plain_is_played_after_the_round_robin_when_its_index_is_highest():
    # round robin (1 token each), then a and b once more at 1 token: every mean is 1, plain has the
    # fewest pulls, so the widest radius and the highest index -> plain
    feed = [(0, 1.0), (1, 1.0), (2, 1.0), (1, 1.0), (2, 1.0)]
    pol = _fed("ucbspec", TOKENS, feed)
    idx = pol.index()[0]
    assert idx[0] > idx[1:].max()
    assert pol.select(np.zeros((1, 1)))[0] == 0
    old = _fed("ucbspec:width=per-arm", TOKENS, feed)  # radius 0 for plain: never chosen
    assert old.index()[0][0] == 1.0 and old.select(np.zeros((1, 1)))[0] != 0


def test_plain_share_in_the_draft_length_demo():
    """The issue's measurement: with per-arm widths plain@0 is (almost) never played after the
    round robin; with the paper's common width it is played where its index is highest."""
    from simulator.runner import RunConfig, run_experiment

    cfg = RunConfig(trace="builtin:smollm2-greedy", policies=("ucbspec", "ucbspec:width=per-arm"), runs=2,
                    arms="plain@0,eagle@1-4", objective="time", cost_device="cuda", carry_state=True)
    df, conf = run_experiment(cfg, progress=False)
    share = {p: np.stack(g.pulls.to_numpy()).sum(axis=0) for p, g in df.groupby("policy")}
    share = {p: s[0] / s.sum() for p, s in share.items()}
    assert share["ucbspec"] > 0.1 and share["ucbspec:width=per-arm"] < 0.002, share
    assert conf["policy_parameters"]["ucbspec"]["width"] == "common"
    assert conf["policy_parameters"]["ucbspec"]["radius_width"] == pytest.approx(
        max(hi - lo for lo, hi in conf["rewards"]["ucbspec"]["arm_range"].values()))
    assert set(conf["policy_parameters"]["ucbspec:width=per-arm"]["radius_width"]) == set(conf["arms"])


def _old_index(pol) -> np.ndarray:
    """``UCBSpec.index`` as it was before the common width (HEAD e106516): per-arm widths."""
    K = pol.ctx_.n_arms
    lo, hi = pol.ctx_.arm_range()
    width = (hi - lo)[None, :]
    n = pol.counts_
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = pol.sums_ / n
        a = (1 + n) / n**2
        b = sm.log(K * np.sqrt(1 + n) / pol.delta)
        c = 4 * sm.log(np.maximum(pol.t_, 1))[:, None]
        cr = (width / 2) * np.sqrt(a * (1 + 2 * b + c))
    return np.where(n > 0, mean + cr, np.inf)


@pytest.mark.parametrize("kind", ["tokens", "throughput"])
def test_per_arm_option_is_the_old_rule_bit_for_bit(kind):
    ctx = synthetic_context(kind)
    pol, n_lanes, rng = make_policy("ucbspec:width=per-arm"), 16, np.random.default_rng(5)
    pol.reset(n_lanes, ctx)
    for r in range(150):
        new = pol.index()
        assert np.array_equal(new, _old_index(pol))
        arms = pol.select(np.zeros((n_lanes, 1)))
        want = np.where(pol.t_ < ctx.n_arms, np.minimum(pol.t_, ctx.n_arms - 1), np.argmax(_old_index(pol), axis=1))
        assert np.array_equal(arms, want)
        rew = _feedback(ctx, arms, rng, r)[0]
        pol.update(arms, rew, rng.random(n_lanes) < 0.9)


@pytest.mark.parametrize("policy", ["ucbspec", "ucbspec:width=per-arm", "ucbspec:scale=2.0"])
def test_every_engine_uses_the_same_width(policy):
    from simulator.runner import RunConfig, resolve, simulate

    cfg = RunConfig(trace="builtin:smollm2-greedy", policies=(policy,), runs=3, seed=3, arms="plain@0,rtn4@1-4,pld@1-8",
                    reward="throughput", cost_device="cuda", engine="numpy")
    a_prep, b_prep = resolve(cfg), resolve(replace(cfg, engine="numba"))
    P = a_prep.env.n_prompts
    a = simulate(a_prep, make_policy(policy), np.arange(P), np.arange(3))
    b = simulate(b_prep, make_policy(policy), np.arange(P), np.arange(3))
    assert np.array_equal(a["pulls"], b["pulls"]) and np.array_equal(a["stopping_time"], b["stopping_time"])


def test_scale_multiplies_every_radius_and_says_it_is_not_the_papers_guarantee():
    r1, r2 = _radius(_fed("ucbspec", THROUGHPUT)), _radius(_fed("ucbspec:scale=2", THROUGHPUT))
    assert np.allclose(r2, 2 * r1, rtol=1e-14, atol=0)
    assert any("not the paper's guarantee" in n for n in make_policy("ucbspec:scale=2").notes())
    assert not any("not the paper" in n for n in make_policy("ucbspec").notes())
    assert any("not the paper's UCBSpec" in n for n in make_policy("ucbspec:width=per-arm").notes())


@pytest.mark.parametrize("spec,expected", [("ucbspec:scale=0", "scale=0.0: expected a finite number > 0"),
                                           ("ucbspec:scale=-1", "scale=-1.0: expected a finite number > 0"),
                                           ("ucbspec:scale=inf", "scale=inf: expected a finite number > 0"),
                                           ("ucbspec:scale=nan", "scale=nan: expected a finite number > 0"),
                                           ("ucbspec:width=wide", "width='wide': expected one of ['common', "
                                                                  "'per-arm']")])
def test_bad_width_or_scale_is_refused(spec, expected):
    with pytest.raises(PolicyError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        make_policy(spec)


def test_width_and_scale_reach_config_and_summary(tmp_path, capsys):
    from simulator.cli import main as sim_main

    out = tmp_path / "res"
    assert sim_main(["run", "--trace", "builtin:synthetic-demo", "--policy", "ucbspec", "--policy", "ucbspec:scale=2",
                     "--runs", "1", "--arms", "plain@0,*@2", "--out", str(out)]) == 0
    ran = capsys.readouterr().out
    conf = json.loads((out / "config.json").read_text())
    assert conf["policy_parameters"]["ucbspec:scale=2.0"]["scale"] == 2.0
    assert conf["policy_parameters"]["ucbspec"]["radius_width"] == 2.0  # K = 2: tokens in [1, 3]
    assert conf["policy_notes"]["ucbspec:scale=2.0"][-1] == "radius scaled by 2 - not the paper's guarantee"
    assert sim_main(["summary", "--results", str(out)]) == 0
    summary = capsys.readouterr().out
    for text in (ran, summary):
        assert "note: ucbspec:scale=2.0: radius scaled by 2 - not the paper's guarantee" in text
        assert "note: ucbspec: radius width common" in text
    serve = tmp_path / "serve"
    assert sim_main(["serve", "--trace", "builtin:smollm2-greedy", "--arms", "plain@0,eagle@1-2", "--batch-sizes",
                     "1,4", "--runs", "1", "--cost-device", "cuda", "--policy", "ucbspec:width=per-arm,scale=0.5",
                     "--out", str(serve)]) == 0
    text = capsys.readouterr().out
    assert "note: ucbspec:width=per-arm,scale=0.5: radius scaled by 0.5 - not the paper's guarantee" in text
    assert "note: ucbspec:width=per-arm,scale=0.5: radius width per-arm" in text
    conf = json.loads((serve / "config.json").read_text())
    assert conf["policy_parameters"]["ucbspec:width=per-arm,scale=0.5"]["radius_width"]["plain@0"] == 0.0


# ------------------------------------------------------------------ the rule for every learner
LEARNERS = sorted(REGISTRY)  # every built-in, baselines included (they must not read per-arm ranges either)


def _arms(spec: str, ctx: PolicyContext, feed_ctx: PolicyContext, gain: float = 1.0, seed: int = 0) -> np.ndarray:
    """Arms chosen by ``spec`` reset on ``ctx``, fed rewards drawn in ``feed_ctx``'s arm ranges
    (times ``gain``) and the same uniforms whatever ``ctx`` is."""
    pol, rng, n_lanes = make_policy(spec), np.random.default_rng(seed), 6
    pol.reset(n_lanes, ctx)
    pol.on_prompt_start(np.arange(n_lanes), np.zeros(n_lanes, dtype=np.int64))
    out = []
    for r in range(80):
        arms = select_arms(pol, rng.random((n_lanes, max(pol.n_random, 1))), n_lanes, ctx.n_arms)
        rew, where, verified, gamma = _feedback(feed_ctx, arms, rng, r)
        act = np.ones(n_lanes, bool)
        if pol.feedback == "full":
            pol.update_full(arms, rew * gain, act, where, verified, gamma)
        else:
            pol.update(arms, rew * gain, act)
        out.append(arms)
    return np.stack(out)


def _one_range(ctx: PolicyContext, spec: str) -> PolicyContext:
    """``ctx`` with every arm given one range, keeping what the rule says the learner reads:
    ``[reward_lo, reward_hi]`` (normalising learners), the common width (UCBSpec)."""
    if spec.startswith("ucbspec"):
        w = ctx.common_width()
        return replace(ctx, arm_lo=np.zeros(ctx.n_arms), arm_hi=np.full(ctx.n_arms, w))
    return replace(ctx, arm_lo=None, arm_hi=None)


@pytest.mark.parametrize("name,kind", [(n, k) for n in LEARNERS for k in REGISTRY[n].rewards or ("tokens",)])
def test_no_learner_reads_an_arms_own_range(name, kind):
    """The rule: one range for all arms.  Replacing every arm's own range by the arm set's one
    range (what the learner's docstring says it uses) changes no decision."""
    ctx, spec = synthetic_context(kind), default_spec(name)
    assert np.array_equal(_arms(spec, ctx, ctx), _arms(spec, _one_range(ctx, spec), ctx)), name


def test_the_per_arm_option_is_what_the_rule_test_catches():
    ctx = synthetic_context("throughput")
    spec = "ucbspec:width=per-arm"
    assert not np.array_equal(_arms(spec, ctx, ctx), _arms(spec, _one_range(ctx, spec), ctx))


def _scaled(ctx: PolicyContext, gain: float) -> PolicyContext:
    return replace(ctx, reward_lo=ctx.reward_lo * gain, reward_hi=ctx.reward_hi * gain,
                   arm_lo=ctx.arm_lo * gain, arm_hi=ctx.arm_hi * gain)


# the public code's copy learns from raw rewards with a fixed bonus (as the code does): the
# reward's unit changes its decisions, and its docstring says so
UNIT_FREE = [n for n in LEARNERS if "throughput" in REGISTRY[n].rewards and n != "banditspec-code"]


@pytest.mark.parametrize("name", UNIT_FREE)
def test_learners_are_calibrated_to_the_range_not_the_unit(name):
    """Rewards and every range in another unit (x4: exact in binary) give the same decisions:
    each learner normalises by the range it is given (UCBSpec: mean and radius both scale)."""
    ctx = synthetic_context("throughput")
    assert np.array_equal(_arms(name, ctx, ctx), _arms(name, _scaled(ctx, 4.0), ctx, gain=4.0)), name


@pytest.mark.parametrize("name", ["ucbspec", "exp3spec", "ucb1", "klucb", "thompson", "epsilon-greedy", "exp3-ix",
                                  "tsallis-inf", "sw-ucb", "hedgespec", "structured-ucb", "smartspec",
                                  "banditspec-code"])
def test_each_learner_states_its_reward_range_rule(name):
    cls = REGISTRY[name]
    assert "Reward-range rule" in (cls.__doc__ or "") + (sys.modules[cls.__module__].__doc__ or ""), name
