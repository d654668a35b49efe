"""Every number docs/reproducing.md (and docs/theory.md's check-3 paragraph) quotes is the
regenerated value: ``docs/figures/data/quoted.json`` maps each quoted string of the checked
sections to its source (a committed table under docs/figures/data/ or docs/theory-report/, a
row filter, a column and a format, or a regular expression over a saved script output), and

* every number of a checked section is listed there or among the section's literals (settings
  such as ``20 runs``), so a number added to the prose without a source fails;
* every listed value, recomputed from its table and rounded as quoted, equals the text;
* the Table 1 block equals the regenerated ``table1.md`` cell for cell.

``bash docs/scripts/regenerate.sh`` rewrites the tables and runs this test; where a number
moved, update the prose and ``docs/scripts/quoted_numbers.py`` (which writes quoted.json)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "figures" / "data"
QUOTED = json.loads((DATA / "quoted.json").read_text())
NUM = re.compile(r"(?<![\w@.^§/=:-])[−+-]?\d+(?:,\d{3})*(?:\.\d+)?")


def _section(doc: str, head: str, end: str | None = None) -> str:
    """The text of ``doc`` from ``head`` up to ``end`` (or the next heading of the same or a
    higher level, or the end), without fenced code blocks, code spans and table lines."""
    text = (ROOT / doc).read_text()
    start = text.index(head) + len(head)
    if end is not None:
        body = text[start:text.index(end, start)]
    else:
        level = len(head) - len(head.lstrip("#"))
        nxt = re.search(rf"^#{{1,{level}}} ", text[start:], flags=re.M)
        body = text[start:start + nxt.start()] if nxt else text[start:]
    body = re.sub(r"```.*?```", " ", body, flags=re.S)
    body = re.sub(r"`[^`]*`", " ", body)
    return "\n".join(ln for ln in body.splitlines() if not ln.lstrip().startswith("|"))


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(ROOT / name)


def _fmt(value: float, fmt: str) -> str:
    return fmt.format(value).replace("-", "−")


def _norm(s: str) -> str:
    return s.replace("−", "-").replace(",", "")


OPS = {"pct_over": lambda a, b: 100.0 * (a / b - 1.0), "ratio": lambda a, b: a / b,
       "diff": lambda a, b: a - b}


def _number(spec: dict) -> float:
    return float(_norm(_value({k: v for k, v in spec.items() if k != "format"})))


def _value(spec: dict) -> str:
    """The quoted string ``spec`` recomputes: from a table (``file``, ``where``, ``column``,
    ``format``, optionally ``scale``), a regular expression's first group over a text file, or
    ``op`` (one of ``OPS``) of the unrounded values of specs ``a`` and ``b``."""
    if "op" in spec:
        return _fmt(OPS[spec["op"]](_number(spec["a"]), _number(spec["b"])), spec["format"])
    if "regex" in spec:
        m = re.search(spec["regex"], (ROOT / spec["file"]).read_text(), flags=re.S)
        assert m, f"{spec['file']}: no match for {spec['regex']!r}"
        return _fmt(float(m.group(1)), spec["format"]) if "format" in spec else m.group(1)
    df = _read(spec["file"])
    for col, want in spec.get("where", {}).items():
        df = df[df[col].astype(str) == str(want)] if not isinstance(want, float) else df[(df[col] - want).abs() < 1e-9]
    assert len(df) == 1, f"{spec['file']} {spec.get('where')}: {len(df)} rows, want 1"
    v = float(df[spec["column"]].iloc[0]) * spec.get("scale", 1.0)
    return _fmt(v, spec.get("format", "{}"))


@pytest.mark.parametrize("sec", QUOTED["sections"], ids=lambda s: s["head"].lstrip("# ")[:40])
def test_every_number_of_a_checked_section_has_a_source(sec):
    body = _section(sec["doc"], sec["head"], sec.get("end"))
    listed = {_norm(q["text"]).lstrip("+") for q in QUOTED["quotes"] if q["head"] == sec["head"]}
    allowed = listed | {_norm(x).lstrip("+") for x in sec.get("literals", [])}
    found = {_norm(m.group(0)).lstrip("+") for m in NUM.finditer(body)}
    missing = sorted(x for x in found if x not in allowed)
    assert not missing, f"{sec['head']}: numbers without a source in quoted.json: {missing}"
    absent = sorted(q["text"] for q in QUOTED["quotes"] if q["head"] == sec["head"]
                    and _norm(q["text"]).lstrip("+") not in {_norm(m.group(0)).lstrip("+") for m in NUM.finditer(body)})
    assert not absent, f"{sec['head']}: quoted.json lists numbers the section does not say: {absent}"


@pytest.mark.parametrize("q", QUOTED["quotes"], ids=lambda q: f"{q['head'].lstrip('# ')[:12]}:{q['text']}")
def test_quoted_number_equals_the_regenerated_table(q):
    got = _value(q)
    assert _norm(got).lstrip("+") == _norm(q["text"]).lstrip("+"), f"{q['text']} quoted, {got} regenerated ({q})"


def _md_rows(lines: list[str]) -> dict[str, list[str]]:
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines if ln.lstrip().startswith("|")]
    return {r[0]: r for r in rows[2:]}


def test_table1_block_equals_the_regenerated_table():
    doc = (ROOT / "docs" / "reproducing.md").read_text()
    sec = doc[doc.index("## Table 1"):doc.index("How to read it")]
    quoted = _md_rows(sec.splitlines())
    gen = (DATA / "table1.md").read_text().splitlines()
    header = next(ln for ln in gen if ln.startswith("|"))
    cols = [c.strip() for c in header.strip().strip("|").split("|")]
    table = _md_rows(gen)
    doc_header = next(ln for ln in sec.splitlines() if ln.startswith("|"))
    doc_cols = [c.strip() for c in doc_header.strip().strip("|").split("|")]
    assert quoted and set(quoted) == set(table), sorted(set(quoted) ^ set(table))
    assert set(doc_cols[1:]) <= set(cols), sorted(set(doc_cols[1:]) - set(cols))
    for method, cells in quoted.items():
        for dc, cell in zip(doc_cols[1:], cells[1:], strict=True):
            want = table[method][cols.index(dc)]
            assert cell == want, f"{method} / {dc}: doc {cell}, table1.md {want}"


def test_committed_tables_stay_small():
    """docs/figures/data holds only the small tables the docs quote (no file over 1 MB, 2 MB in all)."""
    sizes = {f.name: f.stat().st_size for f in DATA.iterdir() if f.is_file()}
    assert max(sizes.values()) < 1 << 20, max(sizes, key=sizes.get)
    assert sum(sizes.values()) < 2 << 20, sum(sizes.values())
