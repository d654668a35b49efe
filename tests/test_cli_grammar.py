"""One CLI grammar across traces, simulator, experiments and gpu_collect: help on every flag,
every verb in --help, the same misuse gives the same exit code and one line in every CLI."""

from __future__ import annotations

import argparse

import pytest

from experiments import cli as exp_cli
from gpu_collect import cli as gpu_cli
from simulator import cli as sim_cli
from traces import cli as tr_cli

CLIS = {"traces": tr_cli, "simulator": sim_cli, "experiments": exp_cli, "gpu_collect": gpu_cli}


def _verbs(ap: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(CLIS))
def test_every_flag_has_help_and_help_lists_every_verb(name):
    ap = CLIS[name].build_parser()
    text = ap.format_help()
    for verb, p in _verbs(ap).items():
        assert f"\n  {verb} " in text, f"{name} --help does not list {verb}"
        for act in p._actions:
            if isinstance(act, argparse._HelpAction):
                continue
            assert act.help, f"{name} {verb}: {act.option_strings or act.dest} has no help text"


@pytest.mark.parametrize("name", sorted(CLIS))
def test_shared_flags_mean_the_same(name):
    """--trace reads a trace, --results reads a results folder, --out writes, --seed and --runs
    are integers: no verb uses these names for anything else."""
    for verb, p in _verbs(CLIS[name].build_parser()).items():
        for act in p._actions:
            for flag in act.option_strings:
                if flag in ("--seed", "--runs"):
                    assert act.type is not None and act.type("3") == 3, f"{name} {verb} {flag}"
                if flag == "--prompts":  # a prompt set (builtin:NAME or question.jsonl), nothing else
                    assert verb in ("collect", "train-head", "live", "cost-check"), \
                        f"{name} {verb}: --prompts is a prompt set only"


MISUSE = [  # (case, {cli: argv}, exit code, text the one line contains)
    ("unknown verb", {c: ["no-such-verb"] for c in CLIS}, 2, "invalid choice"),
    ("missing required flag", {"traces": ["info"], "simulator": ["run", "--out", "x"],
                               "experiments": ["survival", "--out", "x"], "gpu_collect": ["costs"]}, 2, "--trace"),
    ("trace that does not exist", {"traces": ["info", "--trace", "/nonexistent/t"],
                                   "simulator": ["run", "--trace", "/nonexistent/t", "--out", "OUT"],
                                   "experiments": ["survival", "--trace", "/nonexistent/t", "--out", "OUT"],
                                   "gpu_collect": ["costs", "--trace", "/nonexistent/t", "--out", "OUT/c.parquet"]},
     2, "/nonexistent/t"),
    ("bad list", {"traces": ["synth", "tgd", "--p", "0.5,x", "--out", "OUT"],
                  "simulator": ["serve", "--trace", "builtin:synthetic-demo", "--arms", "strong@1",
                                "--batch-sizes", "5-1", "--out", "OUT"],
                  "experiments": ["figures", "--batch-sizes", "1,a", "--out", "OUT"],
                  "gpu_collect": ["collect", "--target", "t", "--drafter", "pld", "--prompts", "p", "--out", "OUT",
                                  "--cost-batch-sizes", "1-"]}, 2, "expected"),
    ("negative seed", {"traces": ["synth", "demo", "--seed", "-1", "--out", "OUT"],
                       "simulator": ["run", "--trace", "builtin:synthetic-demo", "--seed", "-1", "--out", "OUT"],
                       "experiments": ["figures", "--seed", "-1", "--out", "OUT"],
                       "gpu_collect": ["collect", "--target", "t", "--drafter", "pld", "--prompts", "p",
                                       "--out", "OUT", "--seed", "-1"]}, 2, ">= 0"),
]


@pytest.mark.parametrize("case,argvs,code,text", MISUSE, ids=[m[0] for m in MISUSE])
def test_same_misuse_same_exit_code_one_line(case, argvs, code, text, tmp_path, capsys):
    for name, argv in argvs.items():
        argv = [a.replace("OUT", str(tmp_path / name)) for a in argv]
        rc = CLIS[name].main(argv)
        err = capsys.readouterr().err.strip()
        assert rc == code, f"{name} {argv}: exit {rc}, expected {code} ({err})"
        assert err.count("\n") == 0 and err.startswith("error:"), f"{name}: not one error line: {err!r}"
        assert text in err, f"{name}: {err!r} does not mention {text!r}"


def test_a_failed_check_exits_1(tmp_path, capsys):
    import numpy as np

    import traces
    from traces import synthetic

    t = synthetic.tgd([0.5], n_prompts=2, output_len=8, k_max=2, seed=0)
    d = traces.write(t, tmp_path / "t")
    acc = d / "accept.parquet"
    import pyarrow.parquet as pq

    tab = pq.read_table(acc).to_pandas()
    tab.loc[0, "accept"] = np.int8(7)  # above k_max: the trace is invalid
    tab.to_parquet(acc)
    assert tr_cli.main(["validate", "--trace", str(d)]) == 1
    assert "accept" in capsys.readouterr().out


def test_a_multi_setting_request_is_checked_before_any_work(tmp_path, capsys):
    """hedgespec needs full information, which only replay gives: the whole request is refused
    before the replay part runs, and nothing is written."""
    out = tmp_path / "out"
    rc = sim_cli.main(["run", "--trace", "builtin:synthetic-demo", "--setting", "replay,stochastic", "--policy",
                       "ucbspec", "--policy", "hedgespec", "--arms", "strong@2,weak@2", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "setting 'stochastic' does not provide" in err
    assert not out.exists()
