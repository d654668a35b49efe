"""Drafters that read the target's hidden states: ``medusa:DIR``, ``eagle:DIR``, ``eagle3:DIR``.

Which hidden states a round can use: with context ``c_0 .. c_{n-1}``, the target has run on
``c_0 .. c_{n-2}`` (``c_{n-1}`` is the token the last verification emitted), so its features
``F_0 .. F_{n-2}`` (row ``i`` predicts ``c_{i+1}``) are known; the live loop computes them with
one target pass over the context minus its last token, as an engine keeps them from
verification.

* Medusa: head ``i`` on ``F_{n-2}`` drafts ``c_{n+i}``.  Every depth reads the target's own
  feature, so along the target's path one teacher-forced pass gives the rank of the target's
  token at every (position, depth): exact for every chain and tree arm.  All depths come from
  one pass of the heads (``draft_passes = "one"`` in the manifest and the cost model).
* EAGLE: pairs ``(F_j, c_{j+1})`` feed the head; its output at the last pair is its guess of
  ``F_{n-1}``, whose logits draft ``c_n``; depth ``s >= 2`` feeds the head's *own* output
  feature.  Teacher forcing (the target's features at every depth) is therefore NOT what
  drafting does; ``eagle_ranks`` drafts ``k`` depths from every position with the head's own
  features, all positions as one batch over the shared prefix (exact for chains and static
  trees along the target's path; ``scoring = "per-position drafting"`` in the manifest).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from traces.schema import RANK_CAP

from .drafter_base import Drafter, Seq, chain_from_ranks, token_ranks, top_candidates
from .errors import CollectError
from .heads import attend


class HeadDrafter(Drafter):
    """Shared parts: depth-indexed ranks, chains from ranks, trees filled by the head."""

    ranks_kind = "features"
    stochastic = False
    fills_tree = True
    greedy_only = True

    def prepare(self, target):
        super().prepare(target)
        d = Path(self.arg)
        if not d.is_dir():
            raise CollectError(f"drafter {self.spec}: {d}: expected a checkpoint directory")
        self.head_ = self.load(d, target)
        from .models import sha256_file

        files = sorted(p for p in d.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".json"))
        self.desc_ = {"checkpoint": str(d), "files": {p.name: sha256_file(p) for p in files}}
        if (d / "recipe.json").is_file():
            import json

            self.desc_["recipe"] = json.loads((d / "recipe.json").read_text())
        self.cache_: tuple = (None, None, None)

    def load(self, d: Path, target) -> torch.nn.Module:
        raise NotImplementedError

    def params(self):
        return {"spec": self.spec, **getattr(self, "desc_", {"checkpoint": self.arg})}

    @property
    def max_depth(self) -> int | None:
        return None

    def info(self):
        out = super().info()
        out.update(rank_depth=getattr(self, "k_max_", 1), scoring=self.scoring, draft_passes=self.draft_passes)
        if self.max_depth is not None:
            out["max_depth"] = self.max_depth
        return out

    @torch.no_grad()
    def features(self, ids: list[int]) -> torch.Tensor:
        """The target's features of rows ``0 .. len(ids) - 1`` (what the head reads)."""
        out = self.target_.model(torch.tensor([ids], device=self.target_.device), output_hidden_states=True,
                                 use_cache=False)
        return self.pick(out.hidden_states)[0]

    def pick(self, hidden_states) -> torch.Tensor:
        return hidden_states[-1]  # after the final norm (Medusa, EAGLE-1/2)

    def greedy_ranks(self, seq: Seq, cap: int) -> np.ndarray:
        # the cache holds the Seq itself: an id() key could be reused by the next prompt's Seq
        if not (self.cache_[0] is seq and self.cache_[1] == cap):
            self.cache_ = (seq, cap, self.ranks(seq, cap))
        return self.cache_[2]

    def greedy_accept(self, seq, k_max):
        return chain_from_ranks(self.greedy_ranks(seq, RANK_CAP), k_max)

    def sampling_probs(self, seq, sampling):
        raise CollectError(f"drafter {self.spec}: head drafters are collected greedily only (for now)")

    @torch.no_grad()
    def step_ms(self, ids: list[int], warmup: int, reps: int) -> float:
        """Median ms of one draft step after the context ``ids`` (the target's features given):
        Medusa, every head at once; EAGLE, one depth with its own feature over the prefix."""
        import statistics
        import time

        fn = self.step_fn(self.features(ids[:-1]), ids)
        dev = self.target_.device
        times = []
        for i in range(warmup + reps):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            fn()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)


