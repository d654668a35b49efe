"""``python -m experiments {figures,table,plot,export-specbench,arms-scaling,survival,theory,engine-rules,
specbench}``.

Every verb that reads a trace takes ``--trace`` and derives its defaults from it (drafters,
cost device, batch sizes), saying on stderr what it chose and why; the grammar is
``traces.clikit``'s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

import traces
from simulator.cli import ERRORS, add_wide
from simulator.results_reader import ResultsFolder, open_results
from traces import clikit as ck
from traces.outdir import check_out, staged_folder
from traces.textout import term_width, wrap, wrap_lines

THEORY_LEGACY = ("checks.csv", "curves.csv", "report.md", "*.png", "*.pdf")  # written before folders had a mark


class CheckFailed(RuntimeError):
    """A check that ran and failed (exit 1)."""


def table1_terminal(t: pd.DataFrame, width: int = 100) -> str:
    """Table 1's overall rows (``tables/table1.csv``) as a terminal table: one row per method,
    units under the names, the columns that do not fit left out and named."""
    from traces.textout import Column, interval, num, render

    o = t[t["category"] == "overall"]
    if not len(o):
        return ""
    unit = str(o["unit"].iloc[0])
    rows = [r for _, r in o.iterrows()]
    cols = [Column("method", "", [str(r["method"]) for r in rows], left=True),
            Column("MAT", "tok/rnd", [num(r["mat"], ".2f") for r in rows]),
            Column("tokens/s", "tok/s", [num(r["tps"], ".1f") for r in rows]),
            Column("speedup", "x", [num(r["speedup"], ".2f") for r in rows]),
            Column("Δ vs best fixed", f"{unit}/prompt [95% CI]",
                   [interval(r["d_fixed"], r["d_fixed_lo"], r["d_fixed_hi"], r["prompts"], "+.1f")
                    if pd.notna(r["d_fixed"]) else "ref" if r["kind"] == "fixed" else "" for r in rows], drop=2),
            Column("gain%", "%", [num(r["gain_pct"], ".0f", "") for r in rows], drop=1),
            Column("verdict", "", [str(r["verdict"]) if pd.notna(r["verdict"]) else "" for r in rows],
                   left=True, drop=3)]
    table, dropped = render(cols, width)
    lines = [f"Table 1 (overall, {int(o['prompts'].max())} prompts; {o['objective'].iloc[0]} objective; Δ: paired, "
             f"negative = better; gain%: share of the vanilla -> per-round switcher gain)"] + table
    if dropped:
        lines.append(f"left out to fit {width} columns: {', '.join(dropped)} (--wide shows them)")
    return "\n".join(wrap_lines(lines, width))


def policy_list(text: str) -> tuple[str, ...]:
    """``"ucbspec:delta=0.1,width=per-arm,exp3spec"`` -> the two specs: a comma-separated
    piece ``key=value`` without a policy name continues the previous spec's parameters."""
    out: list[str] = []
    for piece in ck.str_list(text):
        if out and "=" in piece and ":" not in piece.split("=", 1)[0] and ":" in out[-1]:
            out[-1] += "," + piece
        else:
            out.append(piece)
    return tuple(out)


def _figures(a: argparse.Namespace) -> int:
    from .paper import FigureConfig, make_figures

    kw = {}
    if a.quick:  # small grids: a smoke test of the whole pipeline (tests, CI)
        kw = dict(runs=4, serve_runs=2, max_batch=8, lengths=(100, 300, 1000),
                  curve_grid=(100, 1000, 2), curve_runs=8, bound_runs=8, scaling_runs=2, scaling_orders=2)
    if a.batch_sizes:
        kw["batch_sizes"] = a.batch_sizes
    if a.k is not None:
        kw["k"] = a.k
    if a.runs is not None:
        kw["runs"] = a.runs
    if a.policies:
        from simulator.policies import make_policy

        for spec in a.policies:  # a bad spec is refused before anything is simulated
            make_policy(spec)
        kw["policies"] = tuple(a.policies)
    cfg = FigureConfig(trace=a.trace, seed=a.seed, cost_device=a.cost_device, drafters=a.drafters or (),
                       serve_drafter=a.serve_drafter, **kw)
    paths, times = make_figures(cfg, a.out, render_only=a.render_only, progress=not a.quiet)
    width = term_width(a.wide)
    if not a.quiet:
        import pandas as pd

        print(table1_terminal(pd.read_csv(Path(a.out, "tables", "table1.csv")), width))
        print(f"(per category, with every interval: {Path(a.out, 'tables', 'table1.md')})")
    by_dir: dict[str, list[str]] = {}
    for p in paths:
        by_dir.setdefault(str(Path(p).parent), []).append(Path(p).name)
    for d, names in by_dir.items():
        print("\n".join(wrap(f"wrote {d}/: {', '.join(names)}", width, "    ")))
    print(f"done in {times['total']:.1f} s (render {times['render']:.1f} s)")
    return 0


