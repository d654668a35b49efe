"""A small, readable speculative-decoding loop that runs one fixed arm for real.

It exists to check the traces: replaying a fixed arm on a trace must give exactly the
rounds this loop takes (greedy), and the round-count distribution under sampling.  The
target re-reads the whole context every round (no KV cache): slower, obviously correct.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .drafters import Drafter
from .models import Loaded


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
                       max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> LiveResult:
    """Decode with arm ``(drafter, k)`` until EOS or ``max_new_tokens``.

    Greedy: accept the leading drafts equal to the target's argmax, then its next token.
    Sampling (Leviathan et al. 2023, Alg. 1): accept draft ``x`` w.p. ``min(1, p(x)/q(x))``;
    at the first rejection sample from ``(p - q)+``; if all ``k`` pass, sample a bonus from p.
    Deterministic drafters (n-gram) have ``q`` = one-hot on their draft.
    """
    gen = torch.Generator().manual_seed(seed)
    eos = target.tokenizer.eos_token_id
    out: list[int] = []
    res = LiveResult(out, 0)
    while len(out) < max_new_tokens:
        ctx = prompt_ids + out
        kk = min(k, max_new_tokens - len(out) - 1)  # never draft past the length limit
        draft, qs = drafter.draft(ctx, kk, temperature, gen) if drafter and kk > 0 else ([], None)
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
            p = torch.softmax(logits / temperature, -1).cpu()
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
