"""The compiled engine's on-disk cache survives many learners.

Reading a cached loop's index rebuilds every function named in its keys (each learner's
``init``/``select``/``update``, plug-ins and edited versions included); numba keeps only the last
``NUMBA_FUNCTION_CACHE_SIZE`` (128) alive, and saving a new specialisation re-pickles the index, so
past that many a dead one raised ``ReferenceError: underlying object has vanished`` (it happened
here with about 25 learners).  ``simulator.kernels.core`` keeps them all.  The mechanism is shown
on a small module with the limit lowered to 8: it fails without the engine's fix, and passes with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")
ROOT = Path(__file__).resolve().parents[1]


def _module(tmp_path: Path) -> None:
    src = "from numba import njit\n\n\n@njit(cache=True)\ndef call(f, x):\n    return f(x)\n"
    for i in range(14):
        src += f"\n\n@njit\ndef f{i}(x):\n    return x + {i}\n"
    (tmp_path / "many.py").write_text(src)


def _py(tmp_path: Path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "NUMBA_FUNCTION_CACHE_SIZE": "8",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)


def test_a_cache_index_naming_more_functions_than_numba_keeps_alive(tmp_path):
    _module(tmp_path)
    first = _py(tmp_path, "import many\nfor i in range(12):\n    many.call(getattr(many, f'f{i}'), 1)")
    assert first.returncode == 0, first.stderr
    bare = _py(tmp_path, "import many\nprint(many.call(many.f12, 1))")  # numba alone: the failure
    assert bare.returncode != 0 and "underlying object has vanished" in bare.stderr
    fixed = _py(tmp_path, "import simulator.kernels.core, many\nprint(many.call(many.f13, 1))")
    assert fixed.returncode == 0 and fixed.stdout.strip() == "14", fixed.stderr
