"""One writer for every output folder (traces.outdir): hostile cases 1-6 and 8-11 of round 3.

Each case ends in one line with the documented exit code, touches nothing outside ``--out``,
replaces no file the toolkit did not write, and leaves the folder complete or as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from traces import outdir

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd or ROOT, env=ENV,
                          timeout=timeout)


def _one_line(p: subprocess.CompletedProcess, rc: int, *words: str) -> str:
    err = p.stderr.strip().splitlines()
    errors = [x for x in err if x.startswith("error:")]
    assert p.returncode == rc, (p.returncode, p.stderr[-2000:])
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    assert len(errors) == 1, err
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_leftovers(parent: Path, name: str) -> None:
    left = [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")]
    assert not left, left


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    t = tmp_path_factory.mktemp("tr") / "T"
    p = _cli("-m", "traces", "synth", "tgd", "--out", str(t), "--n-prompts", "4", "--output-len", "64",
             "--k-max", "4")
    assert p.returncode == 0, p.stderr
    return t


def _run(trace: Path, out: Path | str, *extra: str) -> subprocess.CompletedProcess:
    return _cli("-m", "simulator", "run", "--trace", str(trace), "--runs", "1", "--out", str(out), "--quiet", *extra)


def _serve(trace: Path, out: Path | str) -> subprocess.CompletedProcess:
    return _cli("-m", "simulator", "serve", "--trace", str(trace), "--arms", "tgd0@1-2", "--runs", "1",
                "--batch-sizes", "1", "--out", str(out), "--quiet")


# -- case 1 and its siblings: a folder the toolkit did not write is never replaced --------------
WRITERS = {
    "run": lambda t, o: _run(t, o),
    "serve": lambda t, o: _serve(t, o),
    "synth --overwrite": lambda t, o: _cli("-m", "traces", "synth", "tgd", "--out", str(o), "--n-prompts", "2",
                                           "--output-len", "16", "--k-max", "2", "--overwrite"),
    "import --overwrite": lambda t, o: _cli("-m", "traces", "import", "--from", "vllm",
                                            str(ROOT / "tests/data/engine_logs/vllm.jsonl"), "--out", str(o),
                                            "--overwrite"),
    "arms-scaling": lambda t, o: _cli("-m", "experiments", "arms-scaling", "--trace", str(t), "--runs", "1",
                                      "--out", str(o)),
    "survival": lambda t, o: _cli("-m", "experiments", "survival", "--trace", str(t), "--out", str(o)),
    "theory": lambda t, o: _cli("-m", "experiments", "theory", "--quick", "--only", "1", "--out", str(o)),
    "figures": lambda t, o: _cli("-m", "experiments", "figures", "--trace", str(t), "--quick", "--out", str(o)),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_folder_the_toolkit_did_not_write_is_left_alone(trace, tmp_path, writer):
    """Case 1 (run into the user's folder) and case 11 (``--overwrite`` deleting the user's
    costs/ranks): refused in one line, every user file as it was."""
    u = tmp_path / "U"
    u.mkdir()
    (u / "config.json").write_text('{"model_type": "llama"}')
    (u / "manifest.json").write_text('{"my": 1}')
    (u / "costs.parquet").write_bytes((trace / "costs.parquet").read_bytes())
    before = _digest(u)
    p = WRITERS[writer](trace, u)
    _one_line(p, 2, str(u), "choose another --out")
    assert _digest(u) == before and sorted(os.listdir(u)) == sorted(before)
    _no_leftovers(tmp_path, "U")


@pytest.mark.parametrize("writer", ["run", "serve", "synth --overwrite", "survival", "figures"])
def test_an_empty_out_is_refused(trace, tmp_path, writer):
    """Case 2: ``--out ''`` would write into the current directory."""
    p = WRITERS[writer](trace, "")
    _one_line(p, 2, "--out ''")
    assert list(tmp_path.iterdir()) == []


def test_run_and_serve_do_not_replace_each_other(trace, tmp_path):
    """Case 6: serve into a run folder (and run into a serve folder) is refused."""
    r, s = tmp_path / "R", tmp_path / "S"
    assert _run(trace, r).returncode == 0 and _serve(trace, s).returncode == 0
    before_r, before_s = _digest(r), _digest(s)
    _one_line(_serve(trace, r), 2, "`simulator run`", "`simulator serve` does not replace it")
    _one_line(_run(trace, s), 2, "`simulator serve`", "`simulator run` does not replace it")
    assert _digest(r) == before_r and _digest(s) == before_s
    # a rerun of the same kind replaces its own folder, and later outputs inside it
    t = _cli("-m", "experiments", "table", "--results", str(r))
    assert t.returncode == 0, t.stderr
    assert (r / "tables" / outdir.MARK).is_file()
    p = _run(trace, r, "--seed", "3")
    assert p.returncode == 0, p.stderr
    assert json.loads((r / "config.json").read_text())["seed"] == 3 and not (r / "tables").exists()


def test_planted_links_are_never_written_through(trace, tmp_path):
    """Case 8: links planted in ``--out`` (or ``--out`` itself a link) never lead a write outside."""
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    out = tmp_path / "OUT"
    out.mkdir()
    for name in ("config.json.tmp", "results.parquet.tmp", "serving.csv", "config.json"):
        (out / name).symlink_to(victim)
    for p in (_run(trace, out), _serve(trace, out)):
        _one_line(p, 2, str(out))
    assert victim.read_text() == "mine" and all((out / n).is_symlink() for n in os.listdir(out))
    link = tmp_path / "L"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    _one_line(_run(trace, link), 2, "symbolic link")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_full_disk_at_the_final_write_leaves_the_old_folder(trace, tmp_path, monkeypatch, capsys):
    """Case 5: ENOSPC while the new folder is completed: one line naming the folder, the old
    results (config, results and fixed of the earlier run) all kept together, no temp left."""
    from simulator.cli import main

    r = tmp_path / "R"
    assert main(["run", "--trace", str(trace), "--runs", "2", "--seed", "5", "--out", str(r), "--quiet"]) == 0
    before = _digest(r)

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outdir, "write_mark", full)
    rc = main(["run", "--trace", str(trace), "--runs", "2", "--seed", "6", "--setting", "replay,stochastic",
               "--out", str(r), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{r}: cannot write (No space left on device)" in err and "left as it was" in err
    assert _digest(r) == before
    _no_leftovers(tmp_path, "R")


def _start_long_run(trace: Path, out: Path, *extra: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-m", "simulator", "run", "--trace", str(trace), "--setting",
                          "stochastic", "--engine", "numpy", "--policy", "ucbspec", "--runs", "400000",
                          "--max-memory", "20", "--out", str(out), "--quiet", *extra],
                         cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(f".{out.name}.*/results.parquet.tmp")):
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, "the run never started writing"
        time.sleep(0.05)
    return p


def test_sigterm_cleans_up_like_ctrl_c(trace, tmp_path):
    """Case 3: SIGTERM (timeout, Slurm, Kubernetes) mid-run: exit 143, one line, no folder."""
    out = tmp_path / "OUT"
    p = _start_long_run(trace, out)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: terminated (SIGTERM)")
    assert not out.exists()
    _no_leftovers(tmp_path, "OUT")


def test_a_second_writer_on_the_same_out_is_refused_at_once(trace, tmp_path):
    """Case 4: two runs on one ``--out``: the second is refused at once; the first ends with its
    own config and rows."""
    out = tmp_path / "OUT"
    a = _start_long_run(trace, out, "--seed", "1")
    try:
        t0 = time.monotonic()
        b = _run(trace, out, "--seed", "2")
        _one_line(b, 2, str(out), "is writing there")
        assert time.monotonic() - t0 < 60
        w = _cli("-m", "traces", "synth", "tgd", "--out", str(out), "--overwrite")
        _one_line(w, 2, "is writing there")
    finally:
        a.send_signal(signal.SIGINT)
        a.communicate(timeout=60)
    assert a.returncode == 130 and not out.exists()
    _no_leftovers(tmp_path, "OUT")


def test_a_dead_worker_is_one_line(trace, tmp_path):
    """Case 10: a worker killed (the OOM killer's SIGKILL) ends the run in one line, exit 1,
    with no folder left."""
    out = tmp_path / "OUT"
    p = _start_long_run(trace, out, "--workers", "2")
    children = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
    workers = []
    for c in children:
        cmd = Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"spawn_main" in cmd or b"multiprocessing" in cmd:
            workers.append(int(c))
    assert workers, children
    os.kill(workers[-1], signal.SIGKILL)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 1, err
    assert "Traceback" not in err and "a worker process died" in err.strip().splitlines()[-1]
    assert not out.exists()
    _no_leftovers(tmp_path, "OUT")


def test_an_interrupted_figures_rerun_keeps_the_old_folder(trace, tmp_path, monkeypatch):
    """Case 9: a rerun of ``experiments figures`` stopped midway (after some of its data was
    written) leaves the old figures and data exactly as they were: never a mix of two seeds."""
    from experiments import paper

    f = tmp_path / "F"
    cfg = dict(trace=str(trace), runs=2, serve_runs=2, max_batch=2, lengths=(100, 300), curve_grid=(100, 1000, 1),
               curve_runs=2, bound_runs=2, scaling_runs=1, scaling_orders=1)
    paper.make_figures(paper.FigureConfig(**cfg), f, progress=False)
    before = _digest(f)
    real = paper.compute

    def stopped(c, data, progress=True):
        real(paper.FigureConfig(**{**cfg, "seed": 7}), data, progress)  # all of seed 7's data written ...
        raise KeyboardInterrupt  # ... then killed before the figures are drawn

    monkeypatch.setattr(paper, "compute", stopped)
    with pytest.raises(KeyboardInterrupt):
        paper.make_figures(paper.FigureConfig(**{**cfg, "seed": 7}), f, progress=False)
    assert _digest(f) == before
    _no_leftovers(tmp_path, "F")
    paths, _ = paper.make_figures(paper.FigureConfig(**cfg), f, render_only=True, progress=False)
    assert paths and all(p.is_file() and p.is_relative_to(f) for p in paths)
    assert _digest(f)["data/config.json"] == before["data/config.json"]


def test_overwrite_replaces_only_the_toolkits_own_trace(trace, tmp_path):
    """``--overwrite`` replaces a trace folder the toolkit wrote (marked, or an older unmarked
    valid trace), as a whole; without it an existing trace is refused."""
    t = tmp_path / "T2"
    synth = ("-m", "traces", "synth", "tgd", "--out", str(t), "--n-prompts", "2", "--output-len", "16", "--k-max", "2")
    assert _cli(*synth).returncode == 0
    _one_line(_cli(*synth), 2, "already exists")
    assert _cli(*synth, "--seed", "4", "--overwrite").returncode == 0
    (t / outdir.MARK).unlink()  # as written before marks existed
    p = _cli(*synth, "--seed", "5", "--overwrite")
    assert p.returncode == 0, p.stderr
    assert json.loads((t / "manifest.json").read_text())["seed"] == 5 and (t / outdir.MARK).is_file()


def test_a_stale_temp_folder_of_a_killed_writer_is_removed(trace, tmp_path):
    """A temp folder whose process is gone is removed by the next write; anything unmarked stays."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, other = tmp_path / ".R.abc123", tmp_path / ".R.mine"
    stale.mkdir()
    (stale / outdir.PARTIAL_MARK).write_text(str(dead.pid))
    other.mkdir()
    assert _run(trace, tmp_path / "R").returncode == 0
    assert not stale.exists() and other.exists()


def test_a_users_folder_of_images_is_not_taken_for_an_old_plot(trace, tmp_path):
    """An unmarked folder of only PNG/PDF files is the user's unless it is the results folder's
    own ``figures/``: ``plot --out`` there is refused and the images are kept."""
    r, u = tmp_path / "R", tmp_path / "U"
    assert _run(trace, r).returncode == 0
    u.mkdir()
    (u / "holiday.png").write_bytes(b"\x89PNG mine")
    _one_line(_cli("-m", "experiments", "plot", "--results", str(r), "--out", str(u)), 2, str(u))
    assert (u / "holiday.png").read_bytes() == b"\x89PNG mine"
    (r / "figures").mkdir()
    (r / "figures" / "old.png").write_bytes(b"\x89PNG old")  # written before folders carried a mark
    assert _cli("-m", "experiments", "plot", "--results", str(r)).returncode == 0
    assert not (r / "figures" / "old.png").exists() and (r / "figures" / outdir.MARK).is_file()
