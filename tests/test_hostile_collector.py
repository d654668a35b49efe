"""Hostile collector inputs (`python -m gpu_collect collect`): broken model folders, drafter
arguments out of range, datastores that never end, non-finite temperatures.  Each ends in one
line naming the folder or file, the argument and the valid range, exit 2, and leaves no output
folder (hostile cases 27, 41-48 of round 3)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the collector needs the [collect] extra")

from gpu_collect.cli import main as gc_main  # noqa: E402
from gpu_collect.drafters import RestDrafter  # noqa: E402
from gpu_collect.tiny import build_tiny  # noqa: E402

pytestmark = pytest.mark.collect


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """The tiny 4-layer target, broken copies of it, and a one-question prompt file."""
    root = tmp_path_factory.mktemp("hostile")
    m = build_tiny(root / "M")
    q = root / "q.jsonl"
    q.write_text(json.dumps({"question_id": 1, "category": "chat", "turns": ["Hello there, how are you?"]}) + "\n")
    out = {"M": m, "q": q}

    def copy(name: str) -> Path:
        out[name] = shutil.copytree(m, root / name)
        return out[name]

    weights = (m / "model.safetensors").read_bytes()
    (copy("truncated") / "model.safetensors").write_bytes(weights[:10000])  # case 41
    from safetensors.torch import load_file, save_file

    sd = load_file(m / "model.safetensors")
    sd["model.layers.0.self_attn.q_proj.weight"] = torch.zeros(7, 5)  # case 42
    save_file(sd, copy("shape") / "model.safetensors", metadata={"format": "pt"})
    for name, key, value in (("vocab", "vocab_size", 2**40), ("layers", "num_hidden_layers", 10**6)):  # case 43
        cfg = json.loads((m / "config.json").read_text())
        (copy(name) / "config.json").write_text(json.dumps({**cfg, key: value}))
    notok = copy("notok")
    for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):  # case 44
        (notok / f).unlink(missing_ok=True)
    return out


def _collect(tiny: dict[str, Path], tmp_path: Path, *args: str, target: str = "M") -> tuple[int, Path]:
    out = tmp_path / "OUT"
    argv = ["collect", "--target", str(tiny.get(target, target)), "--prompts", str(tiny["q"]),
            "--no-costs", "--max-new-tokens", "4", "--k-max", "3", "--device", "cpu", "--quiet",
            "--out", str(out), *args]
    threads = torch.get_num_threads()
    try:
        rc = gc_main(argv)
    finally:
        torch.set_num_threads(threads)  # a --threads run must not change the other tests' torch
    return rc, out


def _one_line(capsys) -> str:
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith(("error", "Traceback"))]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _refused(tiny, tmp_path, capsys, *args: str, target: str = "M") -> str:
    rc, out = _collect(tiny, tmp_path, *args, target=target)
    err = _one_line(capsys)
    assert rc == 2, err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [], list(tmp_path.iterdir())
    return err


@pytest.mark.parametrize("target, drafter, says", [
    ("truncated", "pld", "{truncated}/model.safetensors: not a readable safetensors file"),  # case 41
    ("M", "hf:{truncated}", "{truncated}/model.safetensors: not a readable safetensors file"),
    ("shape", "pld", "{shape}/model.safetensors: tensor model.layers.0.self_attn.q_proj.weight has shape [7, 5]; "
                     "{shape}/config.json describes [64, 64]"),  # case 42
    ("vocab", "pld", "{vocab}/model.safetensors: tensor model.embed_tokens.weight has shape [384, 64]; "
                     "{vocab}/config.json describes [1099511627776, 64]"),  # case 43
    ("layers", "pld", "{layers}/config.json: num_hidden_layers 1000000; the weights hold layers 0..3"),
    ("notok", "pld", "{notok}: no tokenizer files (expected tokenizer.json"),  # case 44
], ids=["truncated", "hf-truncated", "shape", "vocab", "layers", "no-tokenizer"])
def test_a_model_folder_that_does_not_load_is_one_line_naming_it(tiny, tmp_path, capsys, target, drafter, says):
    names = {k: str(v) for k, v in tiny.items()}
    t0 = time.perf_counter()
    err = _refused(tiny, tmp_path, capsys, "--drafter", drafter.format(**names), target=target)
    assert says.format(**names) in err
    assert time.perf_counter() - t0 < 60  # refused from headers and shapes, nothing allocated


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "1e-9", "1e9"])
def test_a_temperature_out_of_range_is_refused(tiny, tmp_path, capsys, value):
    """Cases 45 and 27: nan gave a torch RuntimeError traceback; inf was accepted."""
    err = _refused(tiny, tmp_path, capsys, "--drafter", "pld", f"--temperature={value}")
    assert "--temperature: expected 0 (greedy) or a number in 0.001..1000, got" in err


@pytest.mark.parametrize("drafter, says", [
    ("skip:999", "drafter skip:999: layer 999 out of range; expected layer indices in 0..3 (the target has 4 layers)"),
    ("skip:-1", "drafter skip:-1: layer -1 out of range; expected layer indices in 0..n_layers - 1"),
    ("skip:0,1,2,3", "drafter skip:0,1,2,3: skips all 4 layers of the target"),
    ("quant:rtn0", "drafter quant:rtn0: bits 0 out of range; expected quant:rtnB with B in 2..8, or quant:int8"),
    ("quant:rtn64", "drafter quant:rtn64: bits 64 out of range; expected quant:rtnB with B in 2..8"),
], ids=["skip999", "skip-1", "skip-all", "rtn0", "rtn64"])
def test_drafter_arguments_out_of_range_are_refused(tiny, tmp_path, capsys, drafter, says):
    """Case 48: skip:999 was recorded as skipping a layer that does not exist (the drafter was
    the full target); rtn0 and rtn64 were accepted."""
    assert says in _refused(tiny, tmp_path, capsys, "--drafter", drafter)


def _feed_fifo_once_opened(fifo: Path, text: bytes, seconds: float = 5.0) -> None:
    """Were the FIFO opened for reading (the guard broken), feed it and close: the collection
    would then go on instead of hanging the test."""
    def feed() -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader yet
                time.sleep(0.05)
                continue
            os.write(fd, text)
            os.close(fd)
            return

    threading.Thread(target=feed, daemon=True).start()


def test_a_rest_datastore_that_is_not_a_regular_file_is_refused_at_once(tiny, tmp_path, capsys):
    """Cases 46, 47: rest:/dev/zero read until the OOM killer came; rest:FIFO blocked."""
    err = _refused(tiny, tmp_path, capsys, "--drafter", "rest:/dev/zero")
    assert "drafter rest:/dev/zero: /dev/zero: not a regular file (a device)" in err
    fifo = tiny["M"].parent / "ds"
    if not fifo.exists():
        os.mkfifo(fifo)
    _feed_fifo_once_opened(fifo, b"Hello there, how are you?\n")
    t0 = time.perf_counter()
    err = _refused(tiny, tmp_path, capsys, "--drafter", f"rest:{fifo}")
    assert f"drafter rest:{fifo}: {fifo}: not a regular file (a FIFO)" in err and time.perf_counter() - t0 < 30


def test_a_rest_datastore_over_the_size_cap_is_refused(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(RestDrafter, "MAX_CORPUS_BYTES", 100)
    corpus = tiny["M"].parent / "corpus.txt"
    corpus.write_text("Hello there, how are you?\n" * 10)
    err = _refused(tiny, tmp_path, capsys, "--drafter", f"rest:{corpus}")
    assert f"drafter rest:{corpus}: {corpus}: more than 100 bytes; expected a file of at most 100 bytes" in err


def test_threads_above_the_cpus_are_clamped_with_a_note(tiny, tmp_path, capsys):
    n = os.cpu_count() or 1
    rc, out = _collect(tiny, tmp_path, "--drafter", "pld", "--threads", str(n + 1000))
    err = capsys.readouterr().err
    assert rc == 0 and out.is_dir(), err
    assert f"note: --threads {n + 1000} clamped to {n}: this machine has {n} CPUs" in err
