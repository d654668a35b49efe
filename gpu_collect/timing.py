"""Measured costs: target verification of k+1 tokens and each drafter's cost per token.

Every cell is timed several times, the repeats interleaved across cells (each pass visits the
cells in a new shuffled order, so drift hits them alike) after a warm-up pass; a cell stores
the median, a 95 % bootstrap interval of it, the IQR and the repeat count (schema 1.2).
Repeats continue for the cells whose interval is wider than the target precision until a time
budget is spent (``TimingBudget``).  Wall clock around ``torch.cuda.synchronize()`` on GPU.
The KV cache of each context is built once and deep-copied before each timed call (copy not
timed).
"""

from __future__ import annotations

import copy
import platform
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .drafters import Drafter, EarlyDrafter, QuantDrafter, SkipDrafter
from .head_drafters import HeadDrafter, MedusaDrafter
from .models import Loaded

COLS = ["device", "kind", "drafter", "k", "batch_size", "context_len", "ms"]
NOISE_COLS = ["ms_lo", "ms_hi", "ms_iqr", "reps"]  # schema 1.2 (traces.costcheck)
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
def time_step(model, ctx: torch.Tensor, new: torch.Tensor, warmup: int, reps: int) -> float:
    """Median ms of one forward of ``new`` on top of a cached ``ctx`` (one cell on its own;
    ``measure_costs`` interleaves the repeats of every cell instead)."""
    once = _step_fn(model, _context_cache(model, ctx), new)
    times = [once() for _ in range(warmup + reps)][warmup:]
    return statistics.median(times)


@torch.no_grad()
def _context_cache(model, ctx: torch.Tensor):
    """The KV cache of ``ctx`` (built once per context and batch size)."""
    return model(input_ids=ctx, use_cache=True).past_key_values


def _step_fn(model, cache, new: torch.Tensor):
    """A callable timing one forward of ``new`` on a copy of ``cache`` (ms; the copy is not
    timed)."""
    device = new.device

    @torch.no_grad()
    def once() -> float:
        c = copy.deepcopy(cache)
        _sync(device)
        t0 = time.perf_counter()
        model(input_ids=new, past_key_values=c, use_cache=True)
        _sync(device)
        return (time.perf_counter() - t0) * 1000

    return once


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t0) * 1000


