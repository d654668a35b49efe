"""Reading, validating and writing trace directories.

Every problem found is reported as one line ``FILE: field: expected ..., got ...``;
``load`` raises :class:`TraceError` with all of them, ``validate`` returns them.
Nothing here unpickles or evaluates anything from the files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import schema as S
from .arms import PLAIN
from .costcheck import check_noise_columns, fill_noise
from .guards import DuplicateKeyError, FileGuardError, memory_problem, read_regular, strict_json_loads
from .outdir import PARTIAL_MARK  # noqa: F401 -- the temp folders' mark, named here for the collector's tests
from .trace import Trace, TraceError

_KIND_CHECK = {
    "str": lambda s: pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s),
    "int": pd.api.types.is_integer_dtype,
    "float": lambda s: pd.api.types.is_float_dtype(s) or pd.api.types.is_integer_dtype(s),
    "bool": pd.api.types.is_bool_dtype,
    "list": pd.api.types.is_object_dtype,
}


MAX_MANIFEST_BYTES = 16 << 20
MAX_TOKENS = 1 << 24  # longest prompt or output a trace may hold (arrays are allocated to it)


def _token_ids(ids) -> bool:
    try:
        a = np.asarray(ids)
    except (ValueError, TypeError):
        return False
    return a.ndim == 1 and a.dtype.kind in "iu" and bool((a >= 0).all() and (a < 2**31).all())


def _read_parquet(path: Path, problems: list[str]) -> pd.DataFrame | None:
    if not path.is_file():
        problems.append(f"{path}: file missing")
        return None
    try:
        return pq.read_table(path).to_pandas()
    except Exception as exc:  # pyarrow raises many types on corrupt files
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        problems.append(f"{path}: cannot read as parquet ({msg})")
        return None


def _check_columns(
    df: pd.DataFrame, path: Path, required: dict[str, str], optional: dict[str, str],
    problems: list[str],
) -> bool:
    ok = True
    for col, kind in required.items():
        if col not in df.columns:
            problems.append(f"{path}: column {col!r} missing (expected {kind})")
            ok = False
        elif len(df) and not _KIND_CHECK[kind](df[col]):
            problems.append(f"{path}: column {col!r}: expected {kind}, got {df[col].dtype}")
            ok = False
        elif df[col].isna().any():
            problems.append(f"{path}: column {col!r}: {int(df[col].isna().sum())} null values")
            ok = False
    known = set(required) | set(optional)
    extra = [c for c in df.columns if c not in known]
    if extra:
        problems.append(f"{path}: unexpected columns {extra}; expected only {sorted(known)}")
        ok = False
    for col, kind in optional.items():
        if col in df.columns and len(df) and not _KIND_CHECK[kind](df[col]):
            problems.append(f"{path}: column {col!r}: expected {kind}, got {df[col].dtype}")
            ok = False
    return ok


def _check_manifest(m: Any, path: Path, problems: list[str]) -> bool:
    if not isinstance(m, dict):
        problems.append(f"{path}: expected a JSON object, got {type(m).__name__}")
        return False
    missing = [k for k in S.MANIFEST_REQUIRED if k not in m]
    if missing:
        problems.append(f"{path}: missing fields {missing}")
        return False
    ok = True
    if m["schema_version"] not in S.SUPPORTED_SCHEMA_VERSIONS:
        problems.append(
            f"{path}: schema_version: expected one of {list(S.SUPPORTED_SCHEMA_VERSIONS)}, "
            f"got {m['schema_version']!r}"
        )
        ok = False
    if m["kind"] not in S.TRACE_KINDS:
        problems.append(f"{path}: kind: expected one of {list(S.TRACE_KINDS)}, got {m['kind']!r}")
        ok = False
    k = m["k_max"]
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 127:
        problems.append(f"{path}: k_max: expected an integer in 1..127, got {k!r}")
        ok = False
    ds = m["drafters"]
    if not isinstance(ds, list) or not ds:
        problems.append(f"{path}: drafters: expected a non-empty list, got {ds!r}")
        return False
    names = []
    for i, d in enumerate(ds):
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or "kind" not in d:
            problems.append(f"{path}: drafters[{i}]: expected an object with name and kind")
            ok = False
            continue
        if d["kind"] not in S.DRAFTER_KINDS:
            problems.append(f"{path}: drafters[{i}].kind: expected one of {list(S.DRAFTER_KINDS)}, got "
                            f"{d['kind']!r}"[:300])
            ok = False
        name = d["name"]
        if not name or "@" in name or "," in name or name == PLAIN:
            problems.append(
                f"{path}: drafters[{i}].name: expected a name without '@' or ',' and not "
                f"{PLAIN!r}, got {name!r}"
            )
            ok = False
        for key in ("max_depth", "rank_depth"):
            md = d.get(key)
            if md is not None and (not isinstance(md, int) or isinstance(md, bool) or md < 1):
                problems.append(f"{path}: drafters[{i}].{key}: expected an integer >= 1, got {md!r}"[:300])
                ok = False
        dp = d.get("draft_passes", "per depth")
        if dp not in ("per depth", "one"):
            problems.append(f"{path}: drafters[{i}].draft_passes: expected 'per depth' or 'one', got {dp!r}")
            ok = False
        names.append(name)
    if len(set(names)) != len(names):
        problems.append(f"{path}: drafters: duplicate names {sorted(names)}")
        ok = False
    tgt = m["target"]
    if not isinstance(tgt, dict) or not isinstance(tgt.get("id"), str):
        problems.append(f"{path}: target: expected an object with a string 'id', got {tgt!r}"[:300])
        ok = False
    if not isinstance(m["synthetic"], bool):
        problems.append(f"{path}: synthetic: expected true or false, got {m['synthetic']!r}"[:300])
        ok = False
    for key in ("decoding", "prompt_set", "hardware", "software"):
        if not isinstance(m[key], dict):
            problems.append(f"{path}: {key}: expected a JSON object, got {m[key]!r}"[:300])
            ok = False
    seed = m["seed"]
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        problems.append(f"{path}: seed: expected a non-negative integer or null, got {seed!r}"[:300])
        ok = False
    for key in ("name", "description", "created_utc", "toolkit_version"):
        if key in m and not isinstance(m[key], str):
            problems.append(f"{path}: {key}: expected a string, got {m[key]!r}"[:300])
            ok = False
    if m.get("information", "full") not in S.INFORMATION:
        problems.append(f"{path}: information: expected one of {list(S.INFORMATION)}, got {m.get('information')!r}")
        ok = False
    return ok


def _links_out(path: Path) -> list[str]:
    """Trace files that are symbolic links out of the trace folder.  The folder itself may be
    a link (the user named it); a file inside it that points elsewhere would make the trace
    read, and ``--overwrite`` replace, something the folder does not hold."""
    root = Path(os.path.realpath(path))
    out = []
    for name in (S.MANIFEST_FILE, S.PROMPTS_FILE, S.ACCEPT_FILE, S.COSTS_FILE, S.RANKS_FILE):
        f = path / name
        if f.is_symlink():
            target = Path(os.path.realpath(f))
            if root not in target.parents:
                out.append(f"{f}: a symbolic link out of the trace folder (to {target}); expected a file inside "
                           f"{path}")
    return out


def _check_decoding(m: dict, path: Path, problems: list[str]) -> None:
    """``decoding.temperature`` a number >= 0 (or null: an engine log does not say) that agrees
    with ``kind``; ``decoding.top_k`` an integer >= 0 and ``decoding.top_p`` in (0, 1] (or null:
    off); ``decoding.max_new_tokens`` a positive integer or null."""
    dec = m["decoding"]
    if not isinstance(dec, dict):
        return
    t = dec.get("temperature")
    number = isinstance(t, (int, float)) and not isinstance(t, bool) and np.isfinite(t) and t >= 0
    if t is not None and not number:
        problems.append(f"{path}: decoding.temperature: expected a number >= 0 or null, got {t!r}"[:300])
    elif number and m["kind"] == "greedy" and t != 0:
        problems.append(f"{path}: decoding.temperature: expected 0 (or null) for kind 'greedy', got {t!r}")
    elif number and m["kind"] == "sampling" and t == 0:
        problems.append(f"{path}: decoding.temperature: expected > 0 for kind 'sampling', got {t!r}")
    k, tp = dec.get("top_k"), dec.get("top_p")  # null: off (or an engine log does not say)
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 0):
        problems.append(f"{path}: decoding.top_k: expected an integer >= 0 or null, got {k!r}"[:300])
    if tp is not None and not (isinstance(tp, (int, float)) and not isinstance(tp, bool) and 0 < tp <= 1):
        problems.append(f"{path}: decoding.top_p: expected a number in (0, 1] or null, got {tp!r}"[:300])
    n = dec.get("max_new_tokens")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_TOKENS):
        problems.append(f"{path}: decoding.max_new_tokens: expected an integer 1..{MAX_TOKENS} or null, "
                        f"got {n!r}"[:300])


def _check_schema_files(m: dict, path: Path, problems: list[str]) -> None:
    """Files that need a newer schema than the manifest says (``ranks.parquet``: 1.1)."""
    if (path / S.RANKS_FILE).exists() and m["schema_version"] == "1.0":
        problems.append(f"{path / S.MANIFEST_FILE}: schema_version: expected '1.1' with {S.RANKS_FILE} present "
                        "(ranks need schema 1.1), got '1.0'")


# bytes held per parquet row while a table is read and checked (measured: ~120 per row of
# accept.parquet and ranks.parquet together, 2.4 M rows each), with a margin
ROW_BYTES = {S.PROMPTS_FILE: 2000, S.ACCEPT_FILE: 200, S.RANKS_FILE: 200, S.COSTS_FILE: 500}
ID_BYTES = 16  # one output_ids element: arrow int32 + numpy int64 after the checks


def _parquet_rows(path: Path) -> tuple[int, int]:
    """``(rows, list elements)`` from the parquet footer, before anything is read (0, 0 when it
    cannot be read: the read reports that)."""
    try:
        meta = pq.ParquetFile(path).metadata
        elems = sum(meta.row_group(g).column(c).num_values for g in range(meta.num_row_groups)
                    for c in range(meta.num_columns) if ".list." in meta.row_group(g).column(c).path_in_schema)
        return int(meta.num_rows), int(elems)
    except Exception:  # noqa: BLE001 -- pyarrow raises many types on corrupt files
        return 0, 0


def _table_bytes(path: Path) -> list[tuple[str, float]]:
    """Estimated memory to read and check every table of the trace at ``path``."""
    parts = []
    for name, per_row in ROW_BYTES.items():
        f = path / name
        if f.is_file():
            rows, elems = _parquet_rows(f)
            parts.append((f"{name}: {rows} rows", rows * per_row + elems * ID_BYTES))
    return parts


def _dense_bytes(P: int, D: int, T: int, acc: pd.DataFrame, depth: int) -> list[tuple[str, float]]:
    """The dense arrays ``load`` builds: accept (int16), alpha and beta (float32), ranks (int16)."""
    cells = float(P) * D * T
    parts = [(f"accept array {P} prompts x {D} drafters x {T} positions (the longest output_len)", cells * 2)]
    for col in ("alpha", "beta"):
        if col in acc.columns:
            parts.append((f"{col} array", cells * 4))
    if "drafted" in acc.columns:
        parts.append(("drafted array", cells * 2))
    if depth:
        parts.append((f"ranks array x {depth} depths", cells * depth * 2))
    return parts


def _rank_depth_hint(rpath: Path, k_max: int) -> int:
    """Depths ``ranks.parquet`` will need (from its column statistics; ``k_max`` when absent)."""
    if not rpath.is_file():
        return 0
    try:
        meta = pq.ParquetFile(rpath).metadata
        col = next(c for c in range(meta.num_columns) if meta.schema.column(c).name == "depth")
        hi = max(int(meta.row_group(g).column(col).statistics.max) for g in range(meta.num_row_groups))
        return hi if 1 <= hi <= k_max else k_max
    except Exception:  # noqa: BLE001 -- no statistics, a corrupt footer: the upper bound
        return k_max


def validate(path: str | os.PathLike[str]) -> list[str]:
    """Return every problem with the trace at ``path`` (empty list: valid)."""
    return _read(Path(path))[1]


def load(path: str | os.PathLike[str]) -> Trace:
    """Read and validate a trace directory (or ``builtin:NAME``).

    Raises
    ------
    TraceError
        With one line per problem, each naming the file and field.
    """
    from .builtin import resolve_path

    p = resolve_path(path)
    trace, problems = _read(p)
    if problems:
        raise TraceError("\n".join(problems))
    assert trace is not None
    return trace


def _read(path: Path) -> tuple[Trace | None, list[str]]:
    """Every check of a trace directory in file order (manifest, prompts, accept, costs, ranks);
    the first file with problems stops the read, so later checks see well-formed input."""
    if not path.is_dir():
        return None, [f"{path}: expected a trace directory (manifest.json + parquet tables)"]
    links = _links_out(path)
    if links:
        return None, links
    manifest, problems = _read_manifest(path / S.MANIFEST_FILE)
    if manifest is None:
        return None, problems
    parts = _check_layout(manifest, path, problems)
    if problems:
        return None, problems
    tables = _read_tables(path, problems)
    if tables is None:
        return None, problems
    prompts, acc = tables
    prompts = _check_prompts(prompts, path / S.PROMPTS_FILE, manifest, problems)
    if prompts is None or problems:
        return None, problems
    lens = prompts["output_len"].to_numpy(np.int64)
    drafters = [d["name"] for d in manifest["drafters"]]
    P, D, T = len(prompts), len(drafters), int(lens.max())
    dense = _dense_bytes(P, D, T, acc, _rank_depth_hint(path / S.RANKS_FILE, int(manifest["k_max"])))
    too_big = memory_problem(f"{path / S.PROMPTS_FILE}: output_len", dense + parts,
                             doing="loading the trace")  # tables still held
    if too_big:  # before any (P, D, T) array is allocated
        return None, [too_big]
    apath = path / S.ACCEPT_FILE
    rows = _index_accept(acc, apath, prompts, drafters, problems)
    if rows is None or not _check_accept_blocks(rows, apath, manifest, prompts, lens, problems):
        return None, problems
    _check_accept_values(rows, apath, manifest, lens, problems)
    costs = _read_costs(path / S.COSTS_FILE, manifest, drafters, problems)
    if problems:
        return None, problems
    accept, alpha, beta, drafted = _dense_accept(rows, (P, D, T))
    held = sum(a.nbytes for a in (accept, alpha, beta) if a is not None)
    ranks = _read_ranks_checked(path / S.RANKS_FILE, manifest, prompts, accept, held, problems)
    if problems:
        return None, problems
    trace = Trace(manifest, prompts, accept, alpha, beta, costs, path, ranks, drafted)
    return trace, []


def _read_manifest(mpath: Path) -> tuple[dict | None, list[str]]:
    """``manifest.json``: a regular JSON file under ``MAX_MANIFEST_BYTES``, each key once, then
    :func:`_check_manifest`; ``(None, problems)`` when it is unusable."""
    try:
        # a regular file only: a FIFO would block the read, a directory or a link loop raise
        manifest = strict_json_loads(read_regular(mpath, MAX_MANIFEST_BYTES).decode("utf-8"))
    except FileGuardError as exc:
        if exc.kind:
            return None, [f"{mpath}: expected a regular JSON file, got {exc.kind}"]
        return None, [f"{mpath}: {exc.size} bytes; expected a manifest under {MAX_MANIFEST_BYTES} bytes"]
    except FileNotFoundError:
        return None, [f"{mpath}: file missing"]
    except DuplicateKeyError as exc:  # json.loads would keep the last one silently
        return None, [f"{mpath}: {exc}; expected each key once per JSON object"]
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, [f"{mpath}: not valid JSON ({exc})"]
    except RecursionError:
        return None, [f"{mpath}: not valid JSON (nested too deeply)"]
    except OSError as exc:  # a symlink loop, a permission error, ...
        return None, [f"{mpath}: cannot read ({exc.strerror or type(exc).__name__})"]
    problems: list[str] = []
    if not _check_manifest(manifest, mpath, problems):
        return None, problems
    return manifest, problems


def _check_layout(manifest: dict, path: Path, problems: list[str]) -> list[tuple[str, float]]:
    """Decoding fields, the schema's files, and the tables' size from their parquet footers
    (before reading them); returns those sizes."""
    mpath = path / S.MANIFEST_FILE
    _check_decoding(manifest, mpath, problems)
    _check_schema_files(manifest, path, problems)
    parts = _table_bytes(path)
    too_big = parts and memory_problem(f"{path / max(parts, key=lambda x: x[1])[0].split(':')[0]}: rows", parts,
                                       doing="reading the trace")
    if too_big:
        problems.append(too_big)
    return parts


def _read_tables(path: Path, problems: list[str]) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """``prompts.parquet`` and ``accept.parquet`` with their columns, or ``None``."""
    ppath, apath = path / S.PROMPTS_FILE, path / S.ACCEPT_FILE
    prompts = _read_parquet(ppath, problems)
    acc = _read_parquet(apath, problems)
    if prompts is None or acc is None:
        return None
    p_ok = _check_columns(prompts, ppath, S.PROMPT_COLUMNS, S.PROMPT_OPTIONAL, problems)
    a_ok = _check_columns(acc, apath, S.ACCEPT_COLUMNS, S.ACCEPT_OPTIONAL, problems)
    return (prompts, acc) if p_ok and a_ok else None


def _check_prompts(prompts: pd.DataFrame, ppath: Path, manifest: dict, problems: list[str]) -> pd.DataFrame | None:
    """``prompts.parquet``: unique ids, known finish reasons, lengths in range, token ids
    matching ``output_len``; returns the table (string ids), ``None`` when it has no rows."""
    prompts = prompts.reset_index(drop=True)
    prompts["prompt_id"] = prompts["prompt_id"].astype(str)
    if len(prompts) == 0:
        problems.append(f"{ppath}: no prompts")
        return None
    ids = prompts["prompt_id"]
    dup = ids[ids.duplicated()].unique().tolist()
    if dup:
        problems.append(f"{ppath}: prompt_id: expected unique ids, duplicates {dup[:5]}")
    bad_fr = sorted(set(prompts["finish_reason"]) - set(S.FINISH_REASONS))
    if bad_fr:
        problems.append(f"{ppath}: finish_reason: expected one of {list(S.FINISH_REASONS)}, got {bad_fr}")
    _check_prompt_lengths(prompts, ppath, problems)
    _check_output_ids(prompts, ppath, manifest.get("information", "full") == "partial", problems)
    return prompts


def _check_prompt_lengths(prompts: pd.DataFrame, ppath: Path, problems: list[str]) -> None:
    ids = prompts["prompt_id"]
    lens = prompts["output_len"].to_numpy(np.int64)
    for i in np.flatnonzero(lens < 1)[:5]:
        problems.append(
            f"{ppath}: output_len: expected >= 1 (zero-length outputs cannot be replayed), "
            f"got {lens[i]} for prompt {ids[i]!r}"
        )
    for i in np.flatnonzero(lens > MAX_TOKENS)[:5]:
        problems.append(f"{ppath}: output_len: expected at most {MAX_TOKENS}, got {lens[i]} for prompt {ids[i]!r}")
    plen = prompts["prompt_len"].to_numpy(np.int64)
    for i in np.flatnonzero((plen < 1) | (plen > MAX_TOKENS))[:5]:
        problems.append(f"{ppath}: prompt_len: expected 1..{MAX_TOKENS}, got {plen[i]} for prompt {ids[i]!r}")
    turn = prompts["turn"].to_numpy(np.int64)
    for i in np.flatnonzero((turn < 0) | (turn > 1000))[:5]:
        problems.append(f"{ppath}: turn: expected 0..1000, got {turn[i]} for prompt {ids[i]!r}")


def _check_output_ids(prompts: pd.DataFrame, ppath: Path, partial: bool, problems: list[str]) -> None:
    ids = prompts["prompt_id"]
    lens = prompts["output_len"].to_numpy(np.int64)
    for i, out in enumerate(prompts["output_ids"]):
        if out is not None and len(out) and not _token_ids(out):
            problems.append(f"{ppath}: output_ids: expected token ids (integers 0..2^31-1) for prompt "
                            f"{ids[i]!r}, got {list(out[:3])!r}..."[:300])
            break
    id_lens = prompts["output_ids"].map(lambda x: -1 if x is None else len(x)).to_numpy()
    for i in np.flatnonzero((id_lens != lens) & ~(partial & (id_lens == 0)))[:5]:
        problems.append(f"{ppath}: output_ids: expected {lens[i]} ids (output_len) for prompt {ids[i]!r}, "
                        f"got {id_lens[i]}")


class _AcceptRows(NamedTuple):
    """``accept.parquet`` indexed: prompt and drafter index, position and value of each row."""

    acc: pd.DataFrame
    pid: pd.Series  # prompt ids as strings
    pi: np.ndarray
    di: np.ndarray
    pos: np.ndarray
    val: np.ndarray

    def where(self, r: int) -> str:
        return f"prompt {self.pid.iloc[r]!r}, drafter {self.acc['drafter'].iloc[r]!r}"


def _index_accept(acc: pd.DataFrame, apath: Path, prompts: pd.DataFrame, drafters: list[str],
                  problems: list[str]) -> _AcceptRows | None:
    """The accept table's ids must be known prompts and drafters; ``None`` when not."""
    pid_index = {p: i for i, p in enumerate(prompts["prompt_id"])}
    acc_pid = acc["prompt_id"].astype(str)
    # factorise once, look up the few distinct values (a set of 4 M strings took seconds)
    p_codes, p_uniq = pd.factorize(acc_pid)
    d_codes, d_uniq = pd.factorize(acc["drafter"].astype(str))
    unknown_p = sorted(set(map(str, p_uniq)) - set(pid_index))
    if unknown_p:
        problems.append(f"{apath}: prompt_id: ids not in prompts.parquet {unknown_p[:5]}")
    unknown_d = sorted(set(map(str, d_uniq)) - set(drafters))
    if unknown_d:
        problems.append(f"{apath}: drafter: expected one of {drafters}, got {unknown_d[:5]}")
    if problems:
        return None
    pi = np.array([pid_index[u] for u in p_uniq], np.int64)[p_codes]
    d_index = {d: i for i, d in enumerate(drafters)}
    di = np.array([d_index[u] for u in d_uniq], np.int64)[d_codes]
    return _AcceptRows(acc, acc_pid, pi, di, acc["pos"].to_numpy(np.int64), acc["accept"].to_numpy(np.int64))


