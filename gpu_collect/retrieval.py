"""Retrieval drafting (REST-style): a datastore of token sequences looked up by the longest
suffix of the context, the continuations after every match merged into a trie, children
ordered by count (ties to the lower token id).  It reads tokens only, so along the target's
own path its trie at position ``t`` and the rank of ``y_{t+j-1}`` at depth ``j`` are exact from
the recorded output; the trie is built once per round, so ranks need a depth axis.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


class Datastore:
    """Suffix index over ``seqs``: every n-gram (n = 1..max_suffix) -> where it ends."""

    def __init__(self, seqs: list[list[int]], max_suffix: int = 8):
        self.seqs = [np.asarray(s, dtype=np.int64) for s in seqs if len(s)]
        self.max_suffix = max_suffix
        self.index: dict[tuple[int, ...], list[tuple[int, int]]] = defaultdict(list)
        for si, s in enumerate(self.seqs):
            for end in range(1, len(s)):  # an n-gram ending before the last token has a continuation
                for n in range(1, min(max_suffix, end) + 1):
                    self.index[tuple(s[end - n : end].tolist())].append((si, end))
        self.n_tokens = int(sum(len(s) for s in self.seqs))

    def trie(self, ctx: list[int], depth: int, include_ctx: bool = False) -> dict:
        """Continuations (up to ``depth`` tokens) after the longest matching suffix of ``ctx``, as
        nested ``{token: (count, subtrie)}``; empty when nothing matches.  ``include_ctx`` also
        counts the earlier occurrences inside ``ctx`` itself (SuffixDecoding's current prompt and
        output)."""
        c = np.asarray(ctx, dtype=np.int64)
        for n in range(min(self.max_suffix, len(ctx)), 0, -1):
            key = tuple(ctx[-n:])
            hits = [self.seqs[si][end : end + depth] for si, end in self.index.get(key, ())]
            if include_ctx and len(c) > n:
                win = np.lib.stride_tricks.sliding_window_view(c[:-1], n)
                ends = np.flatnonzero((win == c[-n:]).all(axis=1)) + n
                hits += [c[e : e + depth] for e in ends]
            if hits:
                break
        else:
            return {}
        root: dict = {}
        for cont in hits:
            node = root
            for tok in cont.tolist():
                cnt, sub = node.get(tok, (0, {}))
                node[tok] = (cnt + 1, sub)
                node = sub
        return root


def ordered(node: dict) -> list[int]:
    """Children of a trie node in rank order: most frequent first, ties to the lower token id."""
    return [t for t, _ in sorted(node.items(), key=lambda kv: (-kv[1][0], kv[0]))]


def path_ranks(trie: dict, path: list[int], cap: int) -> np.ndarray:
    """Rank of each token of ``path`` among its node's children (``cap``: absent, and below)."""
    out = np.full(len(path), cap, dtype=np.int64)
    node = trie
    for j, tok in enumerate(path):
        kids = ordered(node)
        if tok not in kids or kids.index(tok) >= cap:
            break
        out[j] = kids.index(tok)
        node = node[tok][1]
    return out


def tree_tokens(trie: dict, paths: tuple[tuple[int, ...], ...]) -> dict[tuple[int, ...], int]:
    """The static tree's nodes the trie can fill: rank path -> token."""
    out: dict[tuple[int, ...], int] = {}
    nodes: dict[tuple[int, ...], dict] = {(): trie}
    for p in sorted(paths, key=len):
        parent = nodes.get(p[:-1])
        if parent is None:
            continue
        kids = ordered(parent)
        if p[-1] < len(kids):
            tok = kids[p[-1]]
            out[p] = tok
            nodes[p] = parent[tok][1]
    return out
