"""Measured costs: target verification of k+1 tokens and each drafter's cost per token.

Medians after warm-up, wall clock around ``torch.cuda.synchronize()`` on GPU.  The KV
cache of the context is built once and deep-copied before each timed call (copy not timed).
"""

from __future__ import annotations

import copy
import platform
import statistics
import time

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .drafters import Drafter, EarlyDrafter, QuantDrafter, SkipDrafter
from .head_drafters import HeadDrafter, MedusaDrafter
from .models import Loaded

COLS = ["device", "kind", "drafter", "k", "batch_size", "context_len", "ms"]
MAX_VERIFIED = 64  # tree arms verify up to this many tokens in one round (Medusa/EAGLE: 63 nodes + root)


def verify_ks(k_max: int, max_verified: int = MAX_VERIFIED) -> list[int]:
    """Draft lengths whose verify time is measured: every ``k <= k_max`` (chain arms), then
    ``k + 1`` verified tokens at 12, 16, 24, 32, 48, 64 (tree arms; the cost model is linear
    between measured points, ``simulator.costs``)."""
    tree = [v - 1 for v in (12, 16, 24, 32, 48, max_verified) if k_max < v - 1 <= max_verified - 1]
    return list(range(k_max + 1)) + sorted(set(tree))


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.machine()}x{torch.get_num_threads()}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def _time_step(model, ctx: torch.Tensor, new: torch.Tensor, warmup: int, reps: int) -> float:
    """Median ms of one forward of ``new`` on top of a cached ``ctx``."""
    device = ctx.device
    cache = model(input_ids=ctx, use_cache=True).past_key_values
    times = []
    for i in range(warmup + reps):
        c = copy.deepcopy(cache)
        _sync(device)
        t0 = time.perf_counter()
        model(input_ids=new, past_key_values=c, use_cache=True)
        _sync(device)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def measure_costs(target: Loaded, drafters: list[Drafter], k_max: int, contexts=(256,),
                  batch_sizes=(1, 4), *, warmup: int | None = None, reps: int | None = None,
                  progress: bool = True) -> pd.DataFrame:
    device = target.device
    gpu = device.type == "cuda"
    warmup = warmup if warmup is not None else (3 if gpu else 2)
    reps = reps if reps is not None else (10 if gpu else 5)
    vocab = target.model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    label = device_label(device)
    rows = []
    jobs = [(c, b, k) for c in contexts for b in batch_sizes for k in verify_ks(k_max)]
    for c, b, k in tqdm(jobs, desc="costs: verify", disable=not progress):
        ctx = torch.randint(3, vocab, (b, c), generator=g).to(device)
        new = torch.randint(3, vocab, (b, k + 1), generator=g).to(device)
        rows.append((label, "verify", "", k, b, c, _time_step(target.model, ctx, new, warmup, reps)))
    c0 = contexts[0]
    ctx = torch.randint(3, vocab, (1, c0), generator=g)
    for d in tqdm(drafters, desc="costs: draft", disable=not progress):
        if isinstance(d, HeadDrafter):  # one head step on the target's features of the context
            ms = d.step_ms(ctx[0].tolist(), warmup, reps)
        elif getattr(d, "model_", None) is None:  # host-side lookups (n-gram, retrieval)
            # a context with repeats so lookups find matches, as they do on real text
            ids = np.tile(ctx[0, :64].numpy(), c0 // 64 + 1)[:c0]
            ts = []
            for _ in range(50):
                t0 = time.perf_counter()
                d.draft(ids.tolist(), k_max, 0.0, None)
                ts.append((time.perf_counter() - t0) * 1000)
            ms = statistics.median(ts) / max(k_max, 1)
        else:
            model = d.model_
            ms = _time_step(model, ctx.to(device), ctx[:, :1].to(device), warmup, reps)
        rows.append((label, "draft", d.name, 1, 1, c0, float(max(ms, 1e-4))))
    return pd.DataFrame(rows, columns=COLS)


def nominal_fraction(d: Drafter, target: Loaded) -> float:
    """Draft cost per token as a fraction of a target decode step, memory-bound model."""
    n = target.model.config.num_hidden_layers
    if isinstance(d, HeadDrafter):  # its weights, plus the target's lm_head where it reuses it
        own = sum(p.numel() for p in d.head_.parameters())
        lm_head = target.model.get_output_embeddings().weight.numel()
        shared = 0 if isinstance(d, MedusaDrafter) or d.head_.fused else lm_head
        return (own + shared) / target.info["num_parameters"]
    if getattr(d, "model_", None) is None:  # host-side lookups (n-gram, retrieval)
        return 1e-3
    if isinstance(d, EarlyDrafter):
        return d.exit_layer() / n
    if isinstance(d, SkipDrafter):
        return (n - len(d.layers())) / n
    if isinstance(d, QuantDrafter):
        return 0.5 if d.arg == "int8" else int(d.arg[3:]) / 16
    params = sum(p.numel() for p in d.model_.parameters())
    return params / target.info["num_parameters"]


def nominal_costs(target: Loaded, drafters: list[Drafter], k_max: int,
                  decode_ms: float = 30.0, verify_slope: float = 0.02) -> pd.DataFrame:
    """Device ``nominal``: verification of k+1 tokens costs ``decode_ms (1 + verify_slope k)``
    (at every ``verify_ks(k_max)``, so up to 64 verified tokens for trees), drafting one token
    ``nominal_fraction * decode_ms`` (weights read per token)."""
    rows = [("nominal", "verify", "", k, 1, 0, decode_ms * (1 + verify_slope * k)) for k in verify_ks(k_max)]
    rows += [("nominal", "draft", d.name, 1, 1, 0, decode_ms * nominal_fraction(d, target))
             for d in drafters]
    return pd.DataFrame(rows, columns=COLS)