def _check_accept_blocks(rows: _AcceptRows, apath: Path, manifest: dict, prompts: pd.DataFrame, lens: np.ndarray,
                         problems: list[str]) -> bool:
    """Rows per (prompt, drafter) block and their positions: full, one per output position,
    ``pos = 0..N-1`` in order; partial (an engine log), one per logged step, increasing."""
    partial = manifest.get("information", "full") == "partial"
    drafters = [d["name"] for d in manifest["drafters"]]
    P, D = len(prompts), len(drafters)
    counts = np.zeros((P, D), dtype=np.int64)
    np.add.at(counts, (rows.pi, rows.di), 1)
    wrong = np.argwhere((counts < 1) | (counts > lens[:, None]) if partial else counts != lens[:, None])
    for p_i, d_i in wrong[:5]:
        problems.append(
            f"{apath}: rows for prompt {prompts['prompt_id'][p_i]!r}, drafter {drafters[d_i]!r}: expected "
            + (f"1..{lens[p_i]} (one per logged step)" if partial else f"{lens[p_i]} (one per output position)")
            + f", got {counts[p_i, d_i]}"
        )
    if len(wrong):
        return False
    pos = rows.pos
    key = rows.pi * D + rows.di
    same_block = np.r_[False, key[1:] == key[:-1]]
    if partial:
        order_ok = np.where(same_block, pos > np.r_[-1, pos[:-1]], pos >= 0) & (pos < lens[rows.pi])
    else:
        order_ok = np.where(same_block, pos == np.r_[-1, pos[:-1]] + 1, pos == 0)
    if not order_ok.all():
        r = int(np.flatnonzero(~order_ok)[0])
        problems.append(
            f"{apath}: pos: expected "
            + ("increasing positions below output_len" if partial else "0..N-1 in order")
            + f" within each (prompt_id, drafter) block, row {r} has pos {pos[r]} for {rows.where(r)}"
        )
        return False
    return True


