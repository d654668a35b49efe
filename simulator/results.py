"""Writing and reading a results directory: ``results.parquet`` + ``config.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

RESULTS_FILE = "results.parquet"
CONFIG_FILE = "config.json"
REQUIRED = ("setting", "policy", "prompt_id", "run", "stopping_time", "tokens", "regret")


class ResultsError(ValueError):
    """A results directory that cannot be read."""


def write_results(df: pd.DataFrame, config: dict, out_dir: str | os.PathLike[str],
                  *, append: bool = False) -> Path:
    """Write atomically; with ``append`` rows of other settings already there are kept."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS_FILE
    configs = [config]
    if append and path.exists():
        old = read_results(out)
        old = old[old["setting"] != config["setting"]]
        df = pd.concat([old, df], ignore_index=True)
        prev = json.loads((out / CONFIG_FILE).read_text())
        prev_list = prev if isinstance(prev, list) else [prev]
        configs = [c for c in prev_list if c.get("setting") != config["setting"]] + [config]
    table = pa.Table.from_pandas(df, preserve_index=False)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    ctmp = out / (CONFIG_FILE + ".tmp")
    ctmp.write_text(json.dumps(configs if len(configs) > 1 else configs[0], indent=2) + "\n")
    os.replace(ctmp, out / CONFIG_FILE)
    return out


def read_results(out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    path = Path(out_dir) / RESULTS_FILE
    if not path.is_file():
        raise ResultsError(f"{path}: file missing (run `python -m simulator run ... --out DIR`)")
    try:
        df = pq.read_table(path).to_pandas()
    except Exception as exc:
        raise ResultsError(f"{path}: cannot read as parquet ({exc})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ResultsError(f"{path}: columns {missing} missing")
    return df


def read_config(out_dir: str | os.PathLike[str]) -> list[dict]:
    path = Path(out_dir) / CONFIG_FILE
    if not path.is_file():
        return []
    c = json.loads(path.read_text())
    return c if isinstance(c, list) else [c]
