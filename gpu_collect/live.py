"""Speculative decoding for real: two readable reference loops and one fast loop.

``speculative_decode`` (one fixed arm) and ``speculative_decode_tree`` exist to check the
traces: replaying a fixed arm on a trace must give exactly the rounds they take (greedy), and
the round-count distribution under sampling.  They re-read the whole context every round (no
KV cache): slower, obviously correct.

``decode_live`` is the timed loop: the target and every model drafter keep KV caches, the arm
is chosen every round by a callback (``choose``; ``feedback`` after the round), so a fixed arm
and any policy run the same code, and each round's draft and verify seconds are measured.
Greedy and chain arms only (for now); it imports nothing of the simulator: the policy-driven
driver is ``experiments.live``.
"""

from __future__ import annotations

import functools
import inspect
import time
from dataclasses import dataclass, field

import torch

from .drafters import Drafter
from .models import Loaded
from .sampling import Sampling


@dataclass
class LiveResult:
    output_ids: list[int]
    rounds: int
    emitted: list[int] = field(default_factory=list)  # tokens per round, bonus included


def _emit(res: LiveResult, new: list[int], eos: int | None) -> bool:
    """Append a round's tokens (cut after EOS); True when the output has ended."""
    if eos is not None and eos in new:
        new = new[: new.index(eos) + 1]
    res.output_ids.extend(new)
    res.emitted.append(len(new))
    return eos is not None and res.output_ids[-1] == eos


@torch.no_grad()
def speculative_decode(target: Loaded, drafter: Drafter | None, prompt_ids: list[int], k: int,
                       max_new_tokens: int, temperature: float = 0.0, seed: int = 0, *, top_k: int = 0,
                       top_p: float = 1.0) -> LiveResult:
    """Decode with arm ``(drafter, k)`` until EOS or ``max_new_tokens``.

    Greedy: accept the leading drafts equal to the target's argmax, then its next token.
    Sampling (Leviathan et al. 2023, Alg. 1): accept draft ``x`` w.p. ``min(1, p(x)/q(x))``;
    at the first rejection sample from ``(p - q)+``; if all ``k`` pass, sample a bonus from p.
    ``p`` and the drafter's ``q`` are warped alike by ``temperature``, ``top_k`` and ``top_p``
    (``gpu_collect.sampling``, as transformers' assisted generation), so the output follows
    the warped target.  Deterministic drafters (n-gram) have ``q`` = one-hot on their draft.
    """
    s = Sampling(temperature, top_k, top_p)
    gen = torch.Generator().manual_seed(seed)
    eos = target.tokenizer.eos_token_id
    out: list[int] = []
    res = LiveResult(out, 0)
    while len(out) < max_new_tokens:
        ctx = prompt_ids + out
        kk = min(k, max_new_tokens - len(out) - 1)  # never draft past the length limit
        draft, qs = drafter.draft(ctx, kk, s, gen) if drafter and kk > 0 else ([], None)
        ids = torch.tensor([ctx + draft], device=target.device)
        logits = target.model(ids, use_cache=False).logits[0, len(ctx) - 1 :].float()
        res.rounds += 1
        new: list[int] = []
        if temperature == 0:
            pred = logits.argmax(-1).tolist()
            while len(new) < len(draft) and draft[len(new)] == pred[len(new)]:
                new.append(draft[len(new)])
            new.append(pred[len(new)])  # the target's own token: correction or bonus
        else:
            p = s.probs(logits).cpu()
            for j, x in enumerate(draft):
                q = qs[j].cpu() if qs else torch.nn.functional.one_hot(torch.tensor(x), p.shape[1]).float()
                if torch.rand(1, generator=gen).item() < min(1.0, (p[j, x] / q[x]).item()):
                    new.append(x)
                    continue
                residual = torch.clamp(p[j] - q, min=0)
                new.append(int(torch.multinomial(residual / residual.sum(), 1, generator=gen)))
                break
            else:
                new.append(int(torch.multinomial(p[len(draft)], 1, generator=gen)))
        if _emit(res, new, eos):
            break
    return res


