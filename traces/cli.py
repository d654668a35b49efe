"""``python -m traces {list,info,validate,synth,merge,import}``: read, check and make traces.

The grammar (flag names, list syntax, exit codes) is ``traces.clikit``'s: ``validate`` exits 1
with one line per problem when a trace fails its checks, bad input exits 2.
"""

from __future__ import annotations

import argparse
import sys

from . import clikit as ck
from .builtin import names, resolve_path
from .io import load, validate, write
from .trace import TraceError


def _info(args: argparse.Namespace) -> int:
    tr = load(args.trace)
    s = tr.summary()
    print(f"trace       {s['label']}  ({tr.path})")
    print(f"kind        {s['kind']}   k_max {s['k_max']}   costs {'yes' if s['has_costs'] else 'no'}"
          + ("   information: PARTIAL (an engine log; python -m traces import)" if tr.partial else ""))
    print(f"prompts     {s['prompts']}  " + "  ".join(f"{k}:{v}" for k, v in s["categories"].items()))
    print(f"tokens      {s['output_tokens']} (mean output {s['mean_output_len']:.1f})")
    target = tr.manifest["target"]
    print(f"target      {target.get('id')}  sha256 {str(target.get('sha256'))[:12]}")
    print("drafter          mean accepted per arm @K (bonus excluded)")
    ks = [k for k in (1, 2, 4, 8, 16, 32) if k <= tr.k_max]
    print(f"{'':16} " + " ".join(f"{'@' + str(k):>6}" for k in ks) + f" {'mean L':>7}")
    lens = tr.output_lens
    for d_i, d in enumerate(tr.drafter_names):
        vals = [tr.accept[p, d_i, : lens[p]] for p in range(tr.n_prompts)]
        import numpy as np

        allv = np.concatenate(vals).astype(float)
        allv = allv[allv >= 0]  # an engine log: the logged steps only
        row = " ".join(f"{np.minimum(allv, k).mean():6.2f}" for k in ks)
        print(f"{d:16} {row} {allv.mean():7.2f}")
    exact = [d for d in tr.drafter_names if tr.has_ranks(d)]
    single = [d for d in tr.drafter_names if d not in exact and tr.single_candidate(d)]
    none = [d for d in tr.drafter_names if d not in exact and d not in single]
    limited = {d: k for d, k in tr.k_limits.items() if k < tr.k_max}
    print(f"arms        chain DRAFTER@K, K = 0..{tr.k_max}, for every drafter"
          + "".join(f"; {d}: K <= {k} (its max_depth)" for d, k in limited.items()))
    print(f"            tree DRAFTER@tree:NAME (e.g. 4x2x2x1, sparse63): exact from ranks (cap {tr.rank_cap}) "
          f"for {exact or 'none'}; as their all-0 chain for single-candidate {single or 'none'}"
          + (f"; not for {none} (no ranks recorded: recollect)" if none else ""))
    scored = {}
    for d in tr.manifest["drafters"]:
        scored.setdefault(d.get("scoring", "not recorded (older trace)"), []).append(d["name"])
    for i, (how, who) in enumerate(scored.items()):
        print(f"{'scoring' if i == 0 else '':12}{how}: {', '.join(who)}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    try:
        problems = validate(resolve_path(args.trace))
    except FileNotFoundError as exc:
        problems = [str(exc)]
    for p in problems:
        print(p)
    if not problems:
        print(f"{args.trace}: valid")
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
    from .importers import build_trace

    tr = build_trace(args.fmt, args.file, drafter=args.drafter, k=args.k)
    write(tr, args.out, overwrite=args.overwrite)
    log = tr.manifest["log"]
    print(f"wrote {args.out}: {tr.n_prompts} requests, {log['steps']} steps of {tr.drafter_names[0]} at K = "
          f"{tr.k_max} (partial information: simulate with --setting stochastic and arms "
          f"{tr.drafter_names[0]}@1..{tr.k_max}); step order {log['step_order']}"
          + (f"; {log['clipped_at_output_end']} last steps clipped at the output's end" if log["clipped_at_output_end"]
             else "") + (f"; dropped {len(log['dropped_without_steps'])} requests without a step"
                         if log["dropped_without_steps"] else ""))
    return 0


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
    p = sub.add_parser("validate", help="exit 0 if valid, 1 with one line per problem")
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
    p.add_argument("file", help="the log: one JSON object per line")
    ck.add_out(p, "trace directory to write")
    p.add_argument("--drafter", default=None, help="name of the logged drafter (default: the format's name)")
    p.add_argument("--k", type=ck.positive_int, default=None,
                   help="the draft length the engine ran at (default: from the log; vllm: only its own "
                        "num_spec_tokens; specbench/sglang: inferred, --k may raise it)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing trace written by this toolkit")
    p.set_defaults(fn=_import)
    return ck.finish(ap)


def main(argv: list[str] | None = None) -> int:
    return ck.run(build_parser(), argv, (TraceError, FileNotFoundError, FileExistsError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
