"""Reading and writing Medusa and EAGLE head checkpoints in their published layouts.

Tensors come from ``*.safetensors`` first; a ``.bin`` / ``.pt`` file is read only with
``torch.load(weights_only=True)``, which refuses any pickled object that would run code.  Configs are
JSON.  Names as the projects publish them (``docs/collecting.md``, "Medusa and EAGLE heads"):

* Medusa (FasterDecoding/Medusa): ``medusa_lm_head.safetensors`` or ``medusa_lm_head.pt`` with
  ``{i}.{j}.linear.weight|bias`` (ResBlocks) and ``{i}.{L}.weight`` (the head's lm_head);
  also read: a ``medusa_head.`` prefix (full Medusa-2 models, whose ``model.*`` and
  ``lm_head.*`` are skipped), vLLM's ``blocks.{i}.layers.{j}`` / ``lm_heads.{i}``, and heads
  without their own lm_head ("version 2": the target's is copied).  ``config.json``:
  ``medusa_num_heads``, ``medusa_num_layers``; the head count is taken from the tensors.
* EAGLE-1/2 (SafeAILab/EAGLE): ``model.safetensors`` or ``pytorch_model.bin`` with
  ``fc.weight`` (``fc.bias`` unless ``"bias": false``) and ``layers.0.*`` (no
  ``input_layernorm``); ``embed_tokens.weight`` if present replaces the target's embedding.
* EAGLE-3: ``fc.weight`` (3h -> h), ``midlayer.*`` (``hidden_norm`` included), ``norm.weight``,
  ``lm_head.weight`` (draft vocabulary), ``d2t`` (``t2d`` is implied by ``d2t`` and dropped).
  A ``model.`` prefix, and vLLM's ``layers.0.`` for ``midlayer.``, are accepted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from .errors import CollectError
from .heads import EagleHead, HeadConfig, MedusaHeads

MEDUSA_FILES = ("medusa_lm_head.safetensors", "model.safetensors", "medusa_lm_head.pt", "pytorch_model.bin")
EAGLE_FILES = ("model.safetensors", "pytorch_model.bin")


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint file: safetensors, or a tensors-only torch file (weights only)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
            raise CollectError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - the weights-only unpickler's refusals (UnpicklingError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CollectError(f"{path}: refused: not a tensors-only checkpoint (weights_only load failed: "
                           f"{first[:160]}); convert it to safetensors") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
        raise CollectError(f"{path}: expected a mapping of tensor names to tensors")
    return obj


def _weights_file(d: Path, names: tuple[str, ...]) -> Path:
    for n in names:
        if (d / n).is_file():
            return d / n
    raise CollectError(f"{d}: no head weights; expected one of {', '.join(names)}")


def _config(d: Path) -> dict:
    p = d / "config.json"
    if not p.is_file():
        return {}
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CollectError(f"{p}: not readable JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise CollectError(f"{p}: expected a JSON object")
    return cfg


def rope_theta(cfg: dict) -> float:
    """``rope_theta`` of a config dict (top level, or transformers 5's ``rope_parameters``),
    else LlamaConfig's default 10000 (what EAGLE's own loader uses); any rope type but the
    default is refused rather than silently ignored."""
    rp = cfg.get("rope_parameters") or {}
    kind = (cfg.get("rope_scaling") or {}).get("rope_type") or (cfg.get("rope_scaling") or {}).get("type") \
        or rp.get("rope_type", "default")
    if kind not in (None, "default"):
        raise CollectError(f"config.json: rope_scaling / rope_parameters: rope type {kind!r} is not supported "
                           "(expected the default rotary embedding)")
    return float(cfg.get("rope_theta") or rp.get("rope_theta") or 10000.0)


def _head_config(raw: dict, target_cfg, **over) -> HeadConfig:
    """Checkpoint values first; sizes the checkpoint does not say are the target's; rotary
    base and norm epsilon default as LlamaConfig does (never the target's)."""
    def get(k, default=None):
        v = raw.get(k, getattr(target_cfg, k, default))
        return default if v is None else v

    return HeadConfig(hidden_size=int(get("hidden_size")), vocab_size=int(target_cfg.vocab_size),
                      num_attention_heads=int(get("num_attention_heads", 1)),
                      num_key_value_heads=int(get("num_key_value_heads", get("num_attention_heads", 1))),
                      intermediate_size=int(get("intermediate_size", 1)),
                      rms_norm_eps=float(raw.get("rms_norm_eps") or 1e-6), rope_theta=rope_theta(raw),
                      head_dim=raw.get("head_dim"), bias=bool(raw.get("bias", True)),
                      draft_vocab_size=raw.get("draft_vocab_size"), target_hidden_size=raw.get("target_hidden_size"),
                      **over)


def _strict_load(module: torch.nn.Module, sd: dict[str, torch.Tensor], path: Path) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:
        raise CollectError(f"{path}: tensor names do not match the layout: missing {missing[:4]}, "
                           f"unexpected {unexpected[:4]}")
    bad = [k for k in own if own[k].shape != sd[k].shape]
    if bad:
        raise CollectError(f"{path}: {bad[0]}: shape {tuple(sd[bad[0]].shape)}, expected {tuple(own[bad[0]].shape)}")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()})