class MedusaDrafter(HeadDrafter):
    """``medusa:DIR``: Medusa heads (``gpu_collect.heads.MedusaHeads``)."""

    kind = "medusa"
    trace_kind = "medusa"
    scoring: ClassVar[str] = "teacher-forced (heads read the target's hidden state only: exact)"
    draft_passes: ClassVar[str] = "one"

    def load(self, d, target):
        from .head_ckpt import load_medusa

        return load_medusa(d, target)

    @property
    def max_depth(self) -> int:
        return len(self.head_.medusa_head)

    @torch.no_grad()
    def ranks(self, seq: Seq, cap: int) -> np.ndarray:
        P, y = len(seq.prompt_ids), seq.output_ids
        if P < 2:
            raise CollectError(f"drafter {self.spec}: a prompt of {P} token(s); Medusa needs 2 or more")
        N, k = len(y), self.k_max_
        H = self.pick(seq.target_out().hidden_states)[0]
        rows = H[P - 2 : P - 2 + N]  # row predicting y_{t-1}: the feature a round at t has
        out = np.full((N, k), cap, dtype=np.int64)
        for i in range(min(k, self.max_depth)):
            n = N - i  # depth i + 1 from position t drafts y_{t+i}
            logits = self.head_.medusa_head[i](rows[:n]).float()
            out[:n, i] = token_ranks(logits, y[i:], cap)
        return out

    def step_fn(self, F, ids):
        return lambda: self.head_(F[-1]).argmax(-1)

    @torch.no_grad()
    def head_logits(self, ids: list[int]) -> torch.Tensor:
        return self.head_(self.features(ids[:-1])[-1]).float()  # (heads, V)

    def draft(self, ids, k, sampling, gen):
        k = min(k, self.max_depth)
        return (self.head_logits(ids)[:k].argmax(-1).tolist() if k > 0 else []), None

    def draft_tree(self, ids: list[int], paths: tuple[tuple[int, ...], ...], depth: int) -> dict:
        """Node ``(r_1 .. r_j)`` holds head ``j-1``'s ``r_j``-th best token (Medusa's trees)."""
        logits = self.head_logits(ids)
        top = {j: top_candidates(logits[j], 1 + max(p[-1] for p in paths if len(p) == j + 1))
               for j in range(min(depth, self.max_depth))}
        return {p: top[len(p) - 1][p[-1]] for p in paths if len(p) - 1 in top}


class EagleDrafter(HeadDrafter):
    """``eagle:DIR``: an EAGLE-1/2 head over the target's last hidden layer."""

    kind = "eagle"
    trace_kind = "eagle"
    scoring: ClassVar[str] = "per-position drafting (the head feeds its own features forward)"
    draft_passes: ClassVar[str] = "per depth"
    fused: ClassVar[bool] = False

    def load(self, d, target):
        from .head_ckpt import load_eagle

        return load_eagle(d, target, fused=self.fused)

    def step_fn(self, F, ids):
        h, layer = self.head_, self.head_.layer
        dev = F.device
        tok = torch.tensor(ids[1:], device=dev)
        x, emb = h.in_features(F, tok)
        out, Kp, Vp = h.prefix(x, emb, torch.arange(len(x), device=dev))
        g, tk, pos = out[-1:], tok[-1:], torch.tensor([len(x)], device=dev)
        allowed = torch.ones(1, len(x), dtype=torch.bool, device=dev)
        one = torch.ones(1, 1, dtype=torch.bool, device=dev)

        def step():
            xo, eo = h.own_features(g, tk)
            q, k, v = layer.self_attn.qkv(layer.attn_input(xo, eo), pos)
            return h.logits(layer.finish(xo, attend(q, [(Kp, Vp, allowed), (k[:, None], v[:, None], one)]))).argmax(-1)

        return step

    def ranks(self, seq: Seq, cap: int) -> np.ndarray:
        F = self.pick(seq.target_out().hidden_states)[0]
        return eagle_ranks(self.head_, F, seq.prompt_ids + seq.output_ids, len(seq.prompt_ids), self.k_max_, cap)

    @torch.no_grad()
    def _walk(self, ids: list[int], drafted: list[int]) -> torch.Tensor:
        """Logits after the prefix and ``drafted`` (own features), by one plain causal pass over
        every pair: the obviously-correct twin of ``eagle_ranks``' batched masks."""
        h = self.head_
        F = self.features(ids[:-1])  # F_0 .. F_{n-2}
        dev = F.device
        tok = torch.tensor(ids[1:], device=dev)
        x, emb = h.in_features(F, tok)
        pos = torch.arange(len(ids) - 1, device=dev)
        out, _, _ = h.prefix(x, emb, pos)
        g = out[-1]
        for d in drafted:  # depth >= 2: the head's own last output feature with the drafted token
            xo, eo = h.own_features(g[None], torch.tensor([d], device=dev))
            x, emb = torch.cat([x, xo]), torch.cat([emb, eo])
            out, _, _ = h.prefix(x, emb, torch.arange(len(x), device=dev))
            g = out[-1]
        return h.logits(g).float()

    def draft(self, ids, k, sampling, gen):
        out: list[int] = []
        for _ in range(k):
            out.append(int(top_candidates(self._walk(ids, out), 1)[0]))
        return out, None

    def draft_tree(self, ids: list[int], paths: tuple[tuple[int, ...], ...], depth: int) -> dict:
        """Node ``(r_1 .. r_j)`` holds the ``r_j``-th best token after its parent's tokens."""
        tokens: dict[tuple[int, ...], int] = {}
        for p in sorted(paths, key=len):
            if len(p) > depth or (len(p) > 1 and p[:-1] not in tokens):
                continue
            parent = [tokens[p[:i]] for i in range(1, len(p))]
            width = 1 + max(q[-1] for q in paths if q[:-1] == p[:-1])
            tokens[p] = top_candidates(self._walk(ids, parent), width)[p[-1]]
        return tokens