def _check_accept_values(rows: _AcceptRows, apath: Path, manifest: dict, lens: np.ndarray,
                         problems: list[str]) -> None:
    """``0 <= accept <= min(k_max, N - pos)``; ``alpha``/``beta`` probabilities (required for
    kind 'sampling'); ``drafted`` only in a partial trace, at least the step's accept."""
    pos, val, acc = rows.pos, rows.val, rows.acc
    cap = np.minimum(int(manifest["k_max"]), lens[rows.pi] - pos)
    bad = np.flatnonzero((val < 0) | (val > cap))
    for r in bad[:5]:
        problems.append(f"{apath}: accept: expected 0..{cap[r]} (min(k_max, output_len - pos)), got {val[r]} "
                        f"at {rows.where(r)}, pos {pos[r]}")
    if len(bad) > 5:
        problems.append(f"{apath}: accept: {len(bad) - 5} more out-of-range values")
    for col in ("alpha", "beta"):
        if manifest["kind"] == "sampling" and col not in acc.columns:
            problems.append(f"{apath}: column {col!r} missing (required for kind 'sampling')")
        if col in acc.columns:
            v = acc[col].to_numpy(np.float64)
            if not np.all((v >= 0) & (v <= 1)):
                problems.append(f"{apath}: {col}: expected probabilities in [0, 1] (no NaN)")
    if "drafted" in acc.columns:  # an adaptive-length log: each step's own draft length
        dk = acc["drafted"].to_numpy(np.int64)
        bad = np.flatnonzero((dk != -1) & ((dk < np.maximum(val, 1)) | (dk > S.MAX_COST_K)))
        if manifest.get("information", "full") != "partial" and len(dk):
            bad = np.arange(len(dk))
        if len(bad):
            r = int(bad[0])
            problems.append(f"{apath}: drafted: expected -1 or the step's draft length (accept..{S.MAX_COST_K}) in a "
                            f"partial trace, got {dk[r]} at {rows.where(r)}, pos {pos[r]} (accept {val[r]})")


