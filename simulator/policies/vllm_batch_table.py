"""vLLM's per-batch-size draft length (``num_speculative_tokens_per_batch_size``, "Dynamic SD"),
and the helpers the engines' batch-size rules share (draft-length arms, range tables)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels.core import BATCH, njit
from ..kernels.learners import Kernel, Tables
from .base import Policy, PolicyContext, PolicyError, param, register
from .common import length_arms

RANGES_EXAMPLE = "1-64:3/65-128:1/129-512:0"


# ------------------------------------------------------------------------------ shared helpers
def k_arms(ctx: PolicyContext, drafter: str, kmax: int, name: str) -> tuple[np.ndarray, int]:
    """``(arm_of_k, kmax)``: the arm index of ``DRAFTER@K`` for K = 0..kmax (K = 0: ``plain@0``,
    -1 when the arm set lacks it) and the resolved largest K (``kmax = 0``: the drafter's largest
    K in the arm set).  The drafter is ``drafter`` or, if empty, the first with an ``@K`` arm;
    every K in 1..kmax must be an arm (chains only, not trees)."""
    arm_of, drafter = length_arms(ctx, drafter, name)
    plain = arm_of.pop(0, -1)
    by_k = arm_of
    kmax = kmax or max(by_k)
    missing = [k for k in range(1, kmax + 1) if k not in by_k]
    if missing:
        raise PolicyError(f"policy {name}: needs every {drafter}@K for K in 1..{kmax}; missing K={missing} "
                          f"(arm set: {list(ctx.arm_names)})")
    return np.array([plain] + [by_k[k] for k in range(1, kmax + 1)], dtype=np.int64), kmax


def need_plain(arm_of_k: np.ndarray, name: str, why: str) -> None:
    """Refuse an arm set without ``plain@0`` when the rule can choose K = 0 (``why``)."""
    if arm_of_k[0] < 0:
        raise PolicyError(f"policy {name}: K=0 (plain decoding) can be chosen ({why}); add plain@0 to the arms")


def parse_ranges(text: str, name: str, field: str) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, ks)`` of vLLM's ``[[bs_lo, bs_hi, K], ...]`` written ``LO-HI:K/LO-HI:K``, checked
    as vLLM's ``validate_and_normalize_dynamic_sd_schedule`` checks it (positive bounds, LO <= HI,
    K >= 0, non-overlapping once sorted by LO, the first range starting at 1); one error line."""
    def bad(why: str) -> PolicyError:
        return PolicyError(f"policy {name!r}: {field}={text!r}: {why}; expected ranges LO-HI:K separated by "
                           f"'/', e.g. {RANGES_EXAMPLE!r}")

    rows = []
    for item in text.split("/"):
        lohi, colon, k = item.partition(":")
        lo, dash, hi = lohi.partition("-")
        try:
            if not (colon and dash):
                raise ValueError
            rows.append((int(lo), int(hi), int(k)))
        except ValueError:
            raise bad(f"{item!r} is not LO-HI:K") from None
    for lo, hi, k in rows:
        if lo <= 0 or hi <= 0:
            raise bad(f"batch-size range ({lo}, {hi}) must be positive")
        if lo > hi:
            raise bad(f"range start must be <= end in {lo}-{hi}:{k}")
        if k < 0:
            raise bad(f"K values must be >= 0, got {k}")
    rows.sort(key=lambda r: r[0])
    end = 0
    for lo, hi, _ in rows:
        if lo <= end:
            raise bad("batch-size ranges must not overlap")
        end = hi
    if rows[0][0] != 1:
        raise bad("the first batch-size range must start at 1")
    return np.array([r[0] for r in rows], dtype=np.int64), np.array([r[2] for r in rows], dtype=np.int64)


def range_k(starts: np.ndarray, ks: np.ndarray, cap: int, bs: np.ndarray) -> np.ndarray:
    """vLLM's dense lookup ``build_dynamic_sd_schedule_lookup(...)[bs]`` without its array: the K of
    the last range starting at or below ``bs`` (a gap between ranges and the tail past the last
    range carry the previous range's K forward), capped at ``num_speculative_tokens``."""
    idx = np.searchsorted(starts, bs, side="right") - 1
    return np.minimum(ks[np.maximum(idx, 0)], cap)


@njit(inline="always")
def range_k_one(itab, off, R, cap, bs):
    """``range_k`` for one lane: ``itab[off:off+R]`` the range starts, ``itab[off+R:off+2R]`` their K."""
    idx = 0
    for i in range(R):
        if itab[off + i] <= bs:
            idx = i
    return min(itab[off + R + idx], cap)


