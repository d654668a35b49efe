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
* ``fit="fit"`` (``--cost-fit``): each (batch size, context) row of verify times is first
  smoothed (``fit_verify_row``: piecewise linear in verified tokens, non-decreasing); ``"raw"``
  (default) uses the measured cells.  Either way the model records the fit's rms relative
  residual, the cells' timing noise and ``uncertainty_rel`` (the larger), below which two
  simulated times are "within timing noise" (``within_timing_noise``), and the table's
  ``traces.costcheck`` warnings for its device.

A device of kind ``logged`` (an engine log's measured steps, ``python -m traces import``) is
its own rule: arm ``d@k`` costs its row ``(d, k)`` (the method's whole step, drafting and
verification together), plain decoding the row ``("", 0)``; nothing is interpolated or
extrapolated (an arm without a row is refused, with the drafter's ``no_cost`` reason where its
manifest entry gives one), contexts are not distinguished (the rows are averages over the
logged turns), batch sizes above 1 are refused, and scoring feedback costs nothing (a log has
no drafter to score with).  Its uncertainty is the largest relative 95 % half-width of its rows
from the fits' residuals (``half95_rel``).
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
    extrapolation; a table of logged steps only: its (first) logged device."""
    ver = costs[costs["kind"] == "verify"]
    if ver.empty and (costs["kind"] == "logged").any():
        devs = sorted(map(str, costs.loc[costs["kind"] == "logged", "device"].unique()))
        return devs[0], f"the engine log's measured steps (logged devices {devs})"
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
    logged: dict[tuple[str, int], float] | None = None  # kind "logged": (drafter, k) -> ms per step
    fit: str = "raw"  # "raw": the measured cells; "fit": verify rows smoothed (fit_verify_row)
    fit_residual_rel: float = 0.0  # rms relative residual of the smooth fit to the measured verify cells
    noise_rel: float = 0.0  # median relative half-width of the cells' 95% intervals (0: not recorded)
    warnings: list[str] = field(default_factory=list)  # traces.costcheck.cost_warnings of this device
    no_cost: dict[str, str] = field(default_factory=dict)  # logged: drafter -> why its k < K arms have no row

    @classmethod
    def for_trace(cls, trace, device: str | None = None, fit: str = "raw") -> CostModel:
        """``from_table`` of the trace's costs, with its drafters' ``draft_passes``."""
        m = cls.from_table(trace.costs, device, fit)
        m.one_pass = frozenset(d["name"] for d in trace.manifest["drafters"] if d.get("draft_passes") == "one")
        if m.logged is not None:
            m.no_cost = {d["name"]: str(d["no_cost"]) for d in trace.manifest["drafters"] if d.get("no_cost")}
            m.noise_rel = _logged_noise(trace.manifest.get("log", {}).get("costs", {}))
        return m

    @classmethod
    def from_table(cls, costs: pd.DataFrame | None, device: str | None = None, fit: str = "raw") -> CostModel:
        if fit not in COST_FITS:
            raise CostError(f"--cost-fit: expected one of {list(COST_FITS)}, got {fit!r}")
        m = cls._from_table(costs, device, fit)
        if m.logged is None:
            from traces.costcheck import cost_warnings

            m.warnings = cost_warnings(costs, m.device)
            m.noise_rel = _noise_rel(costs[(costs["device"] == m.device) & (costs["kind"] == "verify")])
        return m

    @classmethod
    def _from_table(cls, costs: pd.DataFrame | None, device: str | None, fit: str) -> CostModel:
        dev = resolve_device(costs, device)
        c = costs[costs["device"] == dev]
        if (c["kind"] == "logged").any():
            rows = c[c["kind"] == "logged"].groupby(["drafter", "k"])["ms"].median()
            logged = {(str(d), int(k)): float(v) for (d, k), v in rows.items()}
            if ("", 0) not in logged:
                raise CostError(f"logged cost table for {dev!r} has no plain-decoding row (drafter '', k 0)")
            return cls(dev, {}, {}, logged=logged)
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
        smooth, resid = fit_verify(verify)
        return cls(dev, smooth if fit == "fit" else verify, draft, fit=fit, fit_residual_rel=resid)

    # -- the rule ------------------------------------------------------------------------------
    @property
    def batch_sizes(self) -> np.ndarray:
        return np.array([1.0]) if self.logged is not None else np.array(sorted(self.verify), dtype=float)

    def _logged_ms(self, arms: list[Arm], n: np.ndarray) -> np.ndarray:
        """Round times of a logged table: each arm's own measured step (see the module docstring)."""
        if (n > 1).any():
            raise CostError(f"cost device {self.device!r} holds an engine log's steps, measured at batch size 1; "
                            "batch serving needs a measured cost table (python -m gpu_collect costs)")
        out = np.empty(n.shape + (len(arms),))
        for j, a in enumerate(arms):
            key = ("", 0) if a.drafter == PLAIN or a.k == 0 else (a.drafter, int(a.k))
            if a.is_tree or key not in self.logged:
                have = ", ".join(f"{d}@{k}" if d else "plain@0" for d, k in sorted(self.logged))
                if a.drafter in self.no_cost and not a.is_tree:
                    raise CostError(f"arm {a.name}: no measured cost: {self.no_cost[a.drafter]}; expected "
                                    f"--objective rounds for it, or arms with a logged cost ({have})")
                raise CostError(f"arm {a.name}: the logged cost table of {self.device!r} measures only the "
                                f"configurations the logs ran ({have}); expected one of those arms")
            out[..., j] = self.logged[key]
        return out

    def _note(self, msg: str) -> None:
        if msg not in self.notes:
            self.notes.append(msg)

    def verify_ms(self, k: np.ndarray, n: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Verify time (ms) of ``k`` draft tokens (+1 bonus) for ``n`` sequences at context ``c``
        (broadcast)."""
        k, n, c = np.broadcast_arrays(np.asarray(k, float), np.asarray(n, float), np.asarray(c, float))
        if self.logged is not None:  # a log measures no verify pass apart from plain decoding's
            if (k > 0).any():
                raise CostError(f"cost device {self.device!r} holds an engine log's whole steps; it has no "
                                "verify time of k > 0 tokens")
            return self._logged_ms([Arm(PLAIN, 0)], n)[..., 0] + 0 * c
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
        if self.logged is not None:
            raise CostError(f"cost device {self.device!r} holds an engine log's whole steps; it has no separate "
                            f"draft cost for drafter {drafter!r}")
        if drafter not in self.draft_ms:
            raise CostError(f"cost table for {self.device!r} has no draft cost for drafter {drafter!r}")
        n = np.asarray(n, float)
        b0 = self.batch_sizes[0]
        scale = self.verify_ms(0, n, c) / self.verify_ms(0, np.full_like(n, b0), c)
        return self.draft_ms[drafter] * scale

    def round_ms(self, arms: list[Arm], n: np.ndarray | float = 1, c: np.ndarray | float = 0) -> np.ndarray:
        """Round time (ms) of every arm, shape ``broadcast(n, c).shape + (len(arms),)``."""
        n, c = np.broadcast_arrays(np.asarray(n, float), np.asarray(c, float))
        if self.logged is not None:
            return self._logged_ms(arms, n)
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
        if self.logged is not None:  # nothing to score with: a log holds no drafter
            return np.zeros(n.shape + (len(arms),))
        step = {d: self.draft_step_ms(d, n, c) for d in scored}
        out = np.zeros(n.shape + (len(arms),))
        for j, a in enumerate(arms):
            for d in scored:
                if d != a.drafter:
                    out[..., j] += step[d]
        return out

    def describe(self) -> dict:
        if self.logged is not None:
            return {"device": self.device, "device_chosen": self.why, "batch_sizes": [1],
                    "rule": "logged: each arm's own measured step (the engine log's fitted step time); "
                            "no interpolation, batch 1 only",
                    "noise_rel": round(self.noise_rel, 6), "uncertainty_rel": round(self.uncertainty_rel, 6),
                    "notes": list(self.notes)}
        return {"device": self.device, "device_chosen": self.why,
                "batch_sizes": self.batch_sizes.astype(int).tolist(),
                "rule": "k*draft(n) + verify(k, n, c); linear in k, c, n between measured points; "
                        "k, n extrapolated linearly above the table, c and small n held"
                        + ("; verify rows smoothed (piecewise linear in verified tokens)" if self.fit == "fit" else ""),
                "fit": self.fit, "fit_residual_rel": round(self.fit_residual_rel, 6),
                "noise_rel": round(self.noise_rel, 6), "uncertainty_rel": round(self.uncertainty_rel, 6),
                "warnings": list(self.warnings),
                "notes": list(self.notes)}

    @property
    def uncertainty_rel(self) -> float:
        """The cost model's relative uncertainty: the larger of the cells' timing noise and the
        smooth fit's rms residual (how far the raw cells and the fit disagree)."""
        return max(self.noise_rel, self.fit_residual_rel)


COST_FITS = ("raw", "fit")
#: knots of the piecewise-linear verify fit, in verified tokens (k + 1), used where inside the data
FIT_KNOTS = (16.0, 32.0)


def fit_verify_row(ks: np.ndarray, ms: np.ndarray) -> np.ndarray:
    """Verify times of one (batch size, context) row smoothed: least squares (relative errors)
    piecewise linear in verified tokens ``k + 1`` with knots ``FIT_KNOTS`` inside the measured
    range, then made non-decreasing in ``k``.  Rows of fewer than 3 cells are kept as measured."""
    ks, ms = np.asarray(ks, float), np.asarray(ms, float)
    if len(ks) < 3:
        return ms.copy()
    v = ks + 1.0
    cols = [np.ones_like(v), v] + [np.maximum(v - t, 0.0) for t in FIT_KNOTS if v.min() < t < v.max()
                                   and (v > t).sum() >= 2]
    a = np.stack(cols, axis=1)
    w = 1.0 / np.maximum(ms, 1e-12)
    coef, *_ = np.linalg.lstsq(a * w[:, None], ms * w, rcond=None)
    fitted = np.maximum.accumulate(np.maximum(a @ coef, 1e-6)[np.argsort(ks)])
    out = np.empty_like(fitted)
    out[np.argsort(ks)] = fitted
    return out


def fit_verify(verify: dict) -> tuple[dict, float]:
    """Every row of a ``CostModel.verify`` table smoothed (``fit_verify_row``) and the rms
    relative residual of the measured cells to the fit (over every cell)."""
    out, res = {}, []
    for b, (ctxs, ks, ms) in verify.items():
        sm = np.stack([fit_verify_row(ks, row) for row in ms])
        res.append(((ms - sm) / sm).ravel())
        out[b] = (ctxs, ks, sm)
    r = np.concatenate(res) if res else np.zeros(0)
    return out, float(np.sqrt(np.mean(r ** 2))) if len(r) else 0.0


def _logged_noise(prov: dict) -> float:
    """A logged table's relative uncertainty: the largest 95 % half-width of its rows relative to
    them (``half95_rel`` of each method's fit, from its residuals; ``traces.importers.COST_RULE``),
    0 where not recorded."""
    vals = [v for f in (prov.get("methods") or {}).values() if isinstance(f, dict)
            for v in (f.get("half95_rel") or {}).values()]
    vals = [float(v) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)]
    return max(vals, default=0.0)


def _noise_rel(rows: pd.DataFrame) -> float:
    """Median relative half-width of the timed cells' 95 % intervals (0 when none recorded)."""
    if "reps" not in rows.columns:
        return 0.0
    t = rows[rows["reps"].fillna(0).to_numpy() >= 2]
    if not len(t):
        return 0.0
    return float(np.median((t["ms_hi"].to_numpy(float) - t["ms_lo"].to_numpy(float)) / 2 / t["ms"].to_numpy(float)))


def within_timing_noise(a: float, b: float, rel: float) -> bool:
    """Whether two simulated times (same unit, e.g. seconds per prompt) differ by less than the
    cost model's relative uncertainty ``rel`` (``CostModel.uncertainty_rel``) of the larger:
    then neither is named the faster ("within timing noise")."""
    return bool(rel > 0 and np.isfinite(a) and np.isfinite(b) and abs(a - b) <= rel * max(abs(a), abs(b)))


NOISE_VERDICT = "within timing noise"


def timing_verdict(v: str, a: float, b: float, rel: float) -> str:
    """``v`` (``simulator.stats.verdict``: "better" / "worse" / ...) of times ``a`` vs ``b``,
    replaced by ``NOISE_VERDICT`` where a winner is named but the two differ by less than the
    cost model's uncertainty ``rel`` (``within_timing_noise``)."""
    return NOISE_VERDICT if v in ("better", "worse") and within_timing_noise(a, b, rel) else v


def uncertainty_of(config: dict | None) -> float:
    """The cost model's relative uncertainty a results folder's ``config.json`` recorded
    (``cost_model.uncertainty_rel``; a multi-setting folder: the largest over its settings, so a
    "within timing noise" verdict errs on the safe side), 0 if none."""
    c = config or {}
    confs = c["settings"] if c.get("setting") == "multi" and isinstance(c.get("settings"), list) else [c]
    found = [0.0]
    for s in confs:
        cm = s.get("cost_model") if isinstance(s, dict) else None
        u = cm.get("uncertainty_rel") if isinstance(cm, dict) else None
        if isinstance(u, (int, float)) and not isinstance(u, bool) and np.isfinite(u) and u >= 0:
            found.append(float(u))
    return max(found)


def prompt_contexts(prompt_lens: np.ndarray, output_lens: np.ndarray) -> np.ndarray:
    """Context length a prompt's rounds are costed at: its mean over the generation,
    ``prompt_len + output_len / 2``."""
    return np.asarray(prompt_lens, float) + np.asarray(output_lens, float) / 2.0