def median_interval(x, n_boot: int = 400, seed: int = 0) -> tuple[float, float, float, float]:
    """``(median, lo, hi, iqr)`` of repeats ``x``: a 95 % bootstrap (percentile) interval of
    the median and the interquartile range; ``lo = hi = median`` for a single repeat."""
    x = np.asarray(x, float)
    med = float(np.median(x))
    if len(x) < 2:
        return med, med, med, 0.0
    idx = np.random.default_rng(seed).integers(0, len(x), (n_boot, len(x)))
    boot = np.median(x[idx], axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    q1, q3 = np.percentile(x, [25, 75])
    return med, float(min(lo, med)), float(max(hi, med)), float(q3 - q1)


@dataclass
class TimingBudget:
    """How long the cost timing may take: ``warmup`` untimed calls per cell, then passes over
    every cell still short of ``precision`` (the 95 % interval of its median within +-that
    share of it), each pass in a new shuffled order, at least ``min_reps`` and at most
    ``max_reps`` timed repeats per cell, no new pass once ``budget_s`` seconds have gone
    (the first ``min_reps`` passes always run; where they would not fit the budget, as timed
    by the warm-up pass, as many as fit, never fewer than 2).  ``reps``: exactly that many repeats per cell
    (no budget, no adaptivity; the earlier behaviour)."""

    budget_s: float = 30.0
    precision: float = 0.03
    min_reps: int = 3
    max_reps: int = 30
    warmup: int = 1
    reps: int | None = None


MIN_SPREAD_REPS = 2  # the fewest timed repeats that give a cell a spread


def _say(msg: str, progress: bool) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def time_cells(cells: list[tuple[tuple, object]], budget: TimingBudget, *, seed: int = 0,
               progress: bool = True, clock=time.perf_counter) -> dict[tuple, list[float]]:
    """Time every cell (``(key, once)``, ``once()`` -> ms) with interleaved repeats under
    ``budget`` (see ``TimingBudget``); the estimate is printed before the timed passes start
    and each pass reports what is left, with an ETA.  Returns each cell's timed repeats."""
    rng = np.random.default_rng(seed)
    t0 = clock()
    first = {}
    for _ in range(budget.warmup):
        for i in rng.permutation(len(cells)):
            first[cells[i][0]] = cells[i][1]()
    warm_s = clock() - t0
    per_pass = sum(first.values()) / 1000 if first else 0.0
    lo_reps = budget.reps if budget.reps is not None else budget.min_reps
    hi_reps = budget.reps if budget.reps is not None else budget.max_reps
    if budget.reps is None:
        if lo_reps * per_pass > budget.budget_s:  # the fewest passes that give a spread: 2
            fit = max(MIN_SPREAD_REPS, min(lo_reps, int(budget.budget_s // per_pass)))
            _say(f"costs: {lo_reps} passes (~{lo_reps * per_pass:.0f} s) do not fit --cost-budget "
                 f"{budget.budget_s:g} s: {fit} instead; a smaller grid (--cost-contexts, --cost-batch-sizes, "
                 "--k-max) or --no-costs is faster", progress)
            lo_reps = fit
        _say(f"costs: {len(cells)} cells, one pass ~{per_pass:.1f} s (warm-up took {warm_s:.1f} s); "
             f"{lo_reps} passes at least (~{lo_reps * per_pass:.0f} s), then more for the cells above "
             f"+-{100 * budget.precision:g}% until {budget.budget_s:g} s (--cost-budget)", progress)
    times: dict[tuple, list[float]] = {k: [] for k, _ in cells}
    start = clock()
    noisy = {k: budget.reps is None for k, _ in cells}  # above the target precision (unknown: yes)
    for p in range(hi_reps):
        todo = [i for i, (k, _) in enumerate(cells) if len(times[k]) < lo_reps or noisy[k]]
        if not todo or (p >= lo_reps and clock() - start > budget.budget_s):
            break
        for i in rng.permutation(todo):
            times[cells[i][0]].append(cells[i][1]())
        spent = clock() - start
        noisy = {k: budget.reps is None and _rel_half(times[k]) > budget.precision for k, _ in cells}
        left = [k for k, _ in cells if noisy[k]]  # each cell's bootstrap once per pass
        eta = max(lo_reps - p - 1, 0) * spent / (p + 1)
        if p + 1 >= lo_reps and left and budget.reps is None:
            eta = max(budget.budget_s - spent, 0.0)
        _say(f"costs: pass {p + 1}: {spent:.0f} s, {len(left)} of {len(cells)} cells above "
             f"+-{100 * budget.precision:g}%, ETA ~{eta:.0f} s", progress and (p + 1 < lo_reps or left))
    return times


def _rel_half(x: list[float]) -> float:
    if len(x) < 2:
        return np.inf
    med, lo, hi, _ = median_interval(x, n_boot=200)
    return (hi - lo) / 2 / med if med > 0 else np.inf


def measure_costs(target: Loaded, drafters: list[Drafter], k_max: int, contexts=(256,),
                  batch_sizes=(1, 4), *, warmup: int | None = None, reps: int | None = None,
                  progress: bool = True, budget: TimingBudget | None = None) -> pd.DataFrame:
    """Verify rows at every ``verify_ks(k_max)`` x batch size x context and one draft row per
    drafter, each the median of interleaved repeats with its interval and IQR (``NOISE_COLS``;
    ``time_cells``).  ``warmup`` / ``reps`` override the budget's (``reps``: fixed count)."""
    device = target.device
    budget = budget or TimingBudget()
    if warmup is not None or reps is not None:
        budget = TimingBudget(budget.budget_s, budget.precision, budget.min_reps, budget.max_reps,
                              budget.warmup if warmup is None else warmup, reps)
    vocab = target.model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    label = device_label(device)
    cells, rows = [], []
    for c in contexts:
        for b in batch_sizes:
            ctx = torch.randint(3, vocab, (b, c), generator=g).to(device)
            ks = verify_ks(k_max)
            new = torch.randint(3, vocab, (b, max(ks) + 1), generator=g).to(device)
            cache = _context_cache(target.model, ctx)  # once per context and batch size
            for k in ks:
                cells.append(((label, "verify", "", k, b, c), _step_fn(target.model, cache, new[:, :k + 1])))
    c0 = contexts[0]
    ctx = torch.randint(3, vocab, (1, c0), generator=g)
    for d in drafters:
        key = (label, "draft", d.name, 1, 1, c0)
        if isinstance(d, HeadDrafter):  # one head step on the target's features of the context
            fn = d.step_fn(d.features(ctx[0].tolist()[:-1]), ctx[0].tolist())
            cells.append((key, _synced(fn, device)))
        elif getattr(d, "model_", None) is None:  # host-side lookups (n-gram, retrieval)
            # a context with repeats so lookups find matches, as they do on real text
            ids = np.tile(ctx[0, :64].numpy(), c0 // 64 + 1)[:c0].tolist()
            cells.append((key, _lookup_fn(d, ids, k_max)))
        else:
            dctx = ctx.to(device)
            cells.append((key, _step_fn(d.model_, _context_cache(d.model_, dctx), dctx[:, :1])))
    _say(f"costs: timing {len(cells)} cells ({len(cells) - len(drafters)} verify: k {verify_ks(k_max)} x batch "
         f"{list(batch_sizes)} x context {list(contexts)}; {len(drafters)} draft)", progress)
    times = time_cells(cells, budget, progress=progress)
    for key, _ in cells:
        med, lo, hi, iqr = median_interval(times[key])
        if key[1] == "draft":
            med, lo, hi = (float(max(v, 1e-4)) for v in (med, lo, hi))
        rows.append((*key, med, lo, hi, iqr, len(times[key])))
    return pd.DataFrame(rows, columns=COLS + NOISE_COLS)


def _synced(fn, device: torch.device):
    def once() -> float:
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        return (time.perf_counter() - t0) * 1000

    return once


def _lookup_fn(d: Drafter, ids: list[int], k_max: int, calls: int = 10):
    """One repeat of a host-side lookup drafter: the mean of ``calls`` drafts, per token."""
    def once() -> float:
        t0 = time.perf_counter()
        for _ in range(calls):
            d.draft(ids, k_max, 0.0, None)
        return (time.perf_counter() - t0) * 1000 / calls / max(k_max, 1)

    return once


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