@torch.no_grad()
def speculative_decode_tree(target: Loaded, drafter: Drafter, prompt_ids: list[int], tree_name: str,
                            max_new_tokens: int) -> LiveResult:
    """Greedy decoding that drafts and verifies a static tree for real (``traces.trees``).

    Drafting: a drafter that reads tokens only fills each node of rank path ``(r_1..r_j)`` with
    its ``r_j``-th best token after the prefix and the node's parent path; retrieval drafters
    and hidden-state heads (``fills_tree``) fill the tree themselves (Medusa: head ``j-1``'s
    ``r_j``-th token; EAGLE: the ``r_j``-th token after the parent path, own features); a
    single-candidate drafter (n-gram) drafts one chain from the prefix along the all-0 path.
    Verification
    (readable, not fast): from the root, the target's greedy token after the context and the
    current node's path is accepted if a drafted child carries it, and the walk goes on there;
    otherwise it is the round's correction or bonus token.  This is the outcome a tree-attention
    pass over all nodes gives under greedy verification.  No KV cache: slow, obviously correct.
    """
    from traces.trees import load_tree

    tree = load_tree(tree_name)
    eos = target.tokenizer.eos_token_id
    out: list[int] = []
    res = LiveResult(out, 0)
    children: dict[tuple[int, ...], list[int]] = {}
    for p in tree.paths:
        children.setdefault(p[:-1], []).append(p[-1])
    while len(out) < max_new_tokens:
        ctx = prompt_ids + out
        room = max_new_tokens - len(out) - 1  # never draft past the length limit
        tokens: dict[tuple[int, ...], int] = {}  # rank path -> drafted token
        if drafter.fills_tree:  # retrieval (one lookup) and heads fill the whole tree themselves
            tokens = {p: x for p, x in drafter.draft_tree(ctx, tree.paths, tree.depth).items() if len(p) <= room}
        elif drafter.ranks_kind:
            for path in sorted(tree.paths, key=len):
                if len(path) > room:
                    continue
                parent = path[:-1]
                if parent and parent not in tokens:
                    continue
                cand = drafter.candidates(ctx + [tokens[parent[:i]] for i in range(1, len(parent) + 1)],
                                          max(children[parent]) + 1)
                if path[-1] < len(cand):
                    tokens[path] = cand[path[-1]]
        else:
            depth = 0
            while (0,) * (depth + 1) in tree.paths:
                depth += 1
            chain, _ = drafter.draft(ctx, min(depth, room), 0.0, None) if room > 0 else ([], None)
            tokens = {(0,) * (i + 1): x for i, x in enumerate(chain)}
        # verify: walk down from the root; at each node the target's greedy token after the
        # context and the node's path decides which drafted child, if any, is accepted
        res.rounds += 1
        node: tuple[int, ...] = ()
        new: list[int] = []
        while True:
            path = [tokens[node[:i]] for i in range(1, len(node) + 1)]
            logits = target.model(torch.tensor([ctx + path], device=target.device), use_cache=False).logits[0, -1]
            want = int(logits.argmax())
            new.append(want)  # accepted draft token, or the target's own: correction or bonus
            nxt = next((c for c in ((*node, r) for r in children.get(node, [])) if tokens.get(c) == want), None)
            if nxt is None:
                break
            node = nxt
        if _emit(res, new, eos):
            break
    return res


# -- KV-cached live decoding: any arm every round -----------------------------------------
#: an arm of the live loop: (drafter name, k); drafter ``None`` or ``"plain"`` with k = 0 is plain decoding
LiveArm = tuple[str | None, int]


@dataclass
class RoundState:
    """What ``choose`` sees before a round: the round's index (0-based), the tokens emitted so
    far and the context length (prompt + output)."""

    round: int
    emitted: int
    context_len: int


@dataclass
class RoundRecord:
    """One round of :func:`decode_live`: the arm's index, tokens drafted, drafts accepted,
    tokens emitted (accepted + the target's own, cut at EOS and at the length limit), and the
    measured draft and verify seconds (synchronised on CUDA)."""

    arm: int
    drafted: int
    accepted: int
    emitted: int
    draft_s: float
    verify_s: float


@dataclass
class LiveRun:
    """One prompt decoded live: the output, the per-round records and the wall clock (seconds,
    prefill included)."""

    output_ids: list[int]
    rounds: list[RoundRecord] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def arms(self) -> list[int]:
        return [r.arm for r in self.rounds]

    @property
    def emitted(self) -> list[int]:
        return [r.emitted for r in self.rounds]


@functools.cache
def _cache_keyword(cls: type) -> str:
    """``cache`` since transformers 5.25 (``past_key_values`` before): looked up once per model
    class, not inside the timed forwards."""
    return "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"


def _forward(model, ids: list[int], cache, keep: int):
    """One cached forward of ``ids``; ``cache`` (a transformers ``DynamicCache``) grows in place."""
    from transformers import DynamicCache

    if cache is None:
        cache = DynamicCache()
    kw = _cache_keyword(type(model))
    o = model(input_ids=torch.tensor([ids], device=model.device), use_cache=True, logits_to_keep=keep,
              **{kw: cache})
    return o.logits[0], cache


