"""The README's command blocks, run as written (issue 20, item 3).

Every command line of every ```bash block of README.md runs here in order, with its exit code
checked, except the ones listed in ``SLOW`` with the reason (long runs, placeholders, a GPU or a
cluster): ``results/...`` paths are rewritten into a scratch folder, ``.venv/bin/python`` is the
interpreter running the tests.  A README command that is neither run nor listed fails the test
the day it stops working.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# substring of a README command -> why the test does not run it
SLOW = {
    "make demo": "installs the environment, then runs for minutes (the demo itself)",
    "make test": "the test suite itself",
    "experiments arms-scaling": "about 40 s on 2 cores; tests/test_figures.py runs arms scaling on a small trace",
    "experiments figures": "minutes on the bundled trace; tests/test_figures.py runs figures --quick",
    "--backend ray": "placeholder arguments (...) and a Ray cluster",
    "gpu_collect ray": "placeholder arguments and one GPU per shard",
    "collect_traces.py": "runs a model (collection, minutes on CPU); tests/test_collector.py covers it",
    "experiments theory": "15 s on 2 cores; tests/test_theory_validate.py runs theory --quick",
}


def readme_commands(text: str) -> list[str]:
    """Every command of the README's ```bash blocks: continuation lines joined, comments kept
    (``shlex`` drops them)."""
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for cmd in block.replace("\\\n", " ").splitlines():
            if cmd.strip() and not cmd.lstrip().startswith("#"):
                cmds.append(cmd.strip())
    return cmds


def skipped(cmd: str) -> str | None:
    return next((why for key, why in SLOW.items() if key in cmd), None)


def as_argv(cmd: str, scratch: Path) -> list[str]:
    """``cmd`` as an argument list: the test's interpreter, ``results/`` under ``scratch``."""
    argv = shlex.split(cmd, comments=True)
    assert argv[0] == ".venv/bin/python", cmd
    return [sys.executable] + [re.sub(r"^results/", f"{scratch}/results/", a) for a in argv[1:]]


def test_the_readme_has_commands_and_every_skip_is_used():
    cmds = readme_commands((ROOT / "README.md").read_text())
    assert len(cmds) >= 15
    for key in SLOW:  # a stale entry would hide nothing, but says the list is out of date
        assert any(key in c for c in cmds), f"SLOW lists {key!r}, which the README no longer has"
    assert "requests.jsonl" not in "\n".join(cmds)  # the engine-log example names the shipped sample
    for c in cmds:  # every file an example reads exists
        for a in shlex.split(c, comments=True):
            if a.startswith("tests/data/"):
                assert (ROOT / a).is_file(), f"README names {a}, which does not exist"


def test_readme_commands_run_as_written(tmp_path):
    env = dict(os.environ, COLUMNS="100", PYTHONPATH=str(ROOT))
    ran = 0
    for cmd in readme_commands((ROOT / "README.md").read_text()):
        if skipped(cmd) or cmd.startswith("make "):
            continue
        r = subprocess.run(as_argv(cmd, tmp_path), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"README command failed (rc {r.returncode}): {cmd}\n{r.stderr[-2000:]}"
        assert "Traceback" not in r.stderr, cmd
        out = r.stdout.replace(f"{tmp_path}/", "")  # the paths as the README writes them
        assert max((len(line) for line in out.splitlines()), default=0) <= 100, \
            f"README command printed lines over 100 columns: {cmd}"
        ran += 1
    assert ran >= 10
    assert not (ROOT / "results" / "mine").exists() or (tmp_path / "results" / "mine").exists()


@pytest.mark.parametrize("argv, rc", [
    (["-m", "traces", "validate", "--trace", "{tmp}/no-such-trace"], 2),
    (["-m", "traces", "info", "--trace", "{tmp}/no-such-trace"], 2),
    (["-m", "simulator", "summary", "--results", "{tmp}/no-such-results"], 2),
])
def test_documented_exit_codes(tmp_path, argv, rc):
    r = subprocess.run([sys.executable] + [a.format(tmp=tmp_path) for a in argv], cwd=ROOT, capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == rc, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no-such" in err[0]
