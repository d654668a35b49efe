"""``benchmarks/gpu_check.py`` on the CPU (``--device cpu --quick``, a tiny random Llama): the
same steps and code path as on a GPU, end to end; ``summary.json``'s structure and figures; a
step over its budget stopped and marked while the next still runs; ``--device cuda`` without
CUDA refused in one line before anything is written or started."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="gpu_check needs the [collect] extra")

pytestmark = pytest.mark.collect

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
gc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gc)

STEP_KEYS = {"name", "status", "budget_s", "command", "folder", "wall_s", "returncode", "figures"}
FILES = {"selfcheck": ["log.txt"],
         "costs": ["log.txt", "costs.csv", "ripple_summary.csv", "ripple_cells.csv", "cost_warnings.txt"],
         "cost_check": ["log.txt", "summary.csv", "config.json", "arms_check.csv", "trace/manifest.json"],
         "assisted": ["log.txt", "results.json"]}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpucheck") / "out"
    rc = gc.main(["--device", "cpu", "--quick", "--out", str(out)])
    return rc, out, json.loads((out / "summary.json").read_text())


def test_quick_run_end_to_end(quick):
    rc, out, s = quick
    assert rc == 0, [(st["name"], st["status"], st.get("last_line")) for st in s["steps"]]
    assert {"device", "device_name", "quick", "target", "wall_s", "started_utc", "torch", "steps"} <= set(s)
    assert s["device"] == "cpu" and s["quick"] is True and s["device_name"].startswith("cpu")
    assert [st["name"] for st in s["steps"]] == list(gc.STEPS)
    for st in s["steps"]:
        assert STEP_KEYS <= set(st), f"summary.json: step {st['name']}: keys {sorted(st)}; expected {STEP_KEYS}"
        assert st["status"] == "ok" and st["returncode"] == 0 and 0 < st["wall_s"] <= st["budget_s"]
        assert "missing" not in st["figures"], st["figures"]
        for f in FILES[st["name"]]:
            assert (out / st["folder"] / f).is_file(), f"{out}/{st['folder']}/{f}: expected the step to write it"
    assert s["wall_s"] >= sum(st["wall_s"] for st in s["steps"])
    fig = {st["name"]: st["figures"] for st in s["steps"]}
    assert fig["selfcheck"]["runs"] == fig["selfcheck"]["runs_equal"] == 21
    assert fig["costs"]["cells"] == 10 and fig["costs"]["rounds"] == 3  # k 0..3 and 7, batch 1 and 4
    assert set(fig["costs"]["verify_ms"]) == {"tiny b1 c32", "tiny b4 c32"}
    assert fig["cost_check"]["arm_sequences_differ"] == 0 and set(fig["cost_check"]["error_by_fit"]) == {"raw", "fit"}
    assert set(fig["assisted"]["ratio_live_over_transformers"]) == {"plain", "draft", "pld"}
    assert all(v > 0 for v in fig["assisted"]["ratio_live_over_transformers"].values())


def test_a_step_over_its_budget_is_stopped_and_the_next_runs(tmp_path, capsys):
    out = tmp_path / "out"
    rc = gc.main(["--device", "cpu", "--quick", "--steps", "selfcheck,costs", "--budget", "selfcheck=0.5",
                  "--out", str(out)])
    s = json.loads((out / "summary.json").read_text())
    st = {x["name"]: x for x in s["steps"]}
    assert rc == 1
    assert st["selfcheck"]["status"] == "over_budget" and st["selfcheck"]["returncode"] is None
    assert 0.5 <= st["selfcheck"]["wall_s"] < 8, "expected the step stopped at its budget (+ the 5 s kill grace)"
    assert (out / "selfcheck" / "log.txt").is_file()
    assert st["costs"]["status"] == "ok"
    assert st["cost_check"]["status"] == st["assisted"]["status"] == "skipped"
    assert "selfcheck  over_budget" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_device_cuda_without_cuda_fails_in_one_line_first(tmp_path, capsys, monkeypatch):
    def no_step(*a, **k):
        raise AssertionError("a step was started")

    monkeypatch.setattr(gc.subprocess, "Popen", no_step)
    out = tmp_path / "out"
    rc = gc.main(["--device", "cuda", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 2
    assert cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--device cuda" in lines[0], cap.err
    assert not out.exists()
