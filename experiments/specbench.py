"""``python -m experiments specbench --logs DIR --out OUT``: the question on real GPU logs.

A folder of Spec-Bench answer files (one sub-folder per question set, one file per method, e.g.
``/work/shared/data/specbench-logs``) is read set by set:

1. **Headroom from the logs' own wall times.**  Per question (its turns' ``wall_time`` summed),
   which method was fastest, the best single method over the set and how much faster the
   per-question best method is than it (``1 - sum min / sum best``): what any per-prompt choice
   of method can gain, measured, before any simulation.
2. **Method selection** (Table 1, ``experiments.tables``): the set's files imported as one trace
   (``traces.importers.build_specbench``: one drafter per method, the vanilla file as plain
   decoding, the logged cost table), simulated in the stochastic setting (each method's law on
   a prompt: its logged rounds there) with ``--objective time``, on the methods at their logged
   configurations (``Trace.logged_arms``): UCBSpec, EXP3Spec, uniform and the per-prompt oracle;
   the fixed arms and the best fixed arm come from the exact fixed-arm frame (a log has no
   per-round switcher: it does not say what a method would accept where it never verified).
   The engines' rules choose a draft length, not a method: they are listed as not applicable
   there.
3. **Draft length** on the set whose chain method ran at varying draft lengths (SpS, imported
   with ``--schedule hf-heuristic``): arms ``d@1..K`` (K: the largest identified k), each costed
   ``step_ms + per_drafted_ms x k`` from the fit; UCBSpec, EXP3Spec, transformers' ``heuristic``,
   every registered engine rule (a policy class with a ``tuning`` attribute, found in the
   registry), the oracle and the best fixed k.

Intervals are Table 1's paired prompt-bootstrap intervals (``simulator.stats``).  Nothing here
tunes anything: every policy runs at its defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import traces
from simulator.policies import REGISTRY, PolicyError, make_policy
from simulator.runner import RunConfig, fixed_frame, resolve, resolved_config, run_experiment
from traces.importers import PLAIN_METHODS, build_specbench, method_of, parse_schedule, read_log
from traces.trace import TraceError

LEARNERS = ("ucbspec", "exp3spec", "uniform")
ORACLE = "oracle:time"
CHAIN_SCHEDULE = "hf-heuristic"  # Spec-Bench's SpS: transformers' assisted generation, default schedule


@dataclasses.dataclass
class LogSet:
    """One question set: its method files (name -> path) and the files left out, with why."""

    name: str
    files: dict[str, Path]
    skipped: dict[str, str]


def find_sets(logs: Path, only: tuple[str, ...] = ()) -> tuple[list[LogSet], dict[str, str]]:
    """Sub-folders of ``logs`` with a vanilla file and at least one method file over the same
    questions; a file that does not import (a failed run) is left out and said why."""
    if not logs.is_dir():
        raise ValueError(f"--logs {logs}: not a folder; expected one sub-folder of Spec-Bench answer files "
                                "per question set")
    sets, left = [], {}
    for sub in sorted(p for p in logs.iterdir() if p.is_dir()):
        if only and sub.name not in only:
            continue
        files, skipped = {}, {}
        for f in sorted(sub.glob("*.jsonl")):
            try:
                reqs, _ = read_log("specbench", f)
            except TraceError as exc:
                skipped[f.name] = str(exc).split(": ", 1)[-1][:160]
                continue
            m = method_of(reqs[0].model_id) or f.stem
            files.setdefault(m, f)
        if not any(m in PLAIN_METHODS for m in files) or len(files) < 2:
            left[sub.name] = f"methods {sorted(files)}: needs a vanilla file and another method"
            continue
        sets.append(LogSet(sub.name, files, skipped))
    missing = sorted(set(only) - {s.name for s in sets} - set(left))
    if missing:
        raise ValueError(f"--sets {missing[0]}: no such sub-folder of {logs}; expected one of "
                         f"{sorted(p.name for p in logs.iterdir() if p.is_dir())}")
    return sets, left


def log_headroom(s: LogSet) -> dict:
    """Per question, each method's logged wall time (its turns summed): how often each method is
    the fastest, the best single method and the per-question best's gain over it."""
    wall: dict[str, dict[str, float]] = {}
    for m, f in s.files.items():
        for r in read_log("specbench", f)[0]:
            q = r.prompt_id.partition("#t")[0]
            wall.setdefault(m, {})[q] = wall.get(m, {}).get(q, 0.0) + float(r.wall or np.nan)
    qs = sorted(set.intersection(*(set(w) for w in wall.values())), key=lambda x: (len(x), x))
    W = pd.DataFrame({m: [wall[m][q] for q in qs] for m in wall}, index=qs)
    fastest = W.idxmin(axis=1).value_counts().reindex(W.columns, fill_value=0)
    best = str(W.sum().idxmin())
    per_q = float(W.min(axis=1).sum())
    return {"set": s.name, "questions": len(qs), "methods": list(W.columns), "best_method": best,
            "fastest_counts": {m: int(c) for m, c in fastest.items()},
            "best_total_s": float(W[best].sum()), "per_question_best_total_s": per_q,
            "headroom_pct": 100.0 * (1.0 - per_q / float(W[best].sum()))}