def _read_costs(cpath: Path, manifest: dict, drafters: list[str], problems: list[str]) -> pd.DataFrame | None:
    """``costs.parquet`` when present: columns, ranges, noise columns' schema."""
    if not cpath.exists():
        return None
    costs = _read_parquet(cpath, problems)
    if costs is not None and _check_columns(costs, cpath, S.COST_COLUMNS, S.COST_OPTIONAL, problems):
        _check_costs(costs, cpath, drafters, problems)
        _check_noise_schema(costs, cpath, manifest, problems)
    return costs


def _read_ranks_checked(rpath: Path, manifest: dict, prompts: pd.DataFrame, accept: np.ndarray, held: int,
                        problems: list[str]) -> np.ndarray | None:
    """``ranks.parquet`` when present, read (``held``: bytes already allocated) and checked
    against the accept table."""
    if not rpath.exists():
        return None
    drafters = [d["name"] for d in manifest["drafters"]]
    lens = prompts["output_len"].to_numpy(np.int64)
    pid_index = {p: i for i, p in enumerate(prompts["prompt_id"])}
    ranks = _read_ranks(rpath, manifest, pid_index, drafters, lens, problems, held)
    if ranks is not None:
        _check_ranks_accept(ranks, accept, manifest, lens, prompts["prompt_id"].tolist(), rpath, problems)
    return ranks


