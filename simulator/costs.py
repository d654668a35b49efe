"""Round costs from a trace's cost table: ``c(d, K) = K * draft_ms[d] + verify_ms[K]``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from traces import PLAIN, Arm


class CostError(ValueError):
    """The trace has no usable cost table for what was asked."""


def round_costs_s(costs: pd.DataFrame | None, arms: list[Arm], device: str | None = None,
                  batch_size: int = 1) -> np.ndarray:
    """Seconds per round for each arm, from medians over the cost rows of one device.

    Verify times for missing ``k`` are interpolated linearly in ``k``.
    """
    if costs is None or len(costs) == 0:
        raise CostError("the trace has no cost table (costs.parquet); use --reward tokens")
    devices = sorted(costs["device"].unique())
    dev = device or devices[0]
    if dev not in devices:
        match = [d for d in devices if d.startswith(dev)]
        if len(match) != 1:
            raise CostError(f"cost device {dev!r} not in the trace (or not a unique prefix); "
                            f"it has {devices}")
        dev = match[0]
    c = costs[costs["device"] == dev]
    bs = c["batch_size"]
    c = c[bs == (batch_size if (bs == batch_size).any() else bs.min())]
    ver = c[c["kind"] == "verify"].groupby("k")["ms"].median()
    if ver.empty:
        raise CostError(f"cost table for {dev!r} has no verify rows")
    drf = c[c["kind"] == "draft"].groupby("drafter")["ms"].median()
    out = np.empty(len(arms))
    for i, a in enumerate(arms):
        v = float(np.interp(a.k, ver.index.to_numpy(float), ver.to_numpy(float)))
        if a.drafter == PLAIN or a.k == 0:
            out[i] = v
            continue
        if a.drafter not in drf.index:
            raise CostError(f"cost table for {dev!r} has no draft cost for drafter {a.drafter!r}")
        out[i] = a.k * float(drf[a.drafter]) + v
    return out / 1000.0
