"""Synthetic traces with known laws, in the same ``Trace`` type as real ones.

Every generator draws per-position correct-prediction bits ``b_d(t) ~ Bernoulli(p_d(t))``
and stores ``L_d(t)`` = run of ones starting at ``t``, capped at ``k_max``.  With i.i.d.
bits, replaying any policy on such a trace is exactly the stochastic bandit with
truncated-geometric arms (BanditSpec Prop. 4.5): a round at ``t`` only reads bits at
``t .. t+min(K, L)`` and the next round starts past them, so every round sees fresh bits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .accept import run_lengths
from .manifest import make_manifest
from .schema import RANK_CAP
from .trace import Trace

DEFAULT_CATEGORIES = ("chat", "code", "math", "summarization", "translation")


def _assemble(
    probs: list[np.ndarray],
    drafters: Sequence[str],
    categories: Sequence[str],
    k_max: int,
    rng: np.random.Generator,
    *,
    name: str,
    generator: str,
    params: dict,
    seed: int,
    vocab: int = 512,
    with_costs: bool = True,
    draft_ms: Sequence[float] | None = None,
) -> Trace:
    """Draw bits from per-prompt probability arrays of shape (D, N_p) and build a Trace."""
    D = len(drafters)
    lens = np.array([p.shape[1] for p in probs])
    T = int(lens.max())
    accept = np.full((len(probs), D, T), -1, dtype=np.int16)
    for i, p in enumerate(probs):
        bits = rng.random(p.shape) < p
        accept[i, :, : lens[i]] = run_lengths(bits, k_max)
    prompts = pd.DataFrame(
        {
            "prompt_id": [f"syn-{i:04d}" for i in range(len(probs))],
            "category": list(categories),
            "turn": 0,
            "prompt_len": rng.integers(16, 256, size=len(probs)),
            "output_len": lens,
            "finish_reason": "length",
            "output_ids": [rng.integers(3, vocab, size=n).tolist() for n in lens],
        }
    )
    manifest = make_manifest(
        kind="greedy",
        synthetic=True,
        target={"id": "synthetic", "revision": None, "sha256": None},
        drafters=[{"name": d, "kind": "synthetic", "params": {}} for d in drafters],
        k_max=k_max,
        decoding={"temperature": 0.0, "max_new_tokens": T, "chat_template": False},
        prompt_set={"name": f"synthetic:{generator}", "sha256": None},
        seed=seed,
        name=name,
        description=f"SYNTHETIC trace from traces.synthetic.{generator}; not model output.",
        generator={"name": generator, **params},
    )
    costs = nominal_costs(drafters, k_max, draft_ms) if with_costs else None
    # one-step ranks of the target token (0 where the drafter's top-1 is right, else a
    # geometric rank 1, 2, ...), from a stream of their own so the bits above are unchanged
    rrng = np.random.default_rng(np.random.SeedSequence([seed or 0, 0x72616E6B]))
    ranks = np.full(accept.shape + (1,), -1, dtype=np.int16)
    for i, n in enumerate(lens):
        miss = rrng.geometric(0.5, size=(D, n))
        ranks[i, :, :n, 0] = np.where(accept[i, :, :n] >= 1, 0, np.minimum(miss, RANK_CAP))
    manifest["rank_cap"] = RANK_CAP
    for d in manifest["drafters"]:
        d.update(rank_depth=1, ranks="token-input")
    return Trace(manifest, prompts, accept, costs=costs, ranks=ranks)


def nominal_costs(
    drafters: Sequence[str], k_max: int, draft_ms: Sequence[float] | None = None,
    decode_ms: float = 30.0, verify_slope: float = 0.04,
) -> pd.DataFrame:
    """A nominal memory-bound cost table (device ``nominal``).

    Verifying ``k+1`` tokens costs ``decode_ms * (1 + verify_slope * k)``; drafting one
    token of drafter ``d`` costs ``draft_ms[d]`` (default: 10% of a decode step).
    """
    draft_ms = list(draft_ms) if draft_ms is not None else [0.1 * decode_ms] * len(drafters)
    rows = [("nominal", "verify", "", k, 1, 0, decode_ms * (1 + verify_slope * k))
            for k in range(k_max + 1)]
    rows += [("nominal", "draft", d, 1, 1, 0, float(ms)) for d, ms in zip(drafters, draft_ms, strict=True)]
    return pd.DataFrame(rows, columns=["device", "kind", "drafter", "k", "batch_size",
                                       "context_len", "ms"])


def tgd(
    p: Sequence[float] | np.ndarray,
    *,
    n_prompts: int = 8,
    output_len: int | Sequence[int] = 256,
    k_max: int = 8,
    seed: int = 0,
    categories: Sequence[str] | None = None,
    drafters: Sequence[str] | None = None,
    name: str = "synthetic-tgd",
    draft_ms: Sequence[float] | None = None,
) -> Trace:
    """Truncated-geometric arms: drafter ``d`` predicts each token correctly w.p. ``p[d]``.

    ``p`` is ``(D,)`` (same for every prompt) or ``(n_prompts, D)``.  Arm ``d@K`` then
    emits ``x`` tokens with ``P(x) = p^(x-1)(1-p)`` for ``x <= K`` and ``P(K+1) = p^K``.
    """
    p = np.asarray(p, dtype=float)
    p = np.broadcast_to(p, (n_prompts, p.shape[-1]))
    D = p.shape[1]
    drafters = list(drafters or [f"tgd{i}" for i in range(D)])
    lens = np.broadcast_to(np.asarray(output_len), (n_prompts,))
    cats = list(categories or [DEFAULT_CATEGORIES[i % len(DEFAULT_CATEGORIES)] for i in range(n_prompts)])
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    probs = [np.repeat(p[i][:, None], int(lens[i]), axis=1) for i in range(n_prompts)]
    return _assemble(probs, drafters, cats, k_max, rng, name=name, generator="tgd",
                     params={"p": p.tolist()}, seed=seed, draft_ms=draft_ms)


def markov(
    p_states: np.ndarray,
    transition: np.ndarray,
    *,
    n_prompts: int = 8,
    output_len: int = 256,
    k_max: int = 8,
    seed: int = 0,
    drafters: Sequence[str] | None = None,
    name: str = "synthetic-markov",
) -> Trace:
    """Markov-modulated arms: a hidden state ``s_t`` (shared by all drafters) follows
    ``transition`` and drafter ``d`` is correct w.p. ``p_states[d, s_t]``.

    Started from the stationary law, the per-round mean is stationary (Assumption 4.1)
    while acceptance is autocorrelated, as in real traces.
    """
    p_states = np.asarray(p_states, float)
    P_tr = np.asarray(transition, float)
    D, S = p_states.shape
    evals, evecs = np.linalg.eig(P_tr.T)
    pi = np.real(evecs[:, np.argmin(np.abs(evals - 1))])
    pi = pi / pi.sum()
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    probs = []
    for _ in range(n_prompts):
        s = np.empty(output_len, dtype=np.int64)
        s[0] = rng.choice(S, p=pi)
        u = rng.random(output_len)
        cum = np.cumsum(P_tr, axis=1)
        for t in range(1, output_len):
            s[t] = min(int(np.searchsorted(cum[s[t - 1]], u[t], side="right")), S - 1)
        probs.append(p_states[:, s])
    drafters = list(drafters or [f"mm{i}" for i in range(D)])
    cats = [DEFAULT_CATEGORIES[i % len(DEFAULT_CATEGORIES)] for i in range(n_prompts)]
    return _assemble(probs, drafters, cats, k_max, rng, name=name, generator="markov",
                     params={"p_states": p_states.tolist(), "transition": P_tr.tolist(),
                             "stationary": pi.tolist()}, seed=seed)


def switching(
    p_segments: np.ndarray,
    segment_len: int,
    *,
    n_prompts: int = 8,
    k_max: int = 8,
    seed: int = 0,
    drafters: Sequence[str] | None = None,
    name: str = "synthetic-switching",
) -> Trace:
    """Piecewise-stationary arms: segment ``j`` (``segment_len`` positions) uses
    acceptance rates ``p_segments[j]``; the best arm switches between segments."""
    p_segments = np.asarray(p_segments, float)
    n_seg, D = p_segments.shape
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    probs = [np.repeat(p_segments.T, segment_len, axis=1) for _ in range(n_prompts)]
    drafters = list(drafters or [f"sw{i}" for i in range(D)])
    cats = [DEFAULT_CATEGORIES[i % len(DEFAULT_CATEGORIES)] for i in range(n_prompts)]
    return _assemble(probs, drafters, cats, k_max, rng, name=name, generator="switching",
                     params={"p_segments": p_segments.tolist(), "segment_len": segment_len},
                     seed=seed)


def demo(seed: int = 0) -> Trace:
    """The bundled ``synthetic-demo`` trace: 40 prompts in 5 categories, 4 drafters whose
    quality depends on the category, so the best arm changes from prompt to prompt."""
    cats = DEFAULT_CATEGORIES
    # rows: categories; columns: drafters (strong, copy, mid, weak)
    table = np.array([
        [0.70, 0.15, 0.50, 0.10],   # chat
        [0.60, 0.75, 0.55, 0.15],   # code
        [0.72, 0.45, 0.60, 0.10],   # math
        [0.55, 0.85, 0.45, 0.10],   # summarization
        [0.50, 0.70, 0.60, 0.05],   # translation
    ])
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    n_per = 8
    cat_list = [c for c in cats for _ in range(n_per)]
    p = np.clip(np.repeat(table, n_per, axis=0) + rng.normal(0, 0.04, (len(cat_list), 4)), 0.01, 0.97)
    lens = rng.integers(96, 384, size=len(cat_list))
    tr = tgd(p, n_prompts=len(cat_list), output_len=lens, k_max=8, seed=seed, categories=cat_list,
             drafters=["strong", "copy", "mid", "weak"], name="synthetic-demo",
             draft_ms=[9.0, 0.05, 4.5, 1.5])
    return tr
