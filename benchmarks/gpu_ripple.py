"""Is the verify-time ripple of the bundled H100 cost table real, or timing noise?

The bundled table (``traces/data/smollm2-greedy/costs.parquet``, device ``cuda``) was timed one cell
after another, a median of 50 CUDA-graph replays per cell.  At batch 1, context 512, k = 0..8 it
reads 7.81, 8.41, 8.78, 8.48, 8.81, 8.47, 8.85, 8.55, 9.08 ms: odd k cheaper, by more than the gaps
between arms.  This script times the same graphs (``gpu_collect.graph_timing``: Llama-3-8B shape,
random bf16 weights) *interleaved*: every round replays every cell in a fresh random order, so clock
drift and a neighbour's load hit all cells alike, and each cell gets a distribution (median, IQR,
and a bootstrap interval of the median over rounds) instead of one number.

    python benchmarks/gpu_ripple.py --out DIR [--rounds 20] [--arch llama3-8b] [--arch smollm2-135m]

Writes ``DIR/ripple_cells.csv`` (one row per cell and round), ``DIR/ripple_summary.csv``,
``DIR/ripple_contrast.csv``, the same cells as a cost table with its noise (``DIR/costs.csv``:
the trace schema's columns, ``ms`` the median over rounds, ``ms_lo``/``ms_hi`` its bootstrap
interval, ``ms_iqr``, ``reps``) and that table's warnings (``DIR/cost_warnings.txt``,
``traces.costcheck``: noisy cells, a larger k or batch cheaper beyond the noise); it prints, per
(batch, context), the median per k with its interval and the odd-even contrast (mean of odd-k
minus even-k medians, k = 1..16, with a bootstrap interval over rounds).  The grid is the
collector's (``gpu_collect.timing.verify_ks``: every k up to ``--k-max``, then 12..64 verified
tokens for tree arms) at ``--batch-sizes`` x ``--contexts``.  Needs a CUDA GPU for graph replays;
``--device cpu`` times the same forward eagerly (wall clock; for tests, not for figures).
Not yet run on a GPU (none was lent when it was written); part of ``benchmarks/gpu_check.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SMOLLM2_135M = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3)  # public config of SmolLM2-135M


def _cell_timer(model, batch: int, new_tokens: int, context: int, device):
    """A callable timing one forward of the cell (ms): a CUDA-graph replay between CUDA events
    on a GPU; on the CPU the same forward called eagerly, wall clock."""
    import torch

    from gpu_collect.graph_timing import capture_graph

    if device.type == "cuda":
        graph = capture_graph(model, batch, new_tokens, context)

        def replay() -> float:
            a, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            graph.replay()
            e.record()
            torch.cuda.synchronize()
            return a.elapsed_time(e)

        return replay
    ids = torch.randint(3, model.emb.shape[0], (batch, new_tokens))

    @torch.no_grad()
    def eager() -> float:
        t0 = time.perf_counter()
        model.forward(ids, context)
        return (time.perf_counter() - t0) * 1000

    return eager


def time_cells(arch: str, batches, contexts, news, rounds: int, per_visit: int, seed: int,
               device: str = "cuda", dtype: str = "auto", warm_s: float = 5.0) -> pd.DataFrame:
    """Every (batch, context, new tokens) cell timed ``rounds`` times, each round visiting the
    cells in a fresh random order (``per_visit`` replays per visit, their median kept)."""
    import torch

    from gpu_collect.gpu_costs import ARCHS
    from gpu_collect.graph_timing import GraphLlama
    from gpu_collect.models import resolve_dtype

    dev = torch.device(device)
    dt = resolve_dtype(dtype, dev)
    cfg = SMOLLM2_135M if arch == "smollm2-135m" else ARCHS[arch]
    model = GraphLlama(cfg, cfg["num_hidden_layers"], dev, dt,
                       max_context=max(contexts) + max(news) + 1, max_batch=max(batches))
    cells = [(b, c, n) for b in batches for c in contexts for n in news]
    timers = {cell: _cell_timer(model, cell[0], cell[2], cell[1], dev) for cell in cells}
    t_end = time.perf_counter() + (warm_s if dev.type == "cuda" else 0.0)  # clocks up before anything is timed
    timers[cells[-1]]()
    while time.perf_counter() < t_end:
        timers[cells[-1]]()
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(rounds):
        for i in rng.permutation(len(cells)):
            cell = cells[i]
            ts = [timers[cell]() for _ in range(per_visit)]
            rows.append((arch, cell[0], cell[1], cell[2] - 1, r, float(np.median(ts))))
    return pd.DataFrame(rows, columns=["arch", "batch_size", "context_len", "k", "round", "ms"])


def cost_table(summ: pd.DataFrame, label: str, how: str) -> pd.DataFrame:
    """The summary as a cost table in the trace schema (verify rows, schema 1.2 noise columns);
    ``label`` names the device, the arch and ``how`` it was timed appended."""
    return pd.DataFrame({"device": [f"{label} ({a} random weights, {how})" for a in summ["arch"]], "kind": "verify",
                         "drafter": "", "k": summ["k"].astype(int), "batch_size": summ["batch_size"].astype(int),
                         "context_len": summ["context_len"].astype(int), "ms": summ["median_ms"],
                         "ms_lo": summ["median_lo"], "ms_hi": summ["median_hi"], "ms_iqr": summ["iqr_ms"],
                         "reps": summ["rounds"].astype(int)})


def summarise(df: pd.DataFrame, boot: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out, contrast = [], []
    for (arch, b, c), g in df.groupby(["arch", "batch_size", "context_len"]):
        m = g.pivot(index="round", columns="k", values="ms")  # rounds x k
        R = len(m)
        idx = rng.integers(0, R, size=(boot, R))
        meds = np.median(m.to_numpy()[idx], axis=1)  # boot x k: the median over resampled rounds
        for j, k in enumerate(m.columns):
            col = m[k].to_numpy()
            out.append((arch, b, c, k, float(np.median(col)), float(np.percentile(col, 75) - np.percentile(col, 25)),
                        float(np.percentile(meds[:, j], 2.5)), float(np.percentile(meds[:, j], 97.5)), R))
        ks = [k for k in m.columns if 1 <= k <= 16]
        odd = [list(m.columns).index(k) for k in ks if k % 2 == 1]
        even = [list(m.columns).index(k) for k in ks if k % 2 == 0]
        if not odd or not even:  # a grid without both parities has no contrast
            continue
        d = meds[:, odd].mean(axis=1) - meds[:, even].mean(axis=1)
        point = float(np.median(m.to_numpy()[:, odd], axis=0).mean() - np.median(m.to_numpy()[:, even], axis=0).mean())
        contrast.append((arch, b, c, point, float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))))
    cols = ["arch", "batch_size", "context_len", "k", "median_ms", "iqr_ms", "median_lo", "median_hi", "rounds"]
    return (pd.DataFrame(out, columns=cols),
            pd.DataFrame(contrast, columns=["arch", "batch_size", "context_len", "odd_minus_even_ms", "lo", "hi"]))


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-visit", type=int, default=3, help="replays per visit of a cell (median kept)")
    ap.add_argument("--arch", action="append", help="llama3-8b (default), smollm2-135m, tiny (repeatable)")
    ap.add_argument("--device", default="cuda", help="cuda (default, CUDA-graph replays) or cpu (eager)")
    ap.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16")
    ap.add_argument("--batch-sizes", type=_ints, default=[1, 4, 16], help="default 1,4,16")
    ap.add_argument("--contexts", type=_ints, default=[512, 2048], help="default 512,2048")
    ap.add_argument("--k-max", type=int, default=16, help="every k up to this (default 16), then tree sizes")
    ap.add_argument("--max-verified", type=int, default=64, help="most tokens verified in one round (default 64)")
    a = ap.parse_args()
    import torch

    from gpu_collect.timing import verify_ks
    from traces.costcheck import cost_warnings

    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: gpu_ripple --device cuda: no CUDA device is available (torch.cuda.is_available() is False)",
              file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    news = [k + 1 for k in verify_ks(a.k_max, a.max_verified)]  # k = 0..k_max, then 12..64 verified tokens
    name = torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu"
    frames = []
    for arch in a.arch or ["llama3-8b"]:
        t0 = time.perf_counter()
        frames.append(time_cells(arch, a.batch_sizes, a.contexts, news, a.rounds, a.per_visit, seed=0,
                                 device=a.device, dtype=a.dtype))
        print(f"{arch}: {len(frames[-1])} timings in {time.perf_counter() - t0:.0f} s ({name})", flush=True)
    df = pd.concat(frames, ignore_index=True)
    df.to_csv(out / "ripple_cells.csv", index=False)
    summ, contrast = summarise(df)
    summ.to_csv(out / "ripple_summary.csv", index=False)
    contrast.to_csv(out / "ripple_contrast.csv", index=False)
    how = "CUDA graph, interleaved" if a.device.startswith("cuda") else "eager, interleaved"
    costs = cost_table(summ, f"{a.device.split(':')[0]}:{name}", how)
    costs.to_csv(out / "costs.csv", index=False)
    warnings = cost_warnings(costs)
    (out / "cost_warnings.txt").write_text("".join(w + "\n" for w in warnings))
    for w in warnings:
        print(f"warning: {w}")
    pd.set_option("display.width", 200)
    for (arch, b, c), g in summ.groupby(["arch", "batch_size", "context_len"]):
        cells = "  ".join(f"{int(r.k)}:{r.median_ms:.3f}[{r.median_lo:.3f},{r.median_hi:.3f}]"
                          for r in g.itertuples() if r.k <= 8)
        print(f"{arch} b={b} ctx={c}: {cells}")
    print(contrast.round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
