"""Train a Medusa or EAGLE head for a target by self-distillation, on the CPU if need be.

    python -m gpu_collect train-head --kind medusa --target smollm2-135m --out DIR
    python -m gpu_collect train-head --kind eagle  --target smollm2-135m --out DIR

Data: the target's own greedy outputs (``max_new_tokens``) on a training prompt set that is
not the evaluation set (default ``builtin:specregret-train``); every ``held_every``-th prompt
is held out for the acceptance report.  The outputs are kept in ``DIR/distill.json`` and
reused by a rerun with the same recipe.  Training is deterministic from ``--seed`` (same
machine and thread count): AdamW, a fixed number of steps, minibatches drawn from a seeded
generator.  The head's vocabulary projection is the target's ``lm_head``, copied and frozen
(Medusa heads keep their own copy, as Medusa-1 checkpoints do), so what trains is small:

* Medusa: ``ResBlock`` ``i`` (zero-initialised, as Medusa does) with cross-entropy on the
  target's token ``t + 2 + i`` from the feature that predicts ``t + 1``;
* EAGLE(-3): ``fc`` and the decoder layer (EAGLE-3: and its ``norm``), cross-entropy on the
  target's token at depths ``1 .. train_depth`` drafted with the head's own features
  ("training-time test", as EAGLE-3), weights ``0.8^(s-1)`` (no feature regression).

The target itself is frozen (no gradient reaches its embedding or lm_head).

``DIR/recipe.json`` records the recipe, the hashes of the data and the weights, the time,
and the held-out report (accepted tokens per round of chain arms, top-1 rate per depth); the
collector copies it into the trace's manifest.  Weights are written in the published layout
(``gpu_collect.head_ckpt``) and are never committed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import prompts as P
from .errors import CollectError
from .head_ckpt import save_head
from .heads import EagleHead, HeadConfig, MedusaHeads
from .models import load_model


def head_config(kind: str, target, heads: int) -> HeadConfig:
    """The target's own shape, rotary base and norm epsilon (read from its config as saved)."""
    from .head_ckpt import rope_theta

    c = target.model.config
    return HeadConfig(hidden_size=c.hidden_size, vocab_size=c.vocab_size, num_attention_heads=c.num_attention_heads,
                      num_key_value_heads=getattr(c, "num_key_value_heads", c.num_attention_heads),
                      intermediate_size=c.intermediate_size, rms_norm_eps=c.rms_norm_eps,
                      rope_theta=rope_theta(c.to_dict()),
                      head_dim=getattr(c, "head_dim", None), bias=True,
                      medusa_num_heads=heads if kind == "medusa" else 0, medusa_num_layers=1)


def config_json(kind: str, cfg: HeadConfig, target) -> dict:
    """The checkpoint's ``config.json`` in its project's layout."""
    base = {"hidden_size": cfg.hidden_size, "vocab_size": cfg.vocab_size,
            "base_model_name_or_path": target.info.get("id")}
    if kind == "medusa":
        return {**base, "medusa_num_heads": cfg.medusa_num_heads, "medusa_num_layers": cfg.medusa_num_layers}
    out = {**base, "architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 1,
           "num_attention_heads": cfg.num_attention_heads, "num_key_value_heads": cfg.num_key_value_heads,
           "intermediate_size": cfg.intermediate_size, "rms_norm_eps": cfg.rms_norm_eps,
           "rope_theta": cfg.rope_theta, "hidden_act": "silu", "bias": cfg.bias}
    if cfg.head_dim:
        out["head_dim"] = cfg.head_dim
    if kind == "eagle3":
        out.update(draft_vocab_size=cfg.vocab_size, target_hidden_size=cfg.hidden_size)
    return out


