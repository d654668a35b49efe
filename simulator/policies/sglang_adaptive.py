"""SGLang's ``--speculative-adaptive``: per-batch-size tiers of ``speculative_num_steps`` driven by
an EMA of the accepted draft length, with warm-up, an update interval and hysteresis."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels.core import BATCH, njit
from ..kernels.learners import Kernel, Tables
from .base import Policy, PolicyContext, PolicyError, param, register
from .common import length_arms

# DEFAULT_ADAPTIVE_CONFIG of adaptive_spec_params.py, written BS:STEP+STEP/...
CANDIDATE_STEPS = "1:1+3+5+7/8:0+1+3/32:0+1/64:0"
DEFAULT_CONFIG = {"down_hysteresis": {1: -0.25, 8: 0.0, 32: 0.0, 64: 0.0},
                  "up_hysteresis": dict.fromkeys((1, 8, 32, 64), 0.0),
                  "ceiling_coeff": dict.fromkeys((1, 8, 32, 64), 0.0)}
# AdaptiveStepSlot.__init__'s cfg.get defaults for a slot that does not set the key
SLOT_DEFAULTS = {"down_hysteresis": -0.25, "up_hysteresis": 0.0, "ceiling_coeff": 0.0}


def parse_candidate_steps(text: str, name: str) -> tuple[list[int], list[list[int]]]:
    """``(batch-size keys, candidate steps per key)`` of ``BS:S+S+.../BS:...`` (SGLang's JSON
    ``{"BS": {"candidate_steps": [S, ...]}}``), keys sorted; each list sorted and deduplicated as
    ``AdaptiveStepSlot`` does; checked as ``_load_adaptive_config`` checks it (steps >= 0, a
    non-empty list, at least one key)."""
    def bad(why: str) -> PolicyError:
        return PolicyError(f"policy {name!r}: candidate_steps={text!r}: {why}; expected BATCH_SIZE:STEP+STEP+... "
                           f"slots separated by '/', e.g. {CANDIDATE_STEPS!r}")

    slots: dict[int, list[int]] = {}
    for item in text.split("/"):
        bs, colon, steps = item.partition(":")
        try:
            if not colon or not steps:
                raise ValueError
            key, vals = int(bs), [int(s) for s in steps.split("+")]
        except ValueError:
            raise bad(f"{item!r} is not BATCH_SIZE:STEP+STEP+...") from None
        if key < 0:
            raise bad(f"batch-size key must be >= 0, got {key}")
        if min(vals) < 0:
            raise bad(f"steps must be non-negative ints, got {vals}")
        if key in slots:
            raise bad(f"batch-size key {key} given twice")
        slots[key] = sorted(set(vals))
    keys = sorted(slots)
    return keys, [slots[k] for k in keys]


def parse_per_slot(text: str, keys: list[int], field: str, name: str, default_config: bool) -> list[float]:
    """One float per slot from ``V`` (every slot) or ``BS:V/BS:V`` (the slots named; the others
    keep ``AdaptiveStepSlot``'s default for ``field``); ``""``: ``DEFAULT_ADAPTIVE_CONFIG``'s
    values when ``default_config``, else ``AdaptiveStepSlot``'s default."""
    def bad(why: str) -> PolicyError:
        return PolicyError(f"policy {name!r}: {field}={text!r}: {why}; expected one number for every slot or "
                           f"BATCH_SIZE:NUMBER pairs separated by '/' over the keys of candidate_steps {keys}")

    if not text:  # unset: DEFAULT_ADAPTIVE_CONFIG's value, or the slot default in a config of one's own
        return [DEFAULT_CONFIG[field][k] if default_config else SLOT_DEFAULTS[field] for k in keys]
    if ":" not in text:
        try:
            v = float(text)
        except ValueError:
            raise bad("not a number") from None
        if not math.isfinite(v):
            raise bad("not finite")
        return [v] * len(keys)
    out = dict.fromkeys(keys, SLOT_DEFAULTS[field])
    for item in text.split("/"):
        bs, _, v = item.partition(":")
        try:
            key, val = int(bs), float(v)
        except ValueError:
            raise bad(f"{item!r} is not BATCH_SIZE:NUMBER") from None
        if key not in out:
            raise bad(f"batch size {key} is not a key of candidate_steps")
        if not math.isfinite(val):
            raise bad(f"{item!r} is not finite")
        out[key] = val
    return [out[k] for k in keys]


# ---------------------------------------------------------------- compiled form (one lane)
# prm[2:5] = ema_alpha, update_interval, warmup_batches
# itab = [S, C, S keys, S counts, S*C steps, S*C arms, S initial indices]; ftab = [S down, S up, S ceiling]
# st rows: 0 tier index of each slot, 1 ema_accept_len, 2 _batch_count; ist[1] = this round's slot
@njit(inline="always")
def _init(A, st, ist, prm, itab):
    S, C = itab[0], itab[1]
    for s in range(S):
        i0 = itab[2 + 2 * S + 2 * S * C + s]
        st[0, s] = i0
        st[1, s] = float(itab[2 + 2 * S + s * C + i0] - 1)
        st[2, s] = 0.0


@njit(inline="always")
def _route(itab, bs):
    """``AdaptiveStepRouter.batch_size_key_for_batch`` without CUDA-graph padding: the largest
    key <= bs (``bisect_right - 1``), the first slot when bs is below every key."""
    S = itab[0]
    s = 0
    for j in range(S):
        if itab[2 + j] <= bs:
            s = j
    return s


@njit(inline="always")
def _select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    S, C = itab[0], itab[1]
    s = _route(itab, ist[BATCH])
    ist[1] = s
    return itab[2 + 2 * S + S * C + s * C + int(st[0, s])]


@njit(inline="always")
def _update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1
    S, C = itab[0], itab[1]
    s = ist[1]
    base = 2 + 2 * S + s * C  # this slot's steps
    n = itab[2 + S + s]
    idx = int(st[0, s])
    old = itab[base + idx]
    alpha = prm[2]
    if old > 0:
        st[1, s] = (1.0 - alpha) * st[1, s] + alpha * (r - 1.0)
    st[2, s] += 1.0
    cnt, warm, every = st[2, s], prm[4], prm[3]
    if cnt <= warm or (cnt - warm) % every != 0.0:
        return
    ema = st[1, s]
    if old == 0:  # probe the smallest positive step after a zero-step interval
        idx = min(idx + 1, n - 1)
        target = itab[base + idx]
        if target > 0 and ema < 0.0:
            st[1, s] = float(target - 1)
        st[0, s] = idx
        return
    old_idx = idx
    while idx > 0:
        prev = itab[base + idx - 1]
        drop = 0.5 if prev == 0 else prev - 0.5
        drop += ftab[s]
        if ema <= drop:
            idx -= 1
        else:
            break
    if idx >= old_idx:
        while idx < n - 1:
            rise = itab[base + idx] - 0.5 + ftab[S + s]
            if ema > rise:
                idx += 1
            else:
                break
    cc = ftab[2 * S + s]
    if cc > 0.0:
        ceiling = max(1.0, float(math.ceil(ema * cc)))
        target = itab[base + idx]
        if target > ceiling and target <= old:
            while idx > 0 and itab[base + idx] > ceiling:
                idx -= 1
    st[0, s] = idx


@register
@dataclass
class SGLangAdaptive(Policy):
    """SGLang ``--speculative-adaptive`` (EAGLE/EAGLE3, topk 1), as the code implements it:
    sgl-project/sglang ``python/sglang/srt/speculative/adaptive_spec_params.py`` (stored version
    015c872628e328b530880bcf95ae91222604b225: ``AdaptiveStepSlot``, ``AdaptiveSpeculativeParams``,
    ``DEFAULT_ADAPTIVE_CONFIG``), ``adaptive_step_router.py`` (a12239f6ac74d804d169ee5d3cfed3c49fa7162c:
    ``AdaptiveStepRouter``), ``adaptive_runtime_state.py`` (02a3cd954bab7765c272d17886e8af5ca7add79d:
    ``AdaptiveController``) and ``arg_groups/speculative_hook.py``
    (004c82e07d876f6e4a0ad6e15325706b0f478f1a: ``_init_adaptive_speculative_params``).

    * **Tiers by batch size.**  Each key of the config is the lower bound of a batch-size range
      with its own slot: candidate steps, hysteresis, ceiling, EMA and counter.  A round of
      ``n`` unfinished sequences uses the slot of the largest key ``<= n`` (the first slot below
      every key).  Steps ``K`` is the arm ``DRAFTER@K`` (``num_draft_tokens = K + 1``), ``K = 0``
      is ``plain@0`` (no drafting).
    * **Start.**  ``speculative_num_steps`` (default: the middle ``candidates[len // 2]`` of the
      union of all slots' steps); a slot whose candidates lack it starts at its own middle
      candidate (both from the configured steps; a start without an arm in the arm set becomes
      the middle of the slot's playable tiers); ``ema_accept_len = steps - 1``.
    * **After each verify** (``on_verify_complete``): in the round's slot, if its steps are > 0,
      ``ema = (1 - ema_alpha) ema + ema_alpha * batch_avg`` with ``batch_avg`` the batch's mean
      accepted drafts (here ``reward - 1``: the reward is the round's tokens per sequence);
      the counter always advances.  Nothing moves during the first ``warmup_batches`` rounds of
      the slot, then only every ``update_interval``-th round.
    * **Recompute.**  From steps 0 it probes the next tier (setting a negative EMA to that
      tier's ``steps - 1``).  Otherwise it steps down while ``ema <= prev - 0.5 +
      down_hysteresis`` (``0.5 + down_hysteresis`` when ``prev = 0``); if it did not step down,
      it steps up while ``ema > cur - 0.5 + up_hysteresis``; with ``ceiling_coeff > 0`` a
      target not above the old steps is capped at ``max(1, ceil(ema * ceiling_coeff))``.
    * **State** is the server's: it persists across requests (carried across prompts).

    Parameters
    ----------
    candidate_steps : str
        The per-batch-size slots, ``BS:S+S+.../BS:...`` (SGLang's JSON keys ``"BS"`` with
        ``candidate_steps``); default ``DEFAULT_ADAPTIVE_CONFIG``. Tiers whose arm is not in the
        arm set are dropped (the simulation cannot play them); a slot left empty is an error.
    down_hysteresis, up_hysteresis, ceiling_coeff : str
        One number for every slot or ``BS:V/...`` per slot (slots not named keep the code's
        per-slot default: -0.25, 0, 0).  Unset (``""``): the default config's values
        (down -0.25 at key 1, 0 elsewhere; up 0; ceiling 0) with the default ``candidate_steps``,
        the code's per-slot defaults with one's own, as with a config file of one's own.
    ema_alpha, update_interval, warmup_batches : float, int, int
        The config's global knobs (defaults 0.2, 5, 10).
    speculative_num_steps : int
        ``--speculative-num-steps``; -1 = unset (the middle of the union of candidates).
    drafter : str
        The drafter whose ``@K`` arms are the tiers (default: the first in the arm set).

    Not modelled: CUDA-graph padding of the batch size before routing (graphs disabled), the
    ``throughput_aware`` strategy, and what disables the feature (non-EAGLE, topk > 1, DP
    attention).  Reads only accepted counts and the batch size.
    """

    name: ClassVar[str] = "sglang-adaptive"
    kernel: ClassVar[Kernel] = Kernel("sglang-adaptive", _select, _update, _init)
    rewards: ClassVar[tuple[str, ...]] = ("tokens",)  # reads accepted counts
    reads_batch: ClassVar[bool] = True
    tuning: ClassVar[tuple[str, tuple]] = ("ema_alpha", (0.05, 0.1, 0.2, 0.4, 0.8))
    drafter: str = ""
    candidate_steps: str = CANDIDATE_STEPS
    down_hysteresis: str = ""
    up_hysteresis: str = ""
    ceiling_coeff: str = ""
    ema_alpha: float = param(0.2, gt=0, le=1, source="an EMA weight in (0, 1]")
    update_interval: int = param(5, ge=1, source="rounds between recomputations")
    warmup_batches: int = param(10, ge=0, source="rounds before the first recomputation")
    speculative_num_steps: int = param(-1, ge=-1, source="-1 = unset, else one of the candidate steps")

    def __post_init__(self) -> None:
        self.keys_, steps = parse_candidate_steps(self.candidate_steps, self.name)
        self.config_steps_ = steps
        default = (self.keys_, steps) == parse_candidate_steps(CANDIDATE_STEPS, self.name)
        self.down_ = parse_per_slot(self.down_hysteresis, self.keys_, "down_hysteresis", self.name, default)
        self.up_ = parse_per_slot(self.up_hysteresis, self.keys_, "up_hysteresis", self.name, default)
        self.ceil_ = parse_per_slot(self.ceiling_coeff, self.keys_, "ceiling_coeff", self.name, default)
        if min(self.ceil_) < 0:
            raise PolicyError(f"policy {self.name!r}: ceiling_coeff={self.ceiling_coeff!r}: expected numbers >= 0")

    def _tiers(self, ctx: PolicyContext) -> tuple[list[list[int]], dict[int, int]]:
        """The slots' steps that have an arm, and the arm of each step."""
        arm_of, drafter = length_arms(ctx, self.drafter, self.name)
        tiers = [[s for s in steps if s in arm_of] for steps in self.config_steps_]
        for key, kept, steps in zip(self.keys_, tiers, self.config_steps_, strict=True):
            if not kept:
                raise PolicyError(f"policy {self.name}: slot {key}: none of the candidate steps {steps} is an arm "
                                  f"({drafter}@K, or plain@0 for 0) of the arm set {list(ctx.arm_names)}")
        return tiers, arm_of

    def reset(self, n_lanes: int, ctx: PolicyContext) -> None:
        super().reset(n_lanes, ctx)
        tiers, arm_of = self._tiers(ctx)
        union = sorted({s for t in self.config_steps_ for s in t})  # the engine's, before dropping tiers
        start = union[len(union) // 2] if self.speculative_num_steps < 0 else self.speculative_num_steps
        if start not in union:
            raise PolicyError(f"policy {self.name}: speculative_num_steps={start} is not in the candidate steps "
                              f"{union}; pass one of those values")
        S, C = len(tiers), max(len(t) for t in tiers)
        self.n_cand_ = np.array([len(t) for t in tiers], dtype=np.int64)
        self.steps_tab_ = np.array([t + [t[-1]] * (C - len(t)) for t in tiers], dtype=np.int64)  # (S, C)
        self.arm_tab_ = np.vectorize(arm_of.get, otypes=[np.int64])(self.steps_tab_)
        # each slot's start as the engine picks it; the middle of its playable tiers if that has no arm
        first = [start if start in c else c[len(c) // 2] for c in self.config_steps_]
        self.init_idx_ = np.array([t.index(f) if f in t else len(t) // 2 for f, t in zip(first, tiers, strict=True)],
                                  dtype=np.int64)
        self.keys_arr_ = np.array(self.keys_, dtype=np.int64)
        self.down_arr_, self.up_arr_ = np.array(self.down_), np.array(self.up_)
        self.ceil_arr_ = np.array(self.ceil_)
        slots = np.arange(S)
        self.idx_ = np.tile(self.init_idx_, (n_lanes, 1))
        self.ema_ = np.tile(self.steps_tab_[slots, self.init_idx_] - 1.0, (n_lanes, 1))
        self.count_ = np.zeros((n_lanes, S), dtype=np.int64)
        self.batch_ = np.ones(n_lanes, dtype=np.int64)
        self.slot_ = np.zeros(n_lanes, dtype=np.int64)

    def kernel_tables(self, ctx: PolicyContext) -> Tables:
        S, C = self.steps_tab_.shape
        itab = np.concatenate([[S, C], self.keys_arr_, self.n_cand_, self.steps_tab_.ravel(), self.arm_tab_.ravel(),
                               self.init_idx_]).astype(np.int64)
        ftab = np.concatenate([self.down_arr_, self.up_arr_, self.ceil_arr_])
        return Tables(prm=(self.ema_alpha, float(self.update_interval), float(self.warmup_batches)),
                      itab=itab, ftab=ftab, shape=(3, S))

    def steps(self) -> np.ndarray:
        """Current steps of every lane's slots, shape (n_lanes, S)."""
        return self.steps_tab_[np.arange(self.steps_tab_.shape[0])[None, :], self.idx_]

    def select(self, u: np.ndarray) -> np.ndarray:
        s = np.maximum(np.searchsorted(self.keys_arr_, self.batch_, side="right") - 1, 0)
        self.slot_ = s
        return self.arm_tab_[s, self.idx_[np.arange(len(s)), s]]

    def update(self, arms: np.ndarray, rewards: np.ndarray, active: np.ndarray) -> None:
        lanes = np.flatnonzero(active)
        s = self.slot_[lanes]
        idx = self.idx_[lanes, s]
        tab = self.steps_tab_[s]  # (m, C)
        rows = np.arange(len(lanes))
        old = tab[rows, idx]
        ema = self.ema_[lanes, s]
        a = self.ema_alpha
        ema = np.where(old > 0, (1.0 - a) * ema + a * (rewards[lanes] - 1.0), ema)
        cnt = self.count_[lanes, s] + 1
        w = self.warmup_batches
        due = (cnt > w) & ((cnt - w) % self.update_interval == 0)
        n = self.n_cand_[s]
        # from steps 0: probe the next tier
        zero = due & (old == 0)
        up1 = np.minimum(idx + 1, n - 1)
        ema = np.where(zero & (tab[rows, up1] > 0) & (ema < 0), tab[rows, up1] - 1.0, ema)
        new = np.where(zero, up1, idx)
        # otherwise: down while ema <= prev - 0.5 + down (0.5 + down when prev = 0), else up
        going = due & ~zero
        for _ in range(tab.shape[1]):
            prev = tab[rows, np.maximum(new - 1, 0)]
            drop = np.where(prev == 0, 0.5, prev - 0.5) + self.down_arr_[s]
            step = going & (new > 0) & (ema <= drop)
            new, going = new - step, step
        going = due & ~zero & (new >= idx)
        for _ in range(tab.shape[1]):
            rise = tab[rows, new] - 0.5 + self.up_arr_[s]
            step = going & (new < n - 1) & (ema > rise)
            new, going = new + step, step
        cc = self.ceil_arr_[s]
        ceiling = np.maximum(1.0, np.ceil(ema * cc))
        target = tab[rows, new]
        going = due & ~zero & (cc > 0) & (target > ceiling) & (target <= old)
        for _ in range(tab.shape[1]):
            step = going & (new > 0) & (tab[rows, new] > ceiling)
            new, going = new - step, step
        self.idx_[lanes, s] = new
        self.ema_[lanes, s] = ema
        self.count_[lanes, s] = cnt
