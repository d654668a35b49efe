"""simulator/ and theory/ never import torch or transformers."""

from __future__ import annotations

import subprocess
import sys


def test_math_side_imports_without_torch():
    code = (
        "import sys, simulator, simulator.cli, simulator.figures, theory, traces, traces.cli\n"
        "from simulator.runner import RunConfig, run_experiment\n"
        "run_experiment(RunConfig(trace='builtin:synthetic-demo', runs=1, arms='*@2'), progress=False)\n"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
