"""``python -m traces {list,info,validate,synth,merge,import}``: read, check and make traces.

The grammar (flag names, list syntax, exit codes) is ``traces.clikit``'s: ``validate`` exits 1
with one line per problem when a trace fails its checks, bad input exits 2; a valid trace whose
cost table looks noisy (``traces.costcheck``) gets ``warning:`` lines and still exits 0.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from . import clikit as ck
from .builtin import names, resolve_path
from .io import load, validate, write
from .trace import TraceError


def _info(args: argparse.Namespace) -> int:
    from .textout import term_width, wrap

    def say(line: str) -> None:  # long lines wrap at word boundaries (100 columns or the terminal's)
        print("\n".join(wrap(line, term_width(), "" if line.startswith(" ") else " " * 12)))

    tr = load(args.trace)
    s = tr.summary()
    say(f"trace       {s['label']}  ({tr.path})")
    say(f"kind        {s['kind']}   k_max {s['k_max']}   costs {'yes' if s['has_costs'] else 'no'}"
          + ("   information: PARTIAL (an engine log; python -m traces import)" if tr.partial else ""))
    say(f"prompts     {s['prompts']}  " + "  ".join(f"{k}:{v}" for k, v in s["categories"].items()))
    say(f"tokens      {s['output_tokens']} (mean output {s['mean_output_len']:.1f})")
    target = tr.manifest["target"]
    say(f"target      {target.get('id')}  sha256 {str(target.get('sha256'))[:12]}")
    say("drafter          mean accepted per arm @K (bonus excluded)")
    ks = list(range(1, tr.k_max + 1)) if tr.k_max <= 8 else \
        sorted({*(k for k in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64) if k < tr.k_max), tr.k_max})
    say(f"{'':16} " + " ".join(f"{'@' + str(k):>6}" for k in ks) + f" {'mean L':>7}")
    lens = tr.output_lens
    for d_i, d in enumerate(tr.drafter_names):
        vals = [tr.accept[p, d_i, : lens[p]] for p in range(tr.n_prompts)]
        import numpy as np

        allv = np.concatenate(vals).astype(float)
        allv = allv[allv >= 0]  # an engine log: the logged steps only
        if tr.partial and tr.censored(d):  # steps censored at their own k: E[min(k, L)] = sum_i<=k S(i)
            w = np.array([len(tr.logged_steps(d, p)[0]) for p in range(tr.n_prompts)], float)
            S = (w[:, None] * tr.survival(d)).sum(axis=0) / w.sum()
            row = " ".join(f"{S[1:min(k, len(S) - 1) + 1].sum():6.2f}" if k <= tr.k_limits[d] else f"{'-':>6}"
                           for k in ks)
        else:
            row = " ".join(f"{np.minimum(allv, k).mean():6.2f}" for k in ks)
        say(f"{d:16} {row} {allv.mean():7.2f}")
    exact = [d for d in tr.drafter_names if tr.has_ranks(d)]
    single = [d for d in tr.drafter_names if d not in exact and tr.single_candidate(d)]
    none = [d for d in tr.drafter_names if d not in exact and d not in single]
    limited = {d: k for d, k in tr.k_limits.items() if k < tr.k_max}
    say(f"arms        chain DRAFTER@K, K = 0..{tr.k_max}, for every drafter"
          + "".join(f"; {d}: K <= {k} (its max_depth)" for d, k in limited.items()))
    say(f"            tree DRAFTER@tree:NAME (e.g. 4x2x2x1, sparse63): exact from ranks (cap {tr.rank_cap}) "
          f"for {exact or 'none'}; as their all-0 chain for single-candidate {single or 'none'}"
          + (f"; not for {none} (no ranks recorded: recollect)" if none else ""))
    logged = tr.logged_arm_spec()
    if logged is not None:  # a several-file engine-log import: which arms each method's log gives
        say(f"{'':12}default arms: the methods at their logged configurations ({logged})")
        for d in tr.manifest["drafters"]:
            say(f"{'':12}{d['name']}: {d['arms_note']}" + ("; no measured cost for k < K" if d.get("no_cost") else ""))
    scored = {}
    for d in tr.manifest["drafters"]:
        scored.setdefault(d.get("scoring", "not recorded (older trace)"), []).append(d["name"])
    for i, (how, who) in enumerate(scored.items()):
        say(f"{'scoring' if i == 0 else '':12}{how}: {', '.join(who)}")
    for line in cost_table_lines(tr.costs):
        say(line)
    if tr.costs is not None and (tr.costs["kind"] == "logged").any():
        c = tr.costs[tr.costs["kind"] == "logged"]
        rule = tr.manifest.get("log", {}).get("costs", {}).get("rule", "")
        say("costs       logged (each method's measured step; " + (rule[:60] + "...; " if rule else "")
              + "manifest log.costs has the fit)")
        for d, g in c.groupby("drafter", sort=False):
            ms = ", ".join(f"@{int(k)} {v:.2f}" for k, v in zip(g["k"], g["ms"], strict=True))
            say(f"{'':12}{d or 'plain':16} ms/step {ms}")
    return 0


def _span(vals) -> str:
    """``1-4``, ``1,2,8`` or ``256``: the distinct integers of ``vals``."""
    v = sorted({int(x) for x in vals})
    runs: list[list[int]] = []
    for x in v:  # consecutive integers as A-B
        if runs and x == runs[-1][-1] + 1:
            runs[-1].append(x)
        else:
            runs.append([x])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


def cost_table_lines(costs) -> list[str]:
    """``info``'s lines for the cost tables: per device its kinds of rows, batch sizes,
    contexts, k and (schema 1.2) timed repeats; the device names are what ``--cost-device``
    takes (exact or a unique prefix)."""
    if costs is None or not len(costs):
        return ["costs       none (rounds only; --objective time needs a cost table)"]
    out = ["costs       per device (--cost-device takes the name or a unique prefix):"]
    for dev, g in costs.groupby("device", sort=False):
        kinds = ", ".join(f"{k} {int((g['kind'] == k).sum())}" for k in pd.unique(g["kind"]))
        reps = f"; repeats {_span(g['reps'])}" if "reps" in g and g["reps"].notna().any() else ""
        out.append(f"{'':12}{dev}")
        out.append(f"{'':14}rows: {kinds}; batch sizes {_span(g['batch_size'])}; contexts "
                   f"{_span(g['context_len'])}; k {_span(g['k'])}{reps}")
    return out


def _validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    path = resolve_path(args.trace)
    if not Path(path).is_dir():  # nothing to check: bad input (exit 2), not a failed check (exit 1)
        raise TraceError(f"--trace {args.trace}: no trace folder there (expected a directory with manifest.json "
                         "and the parquet tables)")
    problems = validate(path)
    for p in problems:
        print(p)
    if not problems:
        from .costcheck import cost_warnings

        warns = cost_warnings(load(resolve_path(args.trace)).costs)
        for w in warns:  # suspicions, not contradictions: the trace stays valid, exit 0
            print(f"warning: {w}")
        print(f"{args.trace}: valid" + (f" ({len(warns)} warning(s) about its cost table)" if warns else ""))
    return 1 if problems else 0


def _synth(args: argparse.Namespace) -> int:
    from . import synthetic

    if args.generator == "demo":
        tr = synthetic.demo(args.seed)
    else:
        tr = synthetic.tgd(list(args.p), n_prompts=args.n_prompts, output_len=args.output_len,
                           k_max=args.k_max, seed=args.seed)
    write(tr, args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from .io import load
    from .merge import merge_shards

    tr = merge_shards([load(p) for p in args.trace])
    write(tr, args.out, overwrite=args.overwrite)
    print(f"wrote {args.out} ({tr.n_prompts} prompts from {len(args.trace)} shards)")
    return 0


def _import(args: argparse.Namespace) -> int:
    from .importers import build_specbench, build_trace, parse_entries, parse_schedule

    scheds = {}
    for item in args.schedule or []:  # SPEC (every method) or NAME=SPEC
        name, eq, spec = item.rpartition("=")
        scheds[name if eq else "*"] = parse_schedule(spec)
    sched = scheds.get("*")
    entries = parse_entries(args.file)
    if len(entries) > 1 or entries[0][0] is not None:
        if args.fmt != "specbench":
            raise TraceError(f"--from {args.fmt}: one log per import; several files (NAME=FILE) are for --from "
                             "specbench")
        if args.drafter:
            raise TraceError("--drafter: name each file as NAME=FILE instead when importing several")
        tr = build_specbench(entries, schedule=scheds, k=args.k)
        write(tr, args.out, overwrite=args.overwrite)
        _print_multi(tr, args.out)
        return 0
    if set(scheds) - {"*"}:
        raise TraceError(f"--schedule {args.schedule[0]}: NAME=SPEC names a method of a several-file import; "
                         "expected SPEC alone for one file")
    tr = build_trace(args.fmt, entries[0][1], drafter=args.drafter, k=args.k, schedule=sched)
    write(tr, args.out, overwrite=args.overwrite)
    log = tr.manifest["log"]
    from .textout import term_width, wrap

    print("\n".join(wrap(f"wrote {args.out}: {tr.n_prompts} requests, {log['steps']} steps of "
          f"{tr.drafter_names[0]} at K = {tr.k_max} (partial information: simulate with --setting stochastic and arms "
          f"{tr.drafter_names[0]}@1..{tr.k_max}); step order {log['step_order']}"
          + (f"; {log['clipped_at_output_end']} last steps clipped at the output's end" if log["clipped_at_output_end"]
             else "") + (f"; dropped {len(log['dropped_without_steps'])} requests without a step"
                         if log["dropped_without_steps"] else "")
          + (f"; {log['censored_steps']} steps censored at their own draft length (Kaplan-Meier law)"
             if "censored_steps" in log else ""), term_width())))
    return 0


def _print_multi(tr, out: str) -> None:
    """What a several-file import wrote: drafters, matched and missing turns, answers, costs."""
    from .textout import term_width, wrap_lines

    lines: list[str] = []
    log = tr.manifest["log"]
    arms = tr.logged_arm_spec() or ""
    lines.append(f"wrote {out}: {tr.n_prompts} turns matched in every file, {log['steps']} steps; drafters "
          + ", ".join(f"{d['name']} (K = {d['max_depth']}{', ' + d['schedule'] if 'schedule' in d else ''})"
                      for d in tr.manifest["drafters"])
          + (f"; plain decoding from {log['baseline']!r}" if log["baseline"] else "; no vanilla file (no plain cost)"))
    for name, miss in log["missing"].items():
        lines.append(f"missing     {name}: {miss['count']} turns in other files but not here, e.g. {miss['ids'][:5]}")
    ans = log["answers"]
    lines.append(f"answers     identical in every file on {ans['identical_all']} of {ans['turns']} turns "
          f"({100 * ans['share_identical_all']:.1f}%); vs {ans['reference']}: "
          + ", ".join(f"{n} {100 * v:.1f}%" for n, v in ans["share_identical_to_reference"].items()))
    c = log["costs"]
    if tr.costs is None:
        lines.append(f"costs       {c['table']}")
    else:
        for name, f in c["methods"].items():
            lines.append(f"costs       {name or 'plain'}: {f['step_ms']:.2f} ms/step"
                  + (f" + {f['per_drafted_ms']:.2f} ms/drafted token" if f.get("per_drafted_ms") else "")
                  + f", prefill {f['prefill_ms']:.1f} ms ({f['rule']}, {f['turns']} turns"
                  + (f", residual rms {f['resid_rms_ms']:.1f} ms" if f.get("resid_rms_ms") is not None else "")
                  + f"; per-turn step {f['turn_step_ms_q25']:.2f}-{f['turn_step_ms_q75']:.2f} ms)")
    for d in tr.manifest["drafters"]:
        lines.append(f"arms        {d['name']}: {d['arms_note']}"
                     + (f"; no measured cost for k < {d['max_depth']}" if d.get("no_cost") else ""))
    lines.append("simulate    --setting stochastic" + (" --objective time" if tr.costs is not None else "")
                 + f" (default arms: the logged configurations {arms})")
    print("\n".join(wrap_lines(lines, term_width(), indent=" " * 12)))


def _list(args: argparse.Namespace) -> int:
    for n in names():
        print(f"builtin:{n}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap, sub = ck.make_parser("python -m traces", "Read, check and make acceptance traces.")
    p = sub.add_parser("list", help="the bundled traces (builtin:NAME)")
    p.set_defaults(fn=_list)
    p = sub.add_parser("info", help="summary of a trace")
    ck.add_trace(p)
    p.set_defaults(fn=_info)
    p = sub.add_parser("validate", help="exit 0 if valid (with 'warning:' lines for a suspect cost table), "
                                        "1 with one line per problem")
    ck.add_trace(p)
    p.set_defaults(fn=_validate)
    p = sub.add_parser("synth", help="write a synthetic trace (labelled SYNTHETIC everywhere)")
    p.add_argument("generator", choices=["demo", "tgd"], help="demo: 4 drafters, 40 prompts; tgd: i.i.d. bits")
    ck.add_out(p, "trace directory to write")
    p.add_argument("--p", type=ck.float_list, default=(0.8, 0.6, 0.4),
                   help="tgd: acceptance rate per drafter, comma-separated (default 0.8,0.6,0.4)")
    p.add_argument("--n-prompts", type=ck.positive_int, default=8, help="tgd: number of prompts (default 8)")
    p.add_argument("--output-len", type=ck.positive_int, default=256, help="tgd: tokens per output (default 256)")
    p.add_argument("--k-max", type=ck.positive_int, default=8, help="tgd: longest draft recorded (default 8)")
    ck.add_seed(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing trace written by this toolkit")
    p.set_defaults(fn=_synth)
    p = sub.add_parser("merge", help="merge the shard traces of `gpu_collect collect --shard I/N`")
    p.add_argument("--trace", action="append", required=True, help="a shard trace directory (repeat for each)")
    ck.add_out(p, "trace directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing trace written by this toolkit")
    p.set_defaults(fn=_merge)
    p = sub.add_parser("import", help="a partial-information trace from a vLLM, SGLang or Spec-Bench log")
    p.add_argument("--from", dest="fmt", required=True, choices=["vllm", "sglang", "specbench"],
                   help="the log's format (docs/trace_format.md, 'Engine logs')")
    p.add_argument("file", nargs="+",
                   help="the log: one JSON object per line; specbench: several files, one per method, as FILE (the "
                        "method from its model_id) or NAME=FILE (vanilla/baseline: plain decoding)")
    ck.add_out(p, "trace directory to write")
    p.add_argument("--drafter", default=None, help="name of the logged drafter (default: the format's name)")
    p.add_argument("--k", type=ck.positive_int, default=None,
                   help="the draft length the engine ran at (default: from the log; vllm: only its own "
                        "num_spec_tokens; specbench/sglang: inferred, --k may raise it)")
    p.add_argument("--schedule", action="append", default=None,
                   help="specbench: how each step's draft length followed from the log: hf-heuristic[:START] "
                        "(transformers' assisted generation: START = 5 per turn, +2 after a fully accepted step, "
                        "-1 otherwise, min 1) or constant:K; needed for logs at varying draft lengths; NAME=SPEC "
                        "for one method of several files (repeat)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing trace written by this toolkit")
    p.set_defaults(fn=_import)
    return ck.finish(ap)


def main(argv: list[str] | None = None) -> int:
    return ck.run(build_parser(), argv, (TraceError, FileNotFoundError, FileExistsError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