def import_set(s: LogSet, out: Path) -> traces.Trace:
    """The set's files as one trace under ``out`` (a chain method at varying k: ``--schedule
    hf-heuristic``)."""
    sched = {m: parse_schedule(CHAIN_SCHEDULE) for m in s.files if m == "sps"}
    tr = build_specbench([(m, str(f)) for m, f in s.files.items()], schedule=sched)
    traces.write(tr, out)
    return traces.load(out)


def engine_rule_names() -> list[str]:
    """Registered policies whose class declares ``tuning`` (the engines' rules and ``heuristic``)."""
    return sorted(n for n, cls in REGISTRY.items() if getattr(cls, "tuning", None))


def _applies(spec: str, cfg: RunConfig) -> str | None:
    """None where policy ``spec`` runs on ``cfg``'s arm set, else why not (one line)."""
    from simulator.policies.base import call_policy

    try:
        prep = resolve(cfg)
        pol = make_policy(spec)
        call_policy(pol, "reset", 1, prep.context(pol))
    except (PolicyError, ValueError) as exc:
        return str(exc).splitlines()[0][:200]
    return None


def simulate_table(trace_dir: Path, arms: str | None, policies: list[str], runs: int, seed: int,
                   workers: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Table 1 (tidy rows and markdown) of ``policies`` on the trace, stochastic, time objective."""
    from .tables import table1, table1_tidy, to_markdown

    cfg = RunConfig(trace=str(trace_dir), setting="stochastic", policies=tuple(policies), runs=runs, seed=seed,
                    arms=arms, objective="time", workers=workers)
    df, conf = run_experiment(cfg, progress=False)
    fixed = fixed_frame(resolve(cfg))
    tidy = table1_tidy(df, fixed, "stochastic", seed, conf)
    t = table1(df, fixed, "stochastic", seed, conf, tidy=tidy)
    keep = [c for c in t.columns if not str(c).startswith("gain")]
    return tidy, pd.DataFrame(resolved_config(resolve(cfg))["arms"]), to_markdown(t[keep])


def _delta(tidy: pd.DataFrame, method_prefix: str) -> str:
    o = tidy[(tidy["category"] == "overall") & tidy["method"].str.startswith(method_prefix)]
    if not len(o):
        return "-"
    r = o.iloc[0]
    if r["kind"] == "fixed" and r["method"] == f"fixed:{r['ref_arm']}":
        return "reference"
    return f"{r['d_fixed']:+.1f} [{r['d_fixed_lo']:+.1f}, {r['d_fixed_hi']:+.1f}]"


def run(logs: Path, out: Path, *, sets: tuple[str, ...] = (), runs: int = 20, seed: int = 0, workers: int = 1,
        progress: bool = True) -> dict:
    """Everything of the module docstring into ``out`` (a staged folder): ``specbench.md``,
    ``headroom.csv``, ``selection.csv``, ``table1_<set>.csv``, ``draft_length.csv``, ``config.json``,
    the imported traces under ``traces/``; returns the summary."""
    found, left = find_sets(logs, sets)
    say = (lambda m: print(f"specbench: {m}", file=sys.stderr, flush=True)) if progress else (lambda m: None)
    md = [f"# Real GPU logs: {logs}", "", f"Runs per prompt: {runs}, seed {seed}; stochastic setting (each method's "
          "law on a prompt: its own logged rounds there), time objective with the logged step costs. Δ: paired, "
          "ms per prompt, negative = faster, 95 % prompt-bootstrap interval.", ""]
    for name, why in left.items():
        md.append(f"- set `{name}` left out: {why}")
    heads, sel, summary = [], [], {"sets": {}, "left_out": left}
    rules = engine_rule_names()
    for s in found:
        for f, why in s.skipped.items():
            md.append(f"- `{s.name}/{f}` left out: {why}")
        h = log_headroom(s)
        heads.append(h)
        say(f"{s.name}: importing {sorted(s.files)}")
        tr = import_set(s, out / "traces" / s.name)
        arms = tr.select_arms(None)[0]  # the methods at their logged configurations
        chains = [d for d in tr.drafter_names if tr.censored(d)]
        sel_arms = ",".join(a.name for a in arms)
        if chains:
            md.append(f"- `{s.name}`: chain method(s) {chains} logged at varying draft lengths: every identified k "
                      "is an arm of the method table too (with its fitted step cost); the draft-length table "
                      "below compares the draft-length rules on it")
        say(f"{s.name}: simulating {sel_arms}")
        tidy, _, tab = simulate_table(out / "traces" / s.name, sel_arms, [*LEARNERS, ORACLE], runs, seed, workers)
        tidy.insert(0, "set", s.name)
        tidy.to_csv(out / f"table1_{s.name}.csv", index=False)
        ov = tidy[tidy["category"] == "overall"]
        ref = str(ov["ref_arm"].iloc[0])
        row = {"set": s.name, "questions": h["questions"], "turns": tr.n_prompts, "arms": sel_arms,
               "best_fixed_arm": ref, **{p: _delta(tidy, p) for p in LEARNERS},
               "oracle": _delta(tidy, "oracle"), "switcher": _delta(tidy, "switcher"),
               "log_best_method": h["best_method"], "log_headroom_pct": round(h["headroom_pct"], 2),
               "log_fastest": ", ".join(f"{m} {c}/{h['questions']}" for m, c in h["fastest_counts"].items())}
        sel.append(row)
        summary["sets"][s.name] = row
        md += ["", f"## {s.name}: method selection ({tr.n_prompts} turns, arms {sel_arms})", "",
               f"Logged wall times: fastest per question {row['log_fastest']}; best single method "
               f"{h['best_method']}; per-question best {h['headroom_pct']:.2f} % faster than it. Step costs' "
               f"uncertainty (largest relative 95 % half-width of a cost row, from the fits' residuals): "
               f"{100 * _uncertainty(tr):.2f} %.", "",
               "Engine rules (" + ", ".join(rules) + "): not applicable (they choose a draft length of one "
               "drafter, not a method).", "", tab]
        if chains:
            summary["draft_length"] = _draft_length(tr, out / "traces" / s.name, chains[0], rules, runs, seed,
                                                    workers, out, md, say)
    pd.DataFrame(heads).to_csv(out / "headroom.csv", index=False)
    pd.DataFrame(sel).to_csv(out / "selection.csv", index=False)
    md[4:4] = ["## Summary: adaptive method selection vs the best single method", "",
               _md_table(pd.DataFrame(sel).drop(columns=["arms"])), ""]
    (out / "specbench.md").write_text("\n".join(md) + "\n")
    (out / "config.json").write_text(json.dumps({"logs": str(logs), "runs": runs, "seed": seed,
                                                 "learners": list(LEARNERS), "oracle": ORACLE,
                                                 "engine_rules": rules, "summary": summary}, indent=1, default=str))
    return summary


def _draft_length(tr: traces.Trace, tdir: Path, d: str, rules: list[str], runs: int, seed: int, workers: int,
                  out: Path, md: list[str], say) -> dict:
    K = tr.k_limits[d]
    arms = f"plain@0,{d}@1-{K}"  # k = 0 (plain decoding) is a draft length the engines' rules may choose
    base = RunConfig(trace=str(tdir), setting="stochastic", policies=("uniform",), runs=1, seed=seed, arms=arms,
                     objective="time")
    ok, why = [], {}
    for name in rules:
        fields = {f.name for f in dataclasses.fields(REGISTRY[name]) if f.init}
        spec = make_policy(f"{name}:drafter={d}" if "drafter" in fields else name).spec()
        w = _applies(spec, base)
        (why.__setitem__(spec, w) if w else ok.append(spec))
    say(f"draft length: {arms} with {[*LEARNERS[:2], *ok, ORACLE]}")
    tidy, _, tab = simulate_table(tdir, arms, [*LEARNERS[:2], *ok, ORACLE], runs, seed, workers)
    tidy.to_csv(out / "draft_length.csv", index=False)
    costs = tr.costs[tr.costs["drafter"] == d]
    fit = tr.manifest["log"]["costs"]["methods"][d]
    md += ["", f"## Draft length: {d} at k = 0..{K} ({K}: the largest identified k), {tr.n_prompts} turns", "",
           f"Step cost(k) = {fit['step_ms']:.2f} + {fit.get('per_drafted_ms') or 0:.2f} x k ms "
           f"({fit['rule']}, {fit['turns']} turns); k = 1..{K}: "
           + ", ".join(f"{v:.1f}" for v in costs.sort_values("k")["ms"]) + " ms; uncertainty (largest relative "
           f"95 % half-width of a cost row, from the fit's residuals) {100 * _uncertainty(tr):.2f} %, below which "
           "two times are 'within timing noise'.", ""]
    md += [f"- {s}: not applicable here ({w})" for s, w in why.items()]
    md += ["", tab]
    ov = tidy[tidy["category"] == "overall"]
    return {"arms": arms, "best_fixed_arm": str(ov["ref_arm"].iloc[0]), "rules": ok, "not_applicable": why,
            **{str(m): _delta(tidy, str(m)) for m in ov["method"]}}


def _uncertainty(tr: traces.Trace) -> float:
    from simulator.costs import CostModel

    return CostModel.for_trace(tr).uncertainty_rel


def _md_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "---|" * len(df.columns)
    return "\n".join([head, sep] + ["| " + " | ".join(str(v) for v in r) + " |" for r in df.itertuples(index=False)])


def add_arguments(p: argparse.ArgumentParser) -> None:
    from traces import clikit as ck

    p.add_argument("--logs", required=True, help="folder of Spec-Bench answer files, one sub-folder per question "
                                                 "set (e.g. ../shared/data/specbench-logs)")
    ck.add_out(p, "folder for specbench.md, the tables and the imported traces")
    p.add_argument("--sets", type=ck.str_list, default=None, help="only these sub-folders (default: every set with "
                                                                  "a vanilla file and another method)")
    ck.add_runs(p, 20)
    ck.add_seed(p)
    ck.add_quiet(p)


def run_cli(a: argparse.Namespace) -> int:
    from traces.outdir import check_out, staged_folder

    out = check_out(a.out)
    find_sets(Path(a.logs), tuple(a.sets or ()))  # a wrong --logs or --sets is said before anything is written
    with staged_folder(out, "specbench") as tmp:
        run(Path(a.logs), tmp, sets=tuple(a.sets or ()), runs=a.runs, seed=a.seed, progress=not a.quiet)
        text = (tmp / "specbench.md").read_text()
    print(text)
    print(f"wrote {out}/: specbench.md, selection.csv, headroom.csv, table1_<set>.csv, draft_length.csv, "
          "config.json, traces/")
    return 0
