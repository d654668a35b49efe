"""Build a Trace from plain arrays (tests, notebooks, converters from other formats)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .manifest import make_manifest
from .trace import Trace


def from_arrays(
    accept: Sequence[np.ndarray],
    drafters: Sequence[str],
    k_max: int,
    *,
    prompt_ids: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    costs: pd.DataFrame | None = None,
    name: str = "custom",
    synthetic: bool = True,
    ranks: Sequence[np.ndarray] | None = None,
    rank_cap: int = 16,
) -> Trace:
    """``accept[p]`` is an int array (n_drafters, output_len_p) of ``L_d(t)`` values; optional
    ``ranks[p]`` (n_drafters, output_len_p) of one-step target-token ranks (token-input
    drafters, ``-1`` for a drafter without ranks), capped at ``rank_cap``.

    The result is not validated here; ``traces.write`` validates before writing and
    ``traces.load`` on read.
    """
    lens = np.array([np.asarray(a).shape[1] for a in accept])
    P, D, T = len(accept), len(drafters), int(lens.max())
    arr = np.full((P, D, T), -1, dtype=np.int16)
    for i, a in enumerate(accept):
        arr[i, :, : lens[i]] = np.asarray(a)
    prompts = pd.DataFrame({
        "prompt_id": list(prompt_ids or [f"p{i}" for i in range(P)]),
        "category": list(categories or ["default"] * P),
        "turn": 0,
        "prompt_len": 8,
        "output_len": lens,
        "finish_reason": "length",
        "output_ids": [list(range(3, 3 + n)) for n in lens],
    })
    manifest = make_manifest(
        kind="greedy", synthetic=synthetic, target={"id": "arrays", "revision": None, "sha256": None},
        drafters=[{"name": d, "kind": "synthetic", "params": {}} for d in drafters], k_max=k_max,
        decoding={"temperature": 0.0, "max_new_tokens": T, "chat_template": False},
        prompt_set={"name": name, "sha256": None}, seed=None, name=name,
    )
    rk = None
    if ranks is not None:
        rk = np.full((P, D, T, 1), -1, dtype=np.int16)
        for i, r in enumerate(ranks):
            rk[i, :, : lens[i], 0] = np.minimum(np.asarray(r), rank_cap)
        manifest["rank_cap"] = rank_cap
    return Trace(manifest, prompts, arr, costs=costs, ranks=rk)