def load_medusa(d: Path, target) -> MedusaHeads:
    """A Medusa checkpoint directory for ``target`` (a ``Loaded``)."""
    path = _weights_file(d, MEDUSA_FILES)
    sd = read_tensors(path)
    m = {}
    for k, v in sd.items():
        if k.startswith(("model.", "lm_head.", "base_model.")):
            continue  # a full Medusa-2 model: the target's own weights
        k = k.removeprefix("medusa_head.").removeprefix("medusa_heads.")
        k = re.sub(r"^blocks\.(\d+)\.layers\.(\d+)\.", r"\1.\2.linear.", k)  # vLLM's layout
        m[k] = v
    heads = sorted({int(k.split(".")[0]) for k in m if k.split(".")[0].isdigit()})
    if not heads or heads != list(range(len(heads))):
        raise CollectError(f"{path}: no Medusa heads found (expected tensors named like 0.0.linear.weight)")
    layers = sum(1 for k in m if re.fullmatch(r"0\.\d+\.linear\.weight", k))
    raw = _config(d)
    cfg = _head_config(raw, target.model.config, medusa_num_heads=len(heads), medusa_num_layers=layers)
    model = MedusaHeads(cfg)
    out_w = target.model.get_output_embeddings().weight.detach()
    for i in heads:  # the head's lm_head: its own, vLLM's lm_heads.{i}, or a copy of the target's
        key = f"{i}.{layers}.weight"
        if key not in m:
            m[key] = m.pop(f"lm_heads.{i}.weight", None)
            if m[key] is None:
                m[key] = out_w.clone()
    _strict_load(model.medusa_head, m, path)
    return model.to(target.device, dtype=out_w.dtype).eval()


def load_eagle(d: Path, target, *, fused: bool) -> EagleHead:
    """An EAGLE-1/2 (``fused=False``) or EAGLE-3 (``fused=True``) checkpoint directory."""
    path = _weights_file(d, EAGLE_FILES)
    sd = {k.removeprefix("model."): v for k, v in read_tensors(path).items()}
    if fused:
        sd = {re.sub(r"^layers\.0\.", "midlayer.", k): v for k, v in sd.items()}
        sd.pop("t2d", None)
        sd = {("d2t" if k == "draft_id_to_target_id" else k): v for k, v in sd.items()}
    raw = _config(d)
    if not raw:
        raise CollectError(f"{d / 'config.json'}: missing; an EAGLE head needs its Llama config")
    layers = int(raw.get("num_hidden_layers", 1))
    if layers != 1:
        raise CollectError(f"{d / 'config.json'}: num_hidden_layers: expected 1 (one EAGLE layer), got {layers}")
    if "fc.bias" not in sd and not fused:
        raw = {**raw, "bias": False}
    cfg = _head_config(raw, target.model.config)
    tgt = target.model
    embed = tgt.get_input_embeddings()
    own_embed = sd.pop("embed_tokens.weight", None)
    if own_embed is not None:
        if own_embed.shape != embed.weight.shape:
            raise CollectError(f"{path}: embed_tokens.weight: shape {tuple(own_embed.shape)}, expected the "
                               f"target's {tuple(embed.weight.shape)}")
        embed = torch.nn.Embedding.from_pretrained(own_embed.to(embed.weight.dtype), freeze=True)
    if fused and "d2t" not in sd:
        if (cfg.draft_vocab_size or cfg.vocab_size) != cfg.vocab_size:
            raise CollectError(f"{path}: d2t: missing, and the draft vocabulary ({cfg.draft_vocab_size}) is smaller "
                               f"than the target's ({cfg.vocab_size}); the draft-to-target token map is needed")
        sd["d2t"] = torch.zeros(cfg.vocab_size, dtype=torch.long)
    for key in ("eagle_aux_hidden_state_layer_ids", "norm_before_residual"):
        if raw.get(key) not in (None, False) and not (key.startswith("eagle_aux") and raw.get(key) == []):
            raise CollectError(f"{d / 'config.json'}: {key}: {raw.get(key)!r} is not supported (this loader fuses "
                               "the inputs of layers 2, N/2 and N-3 and adds the residual after the norm)")
    head = EagleHead(cfg, fused=fused, embed=embed.to(target.device), lm_head=tgt.get_output_embeddings())
    _strict_load(head, sd, path)
    return head.to(target.device, dtype=embed.weight.dtype).eval()


def save_head(head: torch.nn.Module, d: Path, kind: str, config: dict) -> Path:
    """Write ``config.json`` and the weights in the published layout (what ``load_*`` reads)."""
    from safetensors.torch import save_file

    d.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    if kind == "medusa":
        sd = {k.removeprefix("medusa_head."): v for k, v in sd.items()}
        name = "medusa_lm_head.safetensors"
    else:
        name = "model.safetensors"
    save_file(sd, str(d / name))
    (d / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return d / name
