"""``python -m simulator {run,serve,summary,policies}``: the engine's command line.

Tables, figures and exports of saved results are ``python -m experiments``; the grammar
(flag names, list syntax, exit codes) is ``traces.clikit``'s.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import pandas as pd

from traces import ArmError, TraceError
from traces import clikit as ck
from traces.outdir import check_out, staged_folder
from traces.textout import term_width, wrap

from .costs import CostError, uncertainty_of
from .distributed import BackendError
from .envs import SETTINGS
from .envs.adversarial import STREAMS  # the one registry of streams
from .policies import REGISTRY, PolicyError, make_policy
from .policies.plugins import load_module_file, resolve_module
from .results import ResultsError, ResultsWriter
from .results_reader import open_results
from .runner import ConfigError, Experiment, RunConfig, check_request, engine_refusal, fixed_frame, stream_experiment
from .serving import ServeError
from .summary import PerPrompt, format_summary, policy_notes, summarize

ERRORS = (TraceError, ArmError, PolicyError, ConfigError, CostError, ResultsError, ServeError, BackendError,
          ValueError)
# what a results folder written before folders carried a mark may hold (replaced only when it has its main file)
RUN_LEGACY = ("results.parquet", "fixed.parquet", "config.json", "figures", "tables", "specbench")
SERVE_LEGACY = ("serving.csv", "config.json", "figures")



def stream_help() -> str:
    """``--stream``'s help, from the registry (``simulator.envs.adversarial.STREAMS``)."""
    parts = [f"{s.name}: {s.claim}" + (f" (SYNTHETIC, docs/theory.md: exactly 2 arms with the same K >= {s.k_min}, "
                                        "one stream as long as the trace's total output)" if s.synthetic else "")
             for s in STREAMS.values()]
    return "adversarial setting: which oblivious stream; " + "; ".join(parts)

def _legacy(out: str, main_file: str) -> bool:
    from pathlib import Path

    return bool(str(out).strip()) and (Path(out) / main_file).is_file()


def cost_warning_line(cm: dict, trace: str) -> str:
    """The one stderr line of a run whose cost table is suspect (``traces.costcheck``)."""
    w = cm["warnings"]
    return (f"warning: the cost table of device {cm['device']!r} looks noisy ({len(w)} warning(s), e.g. "
            f"{w[0].split(': ', 1)[-1].split('; ')[0]}); times from it may rank arms by noise: "
            f"python -m traces validate --trace {trace} lists them")


def _local_workers(a: argparse.Namespace) -> int:
    """``--workers`` on this machine: at most its CPUs (results do not depend on the count,
    so a larger request is clamped and said; on Ray the cluster's CPUs count instead)."""
    n = os.cpu_count() or 1
    if a.backend == "local" and a.workers > n:
        print(f"note: --workers {a.workers} clamped to {n}: this machine has {n} CPUs (results are the same "
              "for any count)", file=sys.stderr, flush=True)
        return n
    return a.workers


