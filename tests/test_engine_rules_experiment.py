"""``python -m experiments engine-rules``: the engines' draft-length rules, default and tuned,
against the learners, the fixed arms and the oracles (issue 19, item 3).

* the command runs end to end on a small synthetic trace and writes a complete folder;
* each rule's knob is chosen on the tune half only: changing the report half's data changes
  the reported numbers, never the choice;
* the intervals are paired (recomputed from the per-prompt / per-batch results);
* an interrupted run leaves the output folder as it was (absent, or the old complete one).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

import traces
from experiments import engine_rules as er
from experiments.cli import main
from simulator.policies import REGISTRY, Policy, PolicyContext
from simulator.policies.base import param, register
from simulator.stats import mean_ci
from traces import synthetic

N_PROMPTS, LEN = 12, 160
FILES = {"engine_rules.md", "single.csv", "single_results.csv", "serving.csv", "serving_results.csv",
         "tuning.csv", "engine_rules.png", "engine_rules.pdf", "config.json"}


def _trace(tmp: Path, name: str, p_report: float | None = None, seed: int = 0) -> Path:
    """Two drafters (``tgd0`` accepts with 0.95, ``tgd1`` with 0.3); with ``p_report``,
    ``tgd0`` accepts with that probability on the report half's prompts instead.  The bits
    are drawn from one stream (``u < p``), so the tune half's prompts are identical."""
    p = np.tile([0.95, 0.3], (N_PROMPTS, 1))
    if p_report is not None:
        p[er.split_prompts(N_PROMPTS, seed)[1], 0] = p_report
    tr = synthetic.tgd(p, n_prompts=N_PROMPTS, output_len=LEN, k_max=4, seed=5)
    return traces.write(tr, tmp / name)


@dataclass
class KnobK(Policy):
    """A test rule: always ``DRAFTER@k``; its knob ``k`` decides everything."""

    name: ClassVar[str] = "test-knob-k"
    rewards: ClassVar[tuple[str, ...]] = ("tokens",)
    tuning: ClassVar[tuple[str, tuple]] = ("k", (1, 4))
    drafter: str = ""
    k: int = param(1, ge=1)

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        d = self.drafter or next(a.drafter for a in ctx.arms if a.k > 0)
        self.index_ = list(ctx.arm_names).index(f"{d}@{self.k}")

    def select(self, u: np.ndarray) -> np.ndarray:
        return np.full(self.n_lanes_, self.index_, dtype=np.int64)


@pytest.fixture
def knob_rule():
    register(KnobK)
    yield KnobK.name
    REGISTRY.pop(KnobK.name, None)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _cli(trace: Path, out: Path, *extra: str) -> int:
    return main(["engine-rules", "--trace", str(trace), "--out", str(out), "--runs", "3", "--batch-sizes", "1,2",
                 "--rules", "heuristic,heuristic_transient", "--quiet", *extra])


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("er")
    out = tmp / "OUT"
    assert _cli(_trace(tmp, "T"), out) == 0
    return out


def test_split_is_a_clean_deterministic_halving():
    a, b = er.split_prompts(11, 3)
    assert np.array_equal(a, er.split_prompts(11, 3)[0]) and np.array_equal(b, er.split_prompts(11, 3)[1])
    assert len(a) == 5 and len(b) == 6 and sorted([*a, *b]) == list(range(11))
    assert list(a) == sorted(a) and list(b) == sorted(b)  # trace order within a half (carried state)
    assert not np.array_equal(a, er.split_prompts(11, 4)[0])


def test_rules_are_discovered_from_their_tuning_attribute():
    assert "heuristic" in er.engine_rules() and "ucbspec" not in er.engine_rules()
    default, knob, grid = er.rule_specs("heuristic", "eagle")
    assert (default, knob) == ("heuristic:drafter=eagle", "start")
    # the class's grid, then the default (start=20) where the grid leaves it out
    assert [s for _, s in grid] == [f"heuristic:drafter=eagle,start={v}" for v in (1, 2, 4, 8)] + [default]
    assert [v for v, _ in grid] == [1, 2, 4, 8, 20]


def test_the_command_writes_a_complete_folder_and_says_its_choices(done, capsys):
    assert FILES <= {p.name for p in done.iterdir()}
    conf = pd.read_json(done / "config.json", typ="series")
    assert conf["drafter_used"] == "tgd0" and "highest mean accepted length" in conf["why"]["drafter"]
    assert conf["arms_used"] == "plain@0,tgd0@1-4"
    assert sorted(conf["tune_prompts"] + conf["report_prompts"]) == sorted(f"syn-{i:04d}" for i in range(N_PROMPTS))
    single = pd.read_csv(done / "single.csv")
    roles = set(single["role"])
    assert {"engine rule, default", "engine rule, tuned on the tune half", "learner", "vanilla",
            "best fixed arm (hindsight, report half)", "oracle (best arm per prompt)"} <= roles
    assert set(pd.read_csv(done / "serving.csv")["role"]) >= {"engine rule, tuned on the tune half",
                                                              "oracle (best arm per batch)"}
    md = (done / "engine_rules.md").read_text()
    assert "heuristic_transient:drafter=tgd0" in md and "b=2" in md