def _crop(cache, length: int) -> None:
    """Drop the cached positions from ``length`` on (``Cache.crop`` takes the count to remove)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


class _CachedDraftModel:
    """A model drafter's greedy drafting with its own KV cache: each round it keeps the cached
    prefix the new context shares (the drafts the target accepted), crops the rest and feeds
    only the new tokens."""

    def __init__(self, model) -> None:
        self.model = model
        self.reset()

    def reset(self) -> None:
        self.cache, self.tokens = None, []

    def draft(self, ctx: list[int], k: int) -> list[int]:
        n = 0
        m = min(len(self.tokens), len(ctx) - 1)  # at least one token is fed, for its logits
        while n < m and self.tokens[n] == ctx[n]:
            n += 1
        if self.cache is not None:
            _crop(self.cache, n)
        feed, out = ctx[n:], []
        for _ in range(k):
            logits, self.cache = _forward(self.model, feed, self.cache, 1)
            out.append(int(logits[-1].argmax()))
            feed = out[-1:]
        self.tokens = ctx + out[:-1]  # the last draft was never fed
        return out


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def live_drafters(drafters) -> dict[str, object]:
    """The live-loop drafting function of each prepared drafter: model drafters (hf, early,
    skip, quant) draft with their own KV cache; n-gram, PLD, REST and suffix look up the
    context.  Hidden-state heads (medusa, eagle) are not supported by the live loop yet."""
    from .drafters import ModelDrafter
    from .errors import CollectError
    from .head_drafters import HEAD_KINDS

    out: dict[str, object] = {}
    for d in drafters:
        if d.kind in HEAD_KINDS:
            raise CollectError(f"drafter {d.spec}: the live loop does not run hidden-state heads yet; "
                               "expected a token-input drafter (hf, early, skip, quant, ngram, pld, rest, suffix)")
        out[d.name] = _CachedDraftModel(d.model_) if isinstance(d, ModelDrafter) else d
    return out


@torch.no_grad()
def decode_live(target: Loaded, drafters: dict[str, object], arms: list[LiveArm], prompt_ids: list[int],
                max_new_tokens: int, choose, feedback=None) -> LiveRun:
    """Greedy speculative decoding with KV caches, the arm chosen every round.

    Parameters
    ----------
    target : Loaded
        The target model (CPU or CUDA; the same code).
    drafters : dict
        ``live_drafters([...])``: drafter name -> its drafting object (reset per prompt here).
    arms : list of (drafter name or None, k)
        The arm set; ``(None, 0)`` (or ``("plain", 0)``) is plain decoding.
    prompt_ids : list of int
        The prompt's token ids.
    max_new_tokens : int
        Output length limit; drafts never run past it.
    choose : callable
        ``choose(RoundState) -> int``: the arm index of this round (a fixed arm: ``lambda s: i``).
    feedback : callable, optional
        ``feedback(arm, drafted, accepted, emitted)`` after each round (a policy's update).

    Returns
    -------
    LiveRun
        Output (equal to plain greedy decoding), per-round records and wall clock.

    Greedy verification: the leading drafts equal to the target's argmax are accepted, then the
    target's own token.  The target's cache holds every token but the newest; rejected drafts
    are cropped from it.
    """
    from .errors import CollectError

    for fn in drafters.values():
        if hasattr(fn, "reset"):
            fn.reset()
    dev = target.device
    eos = target.tokenizer.eos_token_id
    out: list[int] = []
    res = LiveRun(out)
    cache, n_cached = None, 0
    t_start = time.perf_counter()
    while len(out) < max_new_tokens:
        ctx = prompt_ids + out
        a = int(choose(RoundState(len(res.rounds), len(out), len(ctx))))
        if not 0 <= a < len(arms):
            raise CollectError(f"live decoding: choose returned arm {a}; expected 0..{len(arms) - 1}")
        name, k = arms[a]
        kk = min(k, max_new_tokens - len(out) - 1)
        t0 = time.perf_counter()
        if name in (None, "plain") or kk <= 0:
            draft: list[int] = []
        else:
            fn = drafters[name]
            draft = fn.draft(ctx, kk) if isinstance(fn, _CachedDraftModel) else list(fn.draft(ctx, kk, 0.0, None)[0])
            draft = draft[:kk]
        _sync(dev)
        t1 = time.perf_counter()
        logits, cache = _forward(target.model, ctx[n_cached:] + draft, cache, len(draft) + 1)
        pred = logits.argmax(-1).tolist()  # a host copy: synchronises
        acc = 0
        while acc < len(draft) and draft[acc] == pred[acc]:
            acc += 1
        n_cached = len(ctx) + acc  # the newest token (the target's own) is fed next round
        _crop(cache, n_cached)
        t2 = time.perf_counter()
        new = draft[:acc] + [pred[acc]]
        if eos is not None and eos in new:
            new = new[: new.index(eos) + 1]
        out.extend(new)
        res.rounds.append(RoundRecord(a, len(draft), acc, len(new), t1 - t0, t2 - t1))
        if feedback is not None:
            feedback(a, len(draft), acc, len(new))
        if eos is not None and out[-1] == eos:
            break
    res.wall_s = time.perf_counter() - t_start
    return res
