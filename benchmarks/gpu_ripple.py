"""Is the verify-time ripple of the bundled H100 cost table real, or timing noise?

The bundled table (``traces/data/smollm2-greedy/costs.parquet``, device ``cuda``) was timed one cell
after another, a median of 50 CUDA-graph replays per cell.  At batch 1, context 512, k = 0..8 it
reads 7.81, 8.41, 8.78, 8.48, 8.81, 8.47, 8.85, 8.55, 9.08 ms: odd k cheaper, by more than the gaps
between arms.  This script times the same graphs (``gpu_collect.graph_timing``: Llama-3-8B shape,
random bf16 weights) *interleaved*: every round replays every cell in a fresh random order, so clock
drift and a neighbour's load hit all cells alike, and each cell gets a distribution (median, IQR,
and a bootstrap interval of the median over rounds) instead of one number.

    python benchmarks/gpu_ripple.py --out DIR [--rounds 20] [--arch llama3-8b]

Writes ``DIR/ripple_cells.csv`` (one row per cell and round) and ``DIR/ripple_summary.csv``, and
prints, per (batch, context), the median per k with its interval and the odd-even contrast
(mean of odd-k minus even-k medians, k = 1..16, with a bootstrap interval over rounds).
Needs a CUDA GPU (not yet run: no GPU was lent when it was written); a few minutes on one H100.
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


def time_cells(arch: str, batches, contexts, news, rounds: int, per_visit: int, seed: int) -> pd.DataFrame:
    import torch

    from gpu_collect.gpu_costs import ARCHS
    from gpu_collect.graph_timing import GraphLlama, capture_graph

    cfg = SMOLLM2_135M if arch == "smollm2-135m" else ARCHS[arch]
    model = GraphLlama(cfg, cfg["num_hidden_layers"], torch.device("cuda"), torch.bfloat16,
                       max_context=max(contexts) + max(news) + 1, max_batch=max(batches))
    cells = [(b, c, n) for b in batches for c in contexts for n in news]
    graphs = {cell: capture_graph(model, *cell) for cell in cells}
    t_end = time.perf_counter() + 5  # clocks up before anything is timed
    while time.perf_counter() < t_end:
        graphs[cells[-1]].replay()
    torch.cuda.synchronize()
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(rounds):
        for i in rng.permutation(len(cells)):
            cell = cells[i]
            ts = []
            for _ in range(per_visit):
                a, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                graphs[cell].replay()
                e.record()
                torch.cuda.synchronize()
                ts.append(a.elapsed_time(e))
            rows.append((arch, cell[0], cell[1], cell[2] - 1, r, float(np.median(ts))))
    return pd.DataFrame(rows, columns=["arch", "batch_size", "context_len", "k", "round", "ms"])


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
        d = meds[:, odd].mean(axis=1) - meds[:, even].mean(axis=1)
        point = float(np.median(m.to_numpy()[:, odd], axis=0).mean() - np.median(m.to_numpy()[:, even], axis=0).mean())
        contrast.append((arch, b, c, point, float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))))
    cols = ["arch", "batch_size", "context_len", "k", "median_ms", "iqr_ms", "median_lo", "median_hi", "rounds"]
    return (pd.DataFrame(out, columns=cols),
            pd.DataFrame(contrast, columns=["arch", "batch_size", "context_len", "odd_minus_even_ms", "lo", "hi"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-visit", type=int, default=3, help="replays per visit of a cell (median kept)")
    ap.add_argument("--arch", action="append", help="llama3-8b (default) and/or smollm2-135m")
    a = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("error: gpu_ripple needs a CUDA GPU", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    news = list(range(1, 18)) + [25, 33, 49, 65]  # k = 0..16, then tree sizes 24..64 verified tokens
    frames = []
    for arch in a.arch or ["llama3-8b"]:
        t0 = time.perf_counter()
        frames.append(time_cells(arch, [1, 4, 16], [512, 2048], news, a.rounds, a.per_visit, seed=0))
        print(f"{arch}: {len(frames[-1])} timings in {time.perf_counter() - t0:.0f} s "
              f"({torch.cuda.get_device_name()})", flush=True)
    df = pd.concat(frames, ignore_index=True)
    df.to_csv(out / "ripple_cells.csv", index=False)
    summ, contrast = summarise(df)
    summ.to_csv(out / "ripple_summary.csv", index=False)
    contrast.to_csv(out / "ripple_contrast.csv", index=False)
    pd.set_option("display.width", 200)
    for (arch, b, c), g in summ.groupby(["arch", "batch_size", "context_len"]):
        cells = "  ".join(f"{int(r.k)}:{r.median_ms:.3f}[{r.median_lo:.3f},{r.median_hi:.3f}]"
                          for r in g.itertuples() if r.k <= 8)
        print(f"{arch} b={b} ctx={c}: {cells}")
    print(contrast.round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