def _table(a: argparse.Namespace) -> int:
    res = open_results(a.results, want="run")  # every file checked before use
    df, fixed, confs = res.results, res.fixed, res.configs
    have = list(dict.fromkeys(df["setting"]))
    if a.setting and a.setting not in have:
        raise ValueError(f"--setting {a.setting!r}: {a.results} holds {have}")
    settings = [a.setting] if a.setting else have
    out = Path(a.out or Path(a.results) / "tables")
    with staged_folder(out, "table", legacy=("table1_*.csv", "table1_*.md"), legacy_ok=True) as tmp:
        _write_tables(a, df, fixed, confs, settings, tmp)
    print(f"wrote {out}/table1_*.csv and .md")
    return 0


def _write_tables(a: argparse.Namespace, df, fixed, confs: list, settings: list, out: Path) -> None:
    from .tables import caption, degenerate_ids, notes, table1, table1_tidy, to_markdown

    for s in settings:
        conf = next((c for c in confs if c.get("setting") == s), confs[0] if confs else {})
        seed = int(conf.get("seed", 0))
        trace = traces.load(conf["trace"]) if conf.get("trace") else None
        deg = degenerate_ids(trace) if trace is not None else []
        d, fx, excluded = df, fixed, 0
        if a.exclude_degenerate:
            drop = df["prompt_id"].isin(deg) & (df["setting"] == s)
            excluded = df.loc[drop, "prompt_id"].nunique()
            if excluded == df.loc[df["setting"] == s, "prompt_id"].nunique():
                raise ValueError(f"--exclude-degenerate: every prompt of setting {s!r} is flagged degenerate; "
                                 f"expected at least one left")
            d = df[~drop]
            fx = None if fixed is None else fixed[~(fixed["prompt_id"].isin(deg) & (fixed["setting"] == s))]
            deg = []
        tidy = table1_tidy(d, fx, s, seed, conf, deg)  # bootstraps once: the csv and the display share it
        tidy.to_csv(out / f"table1_{s}.csv", index=False)
        t = table1(d, fx, s, seed, conf, deg, tidy=tidy)
        n = d.loc[d.setting == s, "prompt_id"].nunique()
        cap = caption(trace.manifest, conf, n) if trace is not None else ""
        cap = f"{cap} {notes(d, s, deg, excluded, fx)}".strip()
        (out / f"table1_{s}.md").write_text(f"Setting: {s}. {cap}\nCells: {t.columns.name}\n\n" + to_markdown(t))
        print(f"== {s}: {cap}\n   cells: {t.columns.name}")
        print(t.to_string())


def _plot(a: argparse.Namespace) -> int:
    res = open_results(a.results)  # run or serve, every file checked before use
    out = Path(a.out or res.path / "figures")
    # an unmarked folder of images is replaced only where plot writes by default (RESULTS/figures)
    with staged_folder(out, "plot", legacy=("*.png", "*.pdf"), legacy_ok=out == res.path / "figures") as tmp:
        names = _plot_into(res, tmp)
    for name in names:
        print(f"wrote {out / name}")
    return 0


def _plot_into(res: ResultsFolder, out: Path) -> list[str]:
    from . import figures as F

    if res.kind == "serve":
        conf, df = res.config, res.serving
        F.set_style()
        paths = F.save_figure(F.batch_serving(df, F.source_of(conf), conf.get("measured_batch_sizes")), out,
                              "batch_serving")
        paths += F.save_figure(F.batch_serving_sorted(df, F.source_of(conf)), out, "batch_serving_sorted")
    else:
        c0 = res.configs[0]
        paths = F.save_all(res.results, c0["arms"], out, title=F.source_of(c0))
    return [p.name for p in paths]


