"""No module of the project imports or reaches into another module's private name (issue 28).

A name that starts with one underscore is private to the module that defines it. The scan reads every source file
under the packages below and fails on ``from X import _name`` and on ``X._name`` where ``X`` is a module of this
project imported by the file. ``tests/`` is left out on purpose: tests may reach into privates to check internals.
Dunder names (``__version__``) are public.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("simulator", "traces", "theory", "experiments", "gpu_collect", "benchmarks", "docs/scripts")
PROJECT = {"simulator", "traces", "theory", "experiments", "gpu_collect", "benchmarks"}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_project(module: str | None, level: int) -> bool:
    return level > 0 or (module is not None and module.split(".")[0] in PROJECT)


def private_uses(source: str, where: str) -> list[str]:
    """Return one line per private name of another project module used in ``source``.

    Parameters
    ----------
    source
        Python source text.
    where
        File name used in the returned lines.

    Returns
    -------
    list of str
        ``"file:line: uses <module>.<name>"`` for each hit.
    """
    tree = ast.parse(source)
    modules: dict[str, str] = {}
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _is_project(node.module, node.level):
            mod = "." * node.level + (node.module or "")
            for alias in node.names:
                if _is_private(alias.name):
                    hits.append(f"{where}:{node.lineno}: imports {mod}.{alias.name}; expected a public name")
                else:
                    modules[alias.asname or alias.name] = f"{mod}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _is_project(alias.name, 0):
                    modules[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in modules:
                hits.append(f"{where}:{node.lineno}: reads {modules[base.id]}...{node.attr}; expected a public name")
    return hits


def test_scan_catches_a_private_import_and_attribute() -> None:
    src = "from simulator.serving import _simulate\nimport traces.io as tio\ntio._read(1)\nfrom numpy import _x\n"
    hits = private_uses(src, "x.py")
    assert len(hits) == 2, hits
    assert "simulator.serving._simulate" in hits[0]
    assert "_read" in hits[1]


def test_no_module_uses_another_modules_private_name() -> None:
    hits = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            hits += private_uses(path.read_text(encoding="utf-8"), rel)
    assert not hits, "\n".join(hits)