def init_head(kind: str, target, heads: int = 4, seed: int = 0) -> torch.nn.Module:
    """A fresh head whose output starts at the target's own features (a sane first guess)."""
    torch.manual_seed(seed)
    cfg = head_config(kind, target, heads)
    tgt = target.model
    lm = tgt.get_output_embeddings().weight.detach()
    if kind == "medusa":
        m = MedusaHeads(cfg)
        for seq in m.medusa_head:
            torch.nn.init.zeros_(seq[0].linear.weight)
            torch.nn.init.zeros_(seq[0].linear.bias)
            seq[-1].weight.data.copy_(lm)
            seq[-1].weight.requires_grad_(False)
        return m.to(lm.device, lm.dtype)
    fused = kind == "eagle3"
    h = cfg.hidden_size
    m = EagleHead(cfg, fused=fused, embed=tgt.get_input_embeddings(), lm_head=tgt.get_output_embeddings())
    with torch.no_grad():
        m.fc.weight.zero_()
        m.fc.weight[:, (2 if fused else 1) * h :] = torch.eye(h)  # out = feature (EAGLE-3: the high layer)
        if m.fc.bias is not None:
            m.fc.bias.zero_()
        m.layer.self_attn.o_proj.weight.mul_(0.1)
        m.layer.mlp.down_proj.weight.mul_(0.1)
        if fused:
            m.lm_head.weight.copy_(lm)
            m.norm.weight.copy_(tgt.model.norm.weight)
            m.lm_head.weight.requires_grad_(False)
    return m.to(lm.device, lm.dtype)


# -- data -----------------------------------------------------------------------------------
def distill(target, prompts: str, max_new: int, out: Path, batch: int = 8) -> dict:
    """The target's greedy outputs on the training prompts, cached under the cache root by
    (target, prompt set, length) so that every head of a target shares them, and copied to
    ``out/distill.json``."""
    from .collector import generate_greedy
    from .models import cache_root

    questions, pset = P.load_questions(prompts)
    key = json.loads(json.dumps({"target": target.info.get("sha256") or target.info.get("id"), "prompts": pset,
                                 "max_new_tokens": max_new}))
    shared = cache_root() / "distill" / (hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
                                         + ".json")
    out.mkdir(parents=True, exist_ok=True)
    for path in (out / "distill.json", shared):
        if path.is_file():
            cached = json.loads(path.read_text())
            if cached.get("key") == key:
                (out / "distill.json").write_text(path.read_text())
                return cached
    tok = target.tokenizer
    ids = [P.chat_ids(tok, [{"role": "user", "content": q.turns[0]}]) for q in questions]
    outs: list[list[int]] = []
    for b in tqdm(range(0, len(ids), batch), desc="distill: generate", unit="batch"):
        outs += generate_greedy(target, ids[b : b + batch], max_new)
    data = {"key": key, "question_ids": [q.question_id for q in questions],
            "categories": [q.category for q in questions], "prompt_ids": ids, "output_ids": outs}
    text = json.dumps(data)
    (out / "distill.json").write_text(text)
    try:
        shared.parent.mkdir(parents=True, exist_ok=True)
        shared.write_text(text)
    except OSError:
        pass  # the shared cache is an optimisation only
    return data


@torch.no_grad()
def features(kind: str, target, prompt: list[int], output: list[int]) -> torch.Tensor:
    from .head_drafters import Eagle3Drafter, HeadDrafter

    o = target.model(torch.tensor([prompt + output], device=target.device), output_hidden_states=True,
                     use_cache=False)
    pick = Eagle3Drafter.pick if kind == "eagle3" else HeadDrafter.pick
    return pick(None, o.hidden_states)[0]


