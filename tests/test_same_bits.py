"""The numpy engine and the compiled engine compute every transcendental with the same function.

numpy picks ``np.exp``/``np.log``/``np.power`` code from the CPU at run time (AVX-512: its own
or SVML's, which round differently from the C library); the kernels call the C library.  So the
numpy path calls ``simulator.kernels.scalar_math`` instead, whose bits are the C library's on
every CPU.  These tests check those bits, scan the numpy-path modules for numpy's own
transcendentals, check that numba runs without Intel SVML, and check the names ``make test``
passes to ``NPY_DISABLE_CPU_FEATURES`` (its second run of the engine-equality tests).
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simulator.kernels import scalar_math as sm

ROOT = Path(__file__).resolve().parents[1]

# every module of the numpy engine whose numbers the compiled engine also computes or reads
NUMPY_PATH = sorted(
    [p for d in ("simulator/policies", "simulator/envs") for p in (ROOT / d).glob("*.py")]
    + [ROOT / "simulator" / f for f in ("runner.py", "lockstep.py", "rng.py", "costs.py")])
# numpy ufuncs (and scipy.special) whose bits depend on the CPU's SIMD; np.sqrt is correctly rounded
SIMD_MATH = {"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "logaddexp", "logaddexp2", "power",
             "float_power", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh",
             "arcsinh", "arccosh", "arctanh", "cbrt", "hypot", "logspace", "geomspace"}
# ``x ** 2`` is exact (numpy multiplies); any other exponent is ``pow``
EXACT_POWERS = {2}
# (file, function): why its ``**`` or numpy call is not an engine difference
EXEMPT = {("simulator/envs/stochastic.py", "fit_tgd_rate"):
          "Python floats: CPython's float ** int calls the C library's pow, like math.pow"}

NPY_NO_AVX512 = re.search(r"^NO_AVX512\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), re.M)


def _adversarial(seed: int = 0) -> np.ndarray:
    """Arguments where numpy's AVX-512 exp/log and the C library's disagree most often (random
    mantissas), near 0 and 1, at the overflow and underflow edges, subnormals and specials."""
    rng = np.random.default_rng(seed)
    n = 100_000
    edges = np.array([0.0, -0.0, 1.0, -1.0, 1e-300, 5e-324, 2.2e-308, 709.78, 709.79, -708.39, -745.13, -745.2,
                      0.5, 2.0, 1 - 2**-53, 1 + 2**-52, 700.0, -700.0, np.inf, -np.inf, np.nan])
    return np.concatenate([rng.uniform(-745, 710, n), rng.uniform(-1, 1, n), 1 + rng.uniform(-1e-3, 1e-3, n),
                           -rng.exponential(3.0, n), np.exp2(rng.uniform(-1074, 1023, n)), edges])


def _reference(f, *args: np.ndarray) -> np.ndarray:
    """``f`` (a ``math`` function, i.e. the C library's) element by element; where ``math``
    raises, the IEEE value the C function returns."""
    out = np.empty(len(args[0]))
    for i, a in enumerate(zip(*args, strict=True)):
        try:
            out[i] = f(*a)
        except ValueError:  # log(0) = -inf, log(<0) = nan
            out[i] = -np.inf if a[0] == 0 else np.nan
        except OverflowError:
            out[i] = np.inf
    return out


def _same_bits(got: np.ndarray, want: np.ndarray) -> int:
    """How many elements differ in their bits (every nan counts as the same)."""
    both_nan = np.isnan(got) & np.isnan(want)
    return int(((got.view(np.uint64) != want.view(np.uint64)) & ~both_nan).sum())


def _cases():
    x = _adversarial()
    pos = np.abs(x)
    rng = np.random.default_rng(1)
    base = np.concatenate([rng.uniform(0, 1, 100_000), rng.uniform(0, 3, 100_000), [0.0, 1.0, 0.5, 1e-300]])
    expo = np.concatenate([rng.integers(-8, 40, 100_000).astype(float), rng.uniform(-60, 60, 100_000),
                           [0.0, 0.0, 0.5, -1.0]])
    u = np.concatenate([rng.uniform(0, 1, 100_000), np.exp2(-rng.uniform(1, 40, 10_000)),
                        1 - np.exp2(-rng.uniform(1, 40, 10_000)), [1e-12, 1 - 1e-12, 0.5, 0.13533528323661269189]])
    return {"exp": (sm.exp, math.exp, (x,)), "log": (sm.log, math.log, (pos,)),
            "log-negative": (sm.log, math.log, (x,)), "power": (sm.power, math.pow, (base, expo))}, u


@pytest.mark.parametrize("case", ["exp", "log", "log-negative", "power"])
def test_scalar_math_has_the_c_librarys_bits(case):
    cases, _ = _cases()
    ours, ref, args = cases[case]
    with np.errstate(all="ignore"):
        got = ours(*args)
    assert got.dtype == np.float64 and got.shape == args[0].shape
    bad = _same_bits(got, _reference(ref, *args))
    assert bad == 0, f"{case}: {bad} of {got.size} results differ in their bits from math.{ref.__name__}'s"


def test_scalar_ndtri_has_the_kernels_bits():
    from scipy.special import ndtri as scipy_ndtri

    from simulator.kernels.learners import ndtri as kernel_ndtri

    _, u = _cases()
    got = sm.ndtri(u)
    assert _same_bits(got, np.array([kernel_ndtri(v) for v in u])) == 0, "ndtri differs from the kernels' _ndtri"
    assert _same_bits(got, scipy_ndtri(u)) == 0, "ndtri differs from scipy.special.ndtri"


def _violations(source: str, path: str = "<source>") -> list[str]:
    """Calls of numpy's SIMD transcendentals, scipy.special imports and ``**`` with an exponent
    other than a literal 2, outside the exempt functions, as ``path:line: what``."""
    tree = ast.parse(source, path)
    out = []

    def visit(node: ast.AST, func: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            func = node.name
        if (path, func) not in EXEMPT:
            if (isinstance(node, ast.Attribute) and node.attr in SIMD_MATH and isinstance(node.value, ast.Name)
                    and node.value.id in ("np", "numpy")):
                out.append(f"{path}:{node.lineno}: {node.value.id}.{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("scipy.special", "scipy.stats")):
                out.append(f"{path}:{node.lineno}: from {node.module} import")
            if isinstance(node, ast.Import) and any(a.name.startswith(("scipy.special", "scipy.stats"))
                                                    for a in node.names):
                out.append(f"{path}:{node.lineno}: import scipy.special/stats")
            if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)
                    and not (isinstance(node.right, ast.Constant) and node.right.value in EXACT_POWERS)):
                out.append(f"{path}:{node.lineno}: ** {ast.unparse(node.right)}")
        for child in ast.iter_child_nodes(node):
            visit(child, func)

    visit(tree, "")
    return out


@pytest.mark.parametrize("path", NUMPY_PATH, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_numpy_path_calls_no_simd_transcendental(path):
    rel = str(path.relative_to(ROOT))
    bad = _violations(path.read_text(), rel)
    assert not bad, ("use simulator.kernels.scalar_math (sm.exp, sm.log, sm.power, sm.ndtri) instead, so "
                     "both engines round alike on every CPU:\n" + "\n".join(bad))


def test_the_scan_lists_the_policies_and_catches_np_exp():
    """Broken on purpose: each forbidden form is reported, the allowed ones are not."""
    names = {p.name for p in NUMPY_PATH}
    assert {"exp3spec.py", "hedgespec.py", "ucbspec.py", "klucb.py", "tsallis_inf.py", "heuristic.py", "smartspec.py",
            "common.py", "stochastic.py", "runner.py"} <= names
    src = ("import numpy as np\nfrom scipy.special import ndtri\n"
           "def f(x, k):\n    return np.exp(x) + numpy.log1p(x) + x ** k + x ** 3 + x ** 2 + np.sqrt(x) + sm.exp(x)\n")
    bad = _violations(src)
    assert bad == ["<source>:2: from scipy.special import", "<source>:4: np.exp", "<source>:4: numpy.log1p",
                   "<source>:4: ** k", "<source>:4: ** 3"], bad


def test_numba_runs_without_intel_svml():
    """``simulator.kernels`` sets ``NUMBA_DISABLE_INTEL_SVML=1`` before numba is imported: with
    SVML, LLVM would vectorise loops of ``math.exp`` into SVML's exp, with other bits."""
    code = ("import os, simulator, numba\nfrom simulator.kernels import scalar_math as sm\n"
            "print(os.environ.get('NUMBA_DISABLE_INTEL_SVML'), numba.config.DISABLE_INTEL_SVML, sm.USING_SVML)")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_INTEL_SVML"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "1", "False"], r.stdout
    assert sm.USING_SVML is False


_DIGEST = """
import hashlib, json, numpy as np
from simulator.envs.stochastic import tgd_pmf
from simulator.policies.klucb import bern_kl
from simulator.policies.tsallis_inf import tsallis_probs
from simulator.policies.hedgespec import hedge_probs, normalhedge_probs
from simulator.policies.ucbspec import ucbspec_radius
rng = np.random.default_rng(7)
L = rng.uniform(0, 300, (400, 6)); t = rng.integers(1, 5000, 400); p = rng.uniform(0.01, 0.99, (400, 6))
out = {"hedge": hedge_probs(L, t), "normalhedge": normalhedge_probs(L - 150.0),
       "tsallis": tsallis_probs(L, 2 / np.sqrt(t + 1.0)), "bern_kl": bern_kl(p, p[::-1]),
       "radius": ucbspec_radius(L + 1, t[:, None], 6, 8.0, 0.5),
       "tgd": tgd_pmf(p[:, 0], rng.integers(1, 8, 400), 8)}
digest = {k: hashlib.sha256(np.ascontiguousarray(v, np.float64).tobytes()).hexdigest() for k, v in out.items()}
print(json.dumps(digest))
"""


def test_the_numpy_policies_give_the_same_bits_without_avx512():
    """The policies' numbers in this process and in one with numpy's AVX-512 code switched off
    (on a CPU without AVX-512 both are the baseline code: trivially equal)."""
    assert NPY_NO_AVX512, "Makefile: NO_AVX512 := <numpy CPU features> not found"

    def digests(extra: dict) -> dict:
        env = {**os.environ, **extra}
        r = subprocess.run([sys.executable, "-c", _DIGEST], capture_output=True, text=True, cwd=ROOT, env=env,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    here = digests({})
    off = digests({"NPY_DISABLE_CPU_FEATURES": NPY_NO_AVX512.group(1).strip()})
    assert here == off, f"these differ with numpy's AVX-512 code off: {sorted(k for k in here if here[k] != off[k])}"
    assert hashlib.sha256(b"").hexdigest() not in here.values()


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 feature names")
def test_make_test_disables_every_avx512_target_numpy_dispatches():
    """numpy ignores (with an ImportWarning) a name outside its dispatch list, and a feature
    this CPU lacks is a silent no-op, so the list must be exactly numpy's AVX-512 targets."""
    from numpy._core._multiarray_umath import __cpu_dispatch__

    assert NPY_NO_AVX512, "Makefile: NO_AVX512 := <numpy CPU features> not found"
    listed = NPY_NO_AVX512.group(1).split()
    avx512 = [f for f in __cpu_dispatch__ if f.startswith("AVX512") or f == "X86_V4"]
    assert sorted(listed) == sorted(avx512), f"Makefile NO_AVX512 {listed}; numpy {np.__version__} dispatches {avx512}"


@pytest.mark.skipif(not os.environ.get("NPY_DISABLE_CPU_FEATURES"), reason="make test's second run only")
def test_the_second_run_really_has_numpys_avx512_code_off():
    from numpy._core._multiarray_umath import __cpu_features__

    on = [f for f in os.environ["NPY_DISABLE_CPU_FEATURES"].split() if __cpu_features__.get(f)]
    assert not on, f"NPY_DISABLE_CPU_FEATURES did not switch off {on}"
