"""The environment is the unit of the compiled engine (issue 28, item 3).

Each ``Env`` class builds its own compiled arrays (``kernel_arrays``) and holds its scalar rule
beside its numpy ``emit``; the engine asks the class (``has_compiled_form``), never a list of
types, and no module reads an environment's private fields.  A user's environment with its own
compiled form runs compiled; a user's subclass without one runs on numpy.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from simulator import kernels
from simulator.envs import AdversarialEnv, Env, ReplayEnv, StochasticEnv
from simulator.envs.adversarial import EMIT_CODE as ADVERSARIAL
from simulator.envs.base import ArmTable, EnvArrays
from simulator.envs.check import check_env
from simulator.runner import ConfigError, simulate_env
from traces import arm_from_name

ROOT = Path(__file__).resolve().parents[1]
needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")  # a core dependency


class Ladder(Env):
    """A user's oblivious environment: arm ``a`` emits ``1 + (rnd + a) % (K_a + 1)`` tokens in round
    ``rnd``; its compiled form is the adversarial rule's table, built here."""

    name = "ladder"

    def __init__(self, lengths: list[int], arm_names: list[str]) -> None:
        arms = [arm_from_name(n) for n in arm_names]
        self.table = ArmTable(arms, np.zeros(len(arms), np.int64), np.array([a.k for a in arms], np.int64))
        self.lengths = np.asarray(lengths, np.int64)
        self.prompt_ids = [f"ladder-{i}" for i in range(len(lengths))]
        self.categories = ["ladder"] * len(lengths)
        S = int(self.lengths.max()) + 1
        self.Y = 1 + (np.arange(S)[None, :] + np.arange(len(arms))[:, None]) % (self.table.k[:, None] + 1)

    def emit_all(self, prompt, run, rnd, pos):
        y = self.Y[:, np.minimum(rnd, self.Y.shape[1] - 1)].T
        return np.minimum(y, (self.lengths[prompt] - pos)[:, None]).astype(np.int64)

    def expected_fixed_st(self) -> np.ndarray:
        from simulator.envs.base import simulate_fixed

        return simulate_fixed(self).astype(float)

    def kernel_arrays(self) -> EnvArrays:
        Y = np.ascontiguousarray(np.broadcast_to(self.Y, (self.n_prompts, *self.Y.shape)), np.int64)
        return EnvArrays.blank(self, ADVERSARIAL, Y=Y)


def _ladder() -> Ladder:
    return Ladder([40, 57, 23], ["a@1", "b@2", "c@3"])


def test_the_engine_asks_the_class_not_a_list():
    assert ReplayEnv.has_compiled_form() and StochasticEnv.has_compiled_form() and AdversarialEnv.has_compiled_form()
    assert Ladder.has_compiled_form() and not Env.has_compiled_form()

    class Variant(AdversarialEnv):  # a user's variant that does not say how it compiles
        pass

    assert not Variant.has_compiled_form()


@needs_numba
def test_a_user_environment_with_its_own_compiled_form_runs_compiled_and_equals_numpy():
    env = _ladder()
    check_env(env)  # compares the compiled emission with emit, lane for lane
    for spec in ("ucbspec", "exp3spec"):
        compiled = simulate_env(env, spec, 6, seed=3, engine="numba")  # refused without a compiled form
        numpy = simulate_env(env, spec, 6, seed=3, engine="numpy")
        for k in ("stopping_time", "pulls"):
            assert np.array_equal(compiled[k], numpy[k]), (spec, k)


