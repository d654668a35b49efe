"""TensorRT-LLM's draft length by batch size (``draft_len_schedule``) and its speculation cutoff
(``max_concurrency``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels.core import BATCH, njit
from ..kernels.learners import Kernel, Tables
from .base import Policy, PolicyContext, PolicyError, param, register
from .vllm_batch_table import k_arms, need_plain

SCHEDULE_EXAMPLE = "4:4/8:2/32:1"


def parse_schedule(text: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(keys, draft_lens)`` of ``draft_len_schedule`` written ``BS:LEN/BS:LEN`` (TensorRT-LLM:
    ``{BS: LEN, ...}``), sorted by key, checked as ``DecodingBaseConfig.
    validate_draft_len_schedule_and_sort`` checks it (keys >= 1, lengths >= 0); one error line."""
    def bad(why: str) -> PolicyError:
        return PolicyError(f"policy {name!r}: draft_len_schedule={text!r}: {why}; expected BATCH_SIZE:DRAFT_LEN "
                           f"pairs separated by '/', e.g. {SCHEDULE_EXAMPLE!r}")

    pairs: dict[int, int] = {}
    for item in text.split("/"):
        bs, colon, dl = item.partition(":")
        try:
            if not colon:
                raise ValueError
            b, d = int(bs), int(dl)
        except ValueError:
            raise bad(f"{item!r} is not BATCH_SIZE:DRAFT_LEN") from None
        if b < 1:
            raise bad(f"batch size threshold must be >= 1, got {b}")
        if d < 0:
            raise bad(f"draft length must be >= 0, got {d}")
        if b in pairs:
            raise bad(f"batch size {b} given twice")
        pairs[b] = d
    keys = np.array(sorted(pairs), dtype=np.int64)
    return keys, np.array([pairs[k] for k in keys], dtype=np.int64)


def schedule_k(keys: np.ndarray, lens: np.ndarray, floor: int, bs: np.ndarray) -> np.ndarray:
    """``get_draft_len_for_batch_size``: the draft length of the first key >= ``bs``
    (``bisect_left``), floored at ``min_runtime_draft_len``; past the largest key, the floor."""
    idx = np.searchsorted(keys, bs, side="left")
    inside = idx < len(keys)
    return np.where(inside, np.maximum(lens[np.minimum(idx, len(keys) - 1)], floor), floor)


# ---------------------------------------------------------------- compiled form (one lane)
# itab = [R, floor, arm of K = 0..max_draft_len, R keys, R draft lengths]; R = 0: no schedule
@njit(inline="always")
def _select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    R, floor = itab[0], itab[1]
    bs = ist[BATCH]
    k = int(prm[2])  # max_draft_len: no schedule
    if R > 0:
        n_k = int(prm[2]) + 1
        k = floor
        for i in range(R):  # the first key >= bs (keys ascending)
            if itab[2 + n_k + i] >= bs:
                k = max(itab[2 + n_k + R + i], floor)
                break
    return itab[2 + k]


@njit(inline="always")
def _update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1


