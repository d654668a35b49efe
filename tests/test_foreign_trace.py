"""Nothing assumes the bundled trace: on a trace whose drafter names are all different, every
documented command runs, defaults come from the trace, and what is chosen is said."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from experiments.cli import main as exp_main
from simulator.cli import main as sim_main
from traces.cli import main as tr_main


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    d = tmp_path_factory.mktemp("foreign") / "t"
    assert tr_main(["synth", "tgd", "--p", "0.85,0.6,0.4,0.2", "--n-prompts", "6", "--output-len", "48",
                    "--k-max", "4", "--out", str(d)]) == 0
    return str(d)


def test_every_documented_command_on_a_foreign_trace(foreign, tmp_path, capsys):
    res, srv, fig = tmp_path / "res", tmp_path / "serve", tmp_path / "fig"
    assert tr_main(["info", "--trace", foreign]) == 0 and tr_main(["validate", "--trace", foreign]) == 0
    assert "tgd0" in capsys.readouterr().out
    assert sim_main(["run", "--trace", foreign, "--setting", "replay,stochastic", "--policy", "ucbspec",
                     "--policy", "oracle", "--runs", "2", "--arms", "*@2", "--out", str(res), "--quiet"]) == 0
    assert sim_main(["summary", "--results", str(res)]) == 0
    assert sim_main(["serve", "--trace", foreign, "--arms", "plain@0,tgd0@1-3", "--batch-sizes", "1-3",
                     "--runs", "2", "--out", str(srv), "--quiet"]) == 0
    for argv in (["table", "--results", str(res)], ["plot", "--results", str(res)], ["plot", "--results", str(srv)],
                 ["export-specbench", "--results", str(res), "--policy", "ucbspec", "--setting", "replay"],
                 ["survival", "--trace", foreign, "--out", str(tmp_path / "surv")],
                 ["arms-scaling", "--trace", foreign, "--runs", "2", "--orders", "2", "--out", str(tmp_path / "sc")]):
        assert exp_main(argv) == 0, argv
    capsys.readouterr()
    assert exp_main(["figures", "--trace", foreign, "--quick", "--quiet", "--out", str(fig)]) == 0
    err = capsys.readouterr().err
    # every default was derived from this trace and said so; nothing silently dropped or clamped
    assert "drafters = ['tgd0', 'tgd1', 'tgd2', 'tgd3'] (every drafter of the trace (4))" in err
    assert "serve_drafter = tgd0 (highest mean accepted length" in err
    assert "batch_sizes" in err and "clamped from 1-8: the trace has 6 prompts" in err
    meta = json.loads((fig / "data" / "config.json").read_text())
    assert meta["resolved"]["drafters"] == ["tgd0", "tgd1", "tgd2", "tgd3"]
    assert "clamped" in meta["why"]["batch_sizes"]
    t1 = pd.read_csv(fig / "tables" / "table1.csv")
    assert {f"fixed:tgd{i}@4" for i in range(4)} <= set(t1.method)  # no drafter dropped
    capsys.readouterr()
    assert exp_main(["theory", "--quick", "--only", "3", "--trace", foreign, "--out", str(tmp_path / "th")]) == 0
    assert "drafters ['tgd0', 'tgd1', 'tgd2', 'tgd3'] (every drafter of the trace" in capsys.readouterr().err


def test_names_the_trace_lacks_are_refused_in_one_line(foreign, tmp_path, capsys):
    assert exp_main(["figures", "--trace", foreign, "--drafters", "rtn4", "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'rtn4' is not a drafter of" in err and "tgd0" in err
    assert exp_main(["figures", "--trace", foreign, "--batch-sizes", "1-50", "--quick", "--out", str(tmp_path)]) == 2
    assert "exceeds the trace's 6 prompts" in capsys.readouterr().err