def _run(a: argparse.Namespace) -> int:
    a.workers = _local_workers(a)
    settings = list(dict.fromkeys(x for group in (a.setting or [("replay",)]) for x in group))
    bad = [x for x in settings if x not in SETTINGS]
    if bad:
        raise ConfigError(f"--setting {bad[0]!r}: expected one of {list(SETTINGS)}")
    cfgs = [RunConfig(
        trace=a.trace, setting=setting, policies=tuple(a.policy or ["ucbspec", "exp3spec"]),
        runs=a.runs, seed=a.seed, arms=a.arms, objective=a.objective, reward=a.reward, carry_state=a.carry_state,
        law=a.law, stream=a.stream, cost_device=a.cost_device, cost_fit=a.cost_fit, free_feedback=a.free_feedback,
        workers=a.workers,
        engine=a.engine, backend=a.backend, address=a.address, policy_modules=tuple(a.policy_module or ()),
    ) for setting in settings]
    exps: list[Experiment] = []
    for cfg in cfgs:  # every setting and policy is resolved and checked before any work starts; one trace read
        exps.append(check_request(cfg, exps[0].trace if exps else None))
    _say_numpy_path(exps[0])
    for line in full_information_notes(cfgs[0].policies, exps[0].arms):
        print(line, file=sys.stderr, flush=True)
    if exps[0].arms_note:
        print(f"note: {exps[0].arms_note}", file=sys.stderr, flush=True)
    _check_memory(exps, a.max_memory)
    fixed, configs = [], []
    acc = PerPrompt()
    with staged_folder(a.out, "run", legacy=RUN_LEGACY, legacy_ok=_legacy(a.out, "results.parquet")) as tmp:
        writer = ResultsWriter(tmp)

        def sink(rows) -> None:  # each task's rows go to disk; the summary keeps means
            writer.write(rows)
            acc.add(rows)

        try:
            for exp in exps:
                cfg = exp.cfg
                conf = stream_experiment(exp, sink, progress=not a.quiet)
                fixed.append(fixed_frame(exp))
                configs.append(conf)
                cm = conf.get("cost_model") or {}
                if cm and not cfg.cost_device and cfg is cfgs[0]:
                    print(f"note: cost device {cm['device']} ({cm['device_chosen']}; --cost-device to choose)",
                          file=sys.stderr, flush=True)
                for note in cm.get("notes", []):
                    print(f"note: cost model ({cfg.setting}): {note}", file=sys.stderr, flush=True)
                if cm.get("warnings") and cfg is cfgs[0]:
                    print(cost_warning_line(cm, a.trace), file=sys.stderr, flush=True)
        except BaseException:
            writer.abort()
            raise
        fx = pd.concat(fixed, ignore_index=True)
        writer.close(configs[0] if len(configs) == 1 else {**configs[0], "setting": "multi", "settings": configs},
                     fx)
    if not a.quiet:
        c0 = configs[0]
        fb = ", ".join(f"{k}: {v}" for k, v in c0["feedback_cost"].items())
        print("\n".join(wrap(
            f"trace: {c0['trace_label']}   arms: {len(c0['arms'])}   runs: {a.runs}   seed: {a.seed}   "
            f"objective: {c0['objective']}" + (f"   cost device: {c0['cost_model']['device']}"
                                               if c0.get("cost_model") else "")
            + (f"   full-information feedback ({fb})" if fb else ""), term_width(a.wide))))
        print(format_summary(summarize(acc.frame(), fx, seed=a.seed, noise_rel=uncertainty_of(c0)),
                             c0.get("policy_notes"), a.specbench_speedup, term_width(a.wide)))
        print("\n".join(wrap(f"wrote {a.out}/results.parquet ({writer.rows} rows), fixed.parquet and config.json",
                              term_width(a.wide))))
    return 0


def full_information_notes(policies, arms) -> list[str]:
    """One ``note:`` line per full-information policy (HedgeSpec) of a run whose arm set has a
    drafter at several K: it plays each drafter at its largest K only (its experts are drafters,
    not arms), so the shorter K of the set are never its choice."""
    by: dict[str, list[int]] = {}
    for arm in arms:
        if arm.k >= 1 and not arm.is_tree:
            by.setdefault(arm.drafter, []).append(arm.k)
    if not any(len(ks) > 1 for ks in by.values()):
        return []
    out = []
    for spec in dict.fromkeys(str(p) for p in policies):
        try:
            full = make_policy(spec).feedback == "full"
        except PolicyError:
            continue
        if full:
            out.append(f"note: {spec} is a full-information learner: it plays each drafter at its largest K in the "
                       f"arm set only ({', '.join(f'{d}@{max(ks)}' for d, ks in by.items())}); the shorter K are "
                       f"never its choice")
    return out


def _say_numpy_path(exp: Experiment) -> None:
    """One line per policy that runs on the numpy engine although the compiled one is in use
    (``engine auto``, numba installed): its class declares no compiled form (a plug-in written
    in numpy only)."""
    from . import kernels

    if exp.cfg.engine != "auto" or not kernels.AVAILABLE:
        return
    for spec in dict.fromkeys(exp.cfg.policies):
        why = engine_refusal(exp.cfg.engine, make_policy(spec), exp.env)
        if why and why.startswith("policy"):
            print(f"note: policy {spec!r} has no compiled form: it runs on the slower numpy engine (docs/simulator.md "
                  f"'Writing a policy' shows the compiled form)", file=sys.stderr, flush=True)
        elif why:
            print(f"note: {why}: the numpy engine runs it", file=sys.stderr, flush=True)