@register
@dataclass
class TrtllmSchedule(Policy):
    """TensorRT-LLM's dynamic draft length: ``draft_len_schedule`` maps batch-size keys to draft
    lengths, each key's length used for batch sizes up to that key; above the largest key
    speculation stops (K = ``min_runtime_draft_len``, 0 by default).  ``max_concurrency`` is the
    plain cutoff: speculation (at ``max_draft_len``) only while the batch size is <=
    ``max_concurrency``; TensorRT-LLM translates it into the schedule ``{max_concurrency:
    max_draft_len}``; the two are mutually exclusive.  Neither set: always ``max_draft_len``.

    Source: NVIDIA/TensorRT-LLM, ``tensorrt_llm/_torch/speculative/utils.py``
    (``get_draft_len_for_batch_size``: ``bisect_left`` over the sorted keys, floored at
    ``min_draft_len``; commit 011d0933dcb5e592f5fa2626beaf42a96324c578), ``tensorrt_llm/llmapi/
    llm_args.py`` (``DecodingBaseConfig``: ``validate_draft_len_schedule_and_sort``, the
    ``max_concurrency`` translation ``validate_max_concurrency_and_draft_len_schedule_mutually_
    exclusive``; a stored version found by content, its commit not pinned), and the executor's
    caller in ``tensorrt_llm/_torch/pyexecutor/py_executor.py`` (``batch_size_input =
    len(self.active_requests)``; draft length 0 sets ``use_spec_decode = False``).  Example
    ``{4: 4, 8: 2, 32: 1}``: batch sizes 1-4 draft 4, 5-8 draft 2, 9-32 draft 1, 33+ draft 0.
    The batch size is the lane's unfinished sequences (1 in single-request decoding).  It reads
    no reward.

    Parameters (TensorRT-LLM's names)
    ----------
    draft_len_schedule : str
        ``BS:LEN`` pairs separated by ``/`` (TensorRT-LLM: ``{BS: LEN}``); "" = None.  Checked
        as TensorRT-LLM checks it: keys >= 1, lengths >= 0 and <= ``max_draft_len``, the smallest
        key's length equal to ``max_draft_len``.
    max_concurrency : int
        0 = None; else speculation only at batch sizes <= it.  The tuned knob.
    max_draft_len : int
        0: the drafter's largest K in the arm set.
    min_runtime_draft_len : int
        The floor of every scheduled length, the implicit tier included (0 for EAGLE-3 /
        MTP-Eagle one-model, which keep the drafter warm; 1 for the other one-engine modes).
    drafter : str
        The drafter whose ``@K`` arms are used (default: the first in the arm set).

    Not modelled: ``max_concurrency``'s older path caps the batch size at ``max_batch_size`` and
    ``max_num_tokens // (1 + max_draft_len)`` before comparing (no such caps in a trace); the
    permanent cutoff by a rolling acceptance length over completed requests
    (``acceptance_window``, ``acceptance_length_threshold``); CUDA-graph padding of the batch;
    vanilla MTP, where ``utils.py`` (011d0933) ignores both knobs and stays at ``max_draft_len``.
    """

    name: ClassVar[str] = "trtllm-schedule"
    kernel: ClassVar[Kernel] = Kernel("trtllm-schedule", _select, _update)
    rewards: ClassVar[tuple[str, ...]] = ()  # reads no reward
    reads_batch: ClassVar[bool] = True
    tuning: ClassVar[tuple[str, tuple]] = ("max_concurrency", (1, 2, 4, 8, 16, 32))
    draft_len_schedule: str = ""
    max_concurrency: int = param(0, ge=0, source="TensorRT-LLM's PositiveInt; 0 stands for None")
    max_draft_len: int = param(0, ge=0, source="0: the arm set's largest K")
    min_runtime_draft_len: int = param(0, ge=0, source="a draft length")
    drafter: str = ""

    def __post_init__(self) -> None:
        if self.draft_len_schedule and self.max_concurrency:
            raise PolicyError(f"policy {self.name!r}: max_concurrency and draft_len_schedule are mutually exclusive; "
                              f"give one")
        self.keys_, self.lens_ = (parse_schedule(self.draft_len_schedule, self.name) if self.draft_len_schedule
                                  else (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        if self.max_draft_len:
            self._check_lengths(self.max_draft_len)

    def _check_lengths(self, max_draft_len: int) -> None:
        if not len(self.keys_):
            return
        head = f"policy {self.name!r}: draft_len_schedule={self.draft_len_schedule!r}"
        if self.lens_[0] != max_draft_len:
            raise PolicyError(f"{head}: the smallest key's length must equal max_draft_len={max_draft_len}, got "
                              f"{self.lens_[0]} (set max_draft_len or change the schedule)")
        if self.lens_.max() > max_draft_len:
            raise PolicyError(f"{head}: every draft length must be <= max_draft_len={max_draft_len}")

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        self.arm_of_k_, self.kmax_ = k_arms(ctx, self.drafter, self.max_draft_len, self.name)
        if self.max_concurrency:  # TensorRT-LLM's translation into a one-key schedule
            self.keys_, self.lens_ = np.array([self.max_concurrency]), np.array([self.kmax_])
        self._check_lengths(self.kmax_)
        if len(self.keys_) and self.min_runtime_draft_len > self.kmax_:
            raise PolicyError(f"policy {self.name!r}: min_runtime_draft_len={self.min_runtime_draft_len}: expected "
                              f"<= max_draft_len={self.kmax_}")
        if len(self.keys_) and self.min_runtime_draft_len == 0:
            need_plain(self.arm_of_k_, self.name, "batch sizes above the largest key, or a length 0")
        self.batch_ = np.ones(n_lanes, dtype=np.int64)

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        R = len(self.keys_)
        itab = np.concatenate([[R, self.min_runtime_draft_len], self.arm_of_k_, self.keys_, self.lens_])
        return Tables(prm=(float(self.kmax_),), itab=itab.astype(np.int64))

    def select(self, u: np.ndarray) -> np.ndarray:
        bs = np.asarray(self.batch_)
        if not len(self.keys_):
            return np.full(len(bs), self.arm_of_k_[self.kmax_], dtype=np.int64)
        return self.arm_of_k_[schedule_k(self.keys_, self.lens_, self.min_runtime_draft_len, bs)]
