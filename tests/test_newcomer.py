"""What a newcomer reads (issue 20, items 1, 3 and 5): terminal tables within 100 columns with a
unit under every column and no ``nan`` / ``-0.0``; ``serve`` as a table by batch size with one
progress line; ``policies`` with descriptions and parameters; ``figures --k/--policies/--runs``;
the full-information note; ``traces info``'s cost tables and @K columns up to k_max."""

from __future__ import annotations

import re

import pytest

from experiments.cli import main as exp_main
from simulator.cli import main as sim_main
from traces.cli import main as tr_main
from traces.textout import Column, interval, num, render

DEMO_ARMS = "pld@4,rest@4,suffix@4,eagle@4,medusa@4"  # the Makefile's demo


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory):
    """The demo's two runs (Makefile ``demo``), with 2 runs per prompt instead of 50."""
    base = tmp_path_factory.mktemp("demo")
    common = ["--trace", "builtin:smollm2-greedy", "--cost-device", "cuda", "--runs", "2", "--seed", "0", "--quiet"]
    assert sim_main(["run", *common, "--setting", "replay,stochastic,adversarial", "--stream", "category-switch",
                     "--policy", "ucbspec", "--policy", "exp3spec", "--policy", "uniform", "--policy", "oracle",
                     "--arms", DEMO_ARMS, "--objective", "rounds", "--out", str(base / "drafters")]) == 0
    assert sim_main(["run", *common, "--setting", "replay", "--carry-state", "--policy", "ucbspec", "--policy",
                     "banditspec-code", "--policy", "oracle", "--objective", "time", "--arms", "plain@0,eagle@1-4",
                     "--out", str(base / "draft-length-h100")]) == 0
    return base