# bytes held per result row of a task: the per-lane arrays, the frame's ~20 columns and its
# pulls (one int64 per arm); measured: 16 arms, 4000 vs 1000 runs, 950 bytes per row
ROW_BYTES, ARM_BYTES = 600, 24
BASE_BYTES = 450e6  # interpreter, libraries, the trace and the prepared arrays (measured, bundled trace)
RATE = {"numba": 5e6, "numpy": 3e5}  # policy-rounds/s for the estimate (docs/performance.md)


def estimate(exps: list[Experiment]) -> tuple[float, float]:
    """(peak bytes, policy-rounds) of ``exps``: results stream to disk task by task
    (``runner.CHUNK_CELLS`` cells), so memory is one task per worker plus the base."""
    from .runner import CHUNK_CELLS

    peak, rounds = BASE_BYTES, 0.0
    for prep in exps:
        cfg = prep.cfg
        cells = min(prep.env.n_prompts * cfg.runs, CHUNK_CELLS)
        peak += (cfg.workers + 1) * cells * (ROW_BYTES + ARM_BYTES * prep.env.n_arms)
        rounds += cfg.runs * float(prep.fixed_st.mean(axis=1).sum()) * len(cfg.policies)
    return peak, rounds


def _check_memory(exps: list[Experiment], limit_gb: float | None) -> None:
    need, rounds = estimate(exps)
    cfgs = [e.cfg for e in exps]
    if limit_gb is None:  # default: 80% of the memory this process may use (RAM, cgroup, ulimit -v)
        from traces.guards import memory_limit

        limit_gb = memory_limit()[0] / 1e9
    if need > limit_gb * 1e9:
        raise ConfigError(f"--runs {cfgs[0].runs}: this run would need about {need / 1e9:.2f} GB of memory, over "
                          f"the {limit_gb:.2f} GB limit (--max-memory GB); use fewer --runs or --workers, or raise "
                          f"--max-memory")
    if rounds > 2e8:
        print(f"note: about {rounds / 1e6:.0f} M policy-rounds: ~{rounds / RATE['numba']:.0f} s on the compiled "
              f"engine, ~{rounds / RATE['numpy']:.0f} s for learners on numpy; peak memory ~{need / 1e9:.1f} GB",
              file=sys.stderr, flush=True)


def _summary(a: argparse.Namespace) -> int:
    res = open_results(a.results, want="run")  # every file checked before use
    c0 = res.configs[0]
    print(f"trace: {c0.get('trace_label', c0['trace'])}   arms: {len(c0['arms'])}   objective: {c0['objective']}")
    print(format_summary(summarize(res.results, res.fixed, seed=c0["seed"], noise_rel=uncertainty_of(c0)),
                         c0.get("policy_notes"),
                         a.specbench_speedup, term_width(a.wide)))
    return 0


def _policies(a: argparse.Namespace) -> int:
    from . import kernels
    from .kernels.learners import has_kernel

    for path in (resolve_module(m) for m in a.policy_module or ()):
        load_module_file(path)
    print(f"{'policy':<22} {'feedback':<9} {'rewards':<20} kernel")
    for name in sorted(REGISTRY):
        cls = REGISTRY[name]
        kern = (cls.kernel.name if has_kernel(cls) else "no (numpy)") if kernels.AVAILABLE else "no (numba missing)"
        print(f"{name:<22} {cls.feedback:<9} {','.join(cls.rewards) or '-':<20} {kern}")
        for line in describe_policy(cls, term_width(a.wide)):
            print(line)
    return 0


def _first_sentence(doc: str | None) -> str:
    """The first sentence of ``doc``'s first paragraph, on one line, without rst markup."""
    para = " ".join((doc or "").strip().split("\n\n")[0].split()).replace("``", "")
    m = re.search(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)\.\s+(?=[A-Z])", para)
    return para[: m.start() + 1] if m else para


