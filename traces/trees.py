"""Static draft trees, named by rank paths, and their exact greedy acceptance from ranks.

A tree is a set of *rank paths* from the root: the path ``(0, 1)`` is "the drafter's top-1
token at depth 1, then its second-best token after it".  Under greedy verification the
target's output is its own greedy output whatever is drafted, so a tree round at position
``t`` accepts depth ``j`` iff the rank path of the target's tokens ``(r_1, ..., r_j)``, where
``r_i`` is the rank of ``y_{t+i-1}`` under the drafter given the target prefix, is a node of
the tree (BanditSpec's Medusa example; Medusa's and EAGLE's sparse trees are published as
such paths).  For a drafter that reads tokens only, ``r_i`` is its one-step teacher-forced
rank at position ``t+i-1``, so one pass gives every tree (``docs/trace_format.md``).

Names: ``4x2x2x1`` keeps the top-4 at depth 1, the top-2 below each of them, and so on
(every path of the product); any other name is a JSON file ``traces/trees/NAME.json`` (or a
path) holding ``{"paths": [[0], [1], [0, 0], ...]}``, its prefixes implied.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

TREES_DIR = Path(__file__).resolve().parent / "trees"
_BRANCHING = re.compile(r"\d+(x\d+)*")


class TreeError(ValueError):
    """A tree name or file that cannot be read."""


@dataclass(frozen=True)
class Tree:
    """A static draft tree: its rank paths (every prefix included), sorted by depth."""

    name: str
    paths: tuple[tuple[int, ...], ...]
    _child: np.ndarray = field(repr=False, compare=False, default=None)  # (nodes + 1, max rank + 2)

    @property
    def depth(self) -> int:
        return max(len(p) for p in self.paths)

    @property
    def n_nodes(self) -> int:
        """Draft tokens the target verifies in one round (the root, the context, excluded)."""
        return len(self.paths)

    @property
    def widths(self) -> tuple[int, ...]:
        """Nodes at depth 1..depth: what one batched drafter step per depth drafts."""
        return tuple(sum(len(p) == j for p in self.paths) for j in range(1, self.depth + 1))

    @property
    def max_rank(self) -> int:
        return max(max(p) for p in self.paths)

    def accept(self, ranks: np.ndarray) -> np.ndarray:
        """Accepted depth for each row of target-token ranks ``(n, depth)`` (rank >= the tree's
        largest or negative: no node).  ``accept[i] = max j such that ranks[i, :j]`` is a node."""
        ranks = np.asarray(ranks, dtype=np.int64)
        R = self._child.shape[1] - 1
        node = np.zeros(len(ranks), dtype=np.int64)  # 0 = the root
        out = np.zeros(len(ranks), dtype=np.int64)
        for j in range(min(self.depth, ranks.shape[1])):
            r = np.where((ranks[:, j] >= 0) & (ranks[:, j] < R), ranks[:, j], R)
            node = np.where(node >= 0, self._child[np.maximum(node, 0), r], -1)
            out += node >= 0
        return out


def _build(name: str, paths: set[tuple[int, ...]]) -> Tree:
    for p in list(paths):  # prefixes are nodes too
        paths.update(p[:i] for i in range(1, len(p)))
    ordered = tuple(sorted(paths, key=lambda p: (len(p), p)))
    index = {p: i + 1 for i, p in enumerate(ordered)}
    R = max(max(p) for p in ordered) + 1
    child = np.full((len(ordered) + 1, R + 1), -1, dtype=np.int64)  # last column: "no such rank"
    for p, i in index.items():
        child[index.get(p[:-1], 0), p[-1]] = i
    t = Tree(name, ordered)
    object.__setattr__(t, "_child", child)
    return t


@lru_cache(maxsize=64)
def load_tree(name: str) -> Tree:
    """``4x2x2x1`` (per-depth branching) or a named / path JSON file of rank paths."""
    if _BRANCHING.fullmatch(name):
        widths = [int(x) for x in name.split("x")]
        if min(widths) < 1:
            raise TreeError(f"tree {name!r}: every depth needs a branching >= 1")
        paths = {p for d in range(1, len(widths) + 1) for p in itertools.product(*[range(w) for w in widths[:d]])}
        return _build(name, set(paths))
    path = Path(name) if name.endswith(".json") else TREES_DIR / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in TREES_DIR.glob("*.json"))
        raise TreeError(f"tree {name!r}: expected a branching such as 4x2x2x1, a name in {known} or a .json path")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        raw = data["paths"]
        paths = {tuple(int(r) for r in p) for p in raw}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TreeError(f"{path}: paths: expected {{\"paths\": [[0], [1], [0, 0], ...]}} ({exc})") from None
    if not paths or any(len(p) == 0 or min(p) < 0 for p in paths):
        raise TreeError(f"{path}: paths: expected non-empty lists of ranks >= 0")
    return _build(name, set(paths))
