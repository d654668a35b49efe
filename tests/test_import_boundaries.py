"""Layers point one way and modules form no import cycle.

``traces`` at the bottom; ``theory`` pure (bounds and instance quantities); ``simulator`` the
engine; ``experiments`` composes them (and, in ``experiments.live``, ``gpu_collect``'s live
decoding loop with a policy); ``gpu_collect`` writes traces only through ``traces``.
Every import counts, including those inside functions, so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("traces", "theory", "simulator", "experiments", "gpu_collect")
ALLOWED = {
    "traces": {"traces"},
    "theory": {"theory", "traces"},
    "simulator": {"simulator", "theory", "traces"},
    # experiments.live composes a policy with gpu_collect's live decoding loop (torch imported lazily)
    "experiments": {"experiments", "simulator", "theory", "traces", "gpu_collect"},
    "gpu_collect": {"gpu_collect", "traces"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Fully qualified modules (of our packages) that ``path`` imports, anywhere in the file."""
    mod = _module_name(path)
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            names = [stem] + [f"{stem}.{a.name}" for a in node.names]
        else:
            continue
        out |= {n for n in names if n.split(".")[0] in PACKAGES}
    return out


def _graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "data" not in p.parts]
    mods = {_module_name(p): p for p in files}
    graph = {}
    for name, path in mods.items():
        # keep only edges to modules that exist (``from .x import y`` names y, maybe not a module)
        graph[name] = {m for m in _imports(path) if m in mods and m != name}
    return graph


def test_no_upward_imports():
    bad = [f"{m} imports {t}" for m, deps in _graph().items() for t in deps
           if t.split(".")[0] not in ALLOWED[m.split(".")[0]]]
    assert not bad, "imports must point down (traces <- theory <- simulator <- experiments; gpu_collect -> " \
                    "traces only):\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    graph = _graph()
    # a package's __init__ re-exporting its submodules is not a cycle of the code; drop those edges
    edges = {m: {t for t in deps if not (m == t.rpartition(".")[0] and ROOT.joinpath(*m.split("."), "__init__.py")
                                         .exists())} for m, deps in graph.items()}
    seen, stack, cycles = set(), [], []

    def visit(m: str) -> None:
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for t in sorted(edges.get(m, ())):
            # importing a package runs its __init__: follow package -> __init__ edges too
            visit(t)
        stack.pop()

    for m in sorted(edges):
        visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_catches_an_upward_import(tmp_path, monkeypatch):
    """Broken on purpose: a theory module that imports the simulator is reported."""
    fake = ROOT / "theory" / "_upward_probe.py"
    fake.write_text("from simulator.runner import RunConfig  # noqa\n")
    try:
        try:
            test_no_upward_imports()
        except AssertionError as exc:
            assert "theory._upward_probe imports simulator.runner" in str(exc)
        else:
            raise AssertionError("the layer check did not catch theory -> simulator")
    finally:
        fake.unlink()


def test_math_side_imports_without_torch():
    code = (
        "import sys, simulator, simulator.cli, experiments.cli, experiments.figures, theory, traces, traces.cli\n"
        "from simulator.runner import RunConfig, run_experiment\n"
        "run_experiment(RunConfig(trace='builtin:synthetic-demo', runs=1, arms='*@2'), progress=False)\n"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
