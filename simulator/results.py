"""Writing a results directory: ``results.parquet`` + ``config.json`` (read back, checked, by
``simulator.results_reader``)."""

from __future__ import annotations

import json
import os
import queue
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

RESULTS_FILE = "results.parquet"
FIXED_FILE = "fixed.parquet"
CONFIG_FILE = "config.json"


class ResultsError(ValueError):
    """A results directory that cannot be read."""


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(_to_table(df), tmp, compression="zstd")
    os.replace(tmp, path)


def _to_table(df: pd.DataFrame) -> pa.Table:
    pulls = "pulls" in df.columns and len(df)
    table = pa.Table.from_pandas(df.drop(columns=["pulls"]) if pulls else df, preserve_index=False)
    if pulls:  # one list per row, built from one flat array (from per-row objects it is 40x slower)
        rows = df["pulls"].to_numpy()
        lens = np.fromiter((len(r) for r in rows), np.int64, len(rows))
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
        flat = np.concatenate(rows).astype(np.int64)
        table = table.append_column("pulls", pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat)))
    return table


class ResultsWriter:
    """``results.parquet`` written as it is produced, in row groups of ``ROW_GROUP`` rows
    whatever the chunks handed in (so the file is the same for any worker count); the file
    appears, with ``config.json`` and ``fixed.parquet``, only at ``close``.

    Row groups are encoded and compressed on a thread of their own (arrow releases the GIL, and
    so does the compiled engine), so writing one task overlaps computing the next; at most
    ``QUEUED`` row groups wait, which bounds the memory this adds."""

    ROW_GROUP = 1 << 17
    QUEUED = 2

    def __init__(self, out_dir: str | os.PathLike[str]):
        self.out = Path(out_dir)  # created at the first rows: a run that fails early leaves nothing
        self.tmp = self.out / (RESULTS_FILE + ".tmp")
        self.writer: pq.ParquetWriter | None = None
        self.pending: list[pa.Table] = []
        self.n_pending = 0
        self.rows = 0
        self._queue: queue.Queue = queue.Queue(maxsize=self.QUEUED)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, rows: pa.Table | pd.DataFrame) -> None:
        self._raise()
        t = rows if isinstance(rows, pa.Table) else _to_table(rows)
        if self.writer is None:
            self.out.mkdir(parents=True, exist_ok=True)
            # dictionary pages only where they pay: the repeated strings (numbers: 1.4x slower, no smaller)
            strings = [f.name for f in t.schema if pa.types.is_large_string(f.type) or pa.types.is_string(f.type)]
            self.writer = pq.ParquetWriter(self.tmp, t.schema, compression="zstd", use_dictionary=strings)
            self._thread = threading.Thread(target=self._drain, name="results-writer", daemon=True)
            self._thread.start()
        self.pending.append(t.cast(self.writer.schema))
        self.n_pending += len(t)
        self.rows += len(t)
        self._flush(final=False)

    def _drain(self) -> None:
        while (t := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self.writer.write_table(t)
                except BaseException as exc:  # handed to the caller at its next write or close
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _flush(self, final: bool) -> None:
        if self.n_pending < self.ROW_GROUP and not (final and self.n_pending):
            return
        t = pa.concat_tables(self.pending)
        start = 0
        while len(t) - start >= self.ROW_GROUP:
            self._queue.put(t.slice(start, self.ROW_GROUP))
            start += self.ROW_GROUP
        if final and start < len(t):
            self._queue.put(t.slice(start))
            start = len(t)
        self.pending = [t.slice(start)] if start < len(t) else []
        self.n_pending = len(t) - start

    def abort(self) -> None:
        """Drop the partial file (a run that failed or was interrupted writes nothing)."""
        self._stop()
        if self.writer is not None:
            self.writer.close()
            self.tmp.unlink(missing_ok=True)
            self.writer = None

    def close(self, config: dict, fixed: pd.DataFrame | None = None) -> Path:
        if self.writer is None:
            raise ResultsError(f"{self.out}: no results were produced")
        self._flush(final=True)
        self._stop()
        if self._error is not None:
            self.abort()
            raise self._error
        self.writer.close()
        os.replace(self.tmp, self.out / RESULTS_FILE)
        if fixed is not None:
            _write_parquet(fixed, self.out / FIXED_FILE)
        ctmp = self.out / (CONFIG_FILE + ".tmp")
        ctmp.write_text(json.dumps(config, indent=2, default=_json) + "\n")
        os.replace(ctmp, self.out / CONFIG_FILE)
        return self.out


def write_results(df: pd.DataFrame, config: dict, out_dir: str | os.PathLike[str],
                  fixed: pd.DataFrame | None = None) -> Path:
    """Write ``results.parquet``, ``config.json`` and (if given) ``fixed.parquet``, each atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_parquet(df, out / RESULTS_FILE)
    if fixed is not None:
        _write_parquet(fixed, out / FIXED_FILE)
    ctmp = out / (CONFIG_FILE + ".tmp")
    ctmp.write_text(json.dumps(config, indent=2, default=_json) + "\n")
    os.replace(ctmp, out / CONFIG_FILE)
    return out


def _json(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
