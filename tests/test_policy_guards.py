"""Policy parameters, plug-in policies and what ``select`` returns are refused in one line.

Every numeric parameter of every built-in policy declares its range (``policies.base.param``)
and a value outside it (``inf``, ``nan``, past a bound) ends the CLI with exit 2 and one line
naming the policy, the parameter and the range; plug-ins get the same check.  A plug-in that
takes a built-in's name, exits or raises at import, or whose ``select`` returns no integer
arms (floats, NaN, strings, None, a raise) is named in one line too.
"""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import numpy as np
import pytest

from simulator.cli import main
from simulator.policies import REGISTRY, PolicyError, make_policy
from simulator.policies import plugins as plugins_mod
from simulator.policies.ucbspec import UCBSpec

DEMO = ["--trace", "builtin:synthetic-demo"]
ARMS = ["--arms", "strong@2,weak@2,copy@2"]
BUILTINS = {n: c for n, c in REGISTRY.items() if c.__module__.startswith("simulator.policies.")}


def _numeric_fields() -> list[tuple[str, dataclasses.Field]]:
    return [(name, f) for name, cls in sorted(BUILTINS.items()) for f in dataclasses.fields(cls)
            if f.init and f.name != "reward" and str(f.type) in ("float", "int")]


def _fmt(x: float) -> str:
    return repr(float(x)) if isinstance(x, float) and not float(x).is_integer() else str(int(x))


def _bad_values(f: dataclasses.Field) -> list[str]:
    """Non-finite values, and the first values past each declared bound."""
    meta = {k: None for k in ("gt", "ge", "lt", "le")} | dict(f.metadata.get("specregret.param", {}))
    step = 1 if str(f.type) == "int" else 0.5
    out = ["inf", "-inf", "nan", "1e400"]
    out += [_fmt(meta[k]) for k in ("gt", "lt") if meta[k] is not None]
    out += [_fmt(meta["ge"] - step)] if meta["ge"] is not None else []
    out += [_fmt(meta["le"] + step)] if meta["le"] is not None else []
    return out


BAD = [(name, f.name, v) for name, f in _numeric_fields() for v in _bad_values(f)]
EDGE = [(name, f.name, _fmt(f.metadata["specregret.param"][k])) for name, f in _numeric_fields()
        for k in ("ge", "le") if f.metadata.get("specregret.param", {}).get(k) is not None]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    err = [e for e in err if not e.startswith("note:")]
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.fixture
def registry():
    """Plug-ins loaded by a test leave the registry (and the loaded-file list) as they found it."""
    before, loaded = dict(REGISTRY), dict(plugins_mod._LOADED)
    yield
    REGISTRY.clear()
    REGISTRY.update(before)
    plugins_mod._LOADED.clear()
    plugins_mod._LOADED.update(loaded)


# -- parameters -------------------------------------------------------------------------------
def test_every_numeric_parameter_declares_its_range():
    fields = _numeric_fields()
    assert {"ucbspec", "exp3spec", "hedgespec", "thompson", "epsilon-greedy", "sw-ucb"} <= {n for n, _ in fields}
    missing = [f"{n}:{f.name}" for n, f in fields if "specregret.param" not in f.metadata]
    assert not missing, f"declare a range with policies.base.param: {missing}"
    for _, f in fields:  # each is bounded on at least one side
        assert any(f.metadata["specregret.param"][k] is not None for k in ("gt", "ge", "lt", "le")), f.name


@pytest.mark.parametrize("policy,param,value", BAD, ids=[f"{p}:{k}={v}" for p, k, v in BAD])
def test_bad_parameter_is_one_line_naming_it(policy, param, value, tmp_path, capsys):
    rc = main(["run", *DEMO, "--policy", f"{policy}:{param}={value}", "--runs", "1", "--out", str(tmp_path / "o")])
    line = _one_line_error(capsys)
    assert rc == 2 and f"'{policy}'" in line and f"{param}=" in line and "expected" in line, line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("policy,param,value", EDGE, ids=[f"{p}:{k}={v}" for p, k, v in EDGE])
def test_closed_bounds_are_accepted(policy, param, value):
    assert make_policy(f"{policy}:{param}={value}") is not None