def _dense_accept(rows: _AcceptRows, shape: tuple[int, int, int]) -> tuple[np.ndarray, ...]:
    """``(accept, alpha, beta, drafted)`` as ``(P, D, T)`` arrays (``None`` for absent columns)."""
    acc, at = rows.acc, (rows.pi, rows.di, rows.pos)
    accept = np.full(shape, -1, dtype=np.int16)
    accept[at] = rows.val
    alpha = beta = drafted = None
    if "alpha" in acc.columns:
        alpha = np.full(shape, np.nan, dtype=np.float32)
        alpha[at] = acc["alpha"].to_numpy(np.float32)
    if "beta" in acc.columns:
        beta = np.full(shape, np.nan, dtype=np.float32)
        beta[at] = acc["beta"].to_numpy(np.float32)
    if "drafted" in acc.columns:
        drafted = np.full(shape, -1, dtype=np.int16)
        drafted[at] = acc["drafted"].to_numpy(np.int16)
    return accept, alpha, beta, drafted


#: every cost row (one step) lies within 100 ns .. one hour; the collector floors draft rows at 1e-4 ms
MS_RANGE = (1e-4, 3.6e6)
#: relative to its device's plain step (verify, smallest k and batch size): verify rows within
#: [plain / 1e3, plain * 1e4], draft rows at most plain * 1e4 (an n-gram lookup may be 1e-5 of it)
PLAIN_RATIO = (1e-3, 1e4)
COST_KEY = ["device", "kind", "drafter", "k", "batch_size", "context_len"]


