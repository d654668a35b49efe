"""results.parquet stores counts, not ratios (issue 28): ``tokens`` and ``stopping_time`` per row, and
readers derive ``mat`` (tokens per verification round, bonus token included) from them, as vLLM's
spec-decode metrics keep counters and derive the acceptance length.  A folder written before this
change, with its ``mean_accepted`` column, still opens: the column must equal the derived ratio and
is then dropped."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from simulator.cli import main as sim_main
from simulator.results_reader import ResultsError, read_results
from simulator.summary import summarize
from traces.cli import main as traces_main


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("counts")
    t, r = base / "T", base / "R"
    assert traces_main(["synth", "tgd", "--out", str(t), "--n-prompts", "3", "--output-len", "32",
                        "--k-max", "3"]) == 0
    assert sim_main(["run", "--trace", str(t), "--runs", "1", "--policy", "uniform", "--out", str(r),
                     "--quiet"]) == 0
    return r


def _old_style(src: Path, dst: Path, scale: float = 1.0) -> Path:
    """A copy of ``src`` with the older layout's ``mean_accepted`` column (times ``scale``)."""
    shutil.copytree(src, dst)
    t = pq.read_table(dst / "results.parquet")
    ratio = pc.multiply(pc.divide(pc.cast(t["tokens"], pa.float64()), pc.cast(t["stopping_time"], pa.float64())),
                        scale)
    pq.write_table(t.append_column("mean_accepted", ratio), dst / "results.parquet")
    return dst


def test_new_folder_stores_counts_only(run_folder):
    names = pq.read_schema(run_folder / "results.parquet").names
    assert "mean_accepted" not in names and {"tokens", "stopping_time"} <= set(names)
    df = read_results(run_folder)
    s = summarize(df).iloc[0]
    assert s["mat"] == pytest.approx(df["tokens"].sum() / df["stopping_time"].sum(), rel=1e-12)


def test_old_folder_opens_and_reads_the_same(run_folder, tmp_path):
    old = read_results(_old_style(run_folder, tmp_path / "old"))
    new = read_results(run_folder)
    assert "mean_accepted" not in old.columns
    assert list(old.columns) == list(new.columns)
    assert np.array_equal(old["tokens"], new["tokens"]) and np.array_equal(old["stopping_time"], new["stopping_time"])
    assert summarize(old).iloc[0]["mat"] == summarize(new).iloc[0]["mat"]


def test_old_folder_with_a_wrong_ratio_is_refused(run_folder, tmp_path):
    with pytest.raises(ResultsError, match=r"results\.parquet: column 'mean_accepted'.*tokens / stopping_time"):
        read_results(_old_style(run_folder, tmp_path / "bad", scale=1.5))