@pytest.mark.parametrize("spec,says", [
    ("ucbspec:delta=1e400", "delta=inf: expected a finite number in (0, 1)"),
    ("exp3spec:eta_scale=inf", "eta_scale=inf: expected a finite number > 0"),
    ("hedgespec:eta=nan", "eta=nan: expected a finite number >= 0"),
    ("thompson:sigma=0", "sigma=0.0: expected a finite number > 0"),
    ("epsilon-greedy:c=-1", "c=-1.0: expected a finite number > 0"),
    ("sw-ucb:window=0", "window=0: expected an integer in [1, 65536]"),
    ("hedgespec:loss=size", "loss='size': expected one of ['length', 'acceptance']"),
    ("ucbspec:delta=0.5,delta=0.1", "parameter 'delta' given twice"),
])
def test_issue_examples(spec, says):
    with pytest.raises(PolicyError) as exc:
        make_policy(spec)
    assert says in str(exc.value)


def test_checked_at_construction_too():
    """Built directly (the Python API), not only through a spec string."""
    with pytest.raises(PolicyError, match="delta=inf"):
        UCBSpec(delta=float("inf"))
    with pytest.raises(PolicyError, match="delta='x'"):
        UCBSpec(delta="x")  # type: ignore[arg-type]
    assert UCBSpec(delta=0.25).delta == 0.25


# -- command-line arguments -------------------------------------------------------------------
@pytest.mark.parametrize("verb", ["run", "serve"])
@pytest.mark.parametrize("arms", ["", ",", " "])
def test_empty_arm_selection_is_refused(verb, arms, tmp_path, capsys):
    extra = ["--batch-sizes", "1"] if verb == "serve" else []
    rc = main([verb, *DEMO, "--arms", arms, "--runs", "1", *extra, "--out", str(tmp_path / "o")])
    assert rc == 2 and "selects no arm" in _one_line_error(capsys)


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "x"])
def test_max_memory_must_be_finite_and_positive(value, tmp_path, capsys):
    rc = main(["run", *DEMO, "--runs", "1", "--max-memory", value, "--out", str(tmp_path / "o")])
    assert rc == 2 and "--max-memory" in _one_line_error(capsys)


# -- plug-ins ---------------------------------------------------------------------------------
PLUGIN = '''
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from simulator.policies import Policy, register


@register
@dataclass
class Plug(Policy):
    name: ClassVar[str] = "{name}"
    bonus: float = 0.0

    def select(self, u):
        n = len(u)
{select}

    def update(self, arms, rewards, active):
{update}
'''


def _plugin(tmp_path: Path, name: str, select: str = "return np.zeros(n, dtype=np.int64)",
            update: str = "pass") -> str:
    path = tmp_path / f"{name.replace('-', '_')}.py"
    path.write_text(PLUGIN.format(name=name, select=textwrap.indent(select, " " * 8),
                                  update=textwrap.indent(update, " " * 8)))
    return str(path)


def _run_plugin(path: str, policy: str, tmp_path: Path, *extra: str) -> int:
    return main(["run", *DEMO, *ARMS, "--policy-module", path, "--policy", policy, "--runs", "1",
                 "--engine", "numpy", "--out", str(tmp_path / "o"), "--quiet", *extra])


@pytest.mark.parametrize("select,says", [
    ("return np.full(n, 0.7)", "select returned float64 arms, e.g. [0.7, 0.7"),
    ("return np.full(n, np.nan)", "select returned float64 arms, e.g. [nan, nan"),
    ("return np.array(['a'] * n)", "select returned <U1 arms, e.g. ['a', 'a'"),
    ("return None", "select returned None"),
    ("return {}", "select returned a dict"),
    ("return np.ones(n, dtype=bool)", "select returned bool arms"),
    ("return np.zeros((n, 2), dtype=np.int64)", "select returned arms of shape"),
    ("return np.full(n, 3)", "select returned arms outside 0..2, e.g. [3"),
    ("raise RuntimeError('boom')", "select raised RuntimeError: boom"),
], ids=["float", "nan", "strings", "none", "dict", "bool", "shape", "range", "raises"])
def test_plugin_select_output_is_checked(select, says, tmp_path, capsys, registry):
    rc = _run_plugin(_plugin(tmp_path, "plug-x", select), "plug-x", tmp_path)
    line = _one_line_error(capsys)
    assert rc == 2 and line.startswith("error: policy plug-x: ") and says in line, line
    assert not (tmp_path / "o").exists()


