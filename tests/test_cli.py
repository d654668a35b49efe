from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from experiments.cli import main as exp_main
from simulator.cli import main as sim_main
from simulator.policies import REGISTRY
from traces.cli import main as traces_main


def test_simulator_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "res"
    rc = sim_main(["run", "--trace", "builtin:synthetic-demo", "--setting", "replay",
                   "--policy", "ucbspec", "--policy", "exp3spec", "--policy", "oracle",
                   "--runs", "3", "--seed", "1", "--arms", "plain@0,*@2", "--out", str(out),
                   "--quiet"])
    assert rc == 0
    df = pd.read_parquet(out / "results.parquet")
    for col in ("setting", "policy", "prompt_id", "run", "stopping_time", "tokens", "regret_rounds"):
        assert col in df.columns
    assert len(df) == 3 * 40 * 3
    assert sim_main(["summary", "--results", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ucbspec" in text and "oracle" in text and "SYNTHETIC" in text
    assert exp_main(["plot", "--results", str(out)]) == 0
    assert (out / "figures" / "regret_by_policy.png").stat().st_size > 1000


def test_policies_listing(capsys):
    assert sim_main(["policies"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:] if not line.startswith(" ")]
    names = [r[0] for r in rows]
    assert names == sorted(REGISTRY) and {"ucbspec", "exp3spec", "oracle", "uniform", "fixed"} <= set(names)
    caps = {r[0]: r for r in rows}
    assert caps["hedgespec"][1] == "full" and caps["ucbspec"][-1] == "ucbspec"  # capabilities from the classes
    assert caps["thompson"][-1] == "thompson"  # every built-in has a kernel; a subclass without one: test_kernels


def test_cli_errors_are_one_line(tmp_path, capsys):
    rc = sim_main(["run", "--trace", "builtin:nope", "--out", str(tmp_path / "x"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "no bundled trace named 'nope'" in err
    rc = sim_main(["run", "--trace", "builtin:synthetic-demo", "--policy", "ucb2",
                   "--out", str(tmp_path / "x"), "--quiet"])
    assert rc == 2 and "unknown policy 'ucb2'" in capsys.readouterr().err
    assert sim_main(["summary", "--results", str(tmp_path / "missing")]) == 2


def test_traces_cli(tmp_path, tiny_trace_dir, capsys):
    assert traces_main(["info", "--trace", "builtin:synthetic-demo"]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "strong" in out
    assert traces_main(["validate", "--trace", str(tiny_trace_dir)]) == 0
    (tiny_trace_dir / "accept.parquet").write_bytes(b"garbage")
    assert traces_main(["validate", "--trace", str(tiny_trace_dir)]) == 1
    assert "cannot read as parquet" in capsys.readouterr().out


def test_module_entry_points_run():
    r = subprocess.run([sys.executable, "-m", "simulator", "policies"], capture_output=True, text=True)
    assert r.returncode == 0 and "ucbspec" in r.stdout
    r = subprocess.run([sys.executable, "-m", "traces", "validate", "--trace", "builtin:synthetic-demo"],
                       capture_output=True, text=True)
    assert r.returncode == 0


def test_export_specbench(tmp_path):
    import json

    out = tmp_path / "res"
    assert sim_main(["run", "--trace", "builtin:synthetic-demo", "--setting", "replay", "--setting", "stochastic",
                     "--policy", "exp3spec", "--policy", "ucbspec", "--runs", "2", "--arms", "plain@0,*@2",
                     "--out", str(out), "--quiet"]) == 0
    assert exp_main(["export-specbench", "--results", str(out), "--policy", "exp3spec", "--setting",
                     "stochastic", "--run", "1"]) == 0
    lines = [json.loads(x) for x in (out / "specbench" / "exp3spec.jsonl").read_text().splitlines()]
    df = pd.read_parquet(out / "results.parquet")
    df = df[(df.setting == "stochastic") & (df.policy == "exp3spec") & (df.run == 1)].set_index("prompt_id")
    assert len(lines) == 40
    for ln in lines:
        ch = ln["choices"][0]
        assert sum(ch["accept_lengths"]) == ch["new_tokens"][0] == df.loc[ln["question_id"], "tokens"]
        assert len(ch["accept_lengths"]) == ch["decoding_steps"][0] == df.loc[ln["question_id"], "stopping_time"]
        assert min(ch["accept_lengths"]) >= 1 and ch["wall_time"][0] > 0
    assert exp_main(["export-specbench", "--results", str(out), "--policy", "hedgespec"]) == 2


def test_survival_figure(tmp_path):
    assert exp_main(["survival", "--trace", "builtin:smollm2-greedy", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "acceptance_survival.png").stat().st_size > 5000


def test_table1(tmp_path):
    """Table 1 in a time-objective run: vanilla, every fixed arm (from fixed.parquet), learners
    labelled with their reward, both oracles; intervals contain their point; caption from the
    manifest; and no oracle is beaten by a fixed arm in its own objective on any prompt."""
    out = tmp_path / "res"
    assert sim_main(["run", "--trace", "builtin:synthetic-demo", "--policy", "ucbspec", "--policy",
                     "ucbspec:reward=tokens", "--policy", "oracle", "--policy", "oracle:rounds", "--runs", "2",
                     "--arms", "plain@0,*@2", "--objective", "time", "--out", str(out), "--quiet"]) == 0
    assert exp_main(["table", "--results", str(out)]) == 0
    t = pd.read_csv(out / "tables" / "table1_replay.csv")
    methods = list(dict.fromkeys(t.method))
    assert methods[0] == "vanilla (plain@0)" and {"fixed:strong@2", "fixed:weak@2"} <= set(methods)
    assert {"ucbspec [throughput]", "ucbspec:reward=tokens", "oracle [time]", "oracle:rounds"} <= set(methods)
    assert set(t.category) == {"chat", "code", "math", "summarization", "translation", "overall"}
    assert ((t.mat_lo <= t.mat + 1e-12) & (t.mat <= t.mat_hi + 1e-12)).all()
    assert ((t.tps_lo <= t.tps + 1e-9) & (t.tps <= t.tps_hi + 1e-9)).all()
    van = t[(t.method == "vanilla (plain@0)") & (t.category == "overall")].iloc[0]
    assert van.mat == 1.0 and van.speedup == pytest.approx(1.0)
    df = pd.read_parquet(out / "results.parquet")
    g = df[df.policy == "ucbspec"].groupby("prompt_id")[["tokens", "stopping_time"]].mean()
    row = t[(t.method == "ucbspec [throughput]") & (t.category == "overall")].iloc[0]
    assert row.mat == pytest.approx(g.tokens.sum() / g.stopping_time.sum())
    md = (out / "tables" / "table1_replay.md").read_text()
    assert "| method | chat |" in md and "timing: cost table nominal" in md and "SYNTHETIC" in md
    fixed = pd.read_parquet(out / "fixed.parquet")
    best_t = fixed.groupby("prompt_id").time_s.min()
    best_r = fixed.groupby("prompt_id").rounds.min()
    ot = df[df.policy == "oracle"].groupby("prompt_id").time_s.max()
    orr = df[df.policy == "oracle:rounds"].groupby("prompt_id").stopping_time.max()
    assert (ot <= best_t.loc[ot.index] * (1 + 1e-12)).all() and (orr <= best_r.loc[orr.index]).all()
    # and the time oracle is faster than every fixed arm overall (the bug this table once had)
    assert ot.sum() <= fixed.groupby("arm").time_s.sum().min() * (1 + 1e-12)

def test_a_run_whose_results_would_not_fit_is_refused_before_it_starts(tmp_path, capsys):
    from simulator.cli import main

    out = tmp_path / "big"
    rc = main(["run", "--trace", "builtin:smollm2-greedy", "--arms", "pld@4,rtn4@4", "--runs", "100000",
               "--max-memory", "0.5", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not out.exists()
    assert len(err) == 1 and "would need about" in err[0] and "--max-memory" in err[0]


def test_results_and_config_are_byte_identical_for_any_worker_count(tmp_path):
    from simulator.cli import main

    outs = []
    for w in ("1", "2"):
        out = tmp_path / f"w{w}"
        assert main(["run", "--trace", "builtin:smollm2-greedy", "--arms", "pld@4,rtn4@4", "--policy", "ucbspec",
                     "--policy", "uniform", "--runs", "3", "--workers", w, "--out", str(out), "--quiet"]) == 0
        outs.append(out)
    for name in ("results.parquet", "config.json", "fixed.parquet"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_a_failed_background_write_reaches_the_caller_and_leaves_nothing(tmp_path):
    """Row groups are encoded on a writer thread: an error there (a full disk, say) is raised
    at the next write or at close, and the partial file is removed."""
    import pyarrow as pa

    from simulator.results import RESULTS_FILE, ResultsWriter

    w = ResultsWriter(tmp_path / "r")
    w.ROW_GROUP = 4
    t = pa.table({"setting": pa.array(["replay"] * 10, pa.large_string()), "run": pa.array(range(10))})
    w.write(t)

    def full_disk(table):
        raise OSError(28, "No space left on device")

    w.writer.write_table = full_disk
    err = None
    try:  # as `simulator run` does: abort on any error, from write or from close
        w.write(t)
        w.close({"setting": "replay"})
    except OSError as exc:
        w.abort()
        err = exc
    assert err is not None and "No space left" in str(err)
    assert not (tmp_path / "r" / RESULTS_FILE).exists()
    assert not (tmp_path / "r" / (RESULTS_FILE + ".tmp")).exists()


def test_export_never_overwrites_a_file_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "res"
    assert sim_main(["run", "--trace", "builtin:synthetic-demo", "--policy", "ucbspec", "--runs", "1",
                     "--arms", "*@2", "--out", str(out), "--quiet"]) == 0
    mine = tmp_path / "answers.jsonl"
    mine.write_text("the user's own answers\n")
    assert exp_main(["export-specbench", "--results", str(out), "--policy", "ucbspec", "--out", str(mine)]) == 2
    assert "was not written by export-specbench" in capsys.readouterr().err
    assert mine.read_text() == "the user's own answers\n"
    again = tmp_path / "ours.jsonl"  # its own files are replaced: a second export of the same run is fine
    for _ in range(2):
        assert exp_main(["export-specbench", "--results", str(out), "--policy", "ucbspec", "--out", str(again),
                         "--baseline"]) == 0
    assert (tmp_path / "vanilla.jsonl").is_file() and (tmp_path / "vanilla.jsonl.specregret.json").is_file()


@pytest.mark.parametrize("handler,code", [("sys.exit(130)", -2), ("sys.exit(interrupted())", 130)])
def test_a_caught_ctrl_c_inside_a_string_exec_still_exits_130(tmp_path, handler, code):
    """CPython flags a KeyboardInterrupt raised inside ``exec`` of a string (dataclasses do
    that while torch imports) as unhandled and ends a ``-m`` run by SIGINT (-2) even when the
    CLI caught it; ``clikit.interrupted`` clears the flag.  The first case shows the flag is
    real (CPython 3.10 to 3.13), so the second can fail."""
    import os
    from pathlib import Path

    (tmp_path / "kbmod.py").write_text("import sys\nfrom traces.clikit import interrupted\ntry:\n"
                                       "    exec('raise KeyboardInterrupt')\nexcept KeyboardInterrupt:\n"
                                       f"    {handler}\n")
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-m", "kbmod"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert p.returncode == code, (p.stderr if code == 130 else "this CPython no longer exits by SIGINT after a "
                                  "caught interrupt: the exec('') in clikit.interrupted can go")
