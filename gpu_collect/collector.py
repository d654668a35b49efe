"""The collection loop: target output per prompt, every drafter scored at every position.

Per prompt it writes one shard atomically under ``OUT/shards/``, so an interrupted run
loses at most the prompt in flight and ``resume`` skips what is there.  At the end the
shards are merged into one trace in ``OUT`` (written and validated through ``traces``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm.auto import tqdm

import traces
from traces.accept import run_lengths
from traces.costcheck import cost_warnings
from traces.manifest import make_manifest, software_versions
from traces.schema import RANK_CAP

from . import prompts as P
from .drafters import Drafter, Seq, SuffixDrafter, make_drafter
from .models import CollectError, Loaded, load_model, resolve_device, resolve_dtype
from .sampling import Sampling, as_sampling, check_top_k, check_top_p

SHARDS = "shards"
# sampling temperatures accepted besides 0 (greedy): finite, and far from where logits / T
# overflows float32 (T below ~1e-36) or every token is equally likely
TEMPERATURE = (1e-3, 1e3)


@dataclass(frozen=True)
class CollectConfig:
    target: str
    drafters: tuple[str, ...]
    prompts: str
    max_new_tokens: int
    k_max: int
    out: str
    temperature: float = 0.0
    seed: int = 0
    limit: int | None = None
    stride: int = 1
    batch_size: int = 8
    device: str = "auto"
    dtype: str = "auto"
    resume: bool = False
    all_turns: bool = False
    costs: bool = True
    cost_contexts: tuple[int, ...] = (256,)
    cost_batch_sizes: tuple[int, ...] = (1,)
    cost_budget_s: float = 30.0  # seconds of timed repeats after the minimum (gpu_collect.timing.TimingBudget)
    cost_precision: float = 0.03  # repeats stop once a cell's median is known to +-this share
    name: str | None = None
    threads: int | None = None
    shard: tuple[int, int] = (0, 1)  # (I, N): questions with index % N == I (after stride/limit)
    question_begin: int | None = None  # Spec-Bench's --question-begin/--question-end: a slice of the
    question_end: int | None = None  # file's questions, taken before --stride, --per-category, --limit
    per_category: int | None = None  # at most N questions of each category (file order)
    revision: str | None = None  # a hub id's branch/tag/commit (recorded only for a local folder)
    attn_implementation: str | None = None  # passed to from_pretrained (eager, sdpa, ...)
    device_map: str | None = None  # "auto": a target spread over several GPUs (CUDA only)
    chat_template: bool = True  # False: the turns as plain text, not through the tokenizer's template
    system_prompt: str | None = None  # a system message before the first turn
    top_k: int = 0  # sampling only: keep the top_k most likely tokens (0 = off; gpu_collect.sampling)
    top_p: float = 1.0  # sampling only: nucleus mass in (0, 1] (1 = off)

    def __post_init__(self) -> None:
        if not self.drafters:
            raise CollectError("at least one --drafter is needed")
        if not 1 <= self.k_max <= 127:
            raise CollectError(f"--k-max: expected 1..127, got {self.k_max}")
        if self.max_new_tokens < 1:
            raise CollectError(f"--max-new-tokens: expected >= 1, got {self.max_new_tokens}")
        if not (self.temperature == 0 or TEMPERATURE[0] <= self.temperature <= TEMPERATURE[1]):  # nan, inf too
            lo, hi = TEMPERATURE
            raise CollectError(f"--temperature: expected 0 (greedy) or a number in {lo:g}..{hi:g}, "
                               f"got {self.temperature}")
        check_top_k(self.top_k)
        check_top_p(self.top_p)
        for flag, v, off in (("--top-k", self.top_k, 0), ("--top-p", self.top_p, 1)):
            if self.temperature == 0 and v != off:
                raise CollectError(f"{flag} {v}: applies to sampling only (greedy decoding ignores it); "
                                   f"expected --temperature > 0, or drop {flag}")
        if self.batch_size < 1:
            raise CollectError(f"--batch-size: expected >= 1, got {self.batch_size}")
        if self.stride < 1:
            raise CollectError(f"--stride: expected >= 1, got {self.stride}")
        if self.limit is not None and self.limit < 1:
            raise CollectError(f"--limit: expected >= 1, got {self.limit}")
        if not 0 <= self.cost_budget_s <= 86400:  # nan too
            raise CollectError(f"--cost-budget: expected 0..86400 seconds, got {self.cost_budget_s}")
        if not 0 < self.cost_precision < 1:
            raise CollectError(f"--cost-precision: expected a share in (0, 1), e.g. 0.03, got {self.cost_precision}")
        for flag, v in (("--question-begin", self.question_begin), ("--question-end", self.question_end)):
            if v is not None and v < 0:
                raise CollectError(f"{flag}: expected an integer >= 0, got {v}")
        if self.per_category is not None and self.per_category < 1:
            raise CollectError(f"--per-category: expected >= 1, got {self.per_category}")
        i, n = self.shard
        if not (n >= 1 and 0 <= i < n):
            raise CollectError(f"--shard: expected I/N with 0 <= I < N, got {i}/{n}")

    @property
    def sampling(self) -> Sampling:
        """The decoding settings (temperature, top-k, top-p) every distribution is warped by."""
        return Sampling(self.temperature, self.top_k, self.top_p)

    def fingerprint(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues."""
        keep = ("target", "drafters", "prompts", "max_new_tokens", "k_max", "temperature", "seed",
                "all_turns", "dtype", "stride", "shard", "limit", "question_begin", "question_end", "per_category",
                "revision", "attn_implementation", "chat_template", "system_prompt", "top_k", "top_p")
        # left out at their default (None), so a folder written before they existed still matches
        newer = {"question_begin": None, "question_end": None, "per_category": None, "revision": None,
                 "attn_implementation": None, "chat_template": True, "system_prompt": None, "top_k": 0,
                 "top_p": 1.0}
        # through JSON so it compares equal to the copy stored on disk (tuples -> lists)
        return json.loads(json.dumps({k: v for k, v in asdict(self).items()
                                      if k in keep and not (k in newer and v == newer[k])}))