# ---------------------------------------------------------------- compiled form (one lane)
# itab = [N, R, arm of K = 0..N, R range starts, R range K]
@njit(inline="always")
def _select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    N = itab[0]
    return itab[2 + range_k_one(itab, 3 + N, itab[1], N, ist[BATCH])]


@njit(inline="always")
def _update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1


@register
@dataclass
class VllmBatchTable(Policy):
    """vLLM's Dynamic SD: the draft length of a step looked up by its batch size in
    ``num_speculative_tokens_per_batch_size``, a list of inclusive ranges ``[bs_lo, bs_hi, K]``.

    Source: vllm-project/vllm, ``vllm/v1/spec_decode/dynamic/utils.py``
    (``validate_and_normalize_dynamic_sd_schedule``, ``build_dynamic_sd_schedule_lookup``, commit
    a6f6bb1d3c1707ede85d03a7c7d47a105a1873fc) and ``vllm/v1/core/sched/scheduler.py``
    (``Scheduler.schedule``: ``num_spec_tokens_to_schedule = self.dynamic_sd_lookup[
    len(num_scheduled_tokens)]``, commit cfee1b19e32a31554b12a70b5b88695e39738926); schema in
    ``docs/features/speculative_decoding/dynamic_speculative_decoding.md`` (commit
    015a47e1282c9ef40d706ee3463cb699e04e93c0).

    Lookup, as the dense table does it: a batch size inside a range takes its K; one in a gap
    between ranges takes the previous range's K; one past the last range takes the last K; every
    K is capped at ``num_speculative_tokens`` (``min(vllm_num_speculative_tokens, K)``).  K = 0
    turns speculation off (the arm ``plain@0``).  The batch size is the number of requests
    scheduled in the step: here the lane's unfinished sequences (1 in single-request decoding,
    where the rule is a fixed arm).  It reads no reward.

    Parameters (vLLM's names)
    ----------
    num_speculative_tokens_per_batch_size : str
        The ranges written ``LO-HI:K`` separated by ``/`` (vLLM: ``[[LO, HI, K], ...]``), checked
        at construction as vLLM checks them.  vLLM has no default (the key is required); the
        default here is the docs' EAGLE-3 example ``[[1,16,5],[17,32,4],[33,64,3],[65,128,1],
        [129,512,0]]``.
    num_speculative_tokens : int
        The cap on every K (0: the drafter's largest K in the arm set).
    drafter : str
        The drafter whose ``@K`` arms are used (default: the first in the arm set).

    Not modelled: the 5-item ``(bs, context)`` form of later versions (a context-length axis,
    vllm commit 14b450ca590cbff96e7004bdb147a5d3acf5a4f6), DSpark adaptive verification (per-slot
    confidences a trace does not hold), and data parallelism (where vLLM switches the table off).
    """

    name: ClassVar[str] = "vllm-batch-table"
    kernel: ClassVar[Kernel] = Kernel("vllm-batch-table", _select, _update)
    rewards: ClassVar[tuple[str, ...]] = ()  # reads no reward
    reads_batch: ClassVar[bool] = True
    tuning: ClassVar[tuple[str, tuple]] = ("num_speculative_tokens_per_batch_size", (
        "1-512:4", "1-4:4/5-512:2", "1-4:4/5-16:3/17-32:2/33-512:1", "1-8:3/9-512:1", "1-2:4/3-8:2/9-512:0"))
    num_speculative_tokens_per_batch_size: str = "1-16:5/17-32:4/33-64:3/65-128:1/129-512:0"
    num_speculative_tokens: int = param(0, ge=0, source="vLLM's num_speculative_tokens; 0: the arm set's largest K")
    drafter: str = ""

    def __post_init__(self) -> None:
        self.starts_, self.ks_ = parse_ranges(self.num_speculative_tokens_per_batch_size, self.name,
                                              "num_speculative_tokens_per_batch_size")

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        self.arm_of_k_, self.n_ = k_arms(ctx, self.drafter, self.num_speculative_tokens, self.name)
        if np.minimum(self.ks_, self.n_).min() == 0:
            need_plain(self.arm_of_k_, self.name, "a range with K=0")
        self.batch_ = np.ones(n_lanes, dtype=np.int64)

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        R = len(self.starts_)
        return Tables(itab=np.concatenate([[self.n_, R], self.arm_of_k_, self.starts_, self.ks_]).astype(np.int64))

    def select(self, u: np.ndarray) -> np.ndarray:
        return self.arm_of_k_[range_k(self.starts_, self.ks_, self.n_, np.asarray(self.batch_))]