@pytest.mark.parametrize("folder, units", [
    ("drafters", ["rounds", "rounds [95% CI]", "of best", "tok/rnd", "x", "%"]),
    ("draft-length-h100", ["rounds", "ms [95% CI]", "of best", "tok/rnd", "x", "%"]),
])
def test_summary_of_the_demo_fits_100_columns_with_every_column_labelled(demo_like, folder, units, capsys,
                                                                        monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    capsys.readouterr()
    assert sim_main(["summary", "--results", str(demo_like / folder), "--specbench-speedup"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    i = next(i for i, line in enumerate(lines) if line.startswith("setting "))
    names, unit_line, rule = lines[i], lines[i + 1], lines[i + 2]
    assert set(rule) == {"-"}
    # every numeric column has its unit right under its name (right-aligned: same end column)
    name_ends = [m.end() for m in re.finditer(r"\S+", names)][2:]  # after setting and policy
    for e in name_ends:
        assert unit_line[e - 1] != " " and unit_line[e:e + 1] in ("", " "), (names, unit_line, e)
    assert len(name_ends) == len(units) + 1  # + SB-spd (x, like speedup)
    for u in units:
        assert u in unit_line
    assert "ST = stopping time" in text and "MAT = mean accepted tokens" in text  # the legend
    assert "SB-spd" in names and "Spec-Bench's speedup" in text
    assert "nan" not in text.lower().replace("nanoseconds", "") and not re.search(r"-0\.0+\b(?!\d)", text)
    if folder == "drafters":  # the adversarial setting is one stream: n=1, said as such
        assert "(n=1)" in text and "left out to fit 100 columns" in text
    capsys.readouterr()
    assert sim_main(["summary", "--results", str(demo_like / folder), "--wide"]) == 0
    wide = capsys.readouterr().out
    assert "left out" not in wide and "tokens/s" in wide and max(len(line) for line in wide.splitlines()) > 100
    # with room, the ratios carry their prompt-bootstrap intervals in the table itself
    head = next(line for line in wide.splitlines() if line.startswith("setting "))
    units_wide = wide.splitlines()[wide.splitlines().index(head) + 1]
    assert units_wide.count("[95% CI]") >= 4 and re.search(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", wide)


@pytest.mark.parametrize("value, fmt, want", [
    (float("nan"), ".2f", "n/a"), (None, ".1f", "n/a"), (float("inf"), ".2f", "n/a"), (-0.0, ".1f", "0.0"),
    (-0.0004, ".2f", "0.00"), (-0.0004, "+.2f", "+0.00"), (-1.5, ".1f", "-1.5"), (2.0, "+.1f", "+2.0"),
])
def test_numbers_never_print_nan_or_negative_zero(value, fmt, want):
    assert num(value, fmt) == want


def test_intervals_say_n1_or_no_ci_instead_of_nan():
    assert interval(3.0, float("nan"), float("nan"), 1) == "3.00 (n=1)"
    assert interval(3.0, float("nan"), float("nan"), 5) == "3.00 (no CI)"
    assert interval(-0.0001, -0.0002, 0.5) == "0.00 [0.00, 0.50]"


def test_a_table_too_wide_leaves_out_its_optional_columns_and_says_which():
    cols = [Column("policy", "", ["a" * 40], left=True), Column("regret", "rounds", ["1.00"]),
            Column("extra", "x", ["9" * 70], drop=1)]
    lines, dropped = render(cols, 100)
    assert dropped == ["extra (x)"] and max(map(len, lines)) <= 100
    lines, dropped = render(cols, 10_000)
    assert not dropped and "extra" in lines[0]


def test_serve_prints_a_table_by_batch_size_and_one_progress_line(tgd_trace_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert sim_main(["serve", "--trace", str(tgd_trace_dir), "--arms", "tgd0@1-2", "--runs", "2",
                     "--batch-sizes", "1,2", "--out", str(tmp_path / "s")]) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert not any(line.startswith("batch_size") for line in lines)  # no mean over batch sizes
    i = next(i for i, line in enumerate(lines) if line.startswith("batch "))
    assert lines[i + 1].split()[:2] == ["size", "x"]
    assert [r.split()[0] for r in lines[i + 3:i + 5]] == ["1", "2"]
    assert "best arm" in lines[i] and max(len(line) for line in lines) <= 100
    done = [line for line in cap.err.replace("\r", "\n").splitlines() if re.match(r"serving: \d+ methods", line)]
    assert len(done) == 1, cap.err
    assert cap.err.count("serving: 100%") <= 1, cap.err  # the bar is cleared, not left beside the line


def test_policies_lists_descriptions_and_parameters_with_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert sim_main(["policies"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    blocks = re.split(r"\n(?=\S)", out)[1:]  # one block per policy row
    by = {b.split()[0]: b for b in blocks}
    assert "Round-robin over the K arms" in by["ucbspec"]
    assert "delta=0.5 (a finite number in (0, 1))" in " ".join(by["ucbspec"].split())
    assert "window=64 (an integer in [1, 65536])" in " ".join(by["sw-ucb"].split())
    assert "HedgeSpec" in by["hedgespec"] and "See the module" not in by["hedgespec"]
    assert "SmartSpec-style goodput (Liu et al. 2024)" in " ".join(by["smartspec"].split())
    for name, block in by.items():
        body = block.splitlines()[1:]
        assert body and body[0].startswith("    ") and "parameters:" in block, name


def test_figures_takes_k_policies_and_runs(tgd_trace_dir, tmp_path, monkeypatch, capsys):
    import experiments.paper as paper

    seen = {}

    class Stop(Exception):
        pass

    def fake_run(exp, progress=False):
        seen["rc"] = exp.cfg  # the resolved experiment (simulator.runner.resolve) and its configuration
        raise Stop

    def fake_make(cfg, out, render_only=False, progress=True):
        seen["cfg"] = cfg
        with pytest.raises(Stop):
            paper.compute(cfg, tmp_path / "data", progress)
        return [], {"total": 0.0, "render": 0.0}

    monkeypatch.setattr(paper, "run_experiment", fake_run)
    monkeypatch.setattr(paper, "make_figures", fake_make)
    assert exp_main(["figures", "--trace", str(tgd_trace_dir), "--k", "2", "--runs", "3", "--policies",
                     "ucbspec:delta=0.1,width=per-arm,uniform", "--out", str(tmp_path / "f"), "--quiet"]) == 0
    cfg, rc = seen["cfg"], seen["rc"]
    assert (cfg.k, cfg.runs, cfg.policies) == (2, 3, ("ucbspec:delta=0.1,width=per-arm", "uniform"))
    assert rc.policies == cfg.policies and rc.runs == 3 and "@2" in rc.arms and "@4" not in rc.arms
    capsys.readouterr()
    assert exp_main(["figures", "--trace", str(tgd_trace_dir), "--policies", "nosuch", "--out",
                     str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nosuch" in err[0] and not (tmp_path / "g").exists()


def test_a_full_information_policy_says_it_plays_each_drafter_at_its_largest_k(tgd_trace_dir, tmp_path, capsys):
    base = ["run", "--trace", str(tgd_trace_dir), "--runs", "1", "--quiet", "--policy", "hedgespec"]
    assert sim_main([*base, "--arms", "tgd0@1-3,tgd1@2", "--out", str(tmp_path / "a")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "largest K" in line]
    assert len(notes) == 1 and "tgd0@3" in notes[0] and "tgd1@2" in notes[0] and notes[0].startswith("note: hedgespec")
    assert sim_main([*base, "--arms", "tgd0@2,tgd1@2", "--out", str(tmp_path / "b")]) == 0
    assert "largest K" not in capsys.readouterr().err  # one K per drafter: nothing to say


def test_traces_info_lists_the_cost_tables_and_every_k_up_to_k_max(tgd_trace_dir, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    import traces

    tr = traces.load(str(tgd_trace_dir))
    assert tr_main(["info", "--trace", str(tgd_trace_dir)]) == 0
    out = capsys.readouterr().out
    head = next(line for line in out.splitlines() if "@1" in line).split()
    assert head[:tr.k_max] == [f"@{k}" for k in range(1, tr.k_max + 1)]
    assert "costs       per device" in out
    for dev in tr.costs["device"].unique():
        assert dev in out
    assert "batch sizes" in out and "contexts" in out and "rows: verify" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert tr_main(["info", "--trace", "builtin:smollm2-greedy"]) == 0
    big = capsys.readouterr().out
    assert "cuda:NVIDIA H100" in big and "batch sizes 1,4,16" in big and "@3" in big
    assert max(len(line) for line in big.splitlines()) <= 100