# -- losses ---------------------------------------------------------------------------------
def medusa_loss(head: MedusaHeads, F: torch.Tensor, ids: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Mean CE of head ``i`` predicting ``ids[r + 2 + i]`` from ``F[r]`` (rows with a target)."""
    losses = []
    for i, m in enumerate(head.medusa_head):
        r = rows[rows + 2 + i < len(ids)]
        if len(r):
            losses.append(torch.nn.functional.cross_entropy(m(F[r]).float(), ids[r + 2 + i]))
    return torch.stack(losses).mean()


def eagle_loss(head: EagleHead, F: torch.Tensor, ids: list[int], P_len: int, t: torch.Tensor,
               depth: int) -> torch.Tensor:
    from .head_drafters import eagle_depth_logits

    y = torch.tensor(ids[P_len:], device=F.device)
    total, weight = 0.0, 0.0
    for s, logits in eagle_depth_logits(head, F, ids, P_len, depth, t):
        ok = t + s - 1 < len(y)
        if ok.any():
            w = 0.8 ** (s - 1)
            total = total + w * torch.nn.functional.cross_entropy(logits[ok].float(), y[t[ok] + s - 1])
            weight += w
    return total / max(weight, 1e-9)


# -- the report -------------------------------------------------------------------------------
def report(kind: str, head, target, seqs: list[tuple[list[int], list[int]]], depth: int) -> dict:
    """Held-out acceptance: mean accepted draft tokens per round of chain arms ``@1..@depth``
    (averaged over positions) and the top-1 rate at each depth."""
    from .drafter_base import Seq
    from .head_drafters import HEAD_KINDS

    d = HEAD_KINDS[kind](spec=f"{kind}:held-out", name=kind, arg="")
    d.target_, d.head_, d.k_max_, d.cache_ = target, head, depth, (None, None, None)
    ranks = np.concatenate([d.ranks(Seq(p, y, target), 16) for p, y in seqs])
    lead = np.cumprod(ranks == 0, axis=1).sum(axis=1)
    return {"positions": int(len(ranks)),
            "accepted_per_round": {f"@{k}": round(float(np.minimum(lead, k).mean()), 4) for k in range(1, depth + 1)},
            "top1_by_depth": [round(float((ranks[:, j] == 0).mean()), 4) for j in range(depth)]}


# -- main -----------------------------------------------------------------------------------
def train(kind: str, target_spec: str, out: Path, *, prompts: str = "builtin:specregret-train", heads: int = 4,
          steps: int = 200, lr: float = 1e-3, rows: int = 128, seqs_per_step: int = 2, positions: int = 48,
          train_depth: int = 3, max_new_tokens: int = 128, held_every: int = 8, seed: int = 0,
          progress: bool = True, target=None) -> dict:
    if kind not in ("medusa", "eagle", "eagle3"):
        raise CollectError(f"--kind: expected medusa, eagle or eagle3, got {kind!r}")
    if (out / "recipe.json").exists() and any(out.glob("*.safetensors")):
        raise CollectError(f"{out}: a trained head is already there; choose another --out or remove it")
    t0 = time.perf_counter()
    target = target or load_model(target_spec, torch.device("cpu"), torch.float32)
    target.model.requires_grad_(False)  # the head reuses its embedding / lm_head: no gradient there
    data = distill(target, prompts, max_new_tokens, out)
    pairs = list(zip(data["prompt_ids"], data["output_ids"], strict=True))
    held = [p for i, p in enumerate(pairs) if i % held_every == 0]
    train_set = [p for i, p in enumerate(pairs) if i % held_every != 0]
    feats = [features(kind, target, p, y) for p, y in tqdm(train_set, desc="distill: features", disable=not progress)]
    t_data = time.perf_counter() - t0
    head = init_head(kind, target, heads, seed)
    params = [p for p in head.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    dev = feats[0].device
    if kind == "medusa":  # every row whose feature predicts an output token's predecessor
        index = [(i, r) for i, (p, y) in enumerate(train_set) for r in range(len(p) - 2, len(p) + len(y) - 2)]
    bar = tqdm(range(steps), desc=f"train {kind}", disable=not progress)
    for _ in bar:
        if kind == "medusa":
            pick = torch.randint(len(index), (rows,), generator=gen)
            by_seq: dict[int, list[int]] = {}
            for j in pick.tolist():
                by_seq.setdefault(index[j][0], []).append(index[j][1])
            loss = torch.stack([medusa_loss(head, feats[i], torch.tensor(train_set[i][0] + train_set[i][1], device=dev),
                                            torch.tensor(r, device=dev)) for i, r in by_seq.items()]).mean()
        else:
            losses = []
            for i in torch.randint(len(train_set), (seqs_per_step,), generator=gen).tolist():
                p, y = train_set[i]
                t = torch.randperm(len(y), generator=gen)[:positions]
                losses.append(eagle_loss(head, feats[i], p + y, len(p), t, train_depth))
            loss = torch.stack(losses).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    head.eval()
    rep = report(kind, head, target, held, heads if kind == "medusa" else 4)
    cfg = head_config(kind, target, heads)
    wfile = save_head(head, out, kind, config_json(kind, cfg, target))
    from .models import sha256_file

    recipe = {"kind": kind, "target": {k: target.info.get(k) for k in ("id", "sha256", "revision")},
              "prompts": data["key"]["prompts"], "max_new_tokens": max_new_tokens,
              "held_out": f"every {held_every}th prompt (index % {held_every} == 0): {len(held)} prompts",
              "train_prompts": len(train_set), "steps": steps, "lr": lr, "seed": seed,
              "batch": {"rows": rows} if kind == "medusa" else {"sequences": seqs_per_step, "positions": positions,
                                                               "train_depth": train_depth},
              "heads": heads if kind == "medusa" else None, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "transformers": __import__("transformers").__version__,
              "distill_sha256": hashlib.sha256((out / "distill.json").read_bytes()).hexdigest(),
              "frozen": "vocabulary projection (the target's lm_head, copied)"}
    recipe["recipe_sha256"] = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    recipe.update(weights_sha256=sha256_file(wfile), train_s=round(time.perf_counter() - t0, 1),
                  data_s=round(t_data, 1),
                  held_out_report=rep, command=f"python -m gpu_collect train-head --kind {kind} --target {target_spec} "
                  f"--prompts {prompts} --steps {steps} --seed {seed} --out DIR")
    (out / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")
    return recipe


def add_arguments(ap: argparse.ArgumentParser) -> None:
    from traces import clikit as ck

    ap.add_argument("--kind", required=True, choices=("medusa", "eagle", "eagle3"), help="head kind")
    ap.add_argument("--target", required=True, help="model id, local directory or smollm2-135m")
    ap.add_argument("--out", required=True, help="checkpoint directory to write")
    ap.add_argument("--prompts", default="builtin:specregret-train",
                    help="training prompts (default builtin:specregret-train; not the evaluation set)")
    ap.add_argument("--heads", type=ck.positive_int, default=4, help="Medusa heads (default 4)")
    ap.add_argument("--steps", type=ck.positive_int, default=200, help="optimizer steps (default 200)")
    ap.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    ap.add_argument("--max-new-tokens", type=ck.positive_int, default=128, help="distillation output length")
    ap.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    ap.add_argument("--threads", type=ck.positive_int, default=None,
                    help="torch CPU threads (at most this machine's CPUs)")


def run_cli(a: argparse.Namespace) -> int:
    from .collect_cmd import local_threads

    a.threads = local_threads(a.threads)
    if a.threads:
        torch.set_num_threads(a.threads)
    r = train(a.kind, a.target, Path(a.out), prompts=a.prompts, heads=a.heads, steps=a.steps, lr=a.lr,
              max_new_tokens=a.max_new_tokens, seed=a.seed)
    print(f"wrote {a.out} in {r['train_s']} s; held-out ({r['held_out_report']['positions']} positions): "
          f"accepted per round {r['held_out_report']['accepted_per_round']}, "
          f"top-1 by depth {r['held_out_report']['top1_by_depth']}")
    return 0