def _cost_row(c: pd.DataFrame, i: int) -> str:
    r = c.iloc[i]
    return (f"device {r['device']!r}, {r['kind']}" + (f" {r['drafter']!r}" if r["drafter"] else "")
            + f", k {r['k']}, batch {r['batch_size']}, context {r['context_len']}")


def _check_noise_schema(costs: pd.DataFrame, cpath: Path, manifest: dict, problems: list[str]) -> None:
    """The schema-1.2 noise columns need a manifest of schema 1.2 or later."""
    have = sorted(set(S.COST_OPTIONAL) & set(costs.columns))
    if have and manifest["schema_version"] in ("1.0", "1.1"):
        problems.append(f"{cpath.parent / S.MANIFEST_FILE}: schema_version: expected '{S.NOISE_SCHEMA}' or later with "
                        f"noise columns {have} in {S.COSTS_FILE}, got {manifest['schema_version']!r}")


def _check_costs(costs: pd.DataFrame, cpath: Path, drafters: list[str], problems: list[str]) -> None:
    """Types and ranges of ``costs.parquet``, then what would contradict the cost model: a
    device without verify rows, two rows for one cell, a step outside ``MS_RANGE`` or far from
    its device's plain step (``PLAIN_RATIO``; docs/trace_format.md, "Validation")."""
    n0 = len(problems)
    ms = costs["ms"].to_numpy(np.float64)
    if not np.all(np.isfinite(ms) & (ms > 0)):
        problems.append(f"{cpath}: ms: expected finite positive milliseconds (no NaN)")
    bad_kind = sorted(set(costs["kind"]) - set(S.COST_KINDS))
    if bad_kind:
        problems.append(f"{cpath}: kind: expected one of {list(S.COST_KINDS)}, got {bad_kind}")
    dr = set(costs.loc[costs["kind"] == "draft", "drafter"]) - set(drafters)
    if dr:
        problems.append(f"{cpath}: drafter: draft rows for unknown drafters {sorted(dr)}")
    dr = set(costs.loc[costs["kind"] == "logged", "drafter"]) - set(drafters) - {""}
    if dr:
        problems.append(f"{cpath}: drafter: logged rows for unknown drafters {sorted(dr)}")
    if not len(costs):
        problems.append(f"{cpath}: no rows; expected cost rows, or no costs.parquet at all")
    for col, lo, hi in (("k", 0, S.MAX_COST_K), ("batch_size", 1, 1 << 20), ("context_len", 0, MAX_TOKENS)):
        v = costs[col].to_numpy(np.int64)
        if len(v) and ((v < lo) | (v > hi)).any():
            problems.append(f"{cpath}: {col}: expected {lo}..{hi}, got {int(v[(v < lo) | (v > hi)][0])}")
    check_noise_columns(costs, str(cpath), problems)
    if len(problems) > n0:
        return
    c = costs.reset_index(drop=True)
    logged = c["kind"] == "logged"
    mixed = sorted(set(c.loc[logged, "device"]) & set(c.loc[~logged, "device"]))
    if mixed:
        problems.append(f"{cpath}: kind: device(s) {mixed} mix 'logged' rows with verify/draft rows; expected one "
                        "kind of table per device (a log's measured steps, or the collector's verify/draft rows)")
    plain_row = logged & (c["drafter"] == "") & (c["k"] == 0)
    no_plain = sorted(set(c.loc[logged, "device"]) - set(c.loc[plain_row, "device"]))
    if no_plain:
        problems.append(f"{cpath}: kind: logged device(s) {no_plain} have no plain-decoding row; expected a "
                        "'logged' row with drafter '' and k 0 (the vanilla log's step) for every logged device")
    bad_k = logged & (c["drafter"] != "") & (c["k"] < 1)
    if bad_k.any():
        problems.append(f"{cpath}: k: expected k >= 1 on a drafter's logged rows, got "
                        f"{_cost_row(c, int(bad_k.idxmax()))}")
    no_verify = sorted(set(c.loc[~logged, "device"]) - set(c.loc[c["kind"] == "verify", "device"]))
    if no_verify:
        problems.append(f"{cpath}: kind: device(s) {no_verify} have draft rows only; expected verify rows (the "
                        "target's step) for every device")
    no_verify += no_plain + mixed
    dup = c.duplicated(COST_KEY, keep=False)
    if dup.any():
        g = c[dup].groupby(COST_KEY, sort=False)["ms"]
        n_conf = int((g.nunique() > 1).sum())
        i = int(np.flatnonzero(dup)[0])
        vals = sorted(set(c.loc[dup & (c[COST_KEY] == c.loc[i, COST_KEY]).all(axis=1), "ms"].tolist()))
        problems.append(f"{cpath}: ms: expected one row per (device, kind, drafter, k, batch_size, context_len), got "
                        f"{int(g.ngroups)} repeated cells ({n_conf} with different ms), e.g. {_cost_row(c, i)}: "
                        f"{', '.join(f'{v:.6g}' for v in vals[:4])} ms")
    lo, hi = MS_RANGE
    out = np.flatnonzero((ms < lo) | (ms > hi))
    if len(out):
        problems.append(f"{cpath}: ms: expected {lo:g}..{hi:g} ms (100 ns to one hour per step), got {ms[out[0]]:.6g} "
                        f"at {_cost_row(c, int(out[0]))}" + (f" and {len(out) - 1} more rows" if len(out) > 1 else ""))
        return
    for dev, g in c[~c["device"].isin(no_verify)].groupby("device", sort=True):
        v = g[g["kind"].isin(["verify", "logged"]) & (g["drafter"] == "")]  # the target's own step
        v0 = v[v["batch_size"] == v["batch_size"].min()]
        plain = float(v0.loc[v0["k"] == v0["k"].min(), "ms"].median())
        rlo, rhi = PLAIN_RATIO
        bad = (g["kind"].isin(["verify", "logged"]) & (g["ms"] < plain * rlo)) | (g["ms"] > plain * rhi)
        if bad.any():
            i = int(c.index.get_loc(bad[bad].index[0]))
            problems.append(f"{cpath}: ms: expected verify rows within [plain / {1 / rlo:g}, plain x {rhi:g}] and "
                            f"draft rows at most plain x {rhi:g}, plain = the verify step of device {dev!r} at its "
                            f"smallest k and batch size ({plain:.6g} ms); got {ms[i]:.6g} at {_cost_row(c, i)}")


