"""``python -m gpu_collect {collect,ray,costs,derive,train-head,answers,selfcheck,live}``: collecting traces.

``gpu_collect/collect_traces.py`` stays as a thin script for ``collect``.  The grammar (flag
names, list syntax, exit codes) is ``traces.clikit``'s; nothing here imports the simulator.
"""

from __future__ import annotations

import argparse
import sys

from traces import TraceError
from traces import clikit as ck

from .collect_cmd import COLLECT_HELP, add_collect_arguments, run_collect
from .errors import CollectError


def _lazy(module: str, fn: str):
    def call(a: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(f"gpu_collect.{module}"), fn)(a)

    return call


def build_parser() -> argparse.ArgumentParser:
    from . import answers, derive, export_model, gpu_costs, live_cmd, ray_collect, selfcheck, train_head

    ap, sub = ck.make_parser("python -m gpu_collect", "Collect acceptance traces from a real target and drafters.")
    c = sub.add_parser("collect", help="collect a trace (also: python gpu_collect/collect_traces.py)",
                       description=COLLECT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_collect_arguments(c)
    c.set_defaults(fn=run_collect)
    r = sub.add_parser("ray", help="one collector per GPU on a Ray cluster, shards merged (args after --)")
    ray_collect.add_arguments(r)
    r.set_defaults(fn=_lazy("ray_collect", "run_cli"))
    g = sub.add_parser("costs", help="measure a cost table with random-weight models (GPU), or merge one")
    gpu_costs.add_arguments(g)
    g.set_defaults(fn=_lazy("gpu_costs", "run_cli"))
    d = sub.add_parser("derive", help="save a weight-rounded copy of a target as an hf: drafter")
    derive.add_arguments(d)
    d.set_defaults(fn=_lazy("derive", "run_cli"))
    h = sub.add_parser("train-head", help="train a Medusa or EAGLE head for a target by self-distillation")
    train_head.add_arguments(h)
    h.set_defaults(fn=_lazy("train_head", "run_cli"))
    w = sub.add_parser("answers", help="add the decoded answer text to a trace collected without it")
    answers.add_arguments(w)
    w.set_defaults(fn=_lazy("answers", "run_cli"))
    s = sub.add_parser("selfcheck", help="replay == live on a tiny model; exit 1 on any mismatch")
    selfcheck.add_arguments(s)
    s.set_defaults(fn=_lazy("selfcheck", "run_cli"))
    v = sub.add_parser("live", help="fixed arms decoded for real with KV caches, draft and verify timed per round")
    live_cmd.add_arguments(v)
    v.set_defaults(fn=_lazy("live_cmd", "run_cli"))
    x = sub.add_parser("export-model", help="write the bundled SmolLM2 as a plain model folder (--target DIR)")
    export_model.add_arguments(x)
    x.set_defaults(fn=_lazy("export_model", "run_cli"))
    return ck.finish(ap)


def main(argv: list[str] | None = None) -> int:
    try:
        ap = build_parser()  # imports torch and transformers: seconds in which Ctrl-C may come
    except KeyboardInterrupt:
        return ck.interrupted("error: interrupted before the collection started; nothing was written")
    return ck.run(ap, argv, (CollectError, TraceError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
