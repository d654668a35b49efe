"""``report.md`` and the per-check figures of ``python -m experiments theory``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

STATUS_TEXT = {"pass": "pass", "fail": "**FAIL**", "vacuous": "vacuous", "info": "info"}


def write_figures(curves: pd.DataFrame, out: Path) -> None:
    """One ``check{N}_regret_vs_length`` figure per check (panels = settings), drawn by
    ``simulator.figures.regret_vs_length`` so the report and the paper figures agree."""
    if curves.empty:
        return
    from .figures import regret_vs_length, save_figure, set_style  # selects the Agg backend

    set_style()
    for check, sub in curves.groupby("check", sort=False):
        save_figure(regret_vs_length(sub), out, f"check{check}_regret_vs_length", dpi=140)


def _fmt(x: float) -> str:
    return "" if pd.isna(x) else f"{x:.3f}"


def write_report(checks: pd.DataFrame, out: Path, quick: bool, elapsed: float, fitted: dict) -> None:
    counts = checks["status"].value_counts() if len(checks) else pd.Series(dtype=int)
    tally = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in ("pass", "fail", "vacuous", "info"))
    lines = ["# Theory validation report", "",
             f"Mode: {'quick' if quick else 'full'}; {len(checks)} rows: {tally}; wall time {elapsed:.0f} s.", "",
             "Regret is stopping-time regret in rounds (BanditSpec Eq. 1/12): mean over runs of "
             "ST(policy) - E[ST(best fixed arm)], with 95% CI (1.96 SE over runs).  Statuses: `pass` / `FAIL`; "
             "`vacuous`: an upper bound at or above the worst fixed arm's regret, which no fixed arm could "
             "exceed, so holding it shows nothing; `info`: a measurement no theorem constrains.  NaN never "
             "passes.  Slopes are fitted over the lengths named in the row, with a 95% interval "
             "(bootstrap over runs + the fit's own standard error; `theory/fits.py`): Theorem 4.4 rows "
             "compare the slope of pull-count regret (Eq. 36) against log(len) with the constant c; rate "
             "rows require the whole interval within the stated exponent +- 0.1.", ""]
    if fitted:
        rates = ", ".join(f"{k} {float(v):.3f}" for k, v in fitted.items())
        lines += [f"Real-trace instance (check 3): TGD rates fitted to each drafter's own rounds at the "
                  f"instance's K (its fixed-arm replay path), pooled over prompts: {rates}.", ""]
    for check, g in checks.groupby(checks["check"].str.split("-").str[0], sort=True):
        lines += [f"## Check {check}", "",
                  "| check | setting | policy | len | value | bound | ±95% / interval | status |",
                  "|---|---|---|---|---|---|---|---|"]
        for _, r in g.iterrows():
            spread = f"[{r['lo']:.3f}, {r['hi']:.3f}]" if np.isfinite([r["lo"], r["hi"]]).all() else _fmt(r["ci95"])
            lines.append(f"| {r['check']} | {r['setting']} | {r['policy']} | {r['n']} | {_fmt(r['value'])} | "
                         f"{_fmt(r['bound'])} | {spread} | {STATUS_TEXT[r['status']]} |")
        lines.append("")
    failed = checks[checks["status"] == "fail"]
    lines += ["## Findings", ""]
    lines.append("Every non-vacuous check passed." if failed.empty else f"{len(failed)} checks FAILED:")
    for _, r in failed.iterrows():
        lines.append(f"* {r['check']} on {r['setting']} ({r['policy']}, len {r['n']}): value {_fmt(r['value'])} "
                     f"vs bound {_fmt(r['bound'])}. {r['detail']}.")
    vac = checks[checks["status"] == "vacuous"]
    if len(vac):
        lines += ["", "Vacuous upper bounds (bound >= worst fixed arm's regret): "
                  + ", ".join(sorted({f"{s} ({p})" for s, p in zip(vac["setting"], vac["policy"], strict=True)}))
                  + "."]
    (out / "report.md").write_text("\n".join(lines) + "\n")
