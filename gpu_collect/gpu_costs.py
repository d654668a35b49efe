"""GPU cost tables from random-weight models of real architectures.

Latency depends on the architecture, not the weights, so a randomly initialised
Llama-3-8B-shaped target and Llama-3.2-1B-shaped drafter (bf16) time like the trained
ones.  Each drafter of a trace is mapped to a proxy whose cost is measured:

* ``ngram`` / ``pld``: the lookup itself (Python, on the host);
* ``early_exit`` after layer L of n: the target truncated to ``round(L/n * N)`` layers;
* ``skip`` of s layers out of n: the target with ``round((n-s)/n * N)`` layers;
* ``quant`` / ``hf`` / ``model``: the small drafter model (a separately trained or
  quantised drafter is a small model in practice).

    python -m gpu_collect costs --trace traces/data/smollm2-greedy --out gpu_costs.parquet
    python -m gpu_collect costs --trace traces/data/smollm2-greedy --merge gpu_costs.parquet
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import traces

from .timing import COLS, time_step, verify_ks

ARCHS = {
    # public config values of meta-llama/Meta-Llama-3-8B and Llama-3.2-1B
    "llama3-8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0,
                      max_position_embeddings=8192, tie_word_embeddings=False),
    "llama3.2-1b": dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                        num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0,
                        max_position_embeddings=8192, tie_word_embeddings=True),
    "tiny": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096),
    "tiny-drafter": dict(vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096),
}


def random_model(arch: str, layers: int | None, device: torch.device, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, LlamaConfig

    kw = dict(ARCHS[arch])
    if layers is not None:
        kw["num_hidden_layers"] = layers
    with torch.device(device):
        return AutoModelForCausalLM.from_config(LlamaConfig(**kw), dtype=dtype).eval()


def proxy_for(d: dict, n_src: int, target_arch: str,
              drafter_arch: str) -> tuple[str | None, int | None, str]:
    """(architecture, layers, description) whose decode step stands in for drafter ``d``;
    architecture ``None`` means a host-side n-gram lookup."""
    kind, p = d["kind"], d.get("params", {})
    N = ARCHS[target_arch]["num_hidden_layers"]
    if kind == "ngram":
        return None, None, "host n-gram lookup"
    if kind == "early_exit":
        layers = max(1, round(p["exit_layer"] / n_src * N))
        return target_arch, layers, f"{target_arch} truncated to {layers} layers"
    if kind == "skip":
        layers = max(1, round((n_src - len(p["skipped_layers"])) / n_src * N))
        return target_arch, layers, f"{target_arch} with {layers} layers"
    if kind in ("medusa", "eagle", "eagle3"):  # one decoder layer (or ResBlocks) + a vocabulary projection
        return target_arch, 1, f"{target_arch} truncated to 1 layer (a head step: one layer + lm_head)"
    return drafter_arch, ARCHS[drafter_arch]["num_hidden_layers"], f"{drafter_arch} decode step"


def ngram_ms(d: dict, context: int, k_max: int) -> float:
    """Host time of one prompt lookup per drafted token."""
    from .drafters import NgramDrafter

    nd = NgramDrafter(spec="x", name="x", arg="3")
    nd.eos_ = np.array([], dtype=np.int64)
    sizes = d.get("params", {}).get("ngram_sizes", [3])
    nd.sizes = lambda: list(sizes)  # type: ignore[method-assign]
    ids = np.tile(np.arange(64), context // 64 + 1)[:context]
    ts = []
    for _ in range(50):
        t0 = time.perf_counter()
        nd.lookup(ids, k_max)
        ts.append((time.perf_counter() - t0) * 1000)
    return float(np.median(ts)) / k_max


def _draft_rows(rows: list, trace: traces.Trace, label: str, step, c0: int, target_arch: str,
                drafter_arch: str) -> dict[str, str]:
    """Append one draft-cost row per drafter of ``trace``; return the proxy descriptions."""
    proxies = {}
    n_src = int(trace.manifest["target"].get("num_hidden_layers", ARCHS[target_arch]["num_hidden_layers"]))
    for d in trace.manifest["drafters"]:
        arch, layers, proxy = proxy_for(d, n_src, target_arch, drafter_arch)
        ms = ngram_ms(d, c0, trace.k_max) if arch is None else step(arch, layers)
        proxies[d["name"]] = proxy
        rows.append((label, "draft", d["name"], 1, 1, c0, max(ms, 1e-4)))
    return proxies


def measure(trace: traces.Trace, target_arch: str, drafter_arch: str, contexts, batch_sizes,
            device: torch.device, dtype: torch.dtype, warmup: int = 3,
            reps: int = 10) -> tuple[pd.DataFrame, str]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    label = f"{device.type}:{name} ({target_arch} / {drafter_arch} random weights, {str(dtype)[6:]})"
    g = torch.Generator().manual_seed(0)
    vocab = ARCHS[target_arch]["vocab_size"]
    rows = []
    tgt = random_model(target_arch, None, device, dtype)
    # bring clocks up before anything is timed
    t_end = time.perf_counter() + (5.0 if device.type == "cuda" else 0.0)
    warm = torch.randint(3, vocab, (1, 256), generator=g).to(device)
    while time.perf_counter() < t_end:
        with torch.no_grad():
            tgt(warm)
    for c in contexts:
        for b in batch_sizes:
            ctx = torch.randint(3, vocab, (b, c), generator=g).to(device)
            for k in verify_ks(trace.k_max):
                new = torch.randint(3, vocab, (b, k + 1), generator=g).to(device)
                rows.append((label, "verify", "", k, b, c, time_step(tgt, ctx, new, warmup, reps)))
    c0 = contexts[0]
    ctx1 = torch.randint(3, vocab, (1, c0), generator=g).to(device)
    step_cache: dict[tuple[str, int | None], float] = {}

    def step(arch: str, layers: int | None) -> float:
        if (arch, layers) not in step_cache:
            m = tgt if (arch == target_arch and layers is None) else random_model(arch, layers, device, dtype)
            step_cache[(arch, layers)] = time_step(m, ctx1, ctx1[:, :1], warmup, reps)
            del m
        return step_cache[(arch, layers)]

    proxies = _draft_rows(rows, trace, label, step, c0, target_arch, drafter_arch)
    note = json.dumps({"device": label, "drafter_proxies": proxies})
    return pd.DataFrame(rows, columns=COLS), note


def measure_graph(trace: traces.Trace, target_arch: str, drafter_arch: str, contexts, batch_sizes,
                  device: torch.device, dtype: torch.dtype) -> tuple[pd.DataFrame, str]:
    """Like ``measure`` but with CUDA-graph replays of a minimal Llama forward
    (``graph_timing``): GPU time without Python launch overhead."""
    from .graph_timing import GraphLlama, graph_ms

    name = torch.cuda.get_device_name(device)
    label = f"cuda:{name} ({target_arch} / {drafter_arch} random weights, {str(dtype)[6:]}, CUDA graph)"
    N = ARCHS[target_arch]["num_hidden_layers"]
    maxc, maxb = max(contexts) + max(verify_ks(trace.k_max)) + 2, max(batch_sizes)
    tgt = GraphLlama(ARCHS[target_arch], N, device, dtype, maxc, maxb)
    rows = [(label, "verify", "", k, b, c, graph_ms(tgt, b, k + 1, c))
            for c in contexts for b in batch_sizes for k in verify_ks(trace.k_max)]
    c0 = contexts[0]
    cache: dict[tuple[str, int], float] = {}

    def step(arch: str, layers: int) -> float:
        if (arch, layers) not in cache:
            m = tgt if (arch, layers) == (target_arch, N) else GraphLlama(ARCHS[arch], layers, device, dtype,
                                                                          c0 + 2, 1)
            cache[(arch, layers)] = graph_ms(m, 1, 1, c0)
        return cache[(arch, layers)]

    proxies = _draft_rows(rows, trace, label, step, c0, target_arch, drafter_arch)
    note = json.dumps({"device": label, "drafter_proxies": proxies, "method": "CUDA graph replay, "
                       "median of 50, minimal Llama forward (gpu_collect/graph_timing.py)"})
    return pd.DataFrame(rows, columns=COLS), note


def measure_target(trace: traces.Trace, target: str, device: torch.device, dtype: torch.dtype, contexts,
                   batch_sizes, warmup: int, reps: int) -> tuple[pd.DataFrame, str]:
    """Verify rows of the trace's own target (``--target``, e.g. on the CPU it was collected on)
    at every ``verify_ks`` (up to 64 verified tokens, for tree arms), plus the nominal device's
    verify rows by its rule over the same ``k``; draft rows are left as they are."""
    from .models import load_model
    from .timing import measure_costs, nominal_costs

    loaded = load_model(target, device, dtype)
    df = measure_costs(loaded, [], trace.k_max, tuple(contexts), tuple(batch_sizes), warmup=warmup, reps=reps)
    df = pd.concat([df, nominal_costs(loaded, [], trace.k_max)], ignore_index=True)
    label = str(df["device"].iloc[0])
    note = json.dumps({"device": label, "method": f"verify rows of target {target} at k = {verify_ks(trace.k_max)} "
                       f"(median of {reps} after {warmup} warm-up); nominal verify rows by its rule over the same k"})
    return df, note


def arch_params(arch: str, layers: int | None = None) -> int:
    """Weights read per decode step of ``arch`` (truncated to ``layers``): the layers, the
    final norm and the vocabulary projection; the input embedding is a lookup, not counted."""
    a = ARCHS[arch]
    h, i, n = a["hidden_size"], a["intermediate_size"], layers or a["num_hidden_layers"]
    kv = h * a["num_key_value_heads"] // a["num_attention_heads"]
    layer = 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h
    return n * layer + h + a["vocab_size"] * h


def _rule_fraction(d: dict, device: str, n_src: int, nominal: float) -> tuple[float, str]:
    """Draft step / target step for a drafter a device table lacks: for a random-weight table
    (``(ARCH / ARCH random weights``) the memory-bound ratio of its proxy (``proxy_for``), else
    the trace's nominal fraction."""
    import re

    m = re.search(r"\((\S+) / (\S+) random weights", device)
    if m and m.group(1) in ARCHS and d.get("kind") == "medusa":  # H heads: a ResBlock and an lm_head each
        a, heads = ARCHS[m.group(1)], int(d.get("max_depth", 1))
        h = a["hidden_size"]
        frac = heads * (h * h + h + a["vocab_size"] * h) / arch_params(m.group(1))
        return frac, (f"{heads} Medusa heads (ResBlock + lm_head each) of {m.group(1)}'s shape, "
                      "memory-bound weight ratio")
    if m and m.group(1) in ARCHS and m.group(2) in ARCHS:
        arch, layers, proxy = proxy_for(d, n_src, m.group(1), m.group(2))
        if arch is not None:
            return arch_params(arch, layers) / arch_params(m.group(1)), f"{proxy}, memory-bound weight ratio"
    return nominal, "the nominal fraction"


def carry(trace_dir: str, source_dir: str) -> list[str]:
    """Copy into ``trace_dir`` every device table of ``source_dir`` that it lacks (say, a GPU
    table measured when a GPU was lent).  Drafters of ``trace_dir`` without draft rows on such
    a device get them by rule, not measurement: ``draft_ms = fraction * verify(K=0)`` of that
    device (batch 1, smallest context), the fraction from ``_rule_fraction``.  Returns what was
    done, which is also written to the manifest's ``cost_notes``."""
    tr, src = traces.load(trace_dir), traces.load(source_dir)
    have = set(tr.costs["device"]) if tr.costs is not None else set()
    new = src.costs[~src.costs["device"].isin(have)]
    names = tr.drafter_names
    nom = tr.costs[tr.costs["device"] == "nominal"] if tr.costs is not None else None
    if nom is None or nom.empty:
        raise ValueError(f"{trace_dir}: costs: expected a nominal device table to carry draft costs by rule")
    nom_v0 = float(nom[(nom.kind == "verify") & (nom.k == 0)]["ms"].iloc[0])
    rows, done = [], []
    for dev, g in new.groupby("device"):
        keep = g[(g.kind == "verify") | g.drafter.isin(names)]
        rows.append(keep)
        v = g[(g.kind == "verify") & (g.k == 0)]
        v0 = float(v[v.batch_size == v.batch_size.min()].sort_values("context_len")["ms"].iloc[0])
        c0 = int(v["context_len"].min())
        missing = [d for d in names if d not in set(g[g.kind == "draft"].drafter)]
        info = {d["name"]: d for d in tr.manifest["drafters"]}
        n_src = int(tr.manifest["target"].get("num_hidden_layers", 1))
        how = []
        for d in missing:
            nominal = float(nom[(nom.kind == "draft") & (nom.drafter == d)]["ms"].iloc[0]) / nom_v0
            frac, why = _rule_fraction(info[d], dev, n_src, nominal)
            rows.append(pd.DataFrame([(dev, "draft", d, 1, 1, c0, frac * v0)], columns=COLS))
            how.append(f"{d}: {frac:.4f} x verify(K=0) ({why})")
        done.append(f"{dev}: carried from {src.manifest.get('name')}; draft rows by rule, not measured: "
                    + "; ".join(how) if missing else f"{dev}: carried from {src.manifest.get('name')}")
    manifest = dict(tr.manifest)
    notes = manifest.setdefault("cost_notes", {})
    for dev in new["device"].unique():
        notes[dev] = {**src.manifest.get("cost_notes", {}).get(dev, {"device": dev}),
                      "carried": next(x for x in done if x.startswith(dev))}
    costs = pd.concat([tr.costs, *rows], ignore_index=True)
    traces.write(dataclasses.replace(tr, manifest=manifest, costs=costs), trace_dir, overwrite=True)
    return done


def merge(trace_dir: str, costs_file: str) -> None:
    """Add a measured table to a trace: its rows replace the trace's rows of the same
    (device, kind), so a verify-only table keeps that device's draft rows."""
    tr = traces.load(trace_dir)
    new = pd.read_parquet(costs_file)
    note = json.loads(Path(costs_file).with_suffix(".json").read_text())
    old = tr.costs if tr.costs is not None else pd.DataFrame(columns=COLS)
    replaced = set(zip(new["device"], new["kind"], strict=True))
    old = old[[(d, k) not in replaced for d, k in zip(old["device"], old["kind"], strict=True)]]
    manifest = dict(tr.manifest)
    manifest.setdefault("cost_notes", {})[note["device"]] = note
    # every other part (ranks included) carried over as it is
    merged = dataclasses.replace(tr, manifest=manifest, costs=pd.concat([old, new], ignore_index=True))
    traces.write(merged, trace_dir, overwrite=True)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    from traces import clikit as ck

    ck.add_trace(ap)
    ap.add_argument("--out", help="write the measured table here (and a .json note beside it)")
    ap.add_argument("--merge", help="add a measured table (a file written with --out) to --trace")
    ap.add_argument("--carry", metavar="TRACE", help="copy the device tables --trace lacks from this trace "
                                                     "(draft rows of new drafters by the nominal rule, said)")
    ap.add_argument("--target-arch", default="llama3-8b", choices=sorted(ARCHS), help="target shape (random weights)")
    ap.add_argument("--drafter-arch", default="llama3.2-1b", choices=sorted(ARCHS), help="drafter shape")
    ap.add_argument("--contexts", type=ck.int_list, default=(512, 2048), help="context lengths (default 512,2048)")
    ap.add_argument("--batch-sizes", type=ck.int_list, default=(1, 4, 16), help="batch sizes (default 1,4,16)")
    ap.add_argument("--device", default="cuda", help="torch device (default cuda)")
    ap.add_argument("--dtype", default="bfloat16", help="torch dtype (default bfloat16)")
    ap.add_argument("--graph", action="store_true", help="CUDA-graph replay timing (GPU only)")
    ap.add_argument("--target", help="time the verify rows of this real target (e.g. smollm2-135m) instead of "
                                     "random-weight models; draft rows are kept at --merge")
    ap.add_argument("--warmup", type=int, default=5, help="warm-up calls before timing (default 5)")
    ap.add_argument("--reps", type=int, default=25, help="timed calls per point (default 25)")


def run_cli(a: argparse.Namespace) -> int:
    from traces.clikit import UsageError

    if a.carry:
        for line in carry(a.trace, a.carry):
            print(line)
        return 0
    if a.merge:
        merge(a.trace, a.merge)
        print(f"merged {a.merge} into {a.trace}")
        return 0
    if not a.out:
        raise UsageError("costs: --out, --merge or --carry is required")
    device = torch.device(a.device)
    dtype = getattr(torch, a.dtype)
    if a.target:
        df, note = measure_target(traces.load(a.trace), a.target, device, dtype, a.contexts, a.batch_sizes,
                                  a.warmup, a.reps)
        _write_table(df, note, a.out)
        return 0
    fn = measure_graph if a.graph else measure
    extra = () if a.graph else (a.warmup, a.reps)
    df, note = fn(traces.load(a.trace), a.target_arch, a.drafter_arch,
                       list(a.contexts), list(a.batch_sizes),
                       device, dtype, *extra)
    _write_table(df, note, a.out)
    return 0


def _write_table(df, note: str, out: str) -> None:
    """The cost table and its note, each written whole (``traces.outdir.staged_file``)."""
    from traces.outdir import staged_file

    for path, write in ((Path(out), lambda p: df.to_parquet(p)),
                        (Path(out).with_suffix(".json"), lambda p: p.write_text(note))):
        with staged_file(path) as tmp:
            write(tmp)
    print(df.to_string())

