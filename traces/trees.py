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
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .guards import DuplicateKeyError, FileGuardError, read_regular, strict_json_loads

TREES_DIR = Path(__file__).resolve().parent / "trees"
_BRANCHING = re.compile(r"\d+(x\d+)*")
#: limits checked from the name or the file before a tree is built: nodes (draft tokens one
#: round verifies; a cost row prices at most ``schema.MAX_COST_K`` = 1024), depth (a trace's
#: ``k_max`` is at most 127) and rank (a trace's ``rank_cap`` is at most 255, and a tree may
#: only use ranks below it), and the size of a tree file
MAX_NODES, MAX_DEPTH, MAX_RANK, MAX_FILE_BYTES = 1024, 127, 254, 1 << 20


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


def _limits(name: str, n_nodes: int, depth: int, max_rank: int) -> None:
    """Refuse a tree over ``MAX_DEPTH``, ``MAX_RANK`` or ``MAX_NODES`` in one line."""
    why = {"depth": f"a trace's k_max is at most {MAX_DEPTH}", "largest rank": "ranks must be below a trace's "
           "rank_cap, at most 255", "nodes": "the draft tokens one round verifies"}
    for what, v, hi in (("depth", depth, MAX_DEPTH), ("largest rank", max_rank, MAX_RANK),
                        ("nodes", n_nodes, MAX_NODES)):
        if v > hi:
            shown = name if len(name) <= 80 else f"{name[:30]}...{name[-40:]}"
            raise TreeError(f"tree {shown!r}: {what} {v if v < 10**12 else 'above 10^12'}; expected at most {hi} "
                            f"({why[what]})")


def _branching_paths(name: str) -> set[tuple[int, ...]]:
    """Every path of a ``4x2x2x1`` name, its size checked from the name before any is made."""
    parts = name.split("x")
    widths = [int(x) if len(x) <= 6 else 10**13 for x in parts[: MAX_DEPTH + 1]]  # no 5000-digit int()
    if min(widths) < 1:
        raise TreeError(f"tree {name[:60]!r}: every depth needs a branching >= 1")
    nodes, level = 0, 1
    for w in widths:  # nodes = w1 + w1 w2 + ...: stop counting once past the limit
        level *= w
        nodes += level
        if nodes > MAX_NODES:
            break
    _limits(name, nodes, len(parts), max(widths) - 1)
    return {p for d in range(1, len(widths) + 1) for p in itertools.product(*[range(w) for w in widths[:d]])}


def _closed(name: str, raw: set[tuple[int, ...]]) -> set[tuple[int, ...]]:
    """The paths with every prefix (prefixes are nodes too), refused once past ``MAX_NODES``."""
    paths: set[tuple[int, ...]] = set()
    for p in raw:
        paths.update(p[:i] for i in range(1, len(p) + 1))
        if len(paths) > MAX_NODES:
            _limits(name, len(paths), 0, 0)
    return paths


def _build(name: str, paths: set[tuple[int, ...]]) -> Tree:
    paths = _closed(name, paths)
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
        return _build(name, _branching_paths(name))
    path = Path(name) if name.endswith(".json") else TREES_DIR / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in TREES_DIR.glob("*.json"))
        raise TreeError(f"tree {name[:60]!r}: expected a branching such as 4x2x2x1, a name in {known} or a .json "
                        "path")
    want = '{"paths": [[0], [1], [0, 0], ...]}'
    try:
        data = strict_json_loads(read_regular(path, MAX_FILE_BYTES).decode("utf-8"))
        raw = data["paths"]
        if not isinstance(raw, list) or not all(isinstance(p, list) and 1 <= len(p) <= MAX_DEPTH and all(
                isinstance(r, int) and not isinstance(r, bool) and 0 <= r <= MAX_RANK for r in p) for p in raw):
            raise TreeError(f"{path}: paths: expected {want}: lists of 1..{MAX_DEPTH} integer ranks 0..{MAX_RANK}")
        paths = {tuple(p) for p in raw}
    except TreeError:
        raise
    except FileGuardError as exc:
        if exc.kind:
            raise TreeError(f"{path}: expected a regular JSON file, got {exc.kind}") from None
        raise TreeError(f"{path}: {exc.size} bytes; expected a tree file under {MAX_FILE_BYTES} bytes") from None
    except RecursionError:
        raise TreeError(f"{path}: paths: expected {want} (nested too deeply)") from None
    except DuplicateKeyError as exc:
        raise TreeError(f"{path}: {exc}; expected each key once per JSON object") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TreeError(f"{path}: paths: expected {want} ({exc})"[:300]) from None
    if not paths:
        raise TreeError(f"{path}: paths: expected at least one path")
    return _build(name, paths)