def test_plugin_select_output_is_checked_in_serve(tmp_path, capsys, registry):
    path = _plugin(tmp_path, "plug-f", "return np.full(n, 0.7)")
    rc = main(["serve", *DEMO, "--arms", "strong@1-2", "--policy-module", path, "--policy", "plug-f", "--runs", "1",
               "--batch-sizes", "1", "--engine", "numpy", "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 2 and "policy plug-f: select returned float64" in _one_line_error(capsys)


def test_plugin_update_that_raises_is_named(tmp_path, capsys, registry):
    rc = _run_plugin(_plugin(tmp_path, "plug-u", update="raise KeyError('k')"), "plug-u", tmp_path)
    assert rc == 2 and "policy plug-u: update raised KeyError: 'k'" in _one_line_error(capsys)


def test_list_arms_from_a_plugin_still_run(tmp_path, registry):
    assert _run_plugin(_plugin(tmp_path, "plug-l", "return [0] * n"), "plug-l", tmp_path) == 0


def test_plugin_parameters_get_the_same_check(tmp_path, capsys, registry):
    """A plug-in field without a declared range still must be finite, and a plug-in's own
    ``__post_init__`` (the docs example's style, no ``super()``) does not skip the check."""
    path = _plugin(tmp_path, "plug-p")
    for bad in ("inf", "nan"):
        assert _run_plugin(path, f"plug-p:bonus={bad}", tmp_path) == 2
        assert f"policy 'plug-p': bonus={bad}: expected a finite number" in _one_line_error(capsys)
    own = tmp_path / "own.py"
    own.write_text(Path(path).read_text().replace('"plug-p"', '"plug-own"').replace(
        "    def select(self, u):", "    def __post_init__(self):\n        if self.bonus < 0:\n"
        "            raise ValueError('bonus < 0')\n\n    def select(self, u):"))
    assert _run_plugin(str(own), "plug-own:bonus=nan", tmp_path) == 2
    assert "policy 'plug-own': bonus=nan" in _one_line_error(capsys)
    assert _run_plugin(str(own), "plug-own:bonus=-1", tmp_path) == 2
    assert "bonus < 0" in _one_line_error(capsys)


@pytest.mark.parametrize("verb", ["run", "policies"])
def test_plugin_may_not_shadow_a_builtin(verb, tmp_path, capsys, registry):
    path = _plugin(tmp_path, "ucbspec")
    argv = ["policies", "--policy-module", path] if verb == "policies" else [
        "run", *DEMO, *ARMS, "--policy-module", path, "--policy", "ucbspec", "--runs", "1", "--out",
        str(tmp_path / "o")]
    rc = main(argv)
    line = _one_line_error(capsys)
    assert rc == 2 and path in line and "'ucbspec'" in line and "built-in" in line, line
    assert REGISTRY["ucbspec"] is BUILTINS["ucbspec"]


@pytest.mark.parametrize("body,says", [
    ("import sys\nsys.exit(3)\n", "importing it called sys.exit(3)"),
    ("import sys\nsys.exit()\n", "importing it called sys.exit(None)"),
    ("raise SystemExit('bye')\n", "importing it called sys.exit('bye')"),
    ("raise RuntimeError('boom')\n", "importing it failed: RuntimeError: boom"),
], ids=["exit3", "exit", "systemexit", "raises"])
def test_plugin_that_exits_or_raises_at_import(body, says, tmp_path, capsys, registry):
    path = tmp_path / "bye.py"
    path.write_text(body)
    rc = main(["run", *DEMO, "--policy-module", str(path), "--runs", "1", "--out", str(tmp_path / "o")])
    line = _one_line_error(capsys)
    assert rc == 2 and str(path) in line and says in line, line


def test_check_policy_uses_the_same_output_check():
    from simulator.policies.check import _drive, synthetic_context

    @dataclasses.dataclass
    class Floaty(UCBSpec):
        def select(self, u):
            return super().select(u) + 0.5

    with pytest.raises(AssertionError, match="select returned float64 arms"):
        _drive(Floaty(), synthetic_context(), 4, 3, 0)


def test_select_check_does_not_copy_integer_arms():
    """Built-ins return int64: the check passes the same array on (no per-round copy)."""
    from simulator.policies.base import select_arms
    from simulator.policies.check import synthetic_context

    pol = make_policy("uniform")
    pol.reset(4, synthetic_context())
    arms = np.array([0, 1, 2, 3])
    pol.select = lambda u: arms  # type: ignore[method-assign]
    assert select_arms(pol, np.zeros((4, 1)), 4, 7) is arms