class Eagle3Drafter(EagleDrafter):
    """``eagle3:DIR``: an EAGLE-3 head over the fused low / middle / high target layers."""

    kind = "eagle3"
    trace_kind = "eagle3"
    fused = True

    def pick(self, hidden_states) -> torch.Tensor:
        N = len(hidden_states) - 1  # layers; hidden_states[i] is the input of layer i
        return torch.cat([hidden_states[2], hidden_states[N // 2], hidden_states[N - 3]], -1)


def eagle_depth_logits(head, F: torch.Tensor, ids: list[int], P: int, depth: int,
                       t: torch.Tensor | None = None):
    """Yield ``(s, logits)`` for depths ``s = 1 .. depth``: the head's target-vocabulary logits
    when it drafts depth ``s`` from output positions ``t`` (default: all) with its own features
    along the target's tokens, every position at once over the shared prefix (EAGLE drafting).
    Row ``i`` of depth ``s`` predicts ``y_{t_i + s - 1}``; rows where that is past the output
    are computed on a clamped token and must be ignored by the caller.

    ``F``: the target's features of every row of ``ids`` (prompt + output).  Differentiable
    (training uses it); ``eagle_ranks`` runs it without gradients.
    """
    if P < 2:
        raise CollectError(f"an EAGLE head needs a prompt of 2 or more tokens, got {P}")
    dev = F.device
    L = len(ids)
    tok = torch.tensor(ids, device=dev)
    x, emb = head.in_features(F[: L - 1], tok[1:])  # pairs (F_j, c_{j+1}), j = 0 .. L-2
    out, Kp, Vp = head.prefix(x, emb, torch.arange(L - 1, device=dev))
    t = torch.arange(L - P, device=dev) if t is None else t.to(dev)
    last = P + t - 2  # the last pair a round at t has: (F_{n-2}, c_{n-1}), n = P + t
    allowed = torch.arange(L - 1, device=dev)[None, :] <= last[:, None]
    g = out[last]
    yield 1, head.logits(g)
    layer = head.layer
    own_k, own_v = [], []
    ones = torch.ones(len(t), depth, dtype=torch.bool, device=dev)
    for s in range(2, depth + 1):
        tk = tok[torch.clamp(P + t + s - 2, max=L - 1)]  # the target's token fed at depth s: y_{t+s-2}
        xo, eo = head.own_features(g, tk)
        q, k, v = layer.self_attn.qkv(layer.attn_input(xo, eo), last + s - 1)
        own_k.append(k[:, None])
        own_v.append(v[:, None])
        a = attend(q, [(Kp, Vp, allowed), (torch.cat(own_k, 1), torch.cat(own_v, 1), ones[:, : s - 1])])
        g = layer.finish(xo, a)
        yield s, head.logits(g)


@torch.no_grad()
def eagle_ranks(head, F: torch.Tensor, ids: list[int], P: int, depth: int, cap: int) -> np.ndarray:
    """``(N, depth)``: rank of ``y_{t+s-1}`` when the head drafts depth ``s`` from position ``t``
    (``eagle_depth_logits``); ``cap`` where that token is past the output."""
    y = ids[P:]
    N = len(y)
    res = np.full((N, depth), cap, dtype=np.int64)
    for s, logits in eagle_depth_logits(head, F, ids, P, depth):
        n = N - (s - 1)  # positions whose depth-s target token exists
        if n <= 0:
            break
        res[:n, s - 1] = token_ranks(logits[:n].float(), y[s - 1 :], cap)
    return res


HEAD_KINDS: dict[str, type[Drafter]] = {c.kind: c for c in (MedusaDrafter, EagleDrafter, Eagle3Drafter)}