def _read_ranks(rpath: Path, manifest: dict, pid_index: dict, drafters: list[str], lens: np.ndarray,
                problems: list[str], held: float = 0.0) -> np.ndarray | None:
    """``ranks.parquet`` -> (prompts, drafters, positions, depth) int16, -1 where absent; one
    row per (prompt, drafter, pos, depth), the dense array refused before it is allocated when
    it would not fit next to the ``held`` bytes."""
    r = _read_parquet(rpath, problems)
    if r is None or not _check_columns(r, rpath, S.RANKS_COLUMNS, {}, problems):
        return None
    cap = manifest.get("rank_cap")
    if not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= 255:
        problems.append(f"{rpath.parent / S.MANIFEST_FILE}: rank_cap: expected an integer 1..255 with ranks.parquet, "
                        f"got {cap!r}")
        return None
    pid = r["prompt_id"].astype(str)
    # factorise once, look up the few distinct values (iterating a million strings took seconds)
    p_codes, p_uniq = pd.factorize(pid)
    d_codes, d_uniq = pd.factorize(r["drafter"].astype(str))
    d_index = {d: i for i, d in enumerate(drafters)}
    bad_p = sorted(str(u) for u in p_uniq if u not in pid_index)
    bad_d = sorted(str(u) for u in d_uniq if u not in d_index)
    if bad_p or bad_d:
        problems.append(f"{rpath}: prompt_id/drafter: unknown {bad_p[:3] + bad_d[:3]}")
        return None
    pi = np.array([pid_index[u] for u in p_uniq], np.int64)[p_codes]
    di = np.array([d_index[u] for u in d_uniq], np.int64)[d_codes]
    pos = r["pos"].to_numpy(np.int64)
    dep = r["depth"].to_numpy(np.int64)
    val = r["rank"].to_numpy(np.int64)
    k_max = int(manifest["k_max"])
    checks = (((pos < 0) | (pos >= lens[pi]), "pos", pos, "0..output_len-1"),
              ((dep < 1) | (dep > k_max), "depth", dep, f"1..{k_max} (k_max)"),
              ((val < 0) | (val > cap), "rank", val, f"0..{cap} (rank_cap)"))
    for bad, col, v, want in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            problems.append(f"{rpath}: {col}: expected {want}, got {int(v[i])} at prompt {pid.iloc[i]!r}, "
                            f"drafter {r['drafter'].iloc[i]!r}")
    if problems:
        return None
    shape = (len(pid_index), len(drafters), int(lens.max()), int(dep.max()) if len(dep) else 1)
    too_big = memory_problem(f"{rpath}: depth", [("arrays already read", held),
                                                 (f"ranks array {' x '.join(map(str, shape))}", 2.0 * np.prod(shape))],
                             doing="loading the trace")
    if too_big:
        problems.append(too_big)
        return None
    key = ((pi * shape[1] + di) * shape[2] + pos) * shape[3] + dep - 1  # < 2^40: the array fits in memory
    order = np.argsort(key, kind="stable")
    rep = np.flatnonzero(key[order][1:] == key[order][:-1])
    if len(rep):
        i, j = int(order[rep[0]]), int(order[rep[0] + 1])
        problems.append(f"{rpath}: rank: expected one row per (prompt_id, drafter, pos, depth), got {len(rep)} "
                        f"repeated, e.g. prompt {pid.iloc[i]!r}, drafter {r['drafter'].iloc[i]!r}, pos {pos[i]}, "
                        f"depth {dep[i]} (ranks {val[i]} and {val[j]})")
        return None
    out = np.full(shape, -1, dtype=np.int16)
    out[pi, di, pos, dep - 1] = val
    return out


def _zero_runs(zero: np.ndarray) -> np.ndarray:
    """``(P, T)`` bools -> at each ``t`` the number of consecutive ``True`` from ``t`` on."""
    T = zero.shape[1]
    t = np.arange(T)
    first_false = np.where(zero, T, t[None, :])
    return np.minimum.accumulate(first_false[:, ::-1], axis=1)[:, ::-1] - t[None, :]


def _check_ranks_accept(ranks: np.ndarray, accept: np.ndarray, manifest: dict, lens: np.ndarray, ids: list[str],
                        rpath: Path, problems: list[str]) -> None:
    """A greedy trace's chain acceptance follows from its ranks: the chain of ``d@K`` is the
    tree of rank-0 paths, so for every drafter with ranks and every position ``t``,
    ``accept = min(k_max, output_len - t, leading zero ranks)``, the leading zeros counted over
    ``r(t), r(t+1), ...`` (depth 1, ``rank_depth: 1``) or over depths ``1, 2, ...`` at ``t``
    (``rank_depth > 1``), a missing rank ending the run.  Sampling traces hold one sampled
    realisation of ``accept`` and engine logs no ranks: not checked."""
    if manifest["kind"] != "greedy" or manifest.get("information", "full") == "partial":
        return
    P, D, T, R = ranks.shape
    t = np.arange(T)
    inside = t[None, :] < lens[:, None]
    cap = np.minimum(int(manifest["k_max"]), lens[:, None] - t[None, :])
    for d, info in enumerate(manifest["drafters"]):
        zero = ranks[:, d] == 0  # (P, T, R)
        if not (ranks[:, d, :, 0] >= 0).any():
            continue  # no ranks for this drafter
        if int(info.get("rank_depth", 1)) > 1:
            lead = np.where(zero.all(axis=2), R, np.argmin(zero, axis=2))
        else:
            lead = _zero_runs(zero[:, :, 0])
        want = np.minimum(lead, cap)
        got = accept[:, d].astype(np.int64)
        bad = (got != want) & inside
        if bad.any():
            p, tt = (int(x) for x in np.argwhere(bad)[0])
            how = "depths 1, 2, ... at pos" if int(info.get("rank_depth", 1)) > 1 else "depth 1 at pos, pos + 1, ..."
            problems.append(f"{rpath}: rank: contradicts accept.parquet for drafter {info['name']!r} at "
                            f"{int(bad.sum())} positions, e.g. prompt {ids[p]!r}, pos {tt}: accept {got[p, tt]}, but "
                            f"the ranks give {want[p, tt]} (min(k_max, output_len - pos, leading rank-0 entries over "
                            f"{how}))")


