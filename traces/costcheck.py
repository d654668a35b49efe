"""Cost tables with their noise (schema 1.2): the per-cell spread columns and the checks that
warn about a table whose cells contradict each other beyond that spread.

A cost row's ``ms`` is the median of its timed repeats.  Schema 1.2 adds, per row:

* ``ms_lo``, ``ms_hi``: a 95 % bootstrap interval of that median (``ms_lo <= ms <= ms_hi``);
* ``ms_iqr``: the interquartile range of the repeats (ms, >= 0);
* ``reps``: the number of timed repeats (0: not timed here -- a nominal or logged row, or a
  row from an older table -- whose spread is not known: ``ms_lo = ms_hi = ms``, ``ms_iqr = 0``).

Warnings (``cost_warnings``) do not make a trace invalid; they name the cells of a table that
no cost model should be trusted on without a look (docs/trace_format.md, "Cost warnings"):

* ``noisy``: a timed cell whose interval's half-width exceeds ``NOISE_MAX`` of its median;
* ``k``: a verify cell cheaper than the one at the next smaller ``k`` (same device, batch
  size and context) by more than the noise (``_tolerance``);
* ``batch``: a verify cell cheaper than the one at the next smaller batch size (same device,
  ``k`` and context) by more than the noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import COST_OPTIONAL as NOISE_COLUMNS

#: a timed cell is noisy when its interval's half-width exceeds this share of its median
NOISE_MAX = 0.10
#: a drop (larger k or batch cheaper) within this share of the smaller cell is never flagged
REL_TOL = 0.05
#: cells named per warning line
SHOW = 3


def fill_noise(costs: pd.DataFrame) -> pd.DataFrame:
    """``costs`` with every noise column present and no NaN: rows without a recorded spread
    get ``reps`` 0, ``ms_lo = ms_hi = ms``, ``ms_iqr`` 0 (unchanged if it has no noise column)."""
    if not any(c in costs.columns for c in NOISE_COLUMNS):
        return costs
    c = costs.copy()
    ms = c["ms"].astype(float)
    for col in ("ms_lo", "ms_hi"):
        c[col] = c[col].astype(float).fillna(ms) if col in c.columns else ms
    c["ms_iqr"] = c["ms_iqr"].astype(float).fillna(0.0) if "ms_iqr" in c.columns else 0.0
    c["reps"] = c["reps"].fillna(0).astype(np.int64) if "reps" in c.columns else np.int64(0)
    return c


def check_noise_columns(costs: pd.DataFrame, where: str, problems: list[str]) -> None:
    """Problems (the trace is invalid) with the noise columns: all four or none, a non-negative
    ``reps``, ``ms_iqr >= 0`` and ``ms_lo <= ms <= ms_hi`` (a relative 1e-9 of slack)."""
    have = [c for c in NOISE_COLUMNS if c in costs.columns]
    if not have:
        return
    if len(have) < len(NOISE_COLUMNS):
        problems.append(f"{where}: columns {sorted(set(NOISE_COLUMNS) - set(have))} missing; expected all of "
                        f"{list(NOISE_COLUMNS)} or none (schema 1.2 noise columns)")
        return
    ms = costs["ms"].to_numpy(np.float64)
    lo, hi, iqr = (costs[c].to_numpy(np.float64) for c in ("ms_lo", "ms_hi", "ms_iqr"))
    reps = costs["reps"].to_numpy(np.int64)
    slack = 1e-9 * np.abs(ms)
    checks = (("reps", reps < 0, "an integer >= 0 (timed repeats; 0 = spread not recorded)"),
              ("ms_iqr", ~(np.isfinite(iqr) & (iqr >= 0)), "a finite interquartile range >= 0 ms"),
              ("ms_lo", ~(np.isfinite(lo) & (lo <= ms + slack)), "at most ms (the median's interval)"),
              ("ms_hi", ~(np.isfinite(hi) & (hi >= ms - slack)), "at least ms (the median's interval)"))
    for col, bad, want in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            r = costs.iloc[i]
            problems.append(f"{where}: {col}: expected {want}, got {r[col]!r} (ms {r['ms']:.6g}) at device "
                            f"{r['device']!r}, {r['kind']} k {r['k']}, batch {r['batch_size']}, context "
                            f"{r['context_len']}" + (f" and {int(bad.sum()) - 1} more rows" if bad.sum() > 1 else ""))


def _half(c: pd.DataFrame) -> np.ndarray:
    """Half-width of each row's interval of the median (0 where no spread is recorded)."""
    if "ms_lo" not in c.columns or "ms_hi" not in c.columns:
        return np.zeros(len(c))
    return np.nan_to_num((c["ms_hi"].to_numpy(float) - c["ms_lo"].to_numpy(float)) / 2.0)


