"""Issue 28: one built-in learner per file, and one regular-file + size check.

* Every registered built-in policy lives in its own module of ``simulator.policies``; the only
  module holding two is ``heuristic.py``: ``heuristic_transient`` is a declared variant of
  ``heuristic`` (a subclass with ``transient = True`` that restarts the schedule at each prompt,
  sharing every compiled function), so splitting it off would copy or cross-import them.
* "Is a regular file (not a FIFO, device, directory), at most N bytes" is written once, in
  ``traces/guards.py``; a source scan fails where it is re-implemented (a stat size compared,
  or a non-blocking open).
"""

from __future__ import annotations

import inspect
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from simulator.policies import REGISTRY
from simulator.policies.base import _BUILTIN_PACKAGE

ROOT = Path(__file__).resolve().parents[1]

#: module -> the registered names it may hold beyond its own learner, and why
VARIANTS = {"heuristic": {"heuristic_transient"}}  # subclass, transient = True, same compiled functions


def _builtin_by_module() -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for name, cls in REGISTRY.items():
        if cls.__module__.startswith(_BUILTIN_PACKAGE + "."):
            out[cls.__module__.rpartition(".")[2]].add(name)
    return out


def _one_learner_problems(by_module: dict[str, set[str]]) -> list[str]:
    problems = []
    for mod, names in sorted(by_module.items()):
        extra = VARIANTS.get(mod, set())
        own = names - extra
        if len(own) != 1:
            problems.append(f"simulator/policies/{mod}.py: defines {sorted(names)}; expected one learner")
        for variant in names & extra:
            base = REGISTRY[variant].__mro__[1]
            if base not in {REGISTRY[n] for n in own} or not getattr(REGISTRY[variant], "transient", False):
                problems.append(f"{mod}: {variant} is not a transient subclass of the file's learner")
    return problems


def test_each_builtin_learner_has_its_own_file():
    by_module = _builtin_by_module()
    assert len(by_module) >= 15  # the split files, plus the engine ports already on their own
    assert _one_learner_problems(by_module) == []
    for mod, names in by_module.items():  # the class is defined in that file, not re-exported
        for name in names:
            src = inspect.getsourcefile(REGISTRY[name])
            assert Path(src).stem == mod, (name, src)


def test_one_learner_check_can_fail():
    by_module = _builtin_by_module()
    by_module["klucb"] = by_module["klucb"] | {"thompson"}  # two learners in one file
    assert _one_learner_problems(by_module) == ["simulator/policies/klucb.py: defines ['klucb', 'thompson']; "
                                                "expected one learner"]


def test_family_files_are_gone():
    for old in ("bandits", "structured", "baselines", "engine"):
        assert not (ROOT / "simulator" / "policies" / f"{old}.py").exists()
        assert f"simulator.policies.{old}" not in sys.modules


# -- the regular-file + size check lives in traces/guards.py only ---------------------------------
GUARD = ROOT / "traces" / "guards.py"
#: what re-implementing it takes: a stat size compared with a limit, or a non-blocking open
REIMPLEMENTED = re.compile(r"st_size\s*[<>]|O_NONBLOCK")
SCANNED = ("traces", "gpu_collect", "simulator", "experiments", "benchmarks")


def _reimplementations(files: list[Path], root: Path = ROOT) -> list[str]:
    return [f"{f.relative_to(root)}:{i}: {line.strip()}" for f in files if f != GUARD
            for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1) if REIMPLEMENTED.search(line)]


def _sources() -> list[Path]:
    return sorted(p for d in SCANNED if (ROOT / d).is_dir() for p in (ROOT / d).rglob("*.py"))


def test_regular_file_check_written_once():
    assert REIMPLEMENTED.search(GUARD.read_text(encoding="utf-8"))  # the one place has it
    assert _reimplementations(_sources()) == []


def test_regular_file_scan_can_fail(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text("def f(p):\n    if p.stat().st_size > 10:\n        raise ValueError\n"
                   "fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)\n")
    assert _reimplementations([bad], tmp_path) == ["probe.py:2: if p.stat().st_size > 10:",
                                                   "probe.py:4: fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)"]


@pytest.mark.parametrize("kind", ["fifo", "dir", "big"])
def test_guard_messages(tmp_path, kind):
    import os

    from gpu_collect.errors import CollectError
    from gpu_collect.prompts import read_regular

    p = tmp_path / "q.jsonl"
    if kind == "fifo":
        os.mkfifo(p)
        want = "prompts x: not a regular file (a FIFO); expected a text file"
    elif kind == "dir":
        p.mkdir()
        want = "prompts x: not a regular file (a directory); expected a text file"
    else:
        p.write_bytes(b"x" * 11)
        want = "prompts x: more than 10 bytes; expected a file of at most 10 bytes"
    with pytest.raises(CollectError) as err:
        read_regular(p, "prompts x", 10)
    assert str(err.value) == want
