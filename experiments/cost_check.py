"""``python -m experiments cost-check``: the cost model measured against the wall clock, in one sitting.

    python -m experiments cost-check --target smollm2-135m --drafter early:15 --drafter pld \\
        --drafter suffix --prompts builtin:specregret-84 --limit 16 --stride 5 \\
        --policy ucbspec --policy exp3spec --policy heuristic --arms 'plain@0,pld@1-4,early15@1-3,suffix@1-4' \\
        --k-max 4 --cost-contexts 64,128 --max-new-tokens 48 --threads 1 --out DIR

(docs/performance.md, "The cost model against the wall clock", has this run's figures.)

Same process, same machine, same load: it collects a trace with a measured cost table on the
prompts (``gpu_collect.collector.collect``), simulates every policy on it (replay, one run per
prompt, the given seed) under each cost fit (``--cost-fit raw,fit``), then decodes every prompt
live with each policy choosing the arm every round (``experiments.live``).  Under greedy
decoding the live arm sequence must equal the replayed one round for round; where it does not,
the folder's ``arms_check.csv`` names the first differing round and the command exits 1.  Then
it compares time per prompt, measured vs simulated (``experiments.cost_error``).

The folder: ``trace/`` (the collected trace), ``live/rounds.csv`` (one row per live round),
``prompts.csv`` (per cost fit, policy and prompt: measured and predicted seconds, the error and
its parts), ``kinds.csv`` (per drafter kind), ``summary.csv`` (median absolute and total error
with prompt-bootstrap intervals), ``arms_check.csv``, ``cost_check.png`` and ``config.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.costs import COST_FITS
from simulator.runner import ConfigError, RunConfig, resolve, simulate
from traces import PLAIN

from . import cost_error as E


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def replay_arms(prep, spec: str) -> tuple[dict, list[list[str]]]:
    """The simulator's replay of ``spec`` on every prompt (one run): its results and per prompt
    the arm names it played, round by round."""
    from simulator.policies import make_policy

    sim = simulate(prep, make_policy(spec), np.arange(prep.env.n_prompts), np.arange(1), record=True)
    names = [a.name for a in prep.arms]
    seqs = [[names[int(h[1][p])] for h in sim["history"] if h[1][p] >= 0] for p in range(prep.env.n_prompts)]
    return sim, seqs


def first_difference(live: list[str], replay: list[str]) -> int:
    """The first round where two arm sequences differ (-1: equal)."""
    for i, (a, b) in enumerate(zip(live, replay, strict=False)):
        if a != b:
            return i
    return -1 if len(live) == len(replay) else min(len(live), len(replay))


def _warm_up(session, quiet: bool) -> None:
    """One short untimed decode per drafter (and plain), so no timed prompt pays a first call."""
    from gpu_collect.live import decode_live

    for d in session.suffix_:
        d.set_history([])
    seen: set = set()
    for i, (name, _k) in enumerate(session.arms):
        if name in seen:
            continue
        seen.add(name)
        decode_live(session.target, session.drafters, session.arms, session.prompt_ids[0],
                    min(8, session.max_new_tokens), lambda s, i=i: i)
    _say(f"cost-check: warmed up {len(seen)} drafters", quiet)


def _predictions(prep) -> tuple[np.ndarray, np.ndarray]:
    """(prompts, arms) round seconds of the cost model and the verify part of them."""
    ctx = prep.env.context_lens
    ver = np.stack([prep.costs.verify_ms(a.k if a.drafter != PLAIN else 0, 1, ctx) for a in prep.arms], axis=1)
    return prep.cost_s, ver / 1000.0


def _by_drafted(prep, cost_s: np.ndarray, ver_s: np.ndarray):
    """``drafted_s(p, a, drafted)``: the cost model's round seconds for ``drafted`` tokens
    proposed (verify of ``drafted`` + 1 tokens, ``drafted`` draft steps; one step for a
    one-pass drafter) at prompt ``p``'s context, arm ``a``'s drafter."""
    ks = np.array([a.k if a.drafter != PLAIN else 0 for a in prep.arms], float)
    one = np.array([a.drafter in prep.costs.one_pass for a in prep.arms])
    step = np.where(ks > 0, (cost_s - ver_s) / np.where(one, 1.0, np.maximum(ks, 1.0)), 0.0)  # (P, A)
    ctx = prep.env.context_lens

    def drafted_s(p: np.ndarray, a: np.ndarray, drafted: np.ndarray) -> np.ndarray:
        d = np.asarray(drafted, float)
        ver = prep.costs.verify_ms(d, 1, ctx[p]) / 1000.0
        return ver + step[p, a] * np.where(one[a], np.minimum(d, 1.0), d)

    return drafted_s


def check_one(prep, spec: str, live_log: pd.DataFrame, live_res: dict) -> tuple[list, pd.DataFrame, pd.DataFrame,
                                                                              pd.DataFrame]:
    """One policy under ``prep``'s cost fit: the arm-sequence check (a row per prompt), the live
    rounds with their predictions, measured and predicted seconds per prompt."""
    sim, seqs = replay_arms(prep, spec)
    pids = list(prep.env.prompt_ids)
    checks = []
    for p, pid in enumerate(pids):
        live = live_log.loc[live_log["prompt_id"] == pid, "arm"].tolist()
        i = first_difference(live, seqs[p])
        checks.append({"cost_fit": prep.cfg.cost_fit, "policy": spec, "prompt_id": pid, "rounds_live": len(live),
                       "rounds_replay": len(seqs[p]), "first_difference": i,
                       "live_arm": live[i] if 0 <= i < len(live) else "",
                       "replay_arm": seqs[p][i] if 0 <= i < len(seqs[p]) else ""})
    cost_s, ver_s = _predictions(prep)
    rounds = E.round_predictions(live_log, cost_s, ver_s, {pid: i for i, pid in enumerate(pids)},
                                 {a.name: i for i, a in enumerate(prep.arms)}, _by_drafted(prep, cost_s, ver_s))
    pol_s = live_log.groupby("prompt_id", sort=False)["policy_s_prompt"].sum()
    wall = pd.DataFrame({"policy": spec, "prompt_id": pids, "measured_s": live_res["time_s"][:, 0],
                         "policy_s": [float(pol_s.get(pid, 0.0)) for pid in pids]})
    pred = pd.DataFrame({"policy": spec, "prompt_id": pids, "predicted_s": sim["time_s"][:, 0]})
    return checks, rounds.assign(policy=spec), wall, pred


def run_cost_check(a, out: Path) -> tuple[pd.DataFrame, list[str], int]:
    """Collect, simulate, decode live and compare, writing into ``out`` (a staged folder).
    Returns the summary, the printed lines and the number of arm-sequence differences."""
    from gpu_collect.collector import CollectConfig, collect

    from .live import open_session, run_policy

    t0 = time.perf_counter()
    trace_dir = out / "trace"
    collect(CollectConfig(
        target=a.target, drafters=tuple(a.drafter), prompts=a.prompts, max_new_tokens=a.max_new_tokens,
        k_max=a.k_max, out=str(trace_dir), seed=a.seed, limit=a.limit, stride=a.stride, batch_size=a.batch_size,
        device=a.device, dtype=a.dtype, cost_contexts=tuple(a.cost_contexts), cost_batch_sizes=(1,),
        cost_budget_s=a.cost_budget, threads=a.threads, per_category=a.per_category), progress=not a.quiet)
    t_collect = time.perf_counter() - t0
    import traces

    costs = traces.load(trace_dir).costs
    device = next(str(d) for d in costs["device"].unique() if d != "nominal")
    cfgs = {fit: RunConfig(trace=str(trace_dir), policies=tuple(a.policy), runs=1, seed=a.seed, arms=a.arms,
                           objective=a.objective, reward=a.reward, cost_device=device, cost_fit=fit, engine="numpy",
                           policy_modules=tuple(a.policy_module or ()))
            for fit in a.cost_fit}
    preps = {fit: resolve(cfg) for fit, cfg in cfgs.items()}
    session = open_session(cfgs[a.cost_fit[0]], a.target, device=a.device, dtype=a.dtype)
    _warm_up(session, a.quiet)
    checks, rows, krows, logs = [], [], [], []
    kind_of = {d["name"]: E.spec_kind(d["params"]["spec"]) for d in traces.load(trace_dir).manifest["drafters"]}
    kinds = {arm.name: ("plain" if arm.drafter == PLAIN else kind_of[arm.drafter]) for arm in session.prep.arms}
    t1 = time.perf_counter()
    for spec in a.policy:
        done: dict = {}  # replayed arm sequences -> its live run (a fit that changes no decision reuses it)
        for fit, prep in preps.items():
            _, seqs = replay_arms(prep, spec)
            key = json.dumps(seqs)
            if key not in done:
                session.prep = prep
                res, log = run_policy(session, spec)
                log = pd.DataFrame(log)
                log["policy"] = spec
                done[key] = (res, log)
                logs.append(log.assign(cost_fit=fit))
                _say(f"cost-check: {spec} ({fit}) live {res['time_s'].sum():.2f} s", a.quiet)
            res, log = done[key]
            c, rounds, wall, pred = check_one(prep, spec, log, res)
            checks += c
            rows.append(E.prompt_rows(rounds, wall, pred, fit))
            krows.append(E.kind_rows(rounds, kinds, fit))
    t_live = time.perf_counter() - t1
    rows_df, krows_df, checks_df = pd.concat(rows), pd.concat(krows), pd.DataFrame(checks)
    summary = E.summarise(rows_df, krows_df, seed=a.seed)
    (out / "live").mkdir()
    pd.concat(logs).to_csv(out / "live" / "rounds.csv", index=False)
    rows_df.to_csv(out / "prompts.csv", index=False)
    krows_df.to_csv(out / "kinds.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    checks_df.to_csv(out / "arms_check.csv", index=False)
    E.figure(rows_df, out / "cost_check.png")
    bad = int((checks_df["first_difference"] >= 0).sum())
    verdict = E.better_fit(summary)
    conf = {"target": a.target, "drafters": list(a.drafter), "prompts": a.prompts, "limit": a.limit,
            "stride": a.stride, "policies": list(a.policy), "arms": a.arms, "seed": a.seed,
            "max_new_tokens": a.max_new_tokens, "cost_fits": list(a.cost_fit), "cost_device": device,
            "cost_contexts": list(a.cost_contexts), "decoding": "greedy", "threads": session_threads(),
            "collect_s": round(t_collect, 2), "live_s": round(t_live, 2),
            "arm_sequences_differ": bad, "better_fit": verdict,
            "predicted": "simulator replay: sum of the cost model's round times (no prefill term)",
            "measured": "live wall clock per prompt, prefill included (experiments.live)"}
    (out / "config.json").write_text(json.dumps(conf, indent=2) + "\n")
    lines = E.table_lines(summary)
    lines.append(f"arm sequences: {'all equal to the replay' if not bad else f'{bad} prompts differ (arms_check.csv)'}"
                 f"; better cost fit: {verdict}; collect {t_collect:.0f} s, live {t_live:.0f} s")
    return summary, lines, bad


def session_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def add_arguments(ap) -> None:
    """The flags of ``python -m experiments cost-check`` (``gpu_collect collect``'s and
    ``experiments live``'s names)."""
    from traces import clikit as ck

    ap.add_argument("--target", required=True, help="model id, local directory or smollm2-135m")
    ap.add_argument("--drafter", "--drafters", dest="drafter", action="append", required=True,
                    help="[NAME=]KIND[:ARG] (repeatable; token-input kinds: hf, early, skip, quant, ngram, pld, "
                         "rest, suffix)")
    ap.add_argument("--prompts", required=True, help="prompt set: builtin:NAME or a question.jsonl file")
    ap.add_argument("--limit", type=ck.positive_int, default=None, help="first N questions only")
    ap.add_argument("--stride", type=ck.positive_int, default=1, help="every S-th question")
    ap.add_argument("--per-category", type=ck.positive_int, default=None, metavar="N",
                    help="at most N questions of each category")
    ap.add_argument("--policy", "--policies", dest="policy", action="append",
                    help="policy NAME[:k=v,...] or fixed:DRAFTER@K (repeatable; default ucbspec); bandit feedback")
    ap.add_argument("--policy-module", action="append", help="module or .py file defining policies (repeatable)")
    ap.add_argument("--arms", default=None, help="chain arms, e.g. 'plain@0,pld@1-4' (default: all of the trace)")
    ap.add_argument("--objective", choices=["rounds", "time"], default=None, help="as `simulator run`")
    ap.add_argument("--reward", choices=["tokens", "throughput"], default=None, help="as `simulator run`")
    ap.add_argument("--cost-fit", type=ck.str_list, default=COST_FITS,
                    help="cost models compared, comma-separated (default raw,fit)")
    ap.add_argument("--max-new-tokens", type=ck.positive_int, default=48, help="tokens per output (default 48)")
    ap.add_argument("--k-max", type=ck.positive_int, default=8, help="longest draft recorded (default 8)")
    ap.add_argument("--batch-size", type=ck.positive_int, default=8, help="prompts per greedy generation batch")
    ap.add_argument("--cost-contexts", type=ck.int_list, default=(256,), help="context lengths of verify timings")
    ap.add_argument("--cost-budget", type=float, default=30.0, metavar="S", help="as `gpu_collect collect`")
    ck.add_seed(ap)
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--dtype", default="auto", help="auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16")
    ap.add_argument("--threads", type=ck.positive_int, default=None, help="torch CPU threads")
    ck.add_out(ap, "folder for the trace, the rows, the summary and the figure")
    ck.add_quiet(ap)


def run_cli(a) -> int:
    """``python -m experiments cost-check``: exit 0, or 1 where an arm sequence differs."""
    from gpu_collect.errors import CollectError
    from traces.outdir import staged_folder

    try:
        import torch
    except ImportError:
        raise ConfigError("cost-check: needs torch and transformers (pip install -e '.[collect]')") from None
    bad_fit = [f for f in a.cost_fit if f not in COST_FITS]
    if bad_fit or not a.cost_fit:
        raise ConfigError(f"--cost-fit: expected a comma-separated subset of {list(COST_FITS)}, got {a.cost_fit}")
    a.policy = list(dict.fromkeys(a.policy or ["ucbspec"]))
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        with staged_folder(a.out, "cost-check") as tmp:
            _, lines, bad = run_cost_check(a, Path(tmp))
    except CollectError as exc:
        raise ConfigError(str(exc)) from None
    if not a.quiet:
        print("\n".join(lines))
        print(f"wrote {a.out}")
    return 1 if bad else 0