def describe_policy(cls: type, width: int = 100) -> list[str]:
    """``policies``' lines under a policy's row: its one-line description (the docstring's first
    sentence, or its module's where the class defers to it) and its parameters with their
    defaults and accepted values (``param`` metadata, ``describe_param``)."""
    import dataclasses
    import inspect

    from .policies.base import describe_param

    desc = _first_sentence(cls.__doc__)
    if not desc or desc.lower().startswith("see the module"):
        desc = _first_sentence(inspect.getmodule(cls).__doc__) if inspect.getmodule(cls) else desc
    fields = [f for f in dataclasses.fields(cls) if f.init and f.name != "reward"] \
        if dataclasses.is_dataclass(cls) else []
    pars = "; ".join(f"{f.name}={f.default if f.default != '' else '(none)'} ({describe_param(f)})"
                     for f in fields)
    return wrap(f"    {desc or '(no description)'}", width, "  ") + \
        wrap(f"    parameters: {pars or 'none'}", width, "  ")


def _serve(a: argparse.Namespace) -> int:
    import json

    from .serving import ServeConfig, format_serving, run_serving

    for path in (resolve_module(m) for m in a.policy_module or ()):
        load_module_file(path)
    cfg = ServeConfig(trace=a.trace, arms=a.arms, policies=tuple(a.policy or ["ucbspec"]), batch_sizes=a.batch_sizes,
                      runs=a.runs, seed=a.seed, cost_device=a.cost_device, cost_fit=a.cost_fit, engine=a.engine,
                      max_memory_gb=a.max_memory)
    out = check_out(a.out)
    with staged_folder(out, "serve", legacy=SERVE_LEGACY, legacy_ok=_legacy(out, "serving.csv")) as tmp:
        df, conf = run_serving(cfg, progress=not a.quiet)
        df.to_csv(tmp / "serving.csv", index=False)
        (tmp / "config.json").write_text(json.dumps(conf, indent=2) + "\n")
    print(f"note: cost device {conf['cost_device']} ({conf['cost_model']['device_chosen']}); batch sizes "
          f"{conf['batch_sizes_chosen']}", file=sys.stderr, flush=True)
    for note in conf["cost_model"]["notes"]:
        print(f"note: cost model: {note}", file=sys.stderr, flush=True)
    if conf["cost_model"].get("warnings"):
        print(cost_warning_line(conf["cost_model"], a.trace), file=sys.stderr, flush=True)
    if not a.quiet:
        print(format_serving(df, term_width(a.wide), conf["cost_model"].get("uncertainty_rel", 0.0)))
        for line in policy_notes(conf["policy_parameters"], conf["policy_notes"]):  # keyed by canonical spec
            print("\n".join(wrap(line, term_width(a.wide))))
        print("\n".join(wrap(f"wrote {out}/serving.csv ({len(df)} rows) and config.json; plot it: "
                              f"python -m experiments plot --results {out}", term_width(a.wide))))
    return 0


def _add_specbench_speedup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--specbench-speedup", action="store_true",
                   help="also print Spec-Bench's speedup (SB-spd: evaluation/speed.py's mean of per-answer "
                        "rates); the one printed by default is total plain-decoding time / total time")
    add_wide(p)


def add_wide(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wide", action="store_true",
                   help="print tables at full width (default: 100 columns, or the terminal's when wider; "
                        "columns that do not fit are left out and named)")


