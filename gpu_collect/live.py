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
        if eos is not None and eos in new:
            new = new[: new.index(eos) + 1]
        out.extend(new)
        res.emitted.append(len(new))
        if eos is not None and out[-1] == eos:
            break
    return res
