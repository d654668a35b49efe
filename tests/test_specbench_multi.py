"""Several engine logs as one multi-drafter trace with measured (logged) costs; adaptive-length
logs with censored steps; the engines' renamed fields (issue "18. Real GPU evidence").

Fixtures under tests/data/engine_logs/ (written for these tests); tests on the real Spec-Bench
logs read ../shared/data/specbench-logs/ and skip, naming the folder, where it is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import traces
from traces import Arm
from traces.censored import capped_law, identified_k, prompt_survival, survival
from traces.cli import main as tr_main
from traces.importers import Schedule, build_specbench, fit_step_cost, method_of, parse_schedule

LOGS = Path(__file__).parent / "data" / "engine_logs"
MULTI = [LOGS / f"specbench_multi_{m}.jsonl" for m in ("vanilla", "eagle", "hydra")]
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "specbench-logs"
SETS = ("multiclass_product_classification", "query_product_rank", "sentiment_analysis")
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} absent (the shared Spec-Bench logs)")
#: fixed arms' simulated tokens/s against the logs' new_tokens / (wall_time - prefill), relative:
#: 2%, or half a round per turn where that is more (the simulated run draws its rounds i.i.d.
#: and truncates the last round of every turn; docs/trace_format.md, "Engine logs")
RATE_TOL, ROUNDS_PER_TURN_TOL = 0.02, 0.5


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _shared_files(s: str) -> list[Path]:
    return [SHARED / s / f"vicuna-7b-v1.3-{m}-float16-{t}-0.0.jsonl"
            for m, t in (("vanilla", "temp"), ("eagle", "temperature"), ("hydra", "temperature"))]


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    out = tmp_path_factory.mktemp("multi") / "t"
    assert tr_main(["import", "--from", "specbench", *map(str, MULTI), "--out", str(out)]) == 0
    return out


# -- 1. several files -> one trace ------------------------------------------------------------
def test_three_files_make_two_drafters_plain_and_a_logged_cost_table(multi, capsys):
    tr = traces.load(multi)
    assert tr.drafter_names == ("eagle", "hydra") and tr.partial
    assert set(tr.costs["kind"]) == {"logged"} and traces.validate(multi) == []
    assert {(d, int(k)) for d, k in zip(tr.costs.drafter, tr.costs.k, strict=True)} == {("", 0), ("eagle", 5),
                                                                                          ("hydra", 4)}
    assert tr_main(["info", "--trace", str(multi)]) == 0
    out = capsys.readouterr().out
    assert "eagle" in out and "hydra" in out and "costs       logged" in out and "plain" in out


@pytest.mark.parametrize("method", ["eagle", "hydra"])
def test_each_methods_mat_is_the_plain_mean_of_its_accept_lengths(multi, method):
    tr = traces.load(multi)
    lens = [x for o in _rows(LOGS / f"specbench_multi_{method}.jsonl") if str(o["question_id"]) in
            {p.partition("#")[0] for p in tr.prompt_ids} for x in o["choices"][0]["accept_lengths"]]
    steps = np.concatenate([tr.logged_steps(method, p)[0] for p in range(tr.n_prompts)])
    assert steps.mean() + 1 == pytest.approx(np.mean(lens), abs=1e-12)


def test_missing_questions_and_answer_agreement_are_reported(multi):
    log = traces.load(multi).manifest["log"]
    assert log["missing"] == {"hydra": {"count": 1, "ids": ["4"]}}  # hydra's file lacks question 4
    assert "4" not in traces.load(multi).prompt_ids
    ans = log["answers"]  # eagle's answer to question 2 differs from vanilla's
    assert ans["differ"] == ["2"] and ans["turns"] == 6 and ans["share_identical_all"] == pytest.approx(5 / 6)
    assert ans["share_identical_to_reference"] == {"eagle": pytest.approx(5 / 6), "hydra": 1.0}


def test_method_from_model_id_or_name_and_bad_combinations(tmp_path, capsys):
    assert [method_of(o["model_id"]) for o in (_rows(f)[0] for f in MULTI)] == ["vanilla", "eagle", "hydra"]
    assert method_of("vicuna-7b-v1.3-eagle3-float16") == "eagle3" and method_of("my-model") is None
    tr = build_specbench([("base", MULTI[1]), ("plainish", MULTI[2]), ("vanilla", MULTI[0])])
    assert tr.drafter_names == ("base", "plainish")
    for argv, says in ([f"eagle={MULTI[1]}", f"eagle={MULTI[2]}"], "named twice"), \
                      ([str(MULTI[0]), f"vanilla={MULTI[0]}"], "named twice"), \
                      ([str(MULTI[0])] * 1 + [f"x={LOGS / 'specbench.jsonl'}", f"y={MULTI[1]}"], "no (question_id"):
        assert tr_main(["import", "--from", "specbench", *argv, "--out", str(tmp_path / "t")]) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1, err
    bad = tmp_path / "vanilla.jsonl"  # a "vanilla" file whose steps are not all 1
    bad.write_text(MULTI[1].read_text())
    assert tr_main(["import", "--from", "specbench", f"vanilla={bad}", str(MULTI[2]), "--out",
                    str(tmp_path / "t")]) == 2
    assert f"{bad}:1: field 'choices[0].accept_lengths[0]'" in capsys.readouterr().err
    f = tmp_path / "anon.jsonl"
    f.write_text("".join(json.dumps({**o, "model_id": "my-model"}) + "\n" for o in _rows(MULTI[1])))
    assert tr_main(["import", "--from", "specbench", str(MULTI[0]), str(f), "--out", str(tmp_path / "t")]) == 2
    assert "field 'model_id'" in capsys.readouterr().err and not (tmp_path / "t").exists()


# -- 2. measured costs ------------------------------------------------------------------------
def test_the_fit_recovers_prefill_and_step_and_reports_residuals(multi):
    c = traces.load(multi).manifest["log"]["costs"]
    planted = {"vanilla": (20.0, 22.5), "eagle": (60.0, 32.0), "hydra": (50.0, 33.5)}  # ms (tests/data README)
    assert c["rule"].startswith("per method, least squares") and c["plain"] == "vanilla"
    for name, (pre, step) in planted.items():
        f = c["methods"][name]
        assert f["sha256"] and f["file"] == f"specbench_multi_{name}.jsonl"
        assert abs(f["step_ms"] - step) < 0.2 and abs(f["prefill_ms"] - pre) < 8, f
        assert f["resid_rms_ms"] < 5 and f["turn_step_ms_q25"] <= f["step_ms"] + 1 <= f["turn_step_ms_q75"] + 2
    ms = traces.load(multi).costs.set_index("drafter")["ms"]
    assert ms["eagle"] == pytest.approx(c["methods"]["eagle"]["step_ms"])


@pytest.mark.parametrize("wall, steps, rule, step", [
    ([1.0, 2.0, 3.0, 4.0], [10, 20, 30, 40], "least squares with intercept", 100.0),
    ([1.2, 2.0, 2.8], [10, 20, 30], "least squares with intercept", 80.0),
    ([0.5, 2.0, 3.0], [10, 20, 30], "through the origin", None),  # intercept would be negative
    ([1.0, 2.0], [10, 20], "too few turns", 100.0),
])
def test_fit_step_cost_rules(wall, steps, rule, step):
    f = fit_step_cost(np.array(wall), np.array(steps))
    assert rule in f["rule"] and f["prefill_ms"] >= 0
    if step is not None:
        assert f["step_ms"] == pytest.approx(step)


@pytest.mark.parametrize("mutate, says", [
    (lambda c: c[c.drafter != ""], "no plain-decoding row"),
    (lambda c: pd.concat([c, c.iloc[:1].assign(kind="verify")]), "mix 'logged' rows"),
    (lambda c: c.assign(drafter=c.drafter.replace("eagle", "nope")), "unknown drafters ['nope']"),
    (lambda c: c.assign(ms=c.ms.where(c.drafter != "eagle", 1e9)), "expected 0.0001..3.6e+06 ms"),
    (lambda c: pd.concat([c, c.iloc[1:2]]), "one row per"),
])
def test_a_broken_logged_table_fails_validation(multi, tmp_path, mutate, says):
    tr = traces.load(multi)
    bad = tmp_path / "bad"
    traces.write(tr, bad)
    mutate(tr.costs).to_parquet(bad / "costs.parquet")
    problems = traces.validate(bad)
    assert any(says in p for p in problems), problems


def test_the_cost_model_of_a_logged_table_prices_only_the_logged_arms(multi):
    from simulator.costs import CostError, CostModel

    tr = traces.load(multi)
    m = CostModel.for_trace(tr)
    got = m.round_ms([Arm("plain", 0), Arm("eagle", 5), Arm("hydra", 4)], 1, np.array([10.0, 500.0]))
    ms = tr.costs.set_index("drafter")["ms"]
    np.testing.assert_allclose(got, np.broadcast_to([ms[""], ms["eagle"], ms["hydra"]], (2, 3)))
    with pytest.raises(CostError, match="plain@0, eagle@5, hydra@4"):
        m.round_ms([Arm("eagle", 2)])
    with pytest.raises(CostError, match="batch size 1"):
        m.round_ms([Arm("eagle", 5)], 2)
    assert (m.feedback_ms([Arm("eagle", 5)], ["eagle", "hydra"]) == 0).all()


@pytest.mark.parametrize("trace_of", ["fixture", *SETS])
def test_time_objective_runs_and_fixed_arms_match_the_logs_tokens_per_second(multi, tmp_path, trace_of):
    from simulator.cli import main as sim_main

    if trace_of == "fixture":
        tdir, files = multi, MULTI
    else:
        if not SHARED.is_dir():
            pytest.skip(f"{SHARED} absent (the shared Spec-Bench logs)")
        files, tdir = _shared_files(trace_of), tmp_path / "t"
        assert tr_main(["import", "--from", "specbench", *map(str, files), "--out", str(tdir)]) == 0
    out = tmp_path / "r"
    assert sim_main(["run", "--trace", str(tdir), "--setting", "stochastic", "--objective", "time", "--arms",
                     "plain@0,eagle@5,hydra@4", "--policy", "ucbspec", "--policy", "exp3spec", "--policy", "uniform",
                     "--policy", "oracle:time", "--runs", "2", "--out", str(out), "--quiet"]) == 0
    res = pd.read_parquet(out / "results.parquet")
    assert set(res.policy) == {"ucbspec", "exp3spec", "uniform", "oracle:time"} and (res.time_s > 0).all()
    fixed = pd.read_parquet(out / "fixed.parquet")
    fits = traces.load(tdir).manifest["log"]["costs"]["methods"]
    for name, f, arm in zip(("vanilla", "eagle", "hydra"), files, ("plain@0", "eagle@5", "hydra@4"), strict=True):
        ch = [o["choices"][0] for o in _rows(f)]
        tok = sum(sum(c["new_tokens"]) for c in ch)
        turns = sum(len(c["wall_time"]) for c in ch)
        wall = sum(sum(c["wall_time"]) for c in ch) - turns * fits[name]["prefill_ms"] / 1e3
        g = fixed[fixed.arm == arm]
        tol = max(RATE_TOL, ROUNDS_PER_TURN_TOL * turns / sum(sum(c["decoding_steps"]) for c in ch))
        assert g.tokens.sum() / g.time_s.sum() == pytest.approx(tok / wall, rel=tol), (name, tol)


# -- 4. adaptive-length logs ----------------------------------------------------------------------
@pytest.mark.parametrize("spec, a, ks", [
    ("hf-heuristic", [5, 7, 0, 2, 6], [5, 7, 9, 8, 7]),  # +2 after all accepted, -1 otherwise
    ("hf-heuristic:1", [0, 0, 1, 3, 0], [1, 1, 1, 3, 5]),  # never below 1
    ("constant:3", [0, 3, 1], [3, 3, 3]),
])
def test_schedules_give_each_steps_draft_length(spec, a, ks):
    assert parse_schedule(spec).ks(np.array(a)).tolist() == ks


@pytest.mark.parametrize("spec", ["hf", "constant", "constant:0", "hf-heuristic:x", "constant:200"])
def test_bad_schedules_are_refused(spec):
    with pytest.raises(traces.TraceError, match="--schedule"):
        parse_schedule(spec)


def test_an_adaptive_log_needs_a_schedule_and_its_steps_are_checked(tmp_path, capsys):
    f = LOGS / "specbench_sps.jsonl"
    assert tr_main(["import", "--from", "specbench", str(f), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert f"{f}:" in err and "--schedule" in err and "one constant K" in err and err.count("\n") == 1
    assert tr_main(["import", "--from", "specbench", str(f), "--schedule", "constant:2", "--out",
                    str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert "field 'choices[0].accept_lengths[" in err and "drafts k = 2 there; expected at most k + 1 = 3" in err
    assert not (tmp_path / "t").exists()
    assert tr_main(["import", "--from", "specbench", str(f), "--schedule", "hf-heuristic", "--out",
                    str(tmp_path / "t")]) == 0
    tr = traces.load(tmp_path / "t")
    a, k = tr.logged_steps("specbench", 0)
    want = Schedule("hf-heuristic", 5).ks(np.array(_rows(f)[0]["choices"][0]["accept_lengths"]) - 1)
    assert k.tolist() == want.tolist() and tr.censored("specbench")
    assert tr.manifest["log"]["censored_steps"] == sum(
        int((s.ks(x) == x).sum()) for s in [Schedule("hf-heuristic", 5)]
        for x in (np.array(o["choices"][0]["accept_lengths"]) - 1 for o in _rows(f)))
    with pytest.raises(traces.ArmError, match="censored"):
        tr.accepted(Arm("specbench", 3), 0)  # min(3, L) unknown where a step drafted fewer
    assert tr_main(["validate", "--trace", str(tmp_path / "t")]) == 0


def test_kaplan_meier_undoes_the_censoring_that_biases_the_naive_mean():
    rng = np.random.default_rng(0)
    L = rng.geometric(0.35, 200_000) - 1  # accepted run, P(L >= i) = 0.65^i
    k = rng.integers(1, 9, len(L))
    a = np.minimum(L, k)
    S = survival(a, k, 8)
    np.testing.assert_allclose(S, 0.65 ** np.arange(9), atol=0.01)
    assert capped_law(S, 6) @ np.arange(7) == pytest.approx(sum(0.65 ** i for i in range(1, 7)), abs=0.02)
    assert np.minimum(a, 6).mean() < 0.9 * sum(0.65 ** i for i in range(1, 7))  # the naive mean is biased low
    assert identified_k(np.array([0, 2, 4]), np.array([1, 5, 4])) == 4
    # prompt 0 (two steps censored at 1) has no step at risk at 1: its h(1) is the pooled one, 1/2
    S2 = prompt_survival([(np.array([1, 1]), np.array([1, 1])), (np.array([1, 3]), np.array([5, 3]))], 3)
    assert S2[0].tolist() == [1.0, 1.0, 0.5, 0.5] and S2[1].tolist() == [1.0, 1.0, 0.5, 0.5]


def test_arms_above_the_identified_k_are_refused(tmp_path, capsys):
    from simulator.cli import main as sim_main

    t = tmp_path / "t"
    assert tr_main(["import", "--from", "specbench", str(LOGS / "specbench_sps.jsonl"), "--schedule",
                    "hf-heuristic", "--out", str(t)]) == 0
    K = traces.load(t).k_max
    assert sim_main(["run", "--trace", str(t), "--setting", "stochastic", "--policy", "ucbspec", "--arms",
                     f"specbench@{K + 1}", "--runs", "1", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert f"0..{K}" in capsys.readouterr().err


@needs_shared
def test_the_heuristic_policy_on_the_imported_sps_law_reproduces_the_logged_mat(tmp_path, capsys):
    """The logged SpS run is one run of transformers' heuristic (start 5, reset per turn): on the
    Kaplan-Meier law, the toolkit's heuristic policy's MAT over one pass of the 8 turns has the
    logged MAT inside its 95% Monte Carlo range."""
    from simulator.cli import main as sim_main

    f = SHARED / "test_bench" / "vicuna-7b-v1.3-sps-68m-float16-temp-0.0.jsonl"
    t = tmp_path / "t"
    assert tr_main(["import", "--from", "specbench", str(f), "--out", str(t)]) == 2  # only with a schedule
    assert "--schedule" in capsys.readouterr().err
    assert tr_main(["import", "--from", "specbench", str(f), "--schedule", "hf-heuristic", "--drafter", "sps",
                    "--out", str(t)]) == 0
    tr = traces.load(t)
    assert tr.manifest["log"]["censored_steps"] == 448 and tr.k_max == 13
    acc = [x for o in _rows(f) for x in o["choices"][0]["accept_lengths"]]
    assert sim_main(["run", "--trace", str(t), "--setting", "stochastic", "--arms", f"sps@1-{tr.k_max}",
                     "--policy", "heuristic:start=5", "--runs", "200", "--out", str(tmp_path / "r"), "--quiet"]) == 0
    df = pd.read_parquet(tmp_path / "r" / "results.parquet")
    per_run = df.groupby("run").tokens.sum() / df.groupby("run").stopping_time.sum()
    lo, hi = np.percentile(per_run, [2.5, 97.5])
    assert lo <= np.mean(acc) <= hi, (np.mean(acc), lo, hi)


# -- 5. engines' field names; failed runs -------------------------------------------------------------
def test_sglang_renamed_fields_and_their_aliases(tmp_path):
    t = tmp_path / "t"
    assert tr_main(["import", "--from", "sglang", str(LOGS / "sglang_renamed.jsonl"), "--out", str(t)]) == 0
    tr = traces.load(t)
    for p, o in enumerate(_rows(LOGS / "sglang_renamed.jsonl")):
        h = o["meta_info"]["spec_correct_drafts_histogram"]
        assert sorted(tr.logged_steps("sglang", p)[0].tolist()) == [j for j, c in enumerate(h) for _ in range(c)]


@pytest.mark.parametrize("fmt, edit, says", [
    ("sglang", lambda m: m.update(spec_accept_histogram=[3, 2, 4, 2, 1]), "expected the alias to repeat it"),
    ("sglang", lambda m: m.update(spec_num_correct_drafts=20), "field 'meta_info.spec_num_correct_drafts': 20"),
    ("sglang", lambda m: m.update(spec_num_proposed_drafts=3), "fewer than the 21 accepted"),
    ("sglang", lambda m: [m.pop(x) for x in ("spec_correct_drafts_histogram", "spec_accept_histogram")],
     "spec_correct_drafts_histogram': missing"),
    ("vllm", lambda sd: sd["acceptance_histogram_by_draft_length"].update({"2": [2, 1, 2]}), "adds up to"),
    ("vllm", lambda sd: sd["acceptance_histogram_by_draft_length"].update({"3": [1, 0]}), "expected k + 1 = 4"),
    ("vllm", lambda sd: sd["acceptance_histogram_by_draft_length"].update({"9": [0] * 10}), "key '9'"),
])
def test_renamed_fields_that_disagree_are_refused(tmp_path, capsys, fmt, edit, says):
    src = LOGS / ("sglang_renamed.jsonl" if fmt == "sglang" else "vllm_by_draft_length.jsonl")
    o = _rows(src)[0]
    edit(o["meta_info"] if fmt == "sglang" else o["metrics"]["speculative_decoding"])
    f = tmp_path / "log.jsonl"
    f.write_text(json.dumps(o) + "\n")
    assert tr_main(["import", "--from", fmt, str(f), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert f"{f}:1:" in err and says in err and err.count("\n") == 1, err


def test_vllm_acceptance_histogram_by_draft_length_gives_censored_steps(tmp_path):
    t = tmp_path / "t"
    assert tr_main(["import", "--from", "vllm", str(LOGS / "vllm_by_draft_length.jsonl"), "--out", str(t)]) == 0
    tr = traces.load(t)
    a, k = tr.logged_steps("vllm", 0)
    by = _rows(LOGS / "vllm_by_draft_length.jsonl")[0]["metrics"]["speculative_decoding"][
        "acceptance_histogram_by_draft_length"]
    assert sorted(zip(a.tolist(), k.tolist(), strict=True)) == sorted(
        (j, int(kk)) for kk, h in by.items() for j, c in enumerate(h) for _ in range(c))
    assert tr.censored("vllm") and tr.manifest["log"]["censored_steps"] == 5
    np.testing.assert_allclose(tr.survival("vllm")[0], [1, 2 / 3, 4 / 9, 4 / 9, 8 / 27])  # by hand


@pytest.mark.parametrize("edit, field", [
    (None, "choices[0].turns[0]': \"ERROR\""),
    (lambda c: c.update(turns=["a", "b"]),
     "choices[0].wall_time[0]': expected a finite number of seconds > 0, got nan"),
])
def test_a_failed_spec_bench_run_is_refused_naming_line_and_field(tmp_path, capsys, edit, field):
    f = LOGS / "specbench_failed.jsonl"
    if edit is not None:
        o = json.loads(f.read_text().replace("NaN", '"nan-placeholder"'))
        edit(o["choices"][0])
        f = tmp_path / "failed.jsonl"
        f.write_text(json.dumps(o).replace('"nan-placeholder"', "NaN") + "\n")
    for argv in ([str(f)], [str(MULTI[0]), f"eagle3={f}"]):
        assert tr_main(["import", "--from", "specbench", *argv, "--out", str(tmp_path / "t")]) == 2
        err = capsys.readouterr().err
        assert f"{f}:1: field '{field}" in err and err.count("\n") == 1, err


@needs_shared
def test_the_shared_failed_eagle3_file_is_refused():
    f = SHARED / "test_bench" / "vicuna-7b-v1.3-eagle3-float16-temperature-0.0.jsonl"
    with pytest.raises(traces.TraceError, match=r":1: field 'choices\[0\].turns\[0\]': \"ERROR\""):
        build_specbench([(None, SHARED / "test_bench" / "vicuna-7b-v1.3-vanilla-float16-temp-0.0.jsonl"), (None, f)])


# -- the shared logs: done-when checks -------------------------------------------------------------
@needs_shared
@pytest.mark.parametrize("s", SETS)
def test_each_50_question_set_imports_with_readme_costs(s):
    tr = build_specbench([(None, f) for f in _shared_files(s)])
    assert tr.drafter_names == ("eagle", "hydra") and tr.n_prompts == 50
    for name, f in zip(("eagle", "hydra"), _shared_files(s)[1:], strict=True):
        lens = [x for o in _rows(f) for x in o["choices"][0]["accept_lengths"]]
        steps = np.concatenate([tr.logged_steps(name, p)[0] for p in range(tr.n_prompts)])
        assert steps.mean() + 1 == pytest.approx(np.mean(lens), abs=1e-12)
    fits = tr.manifest["log"]["costs"]["methods"]
    readme = {"multiclass_product_classification": (22.54, 32.19, 33.43), "query_product_rank": (22.73, 32.51, 34.23),
              "sentiment_analysis": (21.88, 31.68, 32.98)}[s]  # README section 6, b in ms/step
    for name, b, f in zip(("vanilla", "eagle", "hydra"), readme, _shared_files(s), strict=True):
        ch = [o["choices"][0] for o in _rows(f)]
        w = np.array([x for c in ch for x in c["wall_time"]]) * 1e3
        n = np.array([x for c in ch for x in c["decoding_steps"]], float)
        slope, icpt = np.polyfit(n, w, 1)
        want = slope if icpt >= 0 else (w @ n) / (n @ n)  # a negative prefill: through the origin
        assert fits[name]["step_ms"] == pytest.approx(want, rel=1e-9), (name, fits[name])
        assert abs(fits[name]["step_ms"] - b) < 0.2  # README section 6 fits with any intercept