@needs_numba
def test_a_subclass_without_its_own_compiled_form_runs_on_numpy_and_numba_says_so():
    class Doubled(AdversarialEnv):  # emits differently from its parent, which compiles
        def emit_all(self, prompt, run, rnd, pos):
            return np.minimum(2 * super().emit_all(prompt, run, rnd, pos), (self.lengths[prompt] - pos)[:, None])

        def emit(self, prompt, run, rnd, pos, arms):
            return np.take_along_axis(self.emit_all(prompt, run, rnd, pos), arms[:, None], axis=1)[:, 0]

    Y = 1 + (np.arange(60)[None, None, :] % np.array([[[2], [3]]]))
    parent = AdversarialEnv.from_sequences(Y, np.array([50]), ["a@2", "b@2"])
    child = Doubled.from_sequences(Y, np.array([50]), ["a@2", "b@2"])
    with pytest.raises(ConfigError, match=r"engine 'numba': environment Doubled has no compiled emission"):
        simulate_env(child, "ucbspec", 4, engine="numba")
    auto = simulate_env(child, "ucbspec", 4)["stopping_time"]
    assert np.array_equal(auto, simulate_env(child, "ucbspec", 4, engine="numpy")["stopping_time"])
    assert not np.array_equal(auto, simulate_env(parent, "ucbspec", 4)["stopping_time"])  # its own emit ran


@needs_numba
def test_check_env_catches_a_compiled_form_that_disagrees_with_emit():
    class Wrong(Ladder):
        def kernel_arrays(self) -> EnvArrays:
            arrays = super().kernel_arrays()
            arrays.Y = arrays.Y + 1  # one token more than emit, every round
            return arrays

    with pytest.raises(AssertionError, match=r"Wrong.kernel_arrays: the compiled emission differs from emit"):
        check_env(Wrong([40, 57, 23], ["a@1", "b@2", "c@3"]))


# --------------------------------------------------------------- source scans (each can fail)
def _sources() -> list[Path]:
    return [p for d in ("simulator", "experiments", "benchmarks", "docs/scripts") for p in (ROOT / d).rglob("*.py")]


def _env_classes() -> set[str]:
    return {n.name for p in (ROOT / "simulator/envs").glob("*.py") for n in ast.walk(ast.parse(p.read_text()))
            if isinstance(n, ast.ClassDef) and any(getattr(b, "id", "").endswith("Env") for b in n.bases)}


def _env_private_fields() -> dict[str, Path]:
    """``self._x`` attributes the environment modules define, and their file."""
    out = {}
    for p in (ROOT / "simulator/envs").glob("*.py"):
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and n.attr.startswith("_") \
                    and not n.attr.startswith("__"):
                out[n.attr] = p
    return out


def type_lists(text: str, classes: set[str]) -> list[str]:
    """``type(x) is C`` / ``type(x) in (..C..)`` / ``type(x) == C`` naming an environment class."""
    pat = re.compile(r"type\([^()]*\)\s*(?:is|==|in)\s*\(?([^\n:]*)")
    return [m.group(0) for m in pat.finditer(text) if any(re.search(rf"\b{c}\b", m.group(1)) for c in classes)]


def private_reads(path: Path, text: str, fields: dict[str, Path]) -> list[str]:
    """Reads of an environment module's private field from another file."""
    out = []
    for n in ast.walk(ast.parse(text)):
        if isinstance(n, ast.Attribute) and n.attr in fields and fields[n.attr] != path \
                and not (isinstance(n.value, ast.Name) and n.value.id in ("self", "cls")):
            out.append(f"{path.relative_to(ROOT)}:{n.lineno}: .{n.attr}")
    return out


def test_no_type_lists_of_environments_and_no_private_reads():
    classes, fields = _env_classes(), _env_private_fields()
    assert {"ReplayEnv", "StochasticEnv", "AdversarialEnv"} <= classes and {"_tree_slot", "_beta"} <= set(fields)
    bad = [f"{p.relative_to(ROOT)}: {hit}" for p in _sources() for hit in type_lists(p.read_text(), classes)]
    bad += [hit for p in _sources() for hit in private_reads(p, p.read_text(), fields)]
    assert not bad, "ask the class (Env.has_compiled_form, kernel_arrays), not a list of types:\n" + "\n".join(bad)


def test_the_scans_can_fail():
    classes, fields = _env_classes(), _env_private_fields()
    old = "env_ok = type(prep.env) in (ReplayEnv, StochasticEnv, AdversarialEnv)\nif type(env) is ReplayEnv:\n"
    assert len(type_lists(old, classes)) == 2
    fake = ROOT / "simulator/kernels/envs.py"
    assert private_reads(fake, "slot = env._tree_slot.astype(int)\nb = self._beta\n", fields) == [
        "simulator/kernels/envs.py:1: ._tree_slot"]


