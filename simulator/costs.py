"""One cost model for every experiment: round time of arm ``(d, k)`` at batch size ``n`` and
context length ``c``, from a trace's cost table (``docs/trace_format.md``, "Cost model").

``round_ms(d, k, n, c) = k * draft_ms[d](n) + verify_ms(k, n, c)`` (one draft step instead of
``k`` for a drafter whose manifest entry says ``draft_passes: "one"``: Medusa heads)

* ``verify_ms``: for each measured batch size, linear in ``k`` between measured ``k`` and
  linear in ``c`` between measured contexts; then linear in ``n`` between measured batch sizes.
  Outside the table: ``k`` and ``n`` above the largest measured value are extrapolated linearly
  from the last two points (verify time is affine in verified tokens once compute-bound);
  ``c`` outside the measured contexts and ``n`` below the smallest are held at the nearest
  measured value.  Every use outside the table is reported in ``CostModel.notes``.
* ``draft_ms[d](n)``: the drafter's per-token step (median of its rows at the smallest
  measured batch size), scaled with ``n`` like the target's ``k = 0`` verify time.
* ``feedback_ms(d, n)``: what a full-information learner pays for scoring drafter ``d`` on the
  tokens a round verified: one parallel pass of ``d`` over them, costed as one draft step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from traces import PLAIN, Arm


class CostError(ValueError):
    """The trace has no usable cost table for what was asked."""


def _lerp(x: np.ndarray, xs: np.ndarray, ys: np.ndarray, extrapolate_hi: bool) -> np.ndarray:
    """Piecewise-linear in ``x``; held below ``xs[0]``; above ``xs[-1]`` held or extrapolated."""
    x = np.asarray(x, float)
    v = np.interp(x, xs, ys)
    if extrapolate_hi and len(xs) > 1:
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        v = np.where(x > xs[-1], ys[-1] + slope * (x - xs[-1]), v)
    return v


def default_device(costs: pd.DataFrame) -> tuple[str, str]:
    """The default cost device and why: the one with the most measured batch sizes, then
    contexts, then verify rows (ties: alphabetical), i.e. the table that needs the least
    extrapolation."""
    ver = costs[costs["kind"] == "verify"]
    if ver.empty:  # traces.validate refuses such a table; a table built in code may still lack them
        raise CostError("the cost table has no verify rows (the target's step); every device needs them")
    score = ver.groupby("device").agg(b=("batch_size", "nunique"), c=("context_len", "nunique"), n=("ms", "size"))
    score = score.sort_values(["b", "c", "n"], ascending=False, kind="stable")
    dev = str(score.index[0])
    return dev, (f"most measured batch sizes ({int(score.iloc[0]['b'])}) and contexts "
                 f"({int(score.iloc[0]['c'])}) of {sorted(map(str, score.index))}")


def resolve_device(costs: pd.DataFrame | None, device: str | None) -> str:
    """The cost table's device named exactly or by a unique prefix (default: ``default_device``)."""
    if costs is None or len(costs) == 0:
        raise CostError("the trace has no cost table (costs.parquet); use --objective rounds")
    devices = sorted(costs["device"].unique())
    if device is None:
        return default_device(costs)[0]
    match = [d for d in devices if d == device] or [d for d in devices if d.startswith(device)]
    if len(match) != 1:
        raise CostError(f"cost device {device!r} not in the trace (or not a unique prefix); it has {devices}")
    return match[0]