def _tolerance(a_ms: np.ndarray, a_half: np.ndarray, b_half: np.ndarray) -> np.ndarray:
    """How much cheaper a larger cell may be than a smaller one before it is flagged: the two
    intervals' half-widths together, and never less than ``REL_TOL`` of the smaller cell."""
    return np.maximum(REL_TOL * a_ms, a_half + b_half)


def _drops(v: pd.DataFrame, along: str, within: list[str], what: str) -> list[str]:
    """Warnings for consecutive cells along ``along`` (within groups ``within``) that drop
    by more than the tolerance."""
    out = []
    v = v.assign(_half=_half(v)).sort_values([*within, along], kind="stable")
    for dev, g in v.groupby("device", sort=True):
        cells = []
        for key, h in g.groupby(within[1:], sort=True):
            ms, half, x = h["ms"].to_numpy(float), h["_half"].to_numpy(), h[along].to_numpy()
            drop = ms[:-1] - ms[1:]
            bad = np.flatnonzero(drop > _tolerance(ms[:-1], half[:-1], half[1:]))
            key = key if isinstance(key, tuple) else (key,)
            at = ", ".join(f"{n.replace('_len', '').replace('_size', '')} {int(k)}" for n, k in zip(within[1:], key,
                                                                                                   strict=True))
            cells += [f"{at}: {along.replace('_size', '')} {int(x[i])} -> {int(x[i + 1])} "
                      f"({ms[i]:.4g} -> {ms[i + 1]:.4g} ms)" for i in bad]
        if cells:
            more = f"; and {len(cells) - SHOW} more" if len(cells) > SHOW else ""
            out.append(f"cost table of device {dev!r}: {len(cells)} verify cell(s) cheaper at a larger {what} "
                       f"beyond the timing noise: {'; '.join(cells[:SHOW])}{more}")
    return out


def cost_warnings(costs: pd.DataFrame | None, device: str | None = None) -> list[str]:
    """One line per (device, kind of suspicion) naming the cells (see the module docstring);
    empty for a clean table.  ``device``: only that device's rows."""
    if costs is None or not len(costs):
        return []
    c = costs if device is None else costs[costs["device"] == device]
    c = c[c["kind"].isin(["verify", "draft"])]
    out = []
    if "reps" in c.columns:
        timed = c[c["reps"].fillna(0).to_numpy() >= 2]
        rel = _half(timed) / timed["ms"].to_numpy(float)
        noisy = timed[rel > NOISE_MAX].assign(_rel=rel[rel > NOISE_MAX])
        for dev, g in noisy.groupby("device", sort=True):
            g = g.sort_values("_rel", ascending=False, kind="stable")
            cells = [f"{r['kind']}{' ' + r['drafter'] if r['drafter'] else ''} k {r['k']} batch {r['batch_size']} "
                     f"context {r['context_len']}: {r['ms']:.4g} ms +-{100 * r['_rel']:.0f}%"
                     for _, r in g.head(SHOW).iterrows()]
            more = f"; and {len(g) - SHOW} more" if len(g) > SHOW else ""
            out.append(f"cost table of device {dev!r}: {len(g)} cell(s) noisier than +-{100 * NOISE_MAX:.0f}% "
                       f"(95% interval of the median): {'; '.join(cells)}{more}")
    v = c[(c["kind"] == "verify") & (c["drafter"] == "")]
    if len(v):
        out += _drops(v, "k", ["device", "batch_size", "context_len"], "k")
        out += _drops(v, "batch_size", ["device", "k", "context_len"], "batch size")
    return out