def build_parser() -> argparse.ArgumentParser:
    ap, sub = ck.make_parser("python -m simulator", "Replay traces, run arm-selection policies, measure regret "
                             "in rounds or time.")
    r = sub.add_parser("run", help="simulate policies on a trace and write results")
    ck.add_trace(r)
    r.add_argument("--setting", action="append", type=ck.str_list,
                   help=f"environment(s), comma-separated or repeated: {', '.join(SETTINGS)} (default replay)")
    r.add_argument("--policy", action="append",
                   help="policy NAME[:k=v,...], fixed:DRAFTER@K or oracle:rounds|time (repeatable; default "
                        "ucbspec and exp3spec); see `python -m simulator policies`")
    r.add_argument("--policy-module", action="append",
                   help="module name or .py file defining policies with @register (repeatable); "
                        "see docs/simulator.md 'Writing a policy'")
    ck.add_runs(r, 20)
    ck.add_seed(r)
    ck.add_out(r)
    r.add_argument("--arms", default=None,
                   help="arm set, e.g. 'plain@0,pld@1-8' or '*@1-4' (default: all arms of the trace)")
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
    r.add_argument("--law", choices=["empirical", "positions", "tgd", "autocorrelated"], default="empirical",
                   help="stochastic setting: per-arm law; empirical: the tokens per round along the arm's own "
                        "fixed-arm replay path (a fixed arm's MAT is its replay MAT); positions: the earlier law "
                        "over all positions of the output (over-weights long accepts); tgd: truncated geometric "
                        "fitted to the same rounds; autocorrelated: the empirical law with block-correlated spread")
    r.add_argument("--stream", choices=list(STREAMS), default="recorded", help=stream_help())
    r.add_argument("--cost-device", default=None,
                   help="cost table device, exact or a unique prefix (default: the trace's first)")
    r.add_argument("--cost-fit", choices=["raw", "fit"], default="raw",
                   help="raw: the measured cost cells (default, until a measurement against the wall clock "
                        "picks one); fit: verify time smoothed piecewise-linearly in verified tokens "
                        "(docs/simulator.md, 'Cost model')")
    r.add_argument("--workers", type=ck.positive_int, default=1,
                   help="local processes; with --backend ray, tasks = 4 x workers (results do not depend on it)")
    r.add_argument("--engine", choices=["auto", "numpy", "numba"], default="auto",
                   help="auto: compiled kernel where the policy and setting have one, numpy otherwise")
    r.add_argument("--max-memory", type=ck.positive_float, default=None, metavar="GB",
                   help="refuse a run whose results would hold more than this in memory, before it starts "
                        "(default: 80%% of this machine's memory)")
    r.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="where tasks run: local processes or a Ray cluster (bit-identical results)")
    r.add_argument("--address", default=None, help="Ray cluster address (default: start a local instance)")
    _add_specbench_speedup(r)
    ck.add_quiet(r)
    r.set_defaults(fn=_run)
    b = sub.add_parser("serve", help="batch serving: one arm per round for a whole batch (BanditSpec Fig. 3)")
    ck.add_trace(b)
    b.add_argument("--arms", required=True, help="e.g. 'plain@0,rtn4@1-4' (plain@0 is added if missing)")
    b.add_argument("--policy", action="append", help="bandit policy (repeatable; default ucbspec)")
    b.add_argument("--policy-module", action="append", help="module or .py file defining policies (repeatable)")
    b.add_argument("--batch-sizes", type=ck.int_list, default=(),
                   help="batch sizes, e.g. 1-50 or 1,4,16: one prompt sample per size and run "
                        "(default 1..min(50, prompts))")
    ck.add_runs(b, 16)
    ck.add_seed(b)
    b.add_argument("--cost-device", default=None,
                   help="cost table device, exact or a unique prefix (default: the trace's first)")
    b.add_argument("--cost-fit", choices=["raw", "fit"], default="raw",
                   help="raw: the measured cost cells (default, until a measurement against the wall clock "
                        "picks one); fit: verify time smoothed piecewise-linearly in verified tokens "
                        "(docs/simulator.md, 'Cost model')")
    b.add_argument("--engine", choices=["auto", "numpy", "numba"], default="auto",
                   help="auto: compiled loop where the policy has a kernel, numpy otherwise (same results)")
    b.add_argument("--max-memory", type=ck.positive_float, default=None, metavar="GB",
                   help="refuse a serving run whose arrays would hold more than this, before it starts "
                        "(default: 80%% of this machine's memory)")
    ck.add_out(b)
    ck.add_quiet(b)
    add_wide(b)
    b.set_defaults(fn=_serve)
    s = sub.add_parser("summary", help="print the per-policy table of a results folder")
    ck.add_results(s)
    _add_specbench_speedup(s)
    s.set_defaults(fn=_summary)
    p = sub.add_parser("policies", help="list registered policy names and their capabilities")
    p.add_argument("--policy-module", action="append", help="also load policies from this module or file")
    add_wide(p)
    p.set_defaults(fn=_policies)
    return ck.finish(ap)


def main(argv: list[str] | None = None) -> int:
    return ck.run(build_parser(), argv, ERRORS)


if __name__ == "__main__":
    sys.exit(main())
