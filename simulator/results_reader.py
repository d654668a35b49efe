"""One reader for results folders, as ``traces validate`` is for traces.

A ``simulator run`` folder holds ``results.parquet``, ``config.json`` and ``fixed.parquet``; a
``simulator serve`` folder ``serving.csv`` and ``config.json``.  :func:`open_results` checks
every file before a verb uses it (``summary``, ``table``, ``plot``, ``export-specbench``):
the JSON types and required fields of ``config.json`` (duplicate keys refused), the columns
and their types, rows present, not duplicated and complete, and the settings, policies, arms
and runs of the rows against ``config.json``.  Any problem raises :class:`ResultsError` with
one line naming the file, the field and what was expected.

Special files are named, never opened: a FIFO, device, socket or directory where a file is
expected, a symbolic-link loop, or a link that leaves the folder.  Other entries of the
folder (the ownership mark, ``figures/``, ``tables/``, ``specbench/``) are not looked at.
Nothing here imports code named by a results folder: plug-in policies come only from a
``--policy-module`` given on the command line.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from traces.guards import DuplicateKeyError, FileGuardError, open_regular, strict_json_loads

from .envs import SETTINGS
from .policies.base import REWARDS
from .results import CONFIG_FILE, FIXED_FILE, RESULTS_FILE, ResultsError
from .rng import MAX_RUNS

SERVING_FILE = "serving.csv"
RUN, SERVE = "run", "serve"
OBJECTIVES = ("rounds", "time")
SERVE_SETTING = "batch-serving"
MAX_CONFIG_BYTES = 16 << 20
STR, INT, NUM, INTS = "strings", "integers", "numbers", "lists of integers"

RESULT_COLUMNS = {"setting": STR, "objective": STR, "policy": STR, "reward": STR, "prompt_id": STR,
                  "category": STR, "run": INT, "stopping_time": INT, "tokens": INT,
                  "regret_rounds": NUM, "best_arm_rounds": STR, "best_rounds": NUM, "pulls": INTS}
# an older layout's stored ratio (tokens / stopping_time); checked against the counts, then dropped
LEGACY_RATIO = "mean_accepted"
# written together, only when the trace has a cost table (and always for objective time)
RESULT_TIME_COLUMNS = {"time_s": NUM, "feedback_s": NUM, "plain_time_s": NUM, "speedup": NUM, "regret_s": NUM,
                       "best_arm_time": STR, "best_time_s": NUM}
FIXED_COLUMNS = {"setting": STR, "prompt_id": STR, "category": STR, "arm": STR, "tokens": INT, "rounds": NUM}
FIXED_TIME_COLUMNS = {"time_s": NUM, "plain_time_s": NUM, "specbench_tokens": INT}
SERVING_COLUMNS = {"sample": INT, "batch_size": INT, "run": INT, "method": STR, "kind": STR, "k": INT,
                   "tokens": NUM, "time_s": NUM, "rounds": INT, "throughput": NUM, "improvement": NUM}


@dataclass(frozen=True)
class ResultsFolder:
    """A checked results folder.

    Attributes
    ----------
    path : Path
        The folder as named on the command line.
    kind : str
        ``"run"`` (``simulator run``) or ``"serve"`` (``simulator serve``).
    config : dict
        ``config.json`` as written (a multi-setting run's ``{..., "settings": [...]}`` included).
    configs : list of dict
        One configuration per setting (``[config]`` for one setting and for serve).
    results, fixed, serving : DataFrame or None
        ``results.parquet`` and ``fixed.parquet`` (None where absent) of a run folder;
        ``serving.csv`` of a serve folder.
    """

    path: Path
    kind: str
    config: dict
    configs: list[dict]
    results: pd.DataFrame | None = None
    fixed: pd.DataFrame | None = None
    serving: pd.DataFrame | None = None


def open_results(path: str | os.PathLike[str], want: str | None = None) -> ResultsFolder:
    """Check and read the results folder ``path``.

    Parameters
    ----------
    path : str or PathLike
        A folder written by ``simulator run`` or ``simulator serve``.
    want : {"run", "serve", None}
        The kind of folder the calling verb needs (None: either).

    Returns
    -------
    ResultsFolder

    Raises
    ------
    ResultsError
        One line naming the file, the field and the expected value.
    """
    folder = _folder(Path(path))
    kind = _kind_of(folder, want)
    config = read_config_file(folder / CONFIG_FILE, kind)
    if kind == SERVE:
        return ResultsFolder(folder, kind, config, [config], serving=_read_serving(folder, config))
    configs = config["settings"] if "settings" in config else [config]
    results = _read_results(folder / RESULTS_FILE, configs)
    fixed = _read_fixed(folder / FIXED_FILE, configs, results)
    return ResultsFolder(folder, kind, config, configs, results=results, fixed=fixed)


def read_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """``results.parquet`` of a ``simulator run`` folder, every file of the folder checked first."""
    return open_results(path, want=RUN).results


def read_fixed(path: str | os.PathLike[str]) -> pd.DataFrame | None:
    """The stored fixed-arm comparators of a run folder (None for results written without them)."""
    return open_results(path, want=RUN).fixed


def read_config(path: str | os.PathLike[str]) -> list[dict]:
    """``[config.json]`` of a results folder (run or serve), checked."""
    return [open_results(path).config]


# -- the folder and its files -----------------------------------------------------------------
def _file_kind(mode: int) -> str:
    return ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
            "a special file")


def _folder(path: Path) -> Path:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such folder (write one with `python -m simulator run ... --out DIR`)") \
            from None
    except OSError as exc:
        why = "a symbolic link loop" if exc.errno == errno.ELOOP else exc.strerror
        raise ResultsError(f"{path}: cannot open the results folder ({why})") from None
    if not stat.S_ISDIR(st.st_mode):
        what = "a file" if stat.S_ISREG(st.st_mode) else _file_kind(st.st_mode)
        raise ResultsError(f"{path}: expected a results folder, got {what}")
    return path


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def _regular(path: Path) -> None:
    """Refuse anything at ``path`` that is not a regular file of the folder, without opening it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ResultsError(f"{path}: file missing (a results folder written by `python -m simulator run` or "
                           "`serve` has it)") from None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:  # RuntimeError: a loop, on older Pythons
            loop = isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP
            raise ResultsError(f"{path}: " + ("a symbolic link loop" if loop else "a broken symbolic link")
                               + "; expected a regular file (not opened)") from None
        if not target.is_relative_to(path.parent.resolve()):
            raise ResultsError(f"{path}: a symbolic link to {target}, outside the results folder; expected a "
                               "regular file (not followed)")
        st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ResultsError(f"{path}: {_file_kind(st.st_mode)}; expected a regular file (not opened)")


def _open(path: Path):
    """A binary file object on the regular file ``path`` (checked again on the open descriptor,
    opened non-blocking so that a FIFO swapped in after the check cannot block)."""
    _regular(path)
    try:
        return open_regular(path)
    except FileGuardError as exc:
        raise ResultsError(f"{path}: {exc.kind}; expected a regular file (not read)") from None


def _kind_of(folder: Path, want: str | None) -> str:
    run, serve = _exists(folder / RESULTS_FILE), _exists(folder / SERVING_FILE)
    if run and serve:
        raise ResultsError(f"{folder}: holds both {RESULTS_FILE} (`simulator run`) and {SERVING_FILE} "
                           "(`simulator serve`): two commands wrote into one folder; write each into its own --out")
    if not (run or serve):
        raise ResultsError(f"{folder}: no {RESULTS_FILE} or {SERVING_FILE}: not a results folder (write one with "
                           "`python -m simulator run ... --out DIR` or `simulator serve`)")
    kind = RUN if run else SERVE
    if want is not None and want != kind:
        need = RESULTS_FILE if want == RUN else SERVING_FILE
        have = RESULTS_FILE if run else SERVING_FILE
        raise ResultsError(f"{folder}: a `simulator {kind}` folder ({have}); this command needs a `simulator {want}` "
                           f"folder ({need})")
    return kind


# -- config.json ------------------------------------------------------------------------------
def _json_type(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(v), type(v).__name__)


def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def read_config_file(path: Path, kind: str) -> dict:
    """``config.json`` of a ``kind`` folder, parsed and checked (see :func:`open_results`)."""
    with _open(path) as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ResultsError(f"{path}: over {MAX_CONFIG_BYTES} bytes; expected a config.json written by the toolkit")
    try:
        conf = strict_json_loads(raw.decode("utf-8"))
    except DuplicateKeyError as exc:
        raise ResultsError(f"{path}: key {exc.key!r} appears twice; expected each key once") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ResultsError(f"{path}: nested too deeply; expected a config.json written by the toolkit") from None
    if not isinstance(conf, dict):
        raise ResultsError(f"{path}: expected a JSON object, got {_json_type(conf)}")
    if kind == SERVE:
        _check_serve_config(conf, path)
    elif "settings" in conf or conf.get("setting") == "multi":
        _check_multi_config(conf, path)
    else:
        _check_run_config(conf, path, "")
    return conf


def _field(c: dict, path: Path, where: str, key: str, ok, expected: str, required: bool = True) -> Any:
    if key not in c:
        if required:
            raise ResultsError(f"{path}: field '{where}{key}' missing; expected {expected}")
        return None
    v = c[key]
    if not ok(v):
        raise ResultsError(f"{path}: field '{where}{key}': expected {expected}, got {_show(v)}")
    return v


def _int(v: Any, lo: int, hi: float = math.inf) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _strs(v: Any, nonempty: bool = True) -> bool:
    return (isinstance(v, list) and all(isinstance(x, str) and x for x in v) and len(set(v)) == len(v)
            and (bool(v) or not nonempty))


def _is(*types: type):
    return lambda v: isinstance(v, types)


def _check_common(c: dict, path: Path, where: str) -> None:
    _field(c, path, where, "trace", lambda v: isinstance(v, str) and v, "the trace path (a non-empty string)")
    _field(c, path, where, "policies", _strs, "a non-empty list of distinct policy names (strings)")
    _field(c, path, where, "runs", lambda v: _int(v, 1, MAX_RUNS), f"an integer in 1..{MAX_RUNS}")
    _field(c, path, where, "seed", lambda v: _int(v, 0), "an integer >= 0")
    _field(c, path, where, "arms", _strs, "a non-empty list of distinct arm names (strings)")
    _field(c, path, where, "trace_label", _is(str), "a string", required=False)


def _check_run_config(c: dict, path: Path, where: str) -> None:
    if c.get("setting") == SERVE_SETTING:
        raise ResultsError(f"{path}: field '{where}setting': {SERVE_SETTING!r} is what `simulator serve` writes, "
                           f"but the folder holds {RESULTS_FILE} (a `simulator run` folder): its config.json was "
                           "replaced by another command; run again into a fresh --out")
    _field(c, path, where, "setting", lambda v: v in SETTINGS, f"one of {list(SETTINGS)}")
    _check_common(c, path, where)
    _field(c, path, where, "objective", lambda v: v in OBJECTIVES, f"one of {list(OBJECTIVES)}")
    _field(c, path, where, "reward", lambda v: v in REWARDS, f"one of {list(REWARDS)}")
    _field(c, path, where, "carry_state", _is(bool), "true or false")
    _field(c, path, where, "free_feedback", _is(bool), "true or false", required=False)
    _field(c, path, where, "law", _is(str), "a string")
    _field(c, path, where, "stream", _is(str), "a string")
    _field(c, path, where, "cost_device", lambda v: v is None or isinstance(v, str), "a string or null",
           required=False)
    _field(c, path, where, "policy_modules", lambda v: _strs(v, nonempty=False), "a list of file paths",
           required=False)


def _check_multi_config(c: dict, path: Path) -> None:
    settings = _field(c, path, "", "settings", lambda v: isinstance(v, list) and len(v) > 0
                      and all(isinstance(x, dict) for x in v), "a non-empty list of per-setting objects")
    _field(c, path, "", "setting", lambda v: v == "multi", "'multi' (the form with 'settings')")
    for i, s in enumerate(settings):
        _check_run_config(s, path, f"settings[{i}].")
    names = [s["setting"] for s in settings]
    if len(set(names)) != len(names):
        raise ResultsError(f"{path}: field 'settings': names a setting twice ({names}); expected each once")


def _check_serve_config(c: dict, path: Path) -> None:
    if c.get("setting") != SERVE_SETTING:
        raise ResultsError(f"{path}: field 'setting': expected {SERVE_SETTING!r} (the folder holds {SERVING_FILE}, "
                           f"a `simulator serve` folder), got {_show(c.get('setting'))}")
    _check_common(c, path, "")
    _field(c, path, "", "trace_label", _is(str), "a string")
    _field(c, path, "", "batch_sizes", lambda v: isinstance(v, list) and v and all(_int(x, 1) for x in v)
           and len(set(v)) == len(v), "a non-empty list of distinct integers >= 1")
    _field(c, path, "", "objective", lambda v: v == "time", "'time'")
    _field(c, path, "", "measured_batch_sizes", lambda v: v is None or isinstance(v, list)
           and all(_int(x, 1) for x in v), "a list of integers >= 1", required=False)


# -- the tables -------------------------------------------------------------------------------
def _arrow_kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return STR
    if pa.types.is_integer(t):
        return INT
    if pa.types.is_floating(t):
        return NUM
    if (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_integer(t.value_type):
        return INTS
    return str(t)


def _read_parquet(path: Path) -> pa.Table:
    with _open(path) as f:
        try:
            return pq.read_table(f)
        except Exception as exc:  # pyarrow raises many types on a corrupt file
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ResultsError(f"{path}: cannot read as parquet ({msg})") from None


def _check_arrow_columns(t: pa.Table, path: Path, required: dict[str, str], optional: dict[str, str]) -> None:
    if t.num_rows == 0:
        raise ResultsError(f"{path}: no rows; expected at least one (an empty or truncated file)")
    have = set(t.column_names)
    group = [c for c in optional if c in have]
    if group and len(group) != len(optional):
        required = {**required, **optional}  # the cost columns come together
    for col, kind in {**required, **{c: optional[c] for c in group}}.items():
        if col not in have:
            raise ResultsError(f"{path}: column {col!r} missing; expected {kind}")
        got = _arrow_kind(t.schema.field(col).type)
        if got != kind and not (kind == NUM and got == INT):
            raise ResultsError(f"{path}: column {col!r}: expected {kind}, got {t.schema.field(col).type}")
        nulls = t.column(col).null_count
        if nulls:
            raise ResultsError(f"{path}: column {col!r}: {nulls} empty (null or NaN) values; expected {kind}")


def _check_legacy_ratio(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Folders written before the counts-only layout carry ``mean_accepted`` (tokens / stopping_time,
    bonus token included); it must equal the ratio of the stored counts, and is then dropped: readers
    derive the ratio from ``tokens`` and ``stopping_time`` (``simulator.summary.mat``)."""
    if LEGACY_RATIO not in df.columns:
        return df
    got = df[LEGACY_RATIO].to_numpy(np.float64)
    want = df["tokens"].to_numpy(np.float64) / df["stopping_time"].to_numpy(np.float64)
    bad = ~np.isclose(got, want, rtol=1e-12, atol=0.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ResultsError(f"{path}: column {LEGACY_RATIO!r}: {int(bad.sum())} of {len(got)} values differ from "
                           f"tokens / stopping_time (row {i}: {got[i]}); expected {want[i]}")
    return df.drop(columns=[LEGACY_RATIO])


def _finite(df: pd.DataFrame, path: Path, cols, lo: float | None = None, what: str = "finite numbers") -> None:
    for col in cols:
        v = df[col].to_numpy(np.float64)
        bad = ~np.isfinite(v) if lo is None else ~(np.isfinite(v) & (v >= lo))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ResultsError(f"{path}: column {col!r}: {int(bad.sum())} of {len(v)} values out of range (row {i}: "
                               f"{v[i]}); expected {what}")


def _same(path: Path, col: str, rows, conf, where: str = "") -> None:
    got, want = sorted(set(rows)), sorted(set(conf))
    if got != want:
        extra, missing = sorted(set(got) - set(want)), sorted(set(want) - set(got))
        raise ResultsError(f"{path}: column {col!r}{where}: "
                           + (f"holds {extra} that config.json does not name" if extra else "")
                           + (" and " if extra and missing else "")
                           + (f"lacks {missing} that config.json names" if missing else "")
                           + f"; expected exactly {want}")


def _no_duplicates_rows(df: pd.DataFrame, path: Path, key: list[str]) -> None:
    dup = df.duplicated(key)
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        row = tuple(v.item() if isinstance(v, np.generic) else v for v in df.iloc[i][key])
        raise ResultsError(f"{path}: row {i}: ({', '.join(key)}) = {row} appears more than once "
                           f"({int(dup.sum())} repeated rows); expected each once")


def _read_results(path: Path, configs: list[dict]) -> pd.DataFrame:
    t = _read_parquet(path)
    _check_arrow_columns(t, path, RESULT_COLUMNS, RESULT_TIME_COLUMNS)
    by = {c["setting"]: c for c in configs}
    df = t.drop_columns(["pulls"]).to_pandas()
    _same(path, "setting", df["setting"].unique(), by)
    for s, g in df.groupby("setting", sort=False):
        _check_setting_rows(g, path, by[s], t)
    _no_duplicates_rows(df, path, ["setting", "policy", "prompt_id", "run"])
    _check_complete(df, path, by)
    _finite(df, path, ["regret_rounds", "best_rounds"])
    _finite(df, path, ["stopping_time", "tokens"], lo=1, what="integers >= 1")
    df = _check_legacy_ratio(df, path)
    _finite(df, path, [c for c in RESULT_TIME_COLUMNS if RESULT_TIME_COLUMNS[c] == NUM and c in df.columns])
    if any(c["objective"] == "time" for c in configs) and "time_s" not in df.columns:
        raise ResultsError(f"{path}: column 'time_s' missing; expected numbers (config.json objective 'time')")
    df["pulls"] = t.column("pulls").to_pandas()
    return df


def _check_setting_rows(g: pd.DataFrame, path: Path, c: dict, t: pa.Table) -> None:
    where = f" (setting {c['setting']!r})"
    _same(path, "policy", g["policy"].unique(), c["policies"], where)
    bad = g["objective"] != c["objective"]
    if bad.any():
        raise ResultsError(f"{path}: column 'objective'{where}: row {int(g.index[bad.to_numpy()][0])} says "
                           f"{g.loc[bad, 'objective'].iloc[0]!r}; expected {c['objective']!r} as config.json")
    run = g["run"].to_numpy()
    bad = (run < 0) | (run >= c["runs"])
    if bad.any():
        raise ResultsError(f"{path}: column 'run'{where}: row {int(g.index[bad][0])} is {int(run[bad][0])}; "
                           f"expected 0..{c['runs'] - 1} (config.json runs {c['runs']})")
    lens = pc.list_value_length(t.column("pulls").take(pa.array(g.index.to_numpy()))).to_numpy(zero_copy_only=False)
    bad = lens != len(c["arms"])
    if bad.any():
        raise ResultsError(f"{path}: column 'pulls'{where}: row {int(g.index[bad][0])} has {int(lens[bad][0])} "
                           f"counts; expected one per arm of config.json ({len(c['arms'])})")


def _check_complete(df: pd.DataFrame, path: Path, by: dict[str, dict]) -> None:
    """Every (setting, policy) has every prompt of its setting in every run."""
    prompts = df.groupby("setting", sort=False)["prompt_id"].nunique()
    for (s, pol), g in df.groupby(["setting", "policy"], sort=False):
        n_prompts, runs = int(prompts[s]), by[s]["runs"]
        if len(g) != n_prompts * runs:
            raise ResultsError(f"{path}: setting {s!r} policy {pol!r}: {len(g)} rows; expected {n_prompts * runs} "
                               f"({n_prompts} prompts x {runs} runs): rows missing")


def _read_fixed(path: Path, configs: list[dict], results: pd.DataFrame) -> pd.DataFrame | None:
    if not _exists(path):
        return None  # results written before fixed arms were stored
    t = _read_parquet(path)
    _check_arrow_columns(t, path, FIXED_COLUMNS, FIXED_TIME_COLUMNS)
    df = t.to_pandas()
    by = {c["setting"]: c for c in configs}
    _same(path, "setting", df["setting"].unique(), by)
    for s, g in df.groupby("setting", sort=False):
        where = f" (setting {s!r})"
        _same(path, "arm", g["arm"].unique(), by[s]["arms"], where)
        _same(path, "prompt_id", g["prompt_id"].unique(), results.loc[results["setting"] == s, "prompt_id"].unique(),
              where + " against results.parquet, which")
    _no_duplicates_rows(df, path, ["setting", "arm", "prompt_id"])
    _finite(df, path, ["rounds"] + [c for c in ("time_s", "plain_time_s") if c in df], lo=0,
            what="finite numbers >= 0")
    _finite(df, path, ["tokens"], lo=1, what="integers >= 1")
    _check_switcher(t, df, path)
    return df


def _check_switcher(t: pa.Table, df: pd.DataFrame, path: Path) -> None:
    """The per-round switcher's columns (``simulator.headroom``; absent in folders written
    before it): numbers, NaN where it is not defined (n/a), else at least one round / 0 s."""
    for col in ("switcher_rounds", "switcher_rounds_time_s", "switcher_time_s", "switcher_time_rounds"):
        if col not in df.columns:
            continue
        got = _arrow_kind(t.schema.field(col).type)
        if got not in (NUM, INT):
            raise ResultsError(f"{path}: column {col!r}: expected numbers (NaN = n/a), got {t.schema.field(col).type}")
        v = df[col].to_numpy(np.float64)
        lo = 1.0 if col.endswith("rounds") else 0.0
        bad = ~np.isnan(v) & ~(np.isfinite(v) & (v >= lo))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ResultsError(f"{path}: column {col!r}: row {i} is {v[i]}; expected a finite number >= {lo:g} "
                               f"or NaN (n/a)")


def _read_serving(folder: Path, config: dict) -> pd.DataFrame:
    path = folder / SERVING_FILE
    with _open(path) as f:
        try:
            df = pd.read_csv(f)
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ResultsError(f"{path}: cannot read as CSV ({' '.join(str(exc).split())})") from None
    _check_csv_columns(df, path)
    _check_serving_rows(df, path, config)
    return df


def _check_csv_columns(df: pd.DataFrame, path: Path) -> None:
    if not len(df):
        raise ResultsError(f"{path}: no rows; expected at least one (an empty or truncated file)")
    for col, kind in SERVING_COLUMNS.items():
        if col not in df.columns:
            raise ResultsError(f"{path}: column {col!r} missing; expected {kind}")
        empty = df[col].isna().to_numpy()
        if empty.any():
            raise ResultsError(f"{path}: row {int(np.flatnonzero(empty)[0])}: column {col!r} empty; expected {kind} "
                               "(a truncated file?)")
        s = df[col]
        ok = {STR: pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s),
              INT: pd.api.types.is_integer_dtype(s),
              NUM: pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)}[kind]
        if not ok or (kind == STR and not all(isinstance(x, str) for x in s)):
            raise ResultsError(f"{path}: column {col!r}: expected {kind}, got {s.dtype}")


def _check_serving_rows(df: pd.DataFrame, path: Path, c: dict) -> None:
    bad = ~df["kind"].isin(["arm", "policy"]).to_numpy()
    if bad.any():
        raise ResultsError(f"{path}: row {int(np.flatnonzero(bad)[0])}: column 'kind': expected 'arm' or 'policy', "
                           f"got {df['kind'].iloc[int(np.flatnonzero(bad)[0])]!r}")
    _same(path, "method", df.loc[df["kind"] == "arm", "method"].unique(), c["arms"], " (kind 'arm')")
    n_pol = df.loc[df["kind"] == "policy", "method"].nunique()
    if n_pol != len(c["policies"]):
        raise ResultsError(f"{path}: column 'method' (kind 'policy'): {n_pol} policies; expected "
                           f"{len(c['policies'])} as config.json ({c['policies']})")
    _same(path, "batch_size", df["batch_size"].unique(), c["batch_sizes"])
    run = df["run"].to_numpy()
    bad = (run < 0) | (run >= c["runs"])
    if bad.any():
        raise ResultsError(f"{path}: row {int(np.flatnonzero(bad)[0])}: column 'run' is {int(run[bad][0])}; "
                           f"expected 0..{c['runs'] - 1} (config.json runs {c['runs']})")
    _no_duplicates_rows(df, path, ["sample", "batch_size", "run", "method"])
    want = len(c["batch_sizes"]) * c["runs"] * (len(c["arms"]) + len(c["policies"]))
    if len(df) != want:
        raise ResultsError(f"{path}: {len(df)} rows; expected {want} (batch sizes x runs x methods of config.json): "
                           "rows missing")
    _finite(df, path, ["tokens", "time_s", "throughput", "improvement"], lo=0, what="finite numbers >= 0")
