"""Merge the shards of a sharded collection (``collect_traces.py --shard I/N``) into one trace.

Shards must come from the same collection settings: same kind, target, drafters, k_max,
decoding, prompt set and seed, and a ``collection.shard`` record with the same count and
distinct indices covering ``0..N-1``.  Prompts are put back in collection order (the order an
unsharded run writes), arrays padded to the longest output, and the result validated.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .trace import Trace, TraceError

SAME = ("kind", "synthetic", "target", "drafters", "k_max", "decoding", "prompt_set", "seed")


def merge_shards(shards: Sequence[Trace]) -> Trace:
    """One trace from the N shard traces of a sharded collection (any order)."""
    if not shards:
        raise TraceError("merge: no shard traces given")
    first = shards[0]
    for tr in shards:
        src = tr.path or tr.label
        for key in SAME:
            if tr.manifest.get(key) != first.manifest.get(key):
                raise TraceError(f"{src}: manifest field {key!r} differs from {first.path or first.label}; "
                                 "shards must come from one collection")
        if "shard" not in tr.manifest.get("collection", {}):
            raise TraceError(f"{src}: manifest field 'collection.shard': missing; expected the output of "
                             "collect_traces.py --shard I/N")
    info = [tr.manifest["collection"]["shard"] for tr in shards]
    n = info[0]["count"]
    idx = sorted(s["index"] for s in info)
    if any(s["count"] != n for s in info) or idx != list(range(n)):
        raise TraceError(f"merge: shard indices {idx} of counts {sorted({s['count'] for s in info})}; "
                         f"expected every index 0..{n - 1} of one count")
    rows = [(key, k, i) for k, (tr, s) in enumerate(zip(shards, info, strict=True))
            for i, key in enumerate(s["order"])]
    rows.sort()
    if len({r[0] for r in rows}) != len(rows):
        raise TraceError("merge: the same prompt appears in two shards")
    D = len(first.drafter_names)
    T = max(tr.accept.shape[2] for tr in shards)

    def stack(attr: str, fill, dtype) -> np.ndarray | None:
        if getattr(first, attr) is None:
            return None
        extra = getattr(first, attr).shape[3:]  # ranks carry a depth axis
        out = np.full((len(rows), D, T, *extra), fill, dtype=dtype)
        for j, (_, k, i) in enumerate(rows):
            a = getattr(shards[k], attr)[i]
            out[j, :, : a.shape[1]] = a
        return out

    prompts = pd.concat([shards[k].prompts.iloc[[i]] for _, k, i in rows], ignore_index=True)
    manifest = copy.deepcopy(first.manifest)
    col = manifest["collection"]
    col.pop("shard")
    col["wall_s"] = round(sum(tr.manifest["collection"].get("wall_s", 0.0) for tr in shards), 2)
    col["merged_from_shards"] = n
    for key in ("tf_mismatch_positions", "degenerate_prompts"):
        if key in col:
            col[key] = int(sum(tr.manifest["collection"].get(key, 0) for tr in shards))
    costs = next((tr.costs for tr in shards if tr.costs is not None), None)
    return Trace(manifest, prompts, stack("accept", -1, np.int16), stack("alpha", np.nan, np.float32),
                 stack("beta", np.nan, np.float32), costs, ranks=stack("ranks", -1, np.int16))