def _export(a: argparse.Namespace) -> int:
    from .export import SIDECAR, SPEEDUP_DEFINITION, export_specbench

    out = a.out or f"{a.results}/specbench/{a.policy.replace(':', '_')}.jsonl"
    base = (str(Path(out).with_name("vanilla.jsonl")) if a.baseline == "" else a.baseline)
    r = export_specbench(a.results, a.policy, out, setting=a.setting, run=a.run, baseline=base,
                         policy_modules=tuple(a.policy_module or ()))
    for key in ("method", "baseline"):
        if r[key] is not None:
            print("\n".join(wrap(f"wrote {r[key]} (sidecar {r[key]}{SIDECAR}: wall_time is simulated from the cost "
                                  "table)", term_width())))
    sp = "n/a (no cost table)" if r["speedup_specbench"] is None else f"{r['speedup_specbench']:.4f}x"
    print("\n".join(wrap(f"Spec-Bench MAT {r['mat']:.4f}; Spec-Bench speedup {sp} ({SPEEDUP_DEFINITION})",
                          term_width())))
    return 0


def _scaling(a: argparse.Namespace) -> int:

    out = check_out(a.out)
    with staged_folder(out, "arms-scaling", legacy=("regret_vs_arms.*",), legacy_ok=True) as tmp:
        _scaling_into(a, tmp)
    print(f"wrote {out}/regret_vs_arms.csv and regret_vs_arms.png/.pdf")
    return 0


def _scaling_into(a: argparse.Namespace, out: Path) -> None:
    from .scaling import arms_scaling, plot

    df = arms_scaling(a.trace, k=a.k, runs=a.runs, seed=a.seed, policies=tuple(a.policy or ()) or
                      ("ucbspec", "exp3spec", "hedgespec", "uniform"), orders=a.orders, cost_device=a.cost_device,
                      progress=not getattr(a, "quiet", False))
    df.to_csv(out / "regret_vs_arms.csv", index=False)
    plot(df, out, a.trace)
    print("regret (rounds / prompt), mean over drafter orders:")
    print(df.pivot_table(index="drafters", columns="policy", values="regret", sort=False).round(2).to_string())
    if "tps" in df:
        print("tokens/s (full-information feedback charged):")
        print(df.pivot_table(index="drafters", columns="policy", values="tps", sort=False).round(1).to_string())


def _survival(a: argparse.Namespace) -> int:
    from .figures import acceptance_survival, save_figure, set_style

    tr = traces.load(a.trace)
    set_style()
    fig = acceptance_survival(tr.accept, tr.output_lens, list(tr.drafter_names), tr.k_max, tr.label)
    with staged_folder(a.out, "survival", legacy=("acceptance_survival.*",), legacy_ok=True) as tmp:
        names = [p.name for p in save_figure(fig, tmp, "acceptance_survival")]
    for name in names:
        print(f"wrote {Path(a.out) / name}")
    return 0


def _trees(a: argparse.Namespace) -> int:
    from .trees import chain_vs_tree, to_markdown

    df = chain_vs_tree(a.trace, trees=a.trees, drafters=a.drafters, cost_device=a.cost_device, seed=a.seed)
    out = check_out(a.out)
    md = (f"Best chain vs best tree by time per category (batch 1, cost device {df.attrs['cost_device']}; "
          f"95% prompt-bootstrap intervals; paired difference tree - chain)\n\n" + to_markdown(df))
    with staged_folder(out, "chain-vs-tree", legacy=("chain_vs_tree.*",), legacy_ok=True) as tmp:
        df.to_csv(tmp / "chain_vs_tree.csv", index=False)
        (tmp / "chain_vs_tree.md").write_text(md)
    print(md)
    print(f"wrote {out}/chain_vs_tree.csv and .md")
    return 0


def _engine_rules(a: argparse.Namespace) -> int:
    from .engine_rules import EngineRulesConfig, run_engine_rules

    cfg = EngineRulesConfig(trace=a.trace, drafter=a.drafter, batch_sizes=a.batch_sizes or (), runs=a.runs,
                            seed=a.seed, cost_device=a.cost_device, rules=a.rules or ())
    out = check_out(a.out)
    with staged_folder(out, "engine-rules") as tmp:
        meta = run_engine_rules(cfg, tmp, progress=not a.quiet)
        text = (tmp / "engine_rules.md").read_text()
    print(text)
    print(f"wrote {out}/: engine_rules.md, single.csv, serving.csv, tuning.csv, engine_rules.png/.pdf, config.json")
    print(f"done in {meta['timings']['total']:.1f} s")
    return 0


