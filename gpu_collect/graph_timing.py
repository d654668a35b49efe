"""GPU time of Llama-shaped forwards, replayed from CUDA graphs (no Python launch cost).

Eager transformers at batch 1 is bound by Python and kernel launches (about 1 ms per
layer measured on an H100), which says little about the GPU.  Serving engines replay CUDA
graphs; this module times the same computation that way: per layer RMSNorm, fused QKV
projection, grouped-query attention of the ``k+1`` new tokens over a static KV cache of
``context`` tokens (SDPA), output projection, RMSNorm and SwiGLU MLP; then the final norm
and the LM head over the new tokens.  Rotary embeddings are omitted (element-wise, a few
microseconds).  Weights are random: time does not depend on their values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _rms(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


class GraphLlama:
    def __init__(self, cfg: dict, layers: int, device, dtype, max_context: int, max_batch: int):
        h, inter = cfg["hidden_size"], cfg["intermediate_size"]
        self.nh, self.nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.hd = h // self.nh
        g = torch.Generator(device=device).manual_seed(0)

        def w(*shape):
            return (torch.randn(*shape, generator=g, device=device, dtype=torch.float32) * 0.02).to(dtype)

        qkv_rows = (self.nh + 2 * self.nkv) * self.hd
        self.layers = [dict(n1=torch.ones(h, device=device, dtype=dtype), qkv=w(qkv_rows, h),
                            o=w(h, h), n2=torch.ones(h, device=device, dtype=dtype), gu=w(2 * inter, h),
                            down=w(h, inter)) for _ in range(layers)]
        self.emb = w(cfg["vocab_size"], h)
        self.head = w(cfg["vocab_size"], h)
        self.norm = torch.ones(h, device=device, dtype=dtype)
        self.kv = [(torch.zeros(max_batch, self.nkv, max_context, self.hd, device=device, dtype=dtype),
                    torch.zeros(max_batch, self.nkv, max_context, self.hd, device=device, dtype=dtype))
                   for _ in range(layers)]

    def forward(self, ids: torch.Tensor, context: int) -> torch.Tensor:
        b, n = ids.shape
        x = self.emb[ids]
        for L, (kc, vc) in zip(self.layers, self.kv, strict=True):
            qkv = F.linear(_rms(x, L["n1"]), L["qkv"]).view(b, n, self.nh + 2 * self.nkv, self.hd)
            q = qkv[:, :, : self.nh].transpose(1, 2)
            k = qkv[:, :, self.nh : self.nh + self.nkv].transpose(1, 2)
            v = qkv[:, :, self.nh + self.nkv :].transpose(1, 2)
            kc[:b, :, context : context + n] = k  # append the new tokens to the cache
            vc[:b, :, context : context + n] = v
            keys = kc[:b, :, : context + n].repeat_interleave(self.nh // self.nkv, dim=1)
            vals = vc[:b, :, : context + n].repeat_interleave(self.nh // self.nkv, dim=1)
            mask = torch.ones(n, context + n, dtype=torch.bool, device=ids.device).tril(context)
            a = F.scaled_dot_product_attention(q, keys, vals, attn_mask=mask)
            x = x + F.linear(a.transpose(1, 2).reshape(b, n, -1), L["o"])
            gate, up = F.linear(_rms(x, L["n2"]), L["gu"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, L["down"])
        return F.linear(_rms(x, self.norm), self.head)


@torch.no_grad()
def capture_graph(model: GraphLlama, batch: int, new_tokens: int, context: int) -> torch.cuda.CUDAGraph:
    """A CUDA graph of one forward of ``new_tokens`` random tokens over ``context`` (after 3 warm-up
    runs on a side stream, as graph capture requires)."""
    ids = torch.randint(3, model.emb.shape[0], (batch, new_tokens), device=model.emb.device)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            model.forward(ids, context)
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model.forward(ids, context)
    return graph


@torch.no_grad()
def graph_ms(model: GraphLlama, batch: int, new_tokens: int, context: int, reps: int = 50) -> float:
    """Median ms of one graph replay of a forward of ``new_tokens`` over ``context``."""
    graph = capture_graph(model, batch, new_tokens, context)
    for _ in range(5):
        graph.replay()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]