@dataclass
class CostModel:
    """Round times of one device of a cost table (see the module docstring)."""

    device: str
    verify: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]  # batch -> (contexts, ks, ms[c, k])
    draft_ms: dict[str, float]
    notes: list[str] = field(default_factory=list)
    why: str = ""  # how the device was chosen
    one_pass: frozenset[str] = frozenset()  # drafters that draft every depth in one pass (Medusa)

    @classmethod
    def for_trace(cls, trace, device: str | None = None) -> CostModel:
        """``from_table`` of the trace's costs, with its drafters' ``draft_passes``."""
        m = cls.from_table(trace.costs, device)
        m.one_pass = frozenset(d["name"] for d in trace.manifest["drafters"] if d.get("draft_passes") == "one")
        return m

    @classmethod
    def from_table(cls, costs: pd.DataFrame | None, device: str | None = None) -> CostModel:
        dev = resolve_device(costs, device)
        c = costs[costs["device"] == dev]
        ver = c[c["kind"] == "verify"]
        if ver.empty:
            raise CostError(f"cost table for {dev!r} has no verify rows")
        verify = {}
        for b, g in ver.groupby("batch_size"):
            tab = g.groupby(["context_len", "k"])["ms"].median().unstack("k")
            if tab.isna().any().any():  # a context lacks some k: fill along k from its own rows
                tab = tab.interpolate(axis=1, limit_direction="both")
            verify[int(b)] = (tab.index.to_numpy(float), tab.columns.to_numpy(float), tab.to_numpy(float))
        drf = c[c["kind"] == "draft"]
        drf = drf[drf["batch_size"] == drf["batch_size"].min()] if len(drf) else drf
        draft = {str(d): float(v) for d, v in drf.groupby("drafter")["ms"].median().items()}
        return cls(dev, verify, draft)

    # -- the rule ------------------------------------------------------------------------------
    @property
    def batch_sizes(self) -> np.ndarray:
        return np.array(sorted(self.verify), dtype=float)

    def _note(self, msg: str) -> None:
        if msg not in self.notes:
            self.notes.append(msg)

    def verify_ms(self, k: np.ndarray, n: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Verify time (ms) of ``k`` draft tokens (+1 bonus) for ``n`` sequences at context ``c``
        (broadcast)."""
        k, n, c = np.broadcast_arrays(np.asarray(k, float), np.asarray(n, float), np.asarray(c, float))
        bs = self.batch_sizes
        if len(bs) == 1:
            lo, w = np.zeros(n.shape, dtype=np.int64), np.zeros(n.shape)
        else:
            lo = np.clip(np.searchsorted(bs, n, side="right") - 1, 0, len(bs) - 2)
            w = (np.maximum(n, bs[0]) - bs[lo]) / (bs[lo + 1] - bs[lo])  # > 1 past the last: extrapolated
        used = set(lo[w < 1].tolist()) | set((lo[w > 0] + 1).tolist())
        per_b = []
        for i, b in enumerate(bs):
            ctxs, ks, ms = self.verify[int(b)]
            at_c = np.stack([_lerp(k, ks, ms[j], True) for j in range(len(ctxs))])  # (contexts, ...)
            if len(ctxs) == 1:
                per_b.append(at_c[0])
            else:
                j = np.clip(np.searchsorted(ctxs, c, side="right") - 1, 0, len(ctxs) - 2)
                cw = (np.clip(c, ctxs[0], ctxs[-1]) - ctxs[j]) / (ctxs[j + 1] - ctxs[j])
                per_b.append(np.take_along_axis(at_c, j[None], 0)[0] * (1 - cw)
                             + np.take_along_axis(at_c, j[None] + 1, 0)[0] * cw)
            if i in used:
                if (c < ctxs[0]).any() or (c > ctxs[-1]).any():
                    self._note(f"context {c.min():.0f}-{c.max():.0f} outside the measured contexts "
                               f"{ctxs.astype(int).tolist()}: held at the nearest")
                if (k > ks[-1]).any():
                    self._note(f"k up to {k.max():.0f} above the measured {ks[-1]:.0f}: verify time extrapolated")
        per_b = np.stack(per_b)  # (batch sizes, ...)
        if (n > bs[-1]).any() and len(bs) == 1:
            self._note(f"batch {int(bs[-1]) + 1}-{int(n.max())}: the table measures one batch size ({int(bs[0])}), "
                       f"so every batch costs what batch {int(bs[0])} does (batch serving is flat here)")
        elif (n > bs[-1]).any():
            self._note(f"batch {int(bs[-1]) + 1}-{int(n.max())} above the largest measured batch "
                       f"{int(bs[-1])}: extrapolated linearly from batches {bs[-2:].astype(int).tolist()}")
        if (n < bs[0]).any():
            self._note(f"batch below the smallest measured {int(bs[0])}: held at {int(bs[0])}")
        if len(bs) == 1:
            return per_b[0]
        return (np.take_along_axis(per_b, lo[None], 0)[0] * (1 - w)
                + np.take_along_axis(per_b, lo[None] + 1, 0)[0] * w)

    def draft_step_ms(self, drafter: str, n: np.ndarray, c: np.ndarray) -> np.ndarray:
        """One draft step of ``drafter`` for ``n`` sequences (scaled like the target's k = 0)."""
        if drafter not in self.draft_ms:
            raise CostError(f"cost table for {self.device!r} has no draft cost for drafter {drafter!r}")
        n = np.asarray(n, float)
        b0 = self.batch_sizes[0]
        scale = self.verify_ms(0, n, c) / self.verify_ms(0, np.full_like(n, b0), c)
        return self.draft_ms[drafter] * scale

    def round_ms(self, arms: list[Arm], n: np.ndarray | float = 1, c: np.ndarray | float = 0) -> np.ndarray:
        """Round time (ms) of every arm, shape ``broadcast(n, c).shape + (len(arms),)``."""
        n, c = np.broadcast_arrays(np.asarray(n, float), np.asarray(c, float))
        out = np.empty(n.shape + (len(arms),))
        for j, a in enumerate(arms):
            if a.is_tree:  # verify every node at once; draft one batched step per depth
                from traces.trees import load_tree

                tree = load_tree(a.tree)
                v = self.verify_ms(tree.n_nodes, n, c)
                if a.drafter in self.one_pass:  # every depth's candidates from one pass
                    v = v + self.draft_step_ms(a.drafter, n, c)
                else:
                    for w in tree.widths:
                        v = v + self.draft_step_ms(a.drafter, n * w, c)
            else:
                v = self.verify_ms(a.k, n, c)
                if a.drafter != PLAIN and a.k > 0:
                    steps = 1 if a.drafter in self.one_pass else a.k
                    v = v + steps * self.draft_step_ms(a.drafter, n, c)
            out[..., j] = v
        return out

    def feedback_ms(self, arms: list[Arm], scored: list[str], n: np.ndarray | float = 1,
                    c: np.ndarray | float = 0) -> np.ndarray:
        """Per arm played, the time to score every drafter of ``scored`` that it does not use."""
        n, c = np.broadcast_arrays(np.asarray(n, float), np.asarray(c, float))
        step = {d: self.draft_step_ms(d, n, c) for d in scored}
        out = np.zeros(n.shape + (len(arms),))
        for j, a in enumerate(arms):
            for d in scored:
                if d != a.drafter:
                    out[..., j] += step[d]
        return out

    def describe(self) -> dict:
        return {"device": self.device, "device_chosen": self.why,
                "batch_sizes": self.batch_sizes.astype(int).tolist(),
                "rule": "k*draft(n) + verify(k, n, c); linear in k, c, n between measured points; "
                        "k, n extrapolated linearly above the table, c and small n held",
                "notes": list(self.notes)}


def prompt_contexts(prompt_lens: np.ndarray, output_lens: np.ndarray) -> np.ndarray:
    """Context length a prompt's rounds are costed at: its mean over the generation,
    ``prompt_len + output_len / 2``."""
    return np.asarray(prompt_lens, float) + np.asarray(output_lens, float) / 2.0
