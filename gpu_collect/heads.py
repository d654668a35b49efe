"""Feature-conditioned draft heads as small torch modules (no remote code).

Parameter names follow the published checkpoints (``docs/collecting.md``, "Medusa and EAGLE
heads"), so a checkpoint loads with ``load_state_dict`` after its documented renames:

* ``MedusaHeads`` (Cai et al. 2024, Medusa-1): head ``i`` is ``Sequential(ResBlock * L,
  Linear(h, V, bias=False))`` over the target's last hidden state (after the final norm);
  ``ResBlock(x) = x + SiLU(W x + b)``.  From the hidden state that predicted token ``t``, head
  ``i`` (0-based) predicts token ``t + 1 + i``.
* ``EagleHead`` (Li et al. 2024, EAGLE-1/2): ``fc: Linear(2h, h)`` over
  ``cat(embed(token), feature)``, then one Llama decoder layer (layer 0 of EAGLE has no
  ``input_layernorm``); the target's ``lm_head`` turns its output feature into logits.
* ``Eagle3Head`` (Li et al. 2025, EAGLE-3): ``fc: Linear(3h, h, bias=False)`` fuses three
  target layers; ``midlayer`` is a decoder layer whose attention reads
  ``cat(input_layernorm(embed(token)), hidden_norm(feature))`` (2h) with the feature as the
  residual; ``norm`` and a ``lm_head`` over a draft vocabulary mapped to target ids by ``d2t``
  (``target = draft + d2t[draft]``).

Both EAGLE heads feed their own output feature into the next depth; ``attend`` takes explicit
key/value blocks so that every position of a sequence can draft in parallel (``eagle_ranks``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class HeadConfig:
    """What a head needs of a Llama-style config (a checkpoint's ``config.json``)."""

    hidden_size: int
    vocab_size: int
    num_attention_heads: int = 1
    num_key_value_heads: int = 1
    intermediate_size: int = 1
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    head_dim: int | None = None
    bias: bool = True  # EAGLE-1/2 fc bias
    draft_vocab_size: int | None = None  # EAGLE-3
    target_hidden_size: int | None = None  # EAGLE-3: fused features are 3 * this
    medusa_num_heads: int = 0
    medusa_num_layers: int = 1

    @property
    def hd(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads


class RMSNorm(nn.Module):
    def __init__(self, n: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dt = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dt)


def rope(x: torch.Tensor, pos: torch.Tensor, theta: float) -> torch.Tensor:
    """Llama rotary embedding (rotate-half), ``x``: (..., heads, d), ``pos``: x.shape[:-2]."""
    d = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d))
    f = pos.to(torch.float32)[..., None] * inv  # (..., d/2)
    emb = torch.cat([f, f], -1)[..., None, :]  # broadcast over heads
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Attention(nn.Module):
    def __init__(self, cfg: HeadConfig, in_dim: int):
        super().__init__()
        H, KV, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.hd
        self.q_proj = nn.Linear(in_dim, H * d, bias=False)
        self.k_proj = nn.Linear(in_dim, KV * d, bias=False)
        self.v_proj = nn.Linear(in_dim, KV * d, bias=False)
        self.o_proj = nn.Linear(H * d, cfg.hidden_size, bias=False)
        self.H, self.KV, self.d, self.theta = H, KV, d, cfg.rope_theta

    def qkv(self, x: torch.Tensor, pos: torch.Tensor):
        """(..., in) -> q (..., H, d), k and v (..., H, d) (key/value heads repeated), roped."""
        sh = x.shape[:-1]
        q = rope(self.q_proj(x).view(*sh, self.H, self.d), pos, self.theta)
        k = rope(self.k_proj(x).view(*sh, self.KV, self.d), pos, self.theta)
        v = self.v_proj(x).view(*sh, self.KV, self.d)
        rep = self.H // self.KV
        return q, k.repeat_interleave(rep, -2), v.repeat_interleave(rep, -2)