# ---------------------------------------------------------------- one registry of streams
def _stream_action(parser):
    run = next(a for a in parser._subparsers._group_actions[0].choices.values() if any(
        "--stream" in x.option_strings for x in a._actions))
    return next(x for x in run._actions if "--stream" in x.option_strings)


def test_the_stream_registry_drives_the_cli_the_env_and_the_theory_checks(monkeypatch):
    from experiments.theory_validate import check_named
    from simulator.cli import build_parser
    from simulator.envs import adversarial

    flat = adversarial.Stream("flat-test", "arm 1 one token better every round: every learner finds it",
                              rewards=lambda n, L, rounds: np.stack([np.full(rounds, L), np.full(rounds, L + 1)]),
                              k_min=1, policies=("ucbspec",), slopes={})
    monkeypatch.setitem(adversarial.STREAMS, "flat-test", flat)
    monkeypatch.setitem(adversarial.SYNTHETIC_STREAMS, "flat-test", 1)
    action = _stream_action(build_parser())
    assert list(action.choices) == list(adversarial.STREAMS) and "flat-test" in action.choices
    assert all(s.claim in " ".join(action.help.split()) for s in adversarial.STREAMS.values())
    env = AdversarialEnv.synthetic("flat-test", [60], 2)
    assert env.Y[0, 1, :5].tolist() == [3] * 5
    rows: list[dict] = []
    check_named(rows, [], "flat-test", 2, [40, 80, 160], 2, 0, check="5")  # no "unknown stream"
    assert {r["policy"] for r in rows} == {"ucbspec"} and all(r["setting"] == "flat-test" for r in rows)
    with pytest.raises(ValueError, match=r"stream: expected one of \['sqrt-burst', 'ucb-trap', 'flat-test'\]"):
        check_named([], [], "recorded", 2, [40], 1, 0)


def test_a_stream_gives_exactly_one_builder():
    from simulator.envs.adversarial import Stream

    with pytest.raises(ValueError, match="exactly one of from_trace"):
        Stream("neither", "nothing")


# ------------------------------------------------------- one resolved experiment (item 4)
def test_a_multi_setting_run_reads_and_resolves_the_trace_once(monkeypatch, tmp_path):
    import traces as traces_mod
    from simulator import runner
    from simulator.cli import main

    loads, resolves = [], []
    real_load, real_resolve = traces_mod.load, runner.resolve
    monkeypatch.setattr(runner.traces, "load", lambda path: loads.append(path) or real_load(path))
    monkeypatch.setattr(runner, "resolve", lambda cfg, trace=None: resolves.append(cfg.setting) or
                        real_resolve(cfg, trace))
    assert main(["run", "--trace", "builtin:synthetic-demo", "--setting", "replay,stochastic,adversarial",
                 "--policy", "ucbspec", "--arms", "strong@2,weak@2", "--runs", "1", "--quiet",
                 "--out", str(tmp_path / "r")]) == 0
    assert loads == ["builtin:synthetic-demo"] and resolves == ["replay", "stochastic", "adversarial"]


def test_the_reward_scale_and_the_engine_are_decided_in_one_place():
    hits = {p.relative_to(ROOT).as_posix(): len(re.findall(r"plain_s\[:, None\] /", p.read_text()))
            for p in _sources()}
    assert {k: v for k, v in hits.items() if v} == {"simulator/runner.py": 1}, "Experiment.reward_scale only"
    callers = [p.relative_to(ROOT).as_posix() for p in _sources() if "has_compiled_form()" in p.read_text()]
    assert sorted(callers) == ["simulator/envs/check.py", "simulator/runner.py"], "runner.engine_refusal only"


def test_no_module_imports_the_runners_private_names():
    bad = []
    for p in [*_sources(), *(ROOT / "tests").glob("*.py")]:
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.ImportFrom) and (n.module or "").endswith("runner"):
                bad += [f"{p.relative_to(ROOT)}: {a.name}" for a in n.names if a.name.startswith("_")]
    assert not bad, "pass the Experiment (simulator.runner.resolve), not the runner's internals:\n" + "\n".join(bad)
