"""One reader for results folders (simulator.results_reader): every verb that reads a results
folder (summary, table, plot, export-specbench) refuses a broken one in one line, exit 2, naming
the file, never opens a special file and never imports code a results folder names."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from experiments.cli import main as exp_main
from simulator.cli import main as sim_main
from simulator.results_reader import open_results
from traces.cli import main as traces_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """A small trace T, a run folder R (2 runs) and a serve folder S, built once."""
    base = tmp_path_factory.mktemp("reader")
    t, r, s = base / "T", base / "R", base / "S"
    assert traces_main(["synth", "tgd", "--out", str(t), "--n-prompts", "4", "--output-len", "64",
                        "--k-max", "4"]) == 0
    assert sim_main(["run", "--trace", str(t), "--runs", "2", "--out", str(r), "--quiet"]) == 0
    assert sim_main(["serve", "--trace", str(t), "--arms", "tgd0@1-2", "--runs", "2", "--batch-sizes", "1,2",
                     "--engine", "numpy", "--out", str(s), "--quiet"]) == 0
    return {"T": t, "R": r, "S": s}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _verb_argv(verb: str, res: Path, scratch: Path) -> tuple:
    """(main, argv) of a reader verb on ``res``, writing (if at all) under ``scratch``."""
    return {
        "summary": (sim_main, ["summary", "--results", str(res)]),
        "table": (exp_main, ["table", "--results", str(res), "--out", str(scratch / "tables")]),
        "plot": (exp_main, ["plot", "--results", str(res), "--out", str(scratch / "figures")]),
        "export": (exp_main, ["export-specbench", "--results", str(res), "--policy", "ucbspec",
                              "--out", str(scratch / "sb" / "u.jsonl")]),
    }[verb]


class _Hung(Exception):
    pass


def _alarm(signum, frame):
    raise _Hung()


def _call(verb: str, res: Path, scratch: Path, capsys) -> tuple[int, str]:
    """Run ``verb`` in-process with a 60 s guard against a hang; (exit code, stderr)."""
    fn, argv = _verb_argv(verb, res, scratch)
    capsys.readouterr()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    try:
        rc = fn(argv)
    except _Hung:
        pytest.fail(f"{verb} blocked on {res}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return rc, capsys.readouterr().err


def _assert_one_line(rc: int, err: str, names: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("error: "), err
    assert re.search(names, err), err


# -- corruptions of a run folder: (name, what the error line names, how) ----------------------------
def _config(r: Path, text: str) -> None:
    (r / "config.json").write_text(text)


def _patch_config(r: Path, **kw) -> None:
    c = json.loads((r / "config.json").read_text())
    c.update(kw)
    (r / "config.json").write_text(json.dumps(c))


def _results(r: Path, change) -> None:
    t = pq.read_table(r / "results.parquet")
    pq.write_table(change(t), r / "results.parquet")


def _column(t: pa.Table, name: str, values) -> pa.Table:
    i = t.schema.get_field_index(name)
    return t.set_column(i, name, pa.array(values))


def _fifo(p: Path) -> None:
    p.unlink()
    os.mkfifo(p)


def _dir(p: Path) -> None:
    p.unlink()
    p.mkdir()


def _loop(p: Path) -> None:
    p.unlink()
    os.symlink(p.name, p)


def _outside(p: Path) -> None:
    target = p.parent.parent / f"elsewhere-{p.name}"
    shutil.move(p, target)
    os.symlink(target, p)


def _dup_key(r: Path) -> None:
    text = (r / "config.json").read_text()
    (r / "config.json").write_text(text.replace('"runs": 2,', '"runs": 2, "runs": 100,', 1))


RUN_CASES = {
    # 12: malformed config.json
    "config-list": ("config.json", lambda r: _config(r, "[1]")),
    "config-null": ("config.json", lambda r: _config(r, "null")),
    "config-string": ("config.json", lambda r: _config(r, '"str"')),
    "config-empty-list": ("config.json", lambda r: _config(r, "[]")),
    "config-empty-object": ("config.json", lambda r: _config(r, "{}")),
    "config-only-seed-inf": ("config.json", lambda r: _config(r, '{"seed": 1e400}')),
    "config-only-settings-5": ("config.json", lambda r: _config(r, '{"settings": 5}')),
    "config-seed-inf": ("config.json.*'seed'", lambda r: _config(
        r, (r / "config.json").read_text().replace('"seed": 0', '"seed": 1e400'))),
    "config-settings-5": ("config.json.*'settings'", lambda r: _patch_config(r, settings=5)),
    "config-policies-str": ("config.json.*'policies'", lambda r: _patch_config(r, policies="ucbspec")),
    "config-runs-0": ("config.json.*'runs'", lambda r: _patch_config(r, runs=0)),
    "config-objective": ("config.json.*'objective'", lambda r: _patch_config(r, objective="speed")),
    "config-duplicate-key": ("config.json.*'runs'.*twice", _dup_key),
    "config-not-json": ("config.json", lambda r: _config(r, "{not json")),
    "config-binary": ("config.json", lambda r: (r / "config.json").write_bytes(b"\xff\xfe\x00")),
    # 13: no config.json
    "config-missing": ("config.json.*missing", lambda r: (r / "config.json").unlink()),
    # 6: a serve wrote into this run folder (its config.json)
    "config-from-serve": ("config.json.*'setting'.*serve", lambda r: _patch_config(r, setting="batch-serving")),
    # 14: no rows
    "results-0-rows": ("results.parquet.*no rows", lambda r: _results(r, lambda t: t.slice(0, 0))),
    # 15: wrong column type
    "results-st-strings": ("results.parquet.*'stopping_time'", lambda r: _results(
        r, lambda t: _column(t, "stopping_time", [str(x) for x in t.column("stopping_time").to_pylist()]))),
    "results-column-missing": ("results.parquet.*'category'", lambda r: _results(
        r, lambda t: t.drop_columns(["category"]))),
    # 16: garbage rows
    "results-every-row-twice": ("results.parquet.*more than once", lambda r: _results(
        r, lambda t: pa.concat_tables([t, t]))),
    "results-run-negative": ("results.parquet.*'run'", lambda r: _results(
        r, lambda t: _column(t, "run", [-5] * t.num_rows))),
    "results-regret-nan": ("results.parquet.*'regret_rounds'", lambda r: _results(
        r, lambda t: _column(t, "regret_rounds", [float("nan")] * t.num_rows))),
    "results-unknown-policy": ("results.parquet.*'policy'.*nosuch:policy", lambda r: _results(
        r, lambda t: _column(t, "policy", ["nosuch:policy"] + t.column("policy").to_pylist()[1:]))),
    "results-rows-missing": ("results.parquet.*rows missing", lambda r: _results(
        r, lambda t: t.slice(0, t.num_rows - 1))),
    "results-pulls-short": ("results.parquet.*'pulls'", lambda r: _results(
        r, lambda t: _column(t, "pulls", [[1]] * t.num_rows))),
    "results-not-parquet": ("results.parquet.*parquet", lambda r: (r / "results.parquet").write_bytes(b"PAR1xx")),
    "results-missing": ("results.parquet or serving.csv", lambda r: (r / "results.parquet").unlink()),
    "fixed-twice": ("fixed.parquet.*more than once", lambda r: pq.write_table(
        pa.concat_tables([pq.read_table(r / "fixed.parquet")] * 2), r / "fixed.parquet")),
    # special files where a file is expected: named, never opened
    "results-fifo": ("results.parquet.*FIFO", lambda r: _fifo(r / "results.parquet")),
    "config-fifo": ("config.json.*FIFO", lambda r: _fifo(r / "config.json")),
    "fixed-fifo": ("fixed.parquet.*FIFO", lambda r: _fifo(r / "fixed.parquet")),
    "results-directory": ("results.parquet.*directory", lambda r: _dir(r / "results.parquet")),
    "config-link-loop": ("config.json.*link loop", lambda r: _loop(r / "config.json")),
    "results-link-outside": ("results.parquet.*outside", lambda r: _outside(r / "results.parquet")),
    # 6: serve and run output in one folder
    "serve-into-run": ("serving.csv", None),
}
VERBS = ("summary", "table", "plot", "export")


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("case", list(RUN_CASES))
def test_broken_run_folder_is_one_line(folders, tmp_path, capsys, case, verb):
    names, corrupt = RUN_CASES[case]
    r = _copy(folders["R"], tmp_path / "R")
    if corrupt is None:  # case 6: `simulator serve --out R` on a run folder
        shutil.copy(folders["S"] / "serving.csv", r / "serving.csv")
        shutil.copy(folders["S"] / "config.json", r / "config.json")
    else:
        corrupt(r)
    rc, err = _call(verb, r, tmp_path, capsys)
    _assert_one_line(rc, err, names)
    assert not (tmp_path / "sb").exists() and not (tmp_path / "tables" / "table1_replay.md").exists()


SERVE_CASES = {
    "serving-truncated": ("serving.csv", lambda s: (s / "serving.csv").write_bytes(
        (s / "serving.csv").read_bytes()[:300])),
    "serving-3-columns": ("serving.csv.*missing", lambda s: pd.read_csv(s / "serving.csv").iloc[:, :3].to_csv(
        s / "serving.csv", index=False)),
    "serving-header-only": ("serving.csv.*no rows", lambda s: (s / "serving.csv").write_text(
        (s / "serving.csv").read_text().splitlines()[0] + "\n")),
    "serving-empty": ("serving.csv", lambda s: (s / "serving.csv").write_text("")),
    "serving-fifo": ("serving.csv.*FIFO", lambda s: _fifo(s / "serving.csv")),
    "serving-bad-kind": ("serving.csv.*'kind'", lambda s: pd.read_csv(s / "serving.csv").assign(kind="x").to_csv(
        s / "serving.csv", index=False)),
    "serving-twice": ("serving.csv.*more than once", lambda s: pd.concat([pd.read_csv(s / "serving.csv")] * 2).to_csv(
        s / "serving.csv", index=False)),
    "serve-config-list": ("config.json.*list", lambda s: _config(s, "[]")),
    "serve-config-missing": ("config.json.*missing", lambda s: (s / "config.json").unlink()),
    "serve-config-batch-sizes": ("config.json.*'batch_sizes'", lambda s: _patch_config(s, batch_sizes="1,2")),
    "serve-config-from-run": ("config.json.*'setting'", lambda s: _patch_config(s, setting="replay")),
}


@pytest.mark.parametrize("case", list(SERVE_CASES))
def test_broken_serve_folder_is_one_line(folders, tmp_path, capsys, case):
    names, corrupt = SERVE_CASES[case]
    s = _copy(folders["S"], tmp_path / "S")
    corrupt(s)
    rc, err = _call("plot", s, tmp_path, capsys)
    _assert_one_line(rc, err, names)
    assert not list((tmp_path / "figures").glob("*.png")) if (tmp_path / "figures").exists() else True


@pytest.mark.parametrize("verb", ["summary", "table", "export"])
def test_serve_folder_on_a_run_verb_is_one_line(folders, tmp_path, capsys, verb):
    """Case 6: export (and summary, table) on a serve folder say which kind of folder they need."""
    rc, err = _call(verb, folders["S"], tmp_path, capsys)
    _assert_one_line(rc, err, r"`simulator serve` folder \(serving.csv\).*needs a `simulator run` folder")


def test_valid_folders_read_back_through_every_verb(folders, tmp_path, capsys):
    """A run and a serve folder (with the ownership mark and the subfolders later verbs write
    inside it, which the reader ignores) pass every verb."""
    r = _copy(folders["R"], tmp_path / "R")
    (r / ".specregret-out.json").write_text("{}")
    for sub in ("figures", "tables", "specbench"):
        (r / sub).mkdir(exist_ok=True)
    for verb in VERBS:
        rc, err = _call(verb, r, tmp_path, capsys)
        assert rc == 0, (verb, err)
    assert (tmp_path / "sb" / "u.jsonl").is_file() and (tmp_path / "tables" / "table1_replay.md").is_file()
    rc, err = _call("plot", folders["S"], tmp_path / "s", capsys)
    assert rc == 0, err
    f = open_results(r)
    assert f.kind == "run" and len(f.results) == 2 * 2 * 4 and f.fixed is not None and f.configs[0]["runs"] == 2
    s = open_results(folders["S"], want="serve")
    assert s.kind == "serve" and s.results is None and len(s.serving) == 2 * 2 * 4


def test_multi_setting_folder_reads_back(folders, tmp_path):
    out = tmp_path / "multi"
    assert sim_main(["run", "--trace", str(folders["T"]), "--runs", "1", "--setting", "replay,stochastic",
                     "--out", str(out), "--quiet"]) == 0
    f = open_results(out)
    assert [c["setting"] for c in f.configs] == ["replay", "stochastic"] and f.config["setting"] == "multi"


# -- case 7: a results folder never causes code to be imported ------------------------------------
def _plugin(tmp_path: Path) -> Path:
    """The 'Writing a policy' example of docs/simulator.md (a policy named greedy-mean)."""
    doc = (ROOT / "docs" / "simulator.md").read_text()
    m = re.search(r"<!-- example: my_policies.py -->\n```python\n(.*?)```", doc, re.S)
    assert m, "docs/simulator.md lost its 'Writing a policy' example"
    path = tmp_path / "user" / "my_policies.py"
    path.parent.mkdir()
    path.write_text(m.group(1))
    return path


def _cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_results_folder_code_is_never_imported(folders, tmp_path):
    """Case 7: a module listed in config.json's policy_modules is not imported by export."""
    r = _copy(folders["R"], tmp_path / "R")
    evil = r / "evil.py"
    evil.write_text(f"import pathlib; pathlib.Path({str(tmp_path / 'PWNED')!r}).touch()\n")
    _patch_config(r, policy_modules=[str(evil)])
    p = _cli(tmp_path, "experiments", "export-specbench", "--results", str(r), "--policy", "ucbspec",
             "--out", str(tmp_path / "sb" / "u.jsonl"))
    assert p.returncode == 0, p.stderr
    assert not (tmp_path / "PWNED").exists()


def test_plugin_policy_needs_its_module_on_the_export_command_line(folders, tmp_path):
    mod = _plugin(tmp_path)
    r = tmp_path / "R"
    p = _cli(tmp_path, "simulator", "run", "--trace", "builtin:synthetic-demo", "--policy-module", str(mod),
             "--policy", "greedy-mean", "--arms", "strong@2,weak@2,copy@2", "--runs", "1", "--out", str(r), "--quiet")
    assert p.returncode == 0, p.stderr
    p = _cli(tmp_path, "experiments", "export-specbench", "--results", str(r), "--policy", "greedy-mean",
             "--out", str(tmp_path / "sb" / "g.jsonl"))
    _assert_one_line(p.returncode, p.stderr, r"greedy-mean.*add --policy-module")
    p = _cli(tmp_path, "experiments", "export-specbench", "--results", str(r), "--policy", "greedy-mean",
             "--policy-module", str(mod), "--out", str(tmp_path / "sb" / "g.jsonl"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "sb" / "g.jsonl").is_file()