# -- writing ------------------------------------------------------------------------------
def accept_table(trace: Trace) -> pd.DataFrame:
    """The long ``accept.parquet`` table of a trace, sorted by prompt, drafter, position."""
    P, D, _ = trace.accept.shape
    lens = trace.output_lens
    rows_pid, rows_d, rows_pos = [], [], []
    for p in range(P):
        n = int(lens[p])
        rows_pid.append(np.full(D * n, p))
        rows_d.append(np.repeat(np.arange(D), n))
        rows_pos.append(np.tile(np.arange(n), D))
    pi, di, pos = (np.concatenate(x) for x in (rows_pid, rows_d, rows_pos))
    if trace.partial:  # an engine log: rows where a logged step started only
        keep = trace.accept[pi, di, pos] >= 0
        pi, di, pos = pi[keep], di[keep], pos[keep]
    names = np.asarray(trace.drafter_names, dtype=object)
    ids = np.asarray(trace.prompt_ids, dtype=object)
    df = pd.DataFrame(
        {
            "prompt_id": ids[pi],
            "drafter": names[di],
            "pos": pos.astype(np.int32),
            "accept": trace.accept[pi, di, pos].astype(np.int8),
        }
    )
    if trace.alpha is not None:
        df["alpha"] = trace.alpha[pi, di, pos].astype(np.float32)
    if trace.beta is not None:
        df["beta"] = trace.beta[pi, di, pos].astype(np.float32)
    if trace.drafted is not None:
        df["drafted"] = trace.drafted[pi, di, pos].astype(np.int16)
    return df


def ranks_table(trace: Trace) -> pd.DataFrame:
    """The long ``ranks.parquet`` table: every recorded (prompt, drafter, position, depth)."""
    pi, di, pos, dep = np.nonzero(trace.ranks >= 0)
    names = np.asarray(trace.drafter_names, dtype=object)
    ids = np.asarray(trace.prompt_ids, dtype=object)
    return pd.DataFrame({"prompt_id": ids[pi], "drafter": names[di], "pos": pos.astype(np.int32),
                         "depth": (dep + 1).astype(np.int8), "rank": trace.ranks[pi, di, pos, dep].astype(np.uint8)})


def _write_parquet(df: pd.DataFrame, path: Path, list_int_cols: tuple[str, ...] = ()) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    for col in list_int_cols:
        i = table.schema.get_field_index(col)
        table = table.set_column(i, col, table.column(col).cast(pa.list_(pa.int32())))
    pq.write_table(table, path, compression="zstd", compression_level=9)


TRACE_FILES = (S.MANIFEST_FILE, S.PROMPTS_FILE, S.ACCEPT_FILE, S.COSTS_FILE, S.RANKS_FILE)


def _legacy_trace(out: Path) -> bool:
    """A trace folder written by this toolkit before folders carried a mark: it validates and
    its manifest names the toolkit version."""
    if not (out / S.MANIFEST_FILE).is_file() or validate(out):
        return False
    try:
        return "toolkit_version" in json.loads((out / S.MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def write(trace: Trace, out_dir: str | os.PathLike[str], *, overwrite: bool = False,
          own: tuple[str, ...] = ()) -> Path:
    """Write ``trace`` to ``out_dir`` as a whole (``traces.outdir.staged_folder``).

    The written folder is re-read and validated before it replaces anything, so a failed write
    never leaves a half-written trace where a good one was.  ``overwrite`` replaces a trace folder
    this toolkit wrote, never one holding anything else; ``own``: entries of the old folder that
    the caller wrote and that may go with it (the collector's ``shards``; the caller then holds
    the folder's lock).
    """
    from .outdir import check_out, staged_folder

    out = check_out(out_dir)
    if not (overwrite or own) and out.is_dir() and any(out.iterdir()):
        raise FileExistsError(f"{out}: already exists (--overwrite replaces a trace folder this toolkit wrote)")
    legacy_ok = bool(own) or (out.is_dir() and _legacy_trace(out))
    with staged_folder(out, "trace", replace=overwrite or bool(own), legacy=TRACE_FILES + own,
                       legacy_ok=legacy_ok, what="a trace writer", locked=bool(own)) as tmp:
        manifest = trace.manifest
        if trace.costs is not None and set(S.COST_OPTIONAL) & set(trace.costs.columns) and \
                manifest.get("schema_version") in ("1.0", "1.1"):  # the noise columns are schema 1.2's
            manifest = dict(manifest, schema_version=S.NOISE_SCHEMA)
        (tmp / S.MANIFEST_FILE).write_text(
            json.dumps(manifest, indent=2, sort_keys=True, default=_json_default) + "\n",
            encoding="utf-8",
        )
        prompts = trace.prompts.copy()
        prompts["output_ids"] = prompts["output_ids"].map(lambda x: [int(v) for v in x])
        _write_parquet(prompts, tmp / S.PROMPTS_FILE, ("output_ids",))
        _write_parquet(accept_table(trace), tmp / S.ACCEPT_FILE)
        if trace.costs is not None:
            _write_parquet(fill_noise(trace.costs), tmp / S.COSTS_FILE)
        if trace.ranks is not None:
            _write_parquet(ranks_table(trace), tmp / S.RANKS_FILE)
        problems = [x.replace(str(tmp), str(out)) for x in validate(tmp)]
        if problems:
            raise TraceError("refusing to write an invalid trace:\n" + "\n".join(problems))
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