def test_intervals_are_paired(done):
    """Δ tuned − default (single request) is the bootstrap of the per-prompt differences of
    the report half; serving's Δ vs the best fixed arm is that of each run's mean over batch
    sizes of the difference."""
    single = pd.read_csv(done / "single.csv")
    res = pd.read_csv(done / "single_results.csv")
    rep = res[res["half"] == "report"].groupby(["policy", "prompt_id"])["time_s"].mean()
    tuned = single[single["role"] == "engine rule, tuned on the tune half"]
    assert len(tuned) == 2
    for _, r in tuned.iterrows():
        t, d = (rep[s] for s in (r["method"].split(" [")[0], f"{r['method'].split(':')[0]}:drafter=tgd0"))
        want = mean_ci(1000.0 * (t - d.reindex(t.index)).to_numpy(float))
        assert (r["d_default"], r["d_default_lo"], r["d_default_hi"]) == pytest.approx(want)
    rows = single[single["role"] != "best fixed arm (hindsight, report half)"]
    assert rows["d_fixed_lo"].notna().all() and (rows["d_fixed_lo"] <= rows["d_fixed_hi"]).all()
    serve = pd.read_csv(done / "serving.csv")
    sres = pd.read_csv(done / "serving_results.csv")
    per = sres[sres["half"] == "report"].pivot_table(index="run", columns="method", values="improvement")
    ref = serve["ref_arm"].iloc[0]
    for _, r in serve[serve["role"] == "learner"].iterrows():
        want = mean_ci((per[r["method"]] - per[ref]).to_numpy(float))
        assert (r["d_fixed"], r["d_fixed_lo"], r["d_fixed_hi"]) == pytest.approx(want)
        assert r["d_fixed_lo"] < r["d_fixed_hi"]


def test_the_knob_is_chosen_on_the_tune_half_only(tmp_path, knob_rule):
    """The report half's drafter goes from accepting 95% to 2%: were the report half read, the
    choice would move to k = 1 (k = 1 saves more there than k = 4 saves on the tune half);
    it stays k = 4, while the reported numbers change."""
    cfg = dict(rules=(knob_rule,), runs=1, batch_sizes=(1, 2), learners=())
    outs = {}
    for name, p in (("same", None), ("moved", 0.02)):
        out = tmp_path / f"out-{name}"
        out.mkdir()
        er.run_engine_rules(er.EngineRulesConfig(trace=str(_trace(tmp_path, name, p)), drafter="tgd0", **cfg), out,
                            progress=False)
        outs[name] = out
    tune = {n: pd.read_csv(o / "tuning.csv") for n, o in outs.items()}
    for t in tune.values():
        assert set(t.loc[t["chosen"], "value"].astype(str)) == {"4"}, t
    pd.testing.assert_frame_equal(tune["same"], tune["moved"])  # the tune half's objective too
    single = {n: pd.read_csv(o / "single.csv").set_index("role") for n, o in outs.items()}
    row = "engine rule, tuned on the tune half"
    assert single["moved"].loc[row, "tps"] < 0.7 * single["same"].loc[row, "tps"]


def test_an_interrupted_run_leaves_the_folder_as_it_was(done, tmp_path, monkeypatch):
    before = _digest(done)

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(er, "figure", boom)  # everything computed, killed before the figure
    trace = _trace(tmp_path, "T2")
    assert _cli(trace, done, "--seed", "1") == 130
    assert _digest(done) == before
    fresh = tmp_path / "fresh"
    assert _cli(trace, fresh) == 130
    assert not fresh.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fresh.")]


def test_a_policy_without_a_tuning_grid_is_refused(tmp_path, capsys):
    rc = main(["engine-rules", "--trace", str(_trace(tmp_path, "T")), "--out", str(tmp_path / "o"),
               "--rules", "ucbspec", "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ucbspec" in err[0] and "tuning grid" in err[0], err
    assert not (tmp_path / "o").exists()


def test_rows_within_timing_noise_name_no_winner():
    """Two rule settings whose throughputs (or times) differ by less than the cost model's relative
    uncertainty: the winners line and the Δ cells say "within timing noise" instead of a winner."""
    from experiments.engine_rules import serving_markdown, winners, winners_markdown

    def table(rel: float) -> pd.DataFrame:
        rows = [("eagle@2", "best fixed arm (hindsight, report half)", 1.500, None),
                ("vllm-adaptive-k", "engine rule, default", 1.520, None),
                ("vllm-adaptive-k:t=2", "engine rule, tuned on the tune half", 1.530, 0.010)]
        out = []
        for m, role, v, dd in rows:
            out.append(dict(method=m, role=role, knob="", value="", bs1=v, mean=v, mean_lo=v - .01, mean_hi=v + .01,
                            d_fixed=v - 1.5, d_fixed_lo=v - 1.51, d_fixed_hi=v - 1.49, ref_arm="eagle@2",
                            noise_rel=rel, noise_fixed=abs(v - 1.5) <= rel * max(v, 1.5),
                            **({} if dd is None else dict(d_default=dd, d_default_lo=0.0, d_default_hi=0.02,
                                                          noise_default=dd <= rel * v))))
        return pd.DataFrame(out)

    noisy = winners_markdown(winners(pd.DataFrame(dict(role=pd.Series([], dtype=str))), table(0.05)))
    assert "within timing noise: vllm-adaptive-k:t=2, vllm-adaptive-k (no winner named)" in noisy, noisy
    assert "within timing noise of the best fixed arm" in noisy
    assert "within timing noise" in serving_markdown(table(0.05))
    sharp = winners_markdown(winners(pd.DataFrame(dict(role=pd.Series([], dtype=str))), table(0.0)))
    assert "within timing noise" not in sharp
    assert "* serving, mean over batch sizes: vllm-adaptive-k:t=2 (tuned" in sharp
    assert "within timing noise" not in serving_markdown(table(0.0))
