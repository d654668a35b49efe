"""``python -m traces {info,validate,synth} ...``"""

from __future__ import annotations

import argparse
import sys

from .builtin import names, resolve_path
from .io import load, validate, write
from .trace import TraceError


def _info(args: argparse.Namespace) -> int:
    tr = load(args.path)
    s = tr.summary()
    print(f"trace       {s['label']}  ({tr.path})")
    print(f"kind        {s['kind']}   k_max {s['k_max']}   costs {'yes' if s['has_costs'] else 'no'}")
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
        row = " ".join(f"{np.minimum(allv, k).mean():6.2f}" for k in ks)
        print(f"{d:16} {row} {allv.mean():7.2f}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    try:
        problems = validate(resolve_path(args.path))
    except FileNotFoundError as exc:
        problems = [str(exc)]
    for p in problems:
        print(p)
    if not problems:
        print(f"{args.path}: valid")
    return 1 if problems else 0


def _synth(args: argparse.Namespace) -> int:
    from . import synthetic

    if args.generator == "demo":
        tr = synthetic.demo(args.seed)
    else:
        p = [float(x) for x in args.p.split(",")]
        tr = synthetic.tgd(p, n_prompts=args.prompts, output_len=args.output_len,
                           k_max=args.k_max, seed=args.seed)
    write(tr, args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from .io import load
    from .merge import merge_shards

    tr = merge_shards([load(p) for p in args.shards])
    write(tr, args.out, overwrite=args.overwrite)
    print(f"wrote {args.out} ({tr.n_prompts} prompts from {len(args.shards)} shards)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m traces", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("info", help="summary of a trace")
    p.add_argument("path", help=f"trace directory or builtin:NAME ({', '.join(names())})")
    p.set_defaults(fn=_info)
    p = sub.add_parser("validate", help="exit 0 if valid, 1 with one line per problem")
    p.add_argument("path")
    p.set_defaults(fn=_validate)
    p = sub.add_parser("synth", help="write a synthetic trace")
    p.add_argument("generator", choices=["demo", "tgd"])
    p.add_argument("--out", required=True)
    p.add_argument("--p", default="0.8,0.6,0.4", help="tgd: acceptance rate per drafter")
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--output-len", type=int, default=256)
    p.add_argument("--k-max", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(fn=_synth)
    p = sub.add_parser("merge", help="merge the shard traces of collect_traces.py --shard I/N")
    p.add_argument("shards", nargs="+", help="shard trace directories")
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(fn=_merge)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except BrokenPipeError:
        return 0
    except (TraceError, FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
