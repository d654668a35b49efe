"""A policy written in the compiled form (docs/simulator.md 'Writing a policy') runs compiled
in every setting, with workers and on Ray, with the numpy engine's bits; a numpy-only one
still runs and says so; the first compile says so."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from simulator import kernels

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")  # a core dependency
NOTE = "has no compiled form"


def _example(tmp_path: Path, name: str) -> Path:
    """The example ``name`` of docs/simulator.md, saved as the user would save it."""
    doc = (ROOT / "docs" / "simulator.md").read_text()
    m = re.search(rf"<!-- example: {re.escape(name)} -->\n```python\n(.*?)```", doc, re.S)
    assert m, f"docs/simulator.md lost its example {name}"
    path = tmp_path / "user" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(m.group(1))
    return path


def _run(tmp_path: Path, module: Path, policies: tuple[str, ...], *extra: str,
         env: dict | None = None) -> tuple[pd.DataFrame, str]:
    out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
    pol = [x for p in policies for x in ("--policy", p)]
    cmd = [sys.executable, "-m", "simulator", "run", "--trace", "builtin:synthetic-demo", "--policy-module",
           str(module), *pol, "--arms", "strong@2,weak@2,copy@2", "--runs", "3", "--out", str(out), "--quiet",
           *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env)  # not the repo: no sys.path help
    assert r.returncode == 0, r.stderr
    return pd.read_parquet(out / "results.parquet"), r.stderr


COMPILED = ("greedy-mean-c", "greedy-mean-c:bonus=2")
SETTINGS = ("--setting", "replay,stochastic,adversarial")


def test_compiled_plugin_runs_compiled_in_every_setting_with_the_numpy_bits(tmp_path):
    path = _example(tmp_path, "my_compiled.py")
    fast, err = _run(tmp_path, path, COMPILED, *SETTINGS, "--engine", "numba")  # numba: refuses the numpy path
    slow, _ = _run(tmp_path, path, COMPILED, *SETTINGS, "--engine", "numpy")
    two, _ = _run(tmp_path, path, COMPILED, *SETTINGS, "--workers", "2")
    assert NOTE not in err
    assert set(fast.setting) == {"replay", "stochastic", "adversarial"}
    pd.testing.assert_frame_equal(fast, slow)
    pd.testing.assert_frame_equal(fast, two)


def test_compiled_plugin_on_ray(tmp_path):
    pytest.importorskip("ray")
    path = _example(tmp_path, "my_compiled.py")
    one, _ = _run(tmp_path, path, COMPILED, "--engine", "numba")
    ray, _ = _run(tmp_path, path, COMPILED, "--engine", "numba", "--backend", "ray", "--workers", "2")
    pd.testing.assert_frame_equal(one, ray)


def test_numpy_only_plugin_runs_and_says_once_per_policy(tmp_path):
    path = _example(tmp_path, "my_policies.py")
    _, err = _run(tmp_path, path, ("greedy-mean", "greedy-mean:bonus=2", "ucbspec"))
    lines = [x for x in err.splitlines() if NOTE in x]
    assert len(lines) == 2 and "'greedy-mean'" in lines[0] and "ucbspec" not in err


def test_first_compile_prints_one_line(tmp_path):
    path = _example(tmp_path, "my_compiled.py")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}  # a new checkout: nothing cached
    _, err = _run(tmp_path, path, ("greedy-mean-c",), "--engine", "numba", env=env)
    assert sum("note: compiling the engine" in x for x in err.splitlines()) == 1
    _, err = _run(tmp_path, path, ("greedy-mean-c",), "--engine", "numba", env=env)
    assert "note: compiling" not in err  # the second run loads it
