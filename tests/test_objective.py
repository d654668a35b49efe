"""Time as the objective: one cost rule, charged feedback, calibrated rewards, honest intervals."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import traces
from simulator.costs import CostModel
from simulator.envs.replay import ReplayEnv
from simulator.policies import PolicyContext, make_policy
from simulator.runner import RunConfig, resolve, run_experiment, simulate
from simulator.serving import ServeConfig, batch_round_costs_s, run_serving
from simulator.stats import bootstrap_indices, mean_ci, verdict
from simulator.summary import paired_difference, summarize
from traces import Arm

DEMO = "builtin:synthetic-demo"


def _table(rows):
    return pd.DataFrame([dict(device="dev", drafter=d, kind=kind, k=k, batch_size=b, context_len=c, ms=ms)
                         for kind, d, k, b, c, ms in rows])


def test_cost_model_worked_example():
    """docs/trace_format.md, "Cost model": verify 10 + k ms at context 256 and 20 + 2k at 1024
    (batch 1), 30 + 3k at batch 4 (context 256 only); drafter d 2 ms per token."""
    rows = [("verify", "", k, 1, 256, 10 + k) for k in (0, 4)] + [("verify", "", k, 1, 1024, 20 + 2 * k)
                                                                 for k in (0, 4)]
    rows += [("verify", "", k, 4, 256, 30 + 3 * k) for k in (0, 4)] + [("draft", "d", 1, 1, 256, 2.0)]
    m = CostModel.from_table(_table(rows), "dev")
    # batch 1, context 640 (halfway): verify(k=2) = (12 + 24) / 2 = 18; + 2 x 2 ms drafting
    assert m.round_ms([Arm("d", 2)], 1, 640)[0] == pytest.approx(22.0)
    assert not m.notes
    # context 100 is below the table: held at 256, and said
    assert m.round_ms([Arm("plain", 0)], 1, 100)[0] == pytest.approx(10.0)
    assert any("held at the nearest" in n for n in m.notes)
    # batch 7 is past the largest batch 4: extrapolated from batches 1 and 4 (slope 20/3 per sequence)
    v = m.verify_ms(0, 7, 256)
    assert v == pytest.approx(30 + 20 / 3 * 3) and any("extrapolated" in n for n in m.notes)
    # a drafter step scales like the target's k = 0 time: at batch 4, 2 ms x 30/10
    assert m.draft_step_ms("d", 4, 256) == pytest.approx(6.0)


def test_run_and_serve_use_one_cost_rule():
    """The same arm at batch 1 costs the same in `run` and in `serve` (they once disagreed)."""
    tr = traces.load(DEMO)
    prep = resolve(RunConfig(trace=DEMO, policies=("uniform",), runs=1, arms="plain@0,strong@2,weak@3",
                             objective="time"))
    model = CostModel.from_table(tr.costs, None)
    ctx = prep.env.context_lens
    serve = batch_round_costs_s(model, prep.arms, 4, ctx)  # (prompts, n, arms)
    np.testing.assert_allclose(serve[:, 1, :], prep.cost_s, rtol=1e-12)
    np.testing.assert_allclose(prep.plain_s, prep.cost_s[:, 0])


def test_feedback_is_charged_exactly_and_can_be_waived():
    cfg = RunConfig(trace=DEMO, policies=("hedgespec",), runs=3, arms="strong@4,copy@4,mid@4,weak@4",
                    objective="time")
    charged, conf = run_experiment(cfg, progress=False)
    free, conf_free = run_experiment(replace(cfg, free_feedback=True), progress=False)
    assert conf["feedback_cost"] == {"hedgespec": "charged"} and conf_free["feedback_cost"] == {"hedgespec": "free"}
    # same decisions (the charge changes no policy input), time grows by exactly the charge
    assert np.array_equal(charged.stopping_time, free.stopping_time)
    assert (free.feedback_s == 0).all() and (charged.feedback_s > 0).all()
    np.testing.assert_allclose(charged.time_s - free.time_s, charged.feedback_s, rtol=1e-12)
    # the charge is, per round, one draft step of every drafter not played
    prep = resolve(cfg)
    steps = {d: prep.costs.draft_ms[d] / 1000 for d in ("strong", "copy", "mid", "weak")}
    pulls = np.stack(charged.pulls.to_numpy())  # (rows, arms)
    per_arm = np.array([sum(v for d, v in steps.items() if d != a.drafter) for a in prep.arms])
    np.testing.assert_allclose(charged.feedback_s, pulls @ per_arm, rtol=1e-9)


def test_hedgespec_length_loss_has_one_normaliser():
    """A drafter at K=2 accepting all (3 tokens) must not beat one at K=4 emitting 4."""
    p = make_policy("hedgespec")
    ctx = PolicyContext(n_arms=2, arm_names=("a@2", "b@4"), L=4, reward_lo=1.0, reward_hi=5.0,
                        drafter_names=("a", "b"))
    p.reset(1, ctx)
    # positions 0..3 verified; a accepts 2 (its K), b accepts 3 of 4
    gamma = np.zeros((1, 5, 2))
    gamma[0, :2, 0] = 1.0
    gamma[0, :3, 1] = 1.0
    p.buf_ = np.zeros((1, 16, 2))
    p.buf_[0, :5] = gamma[0]
    f = p._losses(np.array([0]), np.array([0]))[0]
    assert f.tolist() == pytest.approx([1 - 3 / 5, 1 - 4 / 5])  # both divided by K_max + 1 = 5
    assert f[1] < f[0]


def test_unverified_positions_are_zeroed_before_any_policy():
    seen = []

    class Spy:
        def __getattr__(self, k):
            return getattr(self.inner, k)

    # the numpy path hands policies their feedback (the kernel reads only verified positions)
    prep = resolve(RunConfig(trace=DEMO, policies=("hedgespec",), runs=1, arms="strong@4,weak@4", engine="numpy"))
    pol = make_policy("hedgespec")
    orig = pol.update_full

    def spy(arms, rewards, active, positions, verified, gamma):
        seen.append((verified.copy(), gamma.copy()))
        return orig(arms, rewards, active, positions, verified, gamma)

    pol.update_full = spy
    simulate(prep, pol, np.arange(4), np.arange(1))
    assert seen and all((g[~v] == 0).all() for v, g in seen)
    assert any((g[v] > 0).any() for v, g in seen)  # the verified part is passed on


def test_throughput_reward_ranges_are_per_arm_and_stated():
    cfg = RunConfig(trace=DEMO, policies=("ucbspec",), runs=1, arms="plain@0,strong@1-4", objective="time")
    prep = resolve(cfg)
    ctx = prep.context(make_policy("ucbspec"))
    lo, hi = ctx.arm_range()
    rel = prep.plain_s[:, None] / prep.cost_s
    np.testing.assert_allclose(lo, rel.min(axis=0))
    np.testing.assert_allclose(hi, ((prep.env.table.k + 1) * rel).max(axis=0))
    assert lo[0] == hi[0] == 1.0  # plain decoding's relative throughput is exactly 1
    _, conf = run_experiment(cfg, progress=False)
    assert conf["rewards"]["ucbspec"]["kind"] == "throughput"
    assert conf["rewards"]["ucbspec"]["arm_range"]["plain@0"] == [1.0, 1.0]
    assert conf["objective"] == "time" and conf["cost_model"]["device"]


def test_reward_parameter_is_validated_on_the_class():
    assert make_policy("ucbspec:reward=tokens").spec() == "ucbspec:reward=tokens"
    with pytest.raises(ValueError, match="learns from no reward"):
        make_policy("hedgespec:reward=tokens")
    with pytest.raises(ValueError, match="expected one of \\['tokens'\\]"):
        make_policy("smartspec:reward=throughput")
    assert make_policy("oracle:time").spec() == "oracle:time"


def test_bootstrap_is_paired_and_reproducible():
    assert np.array_equal(bootstrap_indices(7, 50, 3), bootstrap_indices(7, 50, 3))
    x = np.arange(10.0)
    m, lo, hi = mean_ci(x)
    assert lo < m < hi and m == 4.5
    assert verdict(-2.0, -1.0) == "better" and verdict(1, 2) == "worse" and verdict(-1, 1).startswith("not")
    df, _ = run_experiment(RunConfig(trace=DEMO, policies=("ucbspec", "exp3spec", "fixed:strong@4"), runs=4,
                                     arms="strong@4,copy@4,mid@4,weak@4"), progress=False)
    d, dlo, dhi = paired_difference(df, "exp3spec", "ucbspec")
    s = summarize(df)
    a = s.set_index("policy")
    assert d == pytest.approx(a.loc["exp3spec", "regret"] - a.loc["ucbspec", "regret"])
    # pairing: the difference's interval is narrower than the sum of the two half-widths
    w = (a.loc["exp3spec", "regret_hi"] - a.loc["exp3spec", "regret_lo"]
         + a.loc["ucbspec", "regret_hi"] - a.loc["ucbspec", "regret_lo"])
    assert dhi - dlo < w


def test_ucbspec_calibrated_beats_uniform_in_serving_and_draft_length():
    """Issue "8.": under a throughput reward UCBSpec beats uniform by more than the paired
    interval, in batch serving and in the draft-length demo (bundled trace, H100 costs)."""
    real = "builtin:smollm2-greedy"
    df, conf = run_serving(ServeConfig(trace=real, arms="plain@0,rtn4@1-4", policies=("ucbspec", "uniform"),
                                       batch_sizes=tuple(range(1, 51, 7)), runs=8, seed=0, cost_device="cuda"),
                           progress=False)
    assert conf["rewards"]["ucbspec"] == "throughput"
    m = df.groupby(["method", "sample", "run"])["improvement"].mean().unstack("method")
    d, lo, hi = mean_ci((m["ucbspec"] - m["uniform"]).to_numpy())
    assert lo > 0, (d, lo, hi)
    res, _ = run_experiment(RunConfig(trace=real, policies=("ucbspec", "uniform"), runs=4, arms="plain@0,rtn4@1-4",
                                      objective="time", carry_state=True, cost_device="cuda"), progress=False)
    d, lo, hi = paired_difference(res, "ucbspec", "uniform")
    assert hi < 0, (d, lo, hi)  # ms per prompt: negative = faster


def test_serving_context_ranges():
    from simulator.serving import serving_context

    tr = traces.load(DEMO)
    arms = [Arm("plain", 0), Arm("strong", 2)]
    env = ReplayEnv(tr, arms)
    cost = np.array([[[0, 0], [1.0, 2.0], [1.5, 4.0]]])
    ctx = serving_context(env, cost, make_policy("ucbspec"))
    lo, hi = ctx.arm_range()
    assert lo.tolist() == [1.0, 1.5 / 4.0] and hi.tolist() == [1.0, 3 * 0.5]
