"""``python -m simulator {run,summary,policies,plot}``."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from traces import ArmError, TraceError

from .costs import CostError
from .distributed import BackendError
from .policies import REGISTRY, PolicyError
from .results import ResultsError, read_config, read_fixed, read_results, write_results
from .runner import ConfigError, RunConfig, _prepare_cached, check_request, fixed_frame, run_experiment
from .serving import ServeError
from .summary import format_summary, summarize


def _run(a: argparse.Namespace) -> int:
    settings = a.setting or ["replay"]
    cfgs = [RunConfig(
        trace=a.trace, setting=setting, policies=tuple(a.policy or ["ucbspec", "exp3spec"]),
        runs=a.runs, seed=a.seed, arms=a.arms, objective=a.objective, reward=a.reward, carry_state=a.carry_state,
        law=a.law, stream=a.stream, cost_device=a.cost_device, free_feedback=a.free_feedback, workers=a.workers,
        engine=a.engine, backend=a.backend, address=a.address, policy_modules=tuple(a.policy_module or ()),
    ) for setting in settings]
    for cfg in cfgs:  # every setting and policy is checked before any work starts
        check_request(cfg)
    frames, fixed, configs = [], [], []
    for cfg in cfgs:
        df, conf = run_experiment(cfg, progress=not a.quiet)
        frames.append(df)
        fixed.append(fixed_frame(_prepare_cached(cfg)))
        configs.append(conf)
        for note in (conf.get("cost_model") or {}).get("notes", []):
            print(f"note: cost model ({cfg.setting}): {note}", file=sys.stderr, flush=True)
    df = pd.concat(frames, ignore_index=True)
    fx = pd.concat(fixed, ignore_index=True)
    write_results(df, configs[0] if len(configs) == 1 else {**configs[0], "setting": "multi",
                  "settings": configs}, a.out, fixed=fx)
    if not a.quiet:
        c0 = configs[0]
        fb = ", ".join(f"{k}: {v}" for k, v in c0["feedback_cost"].items())
        print(f"trace: {c0['trace_label']}   arms: {len(c0['arms'])}   runs: {a.runs}   seed: {a.seed}   "
              f"objective: {c0['objective']}" + (f"   cost device: {c0['cost_model']['device']}"
                                                 if c0.get("cost_model") else "")
              + (f"   full-information feedback ({fb})" if fb else ""))
        print(format_summary(summarize(df, fx, seed=a.seed)))
        print(f"wrote {a.out}/results.parquet ({len(df)} rows), fixed.parquet and config.json")
    return 0


def _summary(a: argparse.Namespace) -> int:
    df = read_results(a.dir)
    conf = read_config(a.dir)
    if conf:
        print(f"trace: {conf[0].get('trace_label')}   arms: {len(conf[0].get('arms', []))}   "
              f"objective: {conf[0].get('objective', 'rounds')}")
    print(format_summary(summarize(df, read_fixed(a.dir), seed=int(conf[0].get("seed", 0)) if conf else 0)))
    return 0


def _policies(a: argparse.Namespace) -> int:
    for name in sorted(REGISTRY):
        print(name)
    return 0


def _plot(a: argparse.Namespace) -> int:
    from .figures import save_all

    df = read_results(a.dir)
    conf = read_config(a.dir)
    c0 = conf[0] if conf else {}
    arms = c0.get("arms") or (c0.get("settings") or [{}])[0].get("arms", [])
    paths = save_all(df, arms, a.out or f"{a.dir}/figures", title=c0.get("trace_label", ""))
    for p in paths:
        print(f"wrote {p}")
    return 0


def _export(a: argparse.Namespace) -> int:
    from .export import export_specbench

    out = a.out or f"{a.results}/specbench/{a.policy.replace(':', '_')}.jsonl"
    path = export_specbench(a.results, a.policy, out, setting=a.setting, run=a.run)
    print(f"wrote {path}")
    return 0


def _table(a: argparse.Namespace) -> int:
    from pathlib import Path

    import traces as T

    from .tables import caption, table1, table1_tidy, to_markdown

    df = read_results(a.results)
    fixed = read_fixed(a.results)
    confs = read_config(a.results)
    confs = confs[0].get("settings", confs) if confs else []
    settings = [a.setting] if a.setting else list(dict.fromkeys(df["setting"]))
    out = Path(a.out or Path(a.results) / "tables")
    out.mkdir(parents=True, exist_ok=True)
    for s in settings:
        conf = next((c for c in confs if c.get("setting") == s), confs[0] if confs else {})
        seed = int(conf.get("seed", 0))
        t = table1(df, fixed, s, seed)
        table1_tidy(df, fixed, s, seed).to_csv(out / f"table1_{s}.csv", index=False)
        cap = caption(T.load(conf["trace"]).manifest, conf, df.loc[df.setting == s, "prompt_id"].nunique()) \
            if conf.get("trace") else ""
        (out / f"table1_{s}.md").write_text(f"Setting: {s}. {cap}\nCells: {t.columns.name}\n\n" + to_markdown(t))
        print(f"== {s}: {cap}\n   cells: {t.columns.name}")
        print(t.to_string())
    print(f"wrote {out}/table1_*.csv and .md")
    return 0


def _survival(a: argparse.Namespace) -> int:

    import traces as T

    from .figures import acceptance_survival, save_figure

    tr = T.load(a.trace)
    fig = acceptance_survival(tr.accept, tr.output_lens, list(tr.drafter_names), tr.k_max, tr.label)
    for p in save_figure(fig, a.out, "acceptance_survival"):
        print(f"wrote {p}")
    return 0


def _scaling(a: argparse.Namespace) -> int:
    from pathlib import Path

    from .scaling import arms_scaling, plot

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    df = arms_scaling(a.trace, k=a.k, runs=a.runs, seed=a.seed, policies=tuple(a.policy or ()) or
                      ("ucbspec", "exp3spec", "hedgespec", "uniform"), orders=a.orders, cost_device=a.cost_device)
    df.to_csv(out / "regret_vs_arms.csv", index=False)
    plot(df, out, a.trace)
    print("regret (rounds / prompt), mean over drafter orders:")
    print(df.pivot_table(index="drafters", columns="policy", values="regret", sort=False).round(2).to_string())
    if "tps" in df:
        print("tokens/s (full-information feedback charged):")
        print(df.pivot_table(index="drafters", columns="policy", values="tps", sort=False).round(1).to_string())
    print(f"wrote {out}/regret_vs_arms.csv and regret_vs_arms.png/.pdf")
    return 0


def _figures(a: argparse.Namespace) -> int:
    from .paper import FigureConfig, make_figures

    kw = {}
    if a.quick:  # small grids: a smoke test of the whole pipeline (tests, CI)
        kw = dict(runs=4, serve_runs=2, batch_sizes=(1, 2, 4, 8), lengths=(100, 300, 1000),
                  curve_grid=(100, 1000, 2), curve_runs=8, bound_runs=8, scaling_runs=2,
                  scaling_orders=2)
    cfg = FigureConfig(trace=a.trace, seed=a.seed, cost_device=a.cost_device,
                       drafters=tuple(a.drafters.split(",")) if a.drafters else (),
                       serve_drafter=a.serve_drafter, **kw)
    paths, times = make_figures(cfg, a.out, render_only=a.render_only, progress=not a.quiet)
    if not a.quiet:
        from pathlib import Path

        print(Path(a.out, "tables", "table1.md").read_text())
    for p in paths:
        print(f"wrote {p}")
    print(f"done in {times['total']:.1f} s (render {times['render']:.1f} s)")
    return 0


def _serve(a: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .serving import ServeConfig, hindsight_summary, run_serving

    lo, _, hi = a.batch_sizes.partition("-")
    sizes = tuple(range(int(lo), int(hi or lo) + 1))
    cfg = ServeConfig(trace=a.trace, arms=a.arms, policies=tuple(a.policy or ["ucbspec"]), batch_sizes=sizes,
                      runs=a.runs, seed=a.seed, cost_device=a.cost_device)
    df, conf = run_serving(cfg, progress=not a.quiet)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "serving.csv", index=False)
    (out / "config.json").write_text(json.dumps(conf, indent=2) + "\n")
    m = hindsight_summary(df)
    cols = [c for c in m.columns if c not in ("sample", "best arm name")]
    print(m[cols].mean().round(3).to_string())
    print(f"wrote {out}/serving.csv ({len(df)} rows) and config.json")
    if not a.no_plot:
        from .figures import batch_serving, save_figure

        for p in save_figure(batch_serving(df, conf["trace_label"]), out, "batch_serving"):
            print(f"wrote {p}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m simulator",
                                 description="Replay traces, run arm-selection policies, "
                                             "measure stopping-time regret.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="simulate policies on a trace and write results")
    r.add_argument("--trace", required=True, help="trace directory or builtin:NAME")
    r.add_argument("--setting", action="append", choices=["replay", "stochastic", "adversarial"],
                   help="environment (repeatable; default replay)")
    r.add_argument("--policy", action="append",
                   help="policy NAME[:k=v,...] or fixed:DRAFTER@K (repeatable; default "
                        "ucbspec, exp3spec); see `python -m simulator policies`")
    r.add_argument("--policy-module", action="append",
                   help="module name or .py file defining policies with @register (repeatable); "
                        "see docs/simulator.md 'Writing a policy'")
    r.add_argument("--runs", type=int, default=20)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True, help="results directory")
    r.add_argument("--arms", default=None,
                   help="arm set, e.g. 'plain@0,pld@1-8' or '*@1-4' (default: all arms)")
    r.add_argument("--objective", choices=["rounds", "time"], default=None,
                   help="what the run optimises and reports regret in: verification rounds (BanditSpec's "
                        "stopping time) or seconds from the cost model (default: time if --reward "
                        "throughput, else rounds)")
    r.add_argument("--reward", choices=["tokens", "throughput"], default=None,
                   help="default reward of the learners (a policy's reward= overrides it): tokens per round, "
                        "or throughput relative to plain decoding (default: the objective's)")
    r.add_argument("--free-feedback", action="store_true",
                   help="do not charge full-information learners for scoring the drafters they did not play "
                        "(the papers' idealised comparison; default: charged from the cost table)")
    r.add_argument("--carry-state", action="store_true",
                   help="carry policy state across the prompt stream (default: reset per prompt)")
    r.add_argument("--law", choices=["empirical", "tgd", "autocorrelated"], default="empirical",
                   help="stochastic setting: per-arm law")
    r.add_argument("--stream", choices=["recorded", "category-switch", "sqrt-burst", "ucb-trap"],
                   default="recorded",
                   help="adversarial setting: which oblivious stream; sqrt-burst and ucb-trap are SYNTHETIC "
                        "(docs/theory.md): exactly 2 arms with the same K (ucb-trap: K >= 3), one stream as "
                        "long as the trace's total output")
    r.add_argument("--cost-device", default=None, help="device of the cost table to use")
    r.add_argument("--workers", type=int, default=1,
                   help="local processes; with --backend ray, tasks = 4 x workers (results do not depend on it)")
    r.add_argument("--engine", choices=["auto", "numpy", "numba"], default="auto",
                   help="auto: compiled kernel for ucbspec/exp3spec on greedy replay, numpy otherwise")
    r.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="where tasks run: local processes or a Ray cluster (bit-identical results)")
    r.add_argument("--address", default=None, help="Ray cluster address (default: start a local instance)")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(fn=_run)
    s = sub.add_parser("summary", help="print the per-policy table of a results directory")
    s.add_argument("dir")
    s.set_defaults(fn=_summary)
    p = sub.add_parser("policies", help="list registered policy names")
    p.set_defaults(fn=_policies)
    g = sub.add_parser("arms-scaling", help="regret against the number of arms (HedgeSpec Fig. 5b analogue)")
    g.add_argument("--trace", required=True)
    g.add_argument("--k", type=int, default=4, help="arms are DRAFTER@k for the first m drafters of each order")
    g.add_argument("--orders", type=int, default=3, help="random drafter orders to average over (0 = trace order)")
    g.add_argument("--cost-device", default=None, help="cost table device (prefix) for the tokens/s panel")
    g.add_argument("--runs", type=int, default=10)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--policy", action="append")
    g.add_argument("--out", required=True)
    g.set_defaults(fn=_scaling)
    t = sub.add_parser("table", help="Table-1 analogue: MAT and tokens/s per policy and category")
    t.add_argument("--results", required=True)
    t.add_argument("--setting", default=None)
    t.add_argument("--out", default=None, help="default RESULTS/tables")
    t.set_defaults(fn=_table)
    v = sub.add_parser("survival", help="acceptance survival P(L >= i) per drafter of a trace")
    v.add_argument("--trace", required=True)
    v.add_argument("--out", required=True)
    v.set_defaults(fn=_survival)
    x = sub.add_parser("export-specbench", help="Spec-Bench-style answer lines for one policy")
    x.add_argument("--results", required=True, help="results directory of `run`")
    x.add_argument("--policy", required=True)
    x.add_argument("--setting", default=None, help="which setting, if the directory holds several")
    x.add_argument("--run", type=int, default=0)
    x.add_argument("--out", default=None, help="default RESULTS/specbench/POLICY.jsonl")
    x.set_defaults(fn=_export)
    q = sub.add_parser("figures", help="every paper-style table and figure from a saved trace")
    q.add_argument("--trace", default="builtin:smollm2-greedy")
    q.add_argument("--out", required=True)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--cost-device", default="cuda", help="cost table device (prefix); falls back to the first")
    q.add_argument("--drafters", default=None, help="comma-separated drafters for the drafter-choice figures")
    q.add_argument("--serve-drafter", default=None, help="drafter of the batch-serving arms k = 1..4")
    q.add_argument("--quick", action="store_true", help="small grids (smoke test)")
    q.add_argument("--render-only", action="store_true", help="redraw from OUT/data without simulating")
    q.add_argument("--quiet", action="store_true")
    q.set_defaults(fn=_figures)
    b = sub.add_parser("serve", help="batch serving: one draft length per round for a whole batch "
                                     "(BanditSpec Fig. 3 setting)")
    b.add_argument("--trace", required=True)
    b.add_argument("--arms", required=True, help="e.g. 'plain@0,rtn4@1-4' (plain@0 is added if missing)")
    b.add_argument("--policy", action="append", help="bandit policy (repeatable; default ucbspec)")
    b.add_argument("--batch-sizes", default="1-50", help="A-B: one sample per batch size")
    b.add_argument("--runs", type=int, default=16)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--cost-device", default=None)
    b.add_argument("--out", required=True)
    b.add_argument("--no-plot", action="store_true")
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(fn=_serve)
    f = sub.add_parser("plot", help="write figures for a results directory")
    f.add_argument("dir")
    f.add_argument("--out", default=None, help="figure directory (default DIR/figures)")
    f.set_defaults(fn=_plot)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except BrokenPipeError:  # e.g. `... summary DIR | head`
        return 0
    except (TraceError, ArmError, PolicyError, ConfigError, CostError, ResultsError, ServeError, BackendError,
            ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable or impossible output path, disk full, ...
        msg = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
