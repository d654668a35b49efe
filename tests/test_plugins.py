"""A policy written outside the package runs from the CLI, in worker processes and on Ray."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _example(tmp_path: Path) -> Path:
    """The 'Writing a policy' example of docs/simulator.md, as the user would save it."""
    doc = (ROOT / "docs" / "simulator.md").read_text()
    m = re.search(r"<!-- example: my_policies.py -->\n```python\n(.*?)```", doc, re.S)
    assert m, "docs/simulator.md lost its 'Writing a policy' example"
    path = tmp_path / "user" / "my_policies.py"
    path.parent.mkdir()
    path.write_text(m.group(1))
    return path


def _run(tmp_path: Path, *extra: str, module: str) -> pd.DataFrame:
    out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
    cmd = [sys.executable, "-m", "simulator", "run", "--trace", "builtin:synthetic-demo", "--policy-module", module,
           "--policy", "greedy-mean", "--policy", "greedy-mean:bonus=2", "--policy", "ucbspec", "--arms",
           "strong@2,weak@2,copy@2", "--runs", "3", "--out", str(out), "--quiet", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)  # not the repo: no sys.path help
    assert r.returncode == 0, r.stderr
    return pd.read_parquet(out / "results.parquet").drop(columns=["pulls"])


def test_user_policy_runs_with_workers_and_matches_one_process(tmp_path):
    path = _example(tmp_path)
    one = _run(tmp_path, "--workers", "1", module=str(path))
    two = _run(tmp_path, "--workers", "2", module=str(path))
    assert set(one.policy) == {"greedy-mean", "greedy-mean:bonus=2.0", "ucbspec"}
    pd.testing.assert_frame_equal(one, two)
    g = one[one.policy == "greedy-mean"]
    assert (g.stopping_time > 0).all()


def test_user_policy_on_ray(tmp_path):
    pytest.importorskip("ray")
    path = _example(tmp_path)
    one = _run(tmp_path, module=str(path))
    ray = _run(tmp_path, "--backend", "ray", "--workers", "2", module=str(path))
    pd.testing.assert_frame_equal(one, ray)


def test_bad_policy_module_is_one_line(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("raise RuntimeError('boom')\n")
    r = subprocess.run([sys.executable, "-m", "simulator", "run", "--trace", "builtin:synthetic-demo",
                        "--policy-module", str(bad), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "RuntimeError: boom" in r.stderr
    r = subprocess.run([sys.executable, "-m", "simulator", "run", "--trace", "builtin:synthetic-demo",
                        "--policy-module", "no_such_module_xyz", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no module of that name" in r.stderr