def attend(q: torch.Tensor, blocks: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Softmax attention of queries ``q`` (n, H, d) over key/value blocks, each
    ``(k (n or 1, m, H, d), v (same), allowed (n, m) bool)``: one softmax across all blocks.
    A block with a leading 1 is shared by every query and is never copied per query."""
    scores = []
    for k, _v, allowed in blocks:
        if k.shape[0] == 1:
            s = torch.einsum("nhd,mhd->nhm", q, k[0])
        else:
            s = torch.einsum("nhd,nmhd->nhm", q, k)
        scores.append((s / q.shape[-1] ** 0.5).masked_fill(~allowed[:, None, :], float("-inf")))
    w = torch.softmax(torch.cat(scores, -1).float(), -1).to(q.dtype)
    out, at = 0, 0
    for (_k, v, _), s in zip(blocks, scores, strict=True):
        m = s.shape[-1]
        wb = w[..., at : at + m]
        out = out + (torch.einsum("nhm,mhd->nhd", wb, v[0]) if v.shape[0] == 1 else
                     torch.einsum("nhm,nmhd->nhd", wb, v))
        at += m
    return out


class MLP(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        h, i = cfg.hidden_size, cfg.intermediate_size
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """One Llama decoder layer; ``fused`` is EAGLE-3's midlayer (attention over [emb; feature])."""

    def __init__(self, cfg: HeadConfig, *, input_norm: bool, fused: bool):
        super().__init__()
        h = cfg.hidden_size
        if input_norm:
            self.input_layernorm = RMSNorm(h, cfg.rms_norm_eps)
        if fused:
            self.hidden_norm = RMSNorm(h, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg, 2 * h if fused else h)
        self.post_attention_layernorm = RMSNorm(h, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)
        self.fused = fused

    def attn_input(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        if self.fused:
            return torch.cat([self.input_layernorm(emb), self.hidden_norm(x)], -1)
        return self.input_layernorm(x) if hasattr(self, "input_layernorm") else x

    def finish(self, x: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        """Residual, post-attention norm and MLP after the attention output (..., H, d)."""
        x = x + self.self_attn.o_proj(attn.flatten(-2))
        return x + self.mlp(self.post_attention_layernorm(x))


class ResBlock(nn.Module):
    def __init__(self, h: int):
        super().__init__()
        self.linear = nn.Linear(h, h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + nn.functional.silu(self.linear(x))


class MedusaHeads(nn.Module):
    """``medusa_head.{i}.{0..L-1}.linear`` and ``medusa_head.{i}.{L}`` (the head's lm_head)."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        h, V = cfg.hidden_size, cfg.vocab_size
        self.medusa_head = nn.ModuleList(
            nn.Sequential(*[ResBlock(h) for _ in range(cfg.medusa_num_layers)], nn.Linear(h, V, bias=False))
            for _ in range(cfg.medusa_num_heads))
        self.cfg = cfg

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., h) -> (heads, ..., V)."""
        return torch.stack([m(hidden) for m in self.medusa_head])


class EagleHead(nn.Module):
    """EAGLE-1/2 (``fused=False``) or EAGLE-3 (``fused=True``); see the module docstring.

    ``step`` maps (feature, next token) pairs to output features; ``logits`` turns output
    features into target-vocabulary logits.  ``embed`` and (EAGLE-1/2) ``lm_head`` are the
    target's unless the checkpoint carries its own.
    """

    def __init__(self, cfg: HeadConfig, *, fused: bool, embed: nn.Embedding, lm_head: nn.Module,
                 final_norm: nn.Module | None = None):
        super().__init__()
        h = cfg.hidden_size
        self.cfg, self.fused = cfg, fused
        if fused:
            th = cfg.target_hidden_size or h
            self.fc = nn.Linear(3 * th, h, bias=False)
            self.midlayer = DecoderLayer(cfg, input_norm=True, fused=True)
            self.norm = RMSNorm(h, cfg.rms_norm_eps)
            dv = cfg.draft_vocab_size or cfg.vocab_size
            self.lm_head = nn.Linear(h, dv, bias=False)
            self.register_buffer("d2t", torch.zeros(dv, dtype=torch.long))
        else:
            self.fc = nn.Linear(2 * h, h, bias=cfg.bias)
            self.layers = nn.ModuleList([DecoderLayer(cfg, input_norm=False, fused=False)])
            self.target_lm_head = [lm_head]  # not a submodule: not in the head's state dict
        self.embed = [embed]  # the target's embedding, shared (not part of the head's weights)
        self.final_norm = [final_norm]

    @property
    def layer(self) -> DecoderLayer:
        return self.midlayer if self.fused else self.layers[0]

    def in_features(self, target_feature: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's input (residual stream, token embedding) from the target's features."""
        emb = self.embed[0](tokens)
        if self.fused:
            return self.fc(target_feature), emb
        return self.fc(torch.cat([emb, target_feature], -1)), emb

    def own_features(self, feature: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's input at depth >= 2, from the head's own output feature."""
        emb = self.embed[0](tokens)
        if self.fused:
            return feature, emb  # EAGLE-3 feeds the midlayer's (pre-norm) output back as is
        return self.fc(torch.cat([emb, feature], -1)), emb

    def logits(self, feature: torch.Tensor) -> torch.Tensor:
        """Target-vocabulary logits (EAGLE-3: draft-vocabulary logits scattered, others -inf)."""
        if not self.fused:
            return self.target_lm_head[0](feature)
        dl = self.lm_head(self.norm(feature))
        if self.cfg.draft_vocab_size in (None, self.cfg.vocab_size) and not self.d2t.any():
            return dl
        out = dl.new_full((*dl.shape[:-1], self.cfg.vocab_size), float("-inf"))
        idx = torch.arange(dl.shape[-1], device=dl.device) + self.d2t
        return out.index_copy(-1, idx, dl)

    def prefix(self, x: torch.Tensor, emb: torch.Tensor, pos: torch.Tensor):
        """Causal pass over a whole sequence of pairs ``(M, h)``: output features (M, h) and the
        layer's roped keys / values (1, M, H, d) for later depths to attend to."""
        layer = self.layer
        q, k, v = layer.self_attn.qkv(layer.attn_input(x, emb), pos)
        M = x.shape[0]
        causal = torch.ones(M, M, dtype=torch.bool, device=x.device).tril()
        out = layer.finish(x, attend(q, [(k[None], v[None], causal)]))
        return out, k[None], v[None]
