"""Same-weights drafter models made from a loaded target: layer subsets (early exit, layer
skipping) and simulated quantisation (round-to-nearest, W8A8).  Loading is ``models.py``."""

from __future__ import annotations

import copy

import torch
from torch import nn

from .errors import CollectError


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