def _theory(a: argparse.Namespace) -> int:
    from .theory_validate import CHECKS, run_validate

    # an unwritable or foreign --out fails here, before minutes of checks
    legacy_ok = Path(a.out, "checks.csv").is_file() and Path(a.out, "report.md").is_file()  # an older report
    with staged_folder(a.out, "theory", legacy=THEORY_LEGACY, legacy_ok=legacy_ok) as tmp:
        checks = run_validate(tmp, quick=a.quick, seed=a.seed, only=a.only, trace=a.trace, drafters=a.drafters)
    status = checks["status"]
    failed = checks[status == "fail"]
    print(f"{int((status == 'pass').sum())} passed, {len(failed)} failed, {int((status == 'vacuous').sum())} "
          f"vacuous, {int((status == 'info').sum())} info ({len(checks)} rows of checks {sorted(CHECKS)}); "
          f"report: {a.out}/report.md")
    for _, r in failed.iterrows():
        print(f"FAIL {r['check']} {r['setting']} {r['policy']} len={r['n']}: {r['value']:.3f} vs {r['bound']:.3f}")
    return ck.EXIT_CHECK_FAILED if len(failed) else 0


def build_parser() -> argparse.ArgumentParser:
    ap, sub = ck.make_parser("python -m experiments", "Paper tables and figures from saved traces and results.")
    q = sub.add_parser("figures", help="every paper-style table and figure from a trace")
    ck.add_trace(q, default="builtin:smollm2-greedy")
    ck.add_out(q, "folder for the figures, tables/ and data/")
    ck.add_seed(q)
    q.add_argument("--cost-device", default=None,
                   help="cost table device (exact or prefix); default: the trace's device with the most "
                        "measured batch sizes")
    q.add_argument("--drafters", type=ck.str_list, default=None,
                   help="drafters of the drafter-choice figures, comma-separated (default: all of the trace)")
    q.add_argument("--serve-drafter", default=None,
                   help="drafter of the batch-serving arms k = 1..4 (default: highest mean accepted length)")
    q.add_argument("--batch-sizes", type=ck.int_list, default=None,
                   help="batch-serving batch sizes, e.g. 1-50 (default: 1..min(50, prompts))")
    q.add_argument("--k", type=ck.positive_int, default=None,
                   help="draft length K of the drafter-choice figures and the serving arms 1..K (default 4, "
                        "capped at the trace's k_max)")
    q.add_argument("--policies", type=policy_list, default=None,
                   help="Table 1's policies, comma-separated (default: ucbspec, exp3spec, hedgespec, ... as "
                        "docs/reproducing.md lists; see python -m simulator policies)")
    q.add_argument("--runs", type=ck.positive_int, default=None,
                   help="runs per prompt of Table 1 and the trajectories (default 20; --quick: 4)")
    q.add_argument("--quick", action="store_true", help="small grids (smoke test)")
    add_wide(q)
    q.add_argument("--render-only", action="store_true", help="redraw from OUT/data without simulating")
    ck.add_quiet(q)
    q.set_defaults(fn=_figures)
    t = sub.add_parser("table", help="Table-1 analogue of a results folder: MAT, tokens/s, speedup, intervals")
    ck.add_results(t)
    t.add_argument("--setting", default=None, help="one setting of the folder (default: each)")
    t.add_argument("--exclude-degenerate", action="store_true",
                   help="leave out the prompts the trace flags degenerate (repetitive outputs); by default they "
                        "are counted in the caption and a 'w/o degenerate' column shows the result without them")
    ck.add_out(t, "folder for table1_*.csv/.md (default RESULTS/tables)", required=False)
    t.set_defaults(fn=_table)
    f = sub.add_parser("plot", help="figures of a results folder (run or serve)")
    ck.add_results(f)
    ck.add_out(f, "figure folder (default RESULTS/figures)", required=False)
    f.set_defaults(fn=_plot)
    x = sub.add_parser("export-specbench", help="Spec-Bench-style answer lines for one policy")
    ck.add_results(x)
    x.add_argument("--policy", required=True, help="a policy of the results folder, or any fixed:DRAFTER@K")
    x.add_argument("--policy-module", action="append",
                   help="module or .py file defining a plug-in --policy (repeatable); a results folder's own "
                        "policy_modules are never imported")
    x.add_argument("--baseline", nargs="?", const="", default=None, metavar="FILE",
                   help="also write the vanilla baseline file (default FILE: vanilla.jsonl beside the answers)")
    x.add_argument("--setting", default=None, help="which setting, if the folder holds several")
    x.add_argument("--run", type=ck.nonneg_int, default=0, help="which run (default 0)")
    ck.add_out(x, "answer file (default RESULTS/specbench/POLICY.jsonl)", required=False)
    x.set_defaults(fn=_export)
    g = sub.add_parser("arms-scaling", help="regret and tokens/s against the number of drafters (HedgeSpec Fig. 5b)")
    ck.add_trace(g)
    g.add_argument("--k", type=ck.positive_int, default=4, help="every drafter at this K (default 4)")
    g.add_argument("--orders", type=ck.positive_int, default=3, help="drafter orders averaged over (default 3)")
    g.add_argument("--cost-device", default=None, help="cost table device (prefix) for the tokens/s panel")
    ck.add_runs(g, 10)
    ck.add_seed(g)
    g.add_argument("--policy", action="append", help="policy (repeatable; default ucbspec, exp3spec, hedgespec, "
                                                     "uniform)")
    ck.add_out(g, "folder for regret_vs_arms.csv and the figure")
    g.set_defaults(fn=_scaling)
    v = sub.add_parser("survival", help="acceptance survival P(L >= i) per drafter of a trace")
    ck.add_trace(v)
    ck.add_out(v, "figure folder")
    v.set_defaults(fn=_survival)
    w = sub.add_parser("trees", help="best chain vs best tree arm by time, per drafter and category")
    ck.add_trace(w)
    w.add_argument("--trees", type=ck.str_list, default=("2x2", "3x2x1", "4x2x2x1", "sparse63"),
                   help="tree names (branching like 4x2x2x1, a shipped name, or a .json of rank paths)")
    w.add_argument("--drafters", type=ck.str_list, default=None,
                   help="drafters (default: every drafter with recorded ranks)")
    w.add_argument("--cost-device", default=None, help="cost table device (default: most measured batch sizes)")
    ck.add_seed(w)
    ck.add_out(w, "folder for chain_vs_tree.csv and .md")
    w.set_defaults(fn=_trees)
    e = sub.add_parser("engine-rules", help="which draft-length rule for which workload: the engines' adaptive "
                                            "rules (default and tuned), learners, fixed arms, oracles")
    ck.add_trace(e, default="builtin:smollm2-greedy")
    ck.add_out(e, "folder for engine_rules.md, the tables, tuning.csv and the figure")
    e.add_argument("--drafter", default=None,
                   help="drafter of the arms plain@0,DRAFTER@1-8 (default: highest mean accepted length)")
    e.add_argument("--batch-sizes", type=ck.int_list, default=None,
                   help="batch-serving batch sizes (default 1,2,4,8,16,32 up to half the prompts)")
    e.add_argument("--rules", type=ck.str_list, default=None,
                   help="engine rules to compare (default: every policy with a tuning grid)")
    e.add_argument("--cost-device", default=None, help="cost table device (prefix; default: the trace's)")
    ck.add_runs(e, 10)
    ck.add_seed(e)
    ck.add_quiet(e)
    e.set_defaults(fn=_engine_rules)
    h = sub.add_parser("theory", help="measured regret against the bounds; exit 1 if a non-vacuous check fails")
    ck.add_out(h, "folder for checks.csv, curves.csv, report.md and figures")
    h.add_argument("--quick", action="store_true", help="short grids (CI): lengths up to 1e4-1e5, fewer runs")
    ck.add_seed(h)
    h.add_argument("--only", type=ck.str_list, default=None, help="run only these checks, e.g. 1,5")
    ck.add_trace(h, default="builtin:smollm2-greedy")
    h.add_argument("--drafters", type=ck.str_list, default=None,
                   help="drafters of the real-trace checks (default: every drafter of the trace)")
    h.set_defaults(fn=_theory)
    from . import live

    lv = sub.add_parser("live", help="a policy chooses the arm of real KV-cached decoding every round (needs torch)")
    live.add_arguments(lv)
    lv.set_defaults(fn=live.run_cli)
    from . import specbench

    sb = sub.add_parser("specbench", help="real GPU logs: per-prompt choice among Spec-Bench methods and of the "
                                          "draft length, time objective with the logs' measured step costs")
    specbench.add_arguments(sb)
    sb.set_defaults(fn=specbench.run_cli)
    from . import cost_check

    cc = sub.add_parser("cost-check", help="the cost model against the wall clock: collect, simulate and decode "
                                           "live in one sitting, time per prompt measured vs simulated (needs torch)")
    cost_check.add_arguments(cc)
    cc.set_defaults(fn=cost_check.run_cli)
    return ck.finish(ap)


def main(argv: list[str] | None = None) -> int:
    return ck.run(build_parser(), argv, ERRORS + (CheckFailed,), check_failed=lambda e: isinstance(e, CheckFailed))


if __name__ == "__main__":
    sys.exit(main())