def prompt_seed(seed: int, prompt_id: str) -> int:
    return int(hashlib.sha256(f"{seed}:{prompt_id}".encode()).hexdigest()[:15], 16)


def repetition_fraction(ids: list[int], n: int = 4) -> float:
    """Share of positions whose preceding n-gram already occurred earlier in the output."""
    if len(ids) <= n:
        return 0.0
    seen, rep = set(), 0
    for t in range(n, len(ids) + 1):
        g = tuple(ids[t - n : t])
        rep += g in seen
        seen.add(g)
    return rep / (len(ids) - n + 1)


# -- generation -------------------------------------------------------------------------
@torch.no_grad()
def generate_greedy(target: Loaded, batch: list[list[int]], max_new: int) -> list[list[int]]:
    """Batched greedy generation with left padding; each output cut after its first EOS."""
    from transformers import GenerationConfig

    tok = target.tokenizer
    eos = tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else (eos if eos is not None else 0)
    width = max(len(b) for b in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, b in enumerate(batch):
        ids[i, width - len(b):] = torch.tensor(b)
        mask[i, width - len(b):] = 1
    gc = GenerationConfig(do_sample=False, max_new_tokens=max_new, eos_token_id=eos, pad_token_id=pad,
                          num_beams=1)
    out = target.model.generate(input_ids=ids.to(target.device), attention_mask=mask.to(target.device),
                                generation_config=gc)
    res = []
    for row in out[:, width:].tolist():
        if eos is not None and eos in row:
            row = row[: row.index(eos) + 1]
        res.append(row)
    return res


@torch.no_grad()
def generate_sample(target: Loaded, prompt: list[int], max_new: int, sampling: Sampling | float,
                    seed: int) -> list[int]:
    """Seeded sampling from the target's warped distribution (temperature, top-k, top-p:
    ``gpu_collect.sampling``; a bare number is a temperature alone), with a KV cache."""
    s = as_sampling(sampling)
    gen = torch.Generator().manual_seed(seed)
    eos = target.tokenizer.eos_token_id
    cur = torch.tensor([prompt], device=target.device)
    past, out = None, []
    for _ in range(max_new):
        o = target.model(input_ids=cur, past_key_values=past, use_cache=True)
        past = o.past_key_values
        p = s.probs(o.logits[0, -1].float()).cpu()
        x = int(torch.multinomial(p, 1, generator=gen).item())
        out.append(x)
        if x == eos:
            break
        cur = torch.tensor([[x]], device=target.device)
    return out


# -- scoring --------------------------------------------------------------------------------
def score(seq: Seq, drafters: list[Drafter], k_max: int, sampling: Sampling | float,
          seed: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Acceptance (and sampling probabilities) of every drafter at every position; ``sampling``
    (a number: a temperature alone) warps the target's and every drafter's distribution alike."""
    sampling = as_sampling(sampling)
    temperature = sampling.temperature
    cols: dict[str, list[np.ndarray]] = {"accept": [], "alpha": [], "beta": [], "rank": []}
    extra: dict[str, Any] = {}
    if temperature == 0:
        pred = seq.target_logits().argmax(-1).cpu().numpy()
        extra["tf_mismatches"] = int((pred != np.asarray(seq.output_ids)).sum())
    rng = np.random.default_rng(seed)
    for d in drafters:
        if temperature == 0:
            cols["accept"].append(d.greedy_accept(seq, k_max))
            r = d.greedy_ranks(seq, RANK_CAP)  # (N,) one-step, (N, depth) depth-indexed, None: no ranks
            r = np.full((len(seq.output_ids), 1), -1, np.int64) if r is None else np.asarray(r).reshape(
                len(seq.output_ids), -1)
            cols["rank"].append(np.pad(r, ((0, 0), (0, k_max - r.shape[1])), constant_values=-1))
            continue
        a, b = d.sampling_probs(seq, sampling)
        cols["alpha"].append(np.asarray(a, np.float32))
        cols["beta"].append(np.asarray(b, np.float32))
        if d.stochastic:  # one realisation of the acceptance bits given the output
            bits = rng.random(len(b)) < b
            cols["accept"].append(run_lengths(bits, k_max))
        else:             # deterministic proposals: acceptance is fixed by the output
            cols["accept"].append(d.greedy_accept(seq, k_max))
    seq._target_out = None  # free the hidden states
    return {k: np.stack(v) for k, v in cols.items() if v}, extra


# -- shards ---------------------------------------------------------------------------------
def _write_shard(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                 drafters: list[str]) -> None:
    D, N = arrays["accept"].shape
    data = {"drafter": np.repeat(np.asarray(drafters, dtype=object), N),
            "pos": np.tile(np.arange(N, dtype=np.int32), D),
            "accept": arrays["accept"].reshape(-1).astype(np.int8)}
    for k in ("alpha", "beta"):
        if k in arrays:
            data[k] = arrays[k].reshape(-1).astype(np.float32)
    if "rank" in arrays:  # (D, N, k_max): one column per depth
        for j in range(arrays["rank"].shape[2]):
            data[f"rank{j + 1}"] = arrays["rank"][:, :, j].reshape(-1).astype(np.int16)
    table = pa.Table.from_pydict(data).replace_schema_metadata({"prompt": json.dumps(meta)})
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _read_shard(path: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    t = pq.read_table(path)
    meta = json.loads(t.schema.metadata[b"prompt"])
    return meta, t.to_pandas()


TRACE_FILES = ("manifest.json", "prompts.parquet", "accept.parquet", "costs.parquet", "ranks.parquet")


def _diff(old: dict, new: dict) -> str:
    return ", ".join(sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)))


def _complete_trace(cfg: CollectConfig, out: Path) -> bool:
    """True when ``out`` holds a finished trace of this collector with these settings; refuses
    a folder holding trace files this collector did not write, and other settings."""
    present = [f for f in TRACE_FILES if (out / f).exists()]
    if not present:
        return False
    problems = traces.validate(out)
    man = {} if problems else json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    settings = man.get("collection", {}).get("settings") if isinstance(man.get("collection"), dict) else None
    shards = out / SHARDS
    if shards.exists():
        try:
            left = json.loads((shards / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            left = None
        if settings is None or not settings == left == cfg.fingerprint():
            return False  # not that run's leftovers: _check_resume says what is wrong
        # killed after the final write, before the shards were removed: finish that
        for f in shards.iterdir():
            f.unlink()
        shards.rmdir()
        print(f"{out}: the trace was written; removed the shards a stopped run left", file=sys.stderr)
    if problems or "toolkit_version" not in man or man.get("synthetic") is not False:
        raise CollectError(f"{out}: holds {', '.join(present)}, not a trace this collector wrote "
                           f"({problems[0] if problems else 'no collection record'}); it is left alone: "
                           "choose another --out")
    if not cfg.resume:
        raise CollectError(f"{out}: a trace is already there; choose another --out")
    if settings is None:
        raise CollectError(f"{out}/manifest.json: field 'collection.settings' missing (a trace from before "
                           "settings were recorded), so --resume cannot check it; choose another --out")
    if settings != cfg.fingerprint():
        raise CollectError(f"{out}/manifest.json: --resume of a finished trace with different settings "
                           f"({_diff(settings, cfg.fingerprint())}); use its settings or another --out")
    return True


class OutLock:
    """The one writer lock of ``traces.outdir`` on ``--out`` for the whole collection (an
    exclusive ``flock`` on ``PARENT/.OUT.specregret.lock``): a second collector, or any other
    writer, on the same ``--out`` is refused at once.  The kernel drops it when the process dies,
    so a killed run never leaves a stale lock; the file is removed at the end."""

    def __init__(self, out: Path) -> None:
        from traces.outdir import FolderLock, OutputError, check_out

        try:
            check_out(out)
            self.lock = FolderLock(out, "collector")
        except OutputError as exc:
            raise CollectError(str(exc)) from None
        self.path = self.lock.path
        self.created = not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.lock.release()
            raise CollectError(f"{out}: cannot write ({exc.strerror})") from None
        self.out = out

    def release(self) -> None:
        try:
            if self.created and self.out.is_dir() and not any(self.out.iterdir()):
                self.out.rmdir()  # a run that failed before writing anything leaves no folder
        finally:
            self.lock.release()


def _check_resume(cfg: CollectConfig, out: Path) -> Path:
    shards = out / SHARDS
    fp_path = shards / "config.json"
    if shards.exists() and any(shards.glob("*.parquet")) and not cfg.resume:
        raise CollectError(f"{out}: holds shards of an unfinished run; pass --resume to continue it "
                           "or choose another --out")
    if shards.exists() and not fp_path.exists() and any(shards.iterdir()):
        raise CollectError(f"{shards}: not written by this collector (no config.json); it is left alone: "
                           "choose another --out")
    theirs = [f for f in TRACE_FILES if (out / f).exists()]
    if theirs and shards.exists():
        raise CollectError(f"{out}: holds {', '.join(theirs)} beside unfinished shards; the merge would replace "
                           "them: move them away or choose another --out")
    if fp_path.exists():
        old = json.loads(fp_path.read_text())
        if old != cfg.fingerprint():
            diff = sorted(k for k in old if old.get(k) != cfg.fingerprint().get(k))
            raise CollectError(f"{fp_path}: --resume with different settings ({', '.join(diff)}); "
                               "use the original settings or another --out")
    try:
        shards.mkdir(parents=True, exist_ok=True)
        if not fp_path.exists():
            fp_path.write_text(json.dumps(cfg.fingerprint(), indent=2))
    except OSError as exc:
        raise CollectError(f"{shards}: cannot write ({exc.strerror})") from None
    return shards


# -- main --------------------------------------------------------------------------------
def collect(cfg: CollectConfig, *, progress: bool = True) -> Path:
    out = Path(cfg.out)
    drafters = [make_drafter(s) for s in cfg.drafters]
    names = [d.name for d in drafters]
    if len(set(names)) != len(names):
        raise CollectError(f"drafter names must be unique, got {names}; use NAME=SPEC to rename")
    questions, pset = P.load_questions(cfg.prompts)
    questions = questions[cfg.question_begin: cfg.question_end][:: cfg.stride]
    if cfg.per_category:
        questions = P.per_category(questions, cfg.per_category)
    if cfg.limit:
        questions = questions[: cfg.limit]
    lock = OutLock(out)
    fresh = not (out / SHARDS).exists()
    try:
        return _collect_locked(cfg, out, drafters, names, questions, pset, progress)
    except BaseException:
        shards = out / SHARDS
        if fresh and shards.is_dir() and not any(shards.glob("*.parquet")):
            # failed before its first prompt (a model that does not load, Ctrl-C): leave nothing
            (shards / "config.json").unlink(missing_ok=True)
            if not any(shards.iterdir()):
                shards.rmdir()
        raise
    finally:
        lock.release()


def _collect_locked(cfg: CollectConfig, out: Path, drafters: list[Drafter], names: list[str],
                    questions: list, pset: dict, progress: bool) -> Path:
    if _complete_trace(cfg, out):
        print(f"{out}: complete trace already there with these settings; nothing to resume", file=sys.stderr)
        return out
    shards = _check_resume(cfg, out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    target = load_model(cfg.target, device, dtype, revision=cfg.revision,
                        attn_implementation=cfg.attn_implementation, device_map=cfg.device_map)
    for d in drafters:
        d.prepare(target)
        d.k_max_ = cfg.k_max  # depth of depth-indexed ranks (retrieval drafters)
    max_pos = getattr(target.model.config, "max_position_embeddings", None)

    turns = max(len(q.turns) for q in questions) if cfg.all_turns else 1
    t_start = time.perf_counter()
    mine = [qi for qi in range(len(questions)) if qi % cfg.shard[1] == cfg.shard[0]]
    if not mine:
        raise CollectError(f"--shard {cfg.shard[0]}/{cfg.shard[1]}: no questions fall in this shard "
                           f"({len(questions)} questions)")
    suffix = [d for d in drafters if isinstance(d, SuffixDrafter)]
    history: list[list[int]] = []  # earlier outputs, in processing order (suffix drafters' datastore)
    greedy = [d for d in drafters if d.greedy_only]
    if greedy and cfg.temperature > 0:
        raise CollectError(f"drafter {greedy[0].spec}: {greedy[0].kind} drafters are collected greedily only "
                           f"(for now); drop it or use --temperature 0")
    if suffix and cfg.shard[1] > 1:
        raise CollectError(f"drafter {suffix[0].spec}: its datastore is every earlier output of the collection, "
                           f"so it cannot be sharded (--shard {cfg.shard[0]}/{cfg.shard[1]}); collect unsharded")
    bar = tqdm(total=sum(min(len(questions[qi].turns), turns) for qi in mine), desc="prompts",
               unit="prompt", disable=not progress)
    for turn in range(turns):
        todo = []
        for qi, q in enumerate(questions):
            if turn >= len(q.turns) or qi % cfg.shard[1] != cfg.shard[0]:
                continue
            pid = q.question_id if turn == 0 else f"{q.question_id}#t{turn}"
            path = shards / f"{turn:02d}-{qi:05d}.parquet"
            if path.exists():
                if suffix:  # a resumed run rebuilds the same history from the written shards
                    history.append(_read_shard(path)[0]["output_ids"])
                bar.update()
                continue
            msgs = []
            for j in range(turn):
                prev, _ = _read_shard(shards / f"{j:02d}-{qi:05d}.parquet")
                msgs += [{"role": "user", "content": q.turns[j]},
                         {"role": "assistant", "content": prev["answer"]}]
            msgs.append({"role": "user", "content": q.turns[turn]})
            ids = P.chat_ids(target.tokenizer, msgs, template=cfg.chat_template, system=cfg.system_prompt)
            if max_pos and len(ids) + cfg.max_new_tokens > max_pos:
                raise CollectError(f"{cfg.prompts}: question {q.question_id} turn {turn}: prompt of "
                                   f"{len(ids)} tokens + {cfg.max_new_tokens} new tokens exceeds the "
                                   f"model's context of {max_pos}")
            todo.append((qi, q, pid, ids, path))
        bs = cfg.batch_size if cfg.temperature == 0 else 1
        for b0 in range(0, len(todo), bs):
            chunk = todo[b0 : b0 + bs]
            if cfg.temperature == 0:
                outs = generate_greedy(target, [c[3] for c in chunk], cfg.max_new_tokens)
            else:
                outs = [generate_sample(target, c[3], cfg.max_new_tokens, cfg.sampling,
                                        prompt_seed(cfg.seed, c[2])) for c in chunk]
            for (_qi, q, pid, ids, path), y in zip(chunk, outs, strict=True):
                if not y:
                    raise CollectError(f"question {q.question_id}: the target produced no tokens")
                seq = Seq(ids, y, target)
                for d in suffix:
                    d.set_history(history)
                history.append(list(y))
                arrays, extra = score(seq, drafters, cfg.k_max, cfg.sampling,
                                      prompt_seed(cfg.seed + 1, pid))
                eos = target.tokenizer.eos_token_id
                meta = {
                    "prompt_id": pid, "category": q.category, "turn": turn, "prompt_len": len(ids),
                    "output_len": len(y), "output_ids": y,
                    "finish_reason": "eos" if eos is not None and y[-1] == eos else "length",
                    "prompt_sha256": hashlib.sha256(json.dumps(ids).encode()).hexdigest(),
                    "degenerate": bool(repetition_fraction(y) > 0.5),
                    "tf_mismatches": int(extra.get("tf_mismatches", 0)),
                    "answer": target.tokenizer.decode(y, skip_special_tokens=True),
                }
                meta["answer_tokens"] = len(target.tokenizer(meta["answer"]).input_ids)
                try:
                    _write_shard(path, meta, arrays, names)
                except OSError as exc:
                    raise CollectError(f"{path}: cannot write shard ({exc.strerror}); earlier shards "
                                       "are intact, rerun with --resume") from None
                bar.update()
    bar.close()
    elapsed = time.perf_counter() - t_start

    costs = None
    if cfg.costs:
        from .timing import TimingBudget, measure_costs, nominal_costs

        budget = TimingBudget(budget_s=cfg.cost_budget_s, precision=cfg.cost_precision)
        costs = pd.concat([measure_costs(target, drafters, cfg.k_max, cfg.cost_contexts,
                                         cfg.cost_batch_sizes, progress=progress, budget=budget),
                           nominal_costs(target, drafters, cfg.k_max)], ignore_index=True)
        for w in cost_warnings(costs):  # also recorded in the manifest (collection.cost_warnings)
            print(f"warning: {w}", file=sys.stderr, flush=True)
    trace = merge(cfg, shards, drafters, target, pset, costs, elapsed)
    from traces.outdir import OutputError

    try:  # the trace replaces the folder as a whole: the shards go with the old one
        traces.write(trace, out, own=(SHARDS,))
    except (OSError, OutputError) as exc:  # a full disk, a vanished folder: the shards are what is kept
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CollectError(f"{out}: cannot write the trace ({why}); every prompt is kept in "
                           f"{shards}: free space and rerun with --resume") from None
    return out


def merge(cfg: CollectConfig, shards: Path, drafters: list[Drafter], target: Loaded,
          pset: dict, costs: pd.DataFrame | None, elapsed: float) -> traces.Trace:
    files = sorted(shards.glob("*.parquet"))
    metas, tables = zip(*(_read_shard(f) for f in files), strict=True)
    D = len(drafters)
    lens = [m["output_len"] for m in metas]
    T = max(lens)
    acc = np.full((len(files), D, T), -1, dtype=np.int16)
    sampling = cfg.temperature > 0
    alpha = np.full((len(files), D, T), np.nan, np.float32) if sampling else None
    beta = np.full((len(files), D, T), np.nan, np.float32) if sampling else None
    ranks = np.full((len(files), D, T, cfg.k_max), -1, np.int16) if all("rank1" in t for t in tables) else None
    for i, (m, t) in enumerate(zip(metas, tables, strict=True)):
        n = m["output_len"]
        acc[i, :, :n] = t["accept"].to_numpy().reshape(D, n)
        if sampling:
            alpha[i, :, :n] = t["alpha"].to_numpy().reshape(D, n)
            beta[i, :, :n] = t["beta"].to_numpy().reshape(D, n)
        if ranks is not None:
            for j in range(cfg.k_max):
                ranks[i, :, :n, j] = t[f"rank{j + 1}"].to_numpy().reshape(D, n)
    if ranks is not None and (ranks < 0).all():
        ranks = None  # no drafter records ranks
    elif ranks is not None:
        ranks = ranks[..., : max(1, int(((ranks >= 0).any(axis=(0, 1, 2))).nonzero()[0].max()) + 1)]
    cols = ["prompt_id", "category", "turn", "prompt_len", "output_len", "finish_reason", "output_ids",
            "degenerate", "prompt_sha256", "tf_mismatches", "answer", "answer_tokens"]
    prompts = pd.DataFrame([{k: m[k] for k in cols if k in m} for m in metas])
    device = target.device
    hw: dict[str, Any] = {"device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        hw["gpu"] = torch.cuda.get_device_name(device)
        hw["cuda"] = torch.version.cuda
    else:
        import platform

        hw["cpu"] = platform.processor() or platform.machine()
    manifest = make_manifest(
        kind="sampling" if sampling else "greedy", synthetic=False, target=target.info,
        drafters=[d.info() for d in drafters], k_max=cfg.k_max,
        decoding={"temperature": cfg.temperature, "max_new_tokens": cfg.max_new_tokens,
                  "chat_template": cfg.chat_template and bool(getattr(target.tokenizer, "chat_template", None)),
                  "system_prompt": cfg.system_prompt,
                  **cfg.sampling.record(), "all_turns": cfg.all_turns},
        prompt_set=pset, seed=cfg.seed, hardware=hw,
        software=software_versions(("torch", "transformers", "accelerate", "gguf")),
        name=cfg.name or Path(cfg.out).name,
        description=f"collected by gpu_collect/collect_traces.py from {cfg.target}",
        collection={"wall_s": round(elapsed, 2), "batch_size": cfg.batch_size, "settings": cfg.fingerprint(),
                    "tf_mismatch_positions": int(prompts["tf_mismatches"].sum()),
                    "degenerate_prompts": int(prompts["degenerate"].sum()),
                    **({"cost_timing": {"budget_s": cfg.cost_budget_s, "precision": cfg.cost_precision},
                        "cost_warnings": cost_warnings(costs)} if costs is not None else {}),
                    **({"shard": {"index": cfg.shard[0], "count": cfg.shard[1],
                                  "order": [f.stem for f in files]}} if cfg.shard[1] > 1 else {})},
    )
    if ranks is not None:
        manifest["rank_cap"] = RANK_CAP
    return traces.Trace(manifest, prompts, acc, alpha, beta, costs, ranks=ranks)
