"""Live adaptive decoding: a simulator policy chooses the arm of a real, KV-cached decoding loop.

The decoding loop is ``gpu_collect.live.decode_live`` (policy-agnostic: a ``choose`` callback and a
``feedback`` hook); this module plugs a registered or plug-in policy into it exactly as the
simulator's engine (``simulator.lockstep``) drives one lane: the same arms, the same policy
context, the same uniforms (``simulator.rng``: lane ``(prompt, run 0)``, one counter per round)
and the same reward (tokens, or throughput from the trace's cost model).  Under greedy decoding
a run's arm sequence therefore equals the simulator's replay of the same trace, round for round,
while its time is the wall clock.

    python -m experiments live --trace T --target M --policy ucbspec --arms pld@1-4 --out DIR

The trace names the prompts, drafters and output length; the results folder holds
``results.parquet`` (``time_s`` measured), ``fixed.parquet`` and ``config.json`` as ``simulator
run`` writes them (``simulator summary``, ``experiments table/plot`` read it), plus
``rounds.csv``: one row per round (policy, prompt, arm, drafted, accepted, emitted, draft, verify
and policy seconds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simulator import rng as crng
from simulator.policies import make_policy
from simulator.policies.base import call_policy, select_arms
from simulator.runner import (
    ConfigError,
    Experiment,
    RunConfig,
    check_request,
    fixed_frame,
    resolved_config,
    results_table,
)
from traces import PLAIN

ROUNDS_FILE = "rounds.csv"


@dataclass
class LiveSession:
    """A loaded target and drafters, with every trace prompt's token ids, ready to decode."""

    prep: Experiment  # the resolved request (simulator.runner.resolve)
    target: object
    drafters: dict
    arms: list[tuple[str | None, int]]
    prompt_ids: list[list[int]]
    max_new_tokens: int


def _prompt_ids(prep: Experiment, tokenizer) -> list[list[int]]:
    """Every replay prompt's token ids, rebuilt as the collector built them (first turns only),
    each checked against the trace's recorded prompt length."""
    from gpu_collect import prompts as P

    tr = prep.trace
    spec = (tr.manifest.get("collection", {}).get("settings", {}).get("prompts")
            or tr.manifest.get("prompt_set", {}).get("name"))
    if not spec:
        raise ConfigError(f"{tr.path}/manifest.json: no prompt set recorded (collection.settings.prompts); a live run "
                          "needs a trace written by `python -m gpu_collect collect`")
    qs, _ = P.load_questions(spec)
    by_id = {str(q.question_id): q for q in qs}
    out = []
    for pid, plen in zip(tr.prompts["prompt_id"], tr.prompts["prompt_len"], strict=True):
        q = by_id.get(str(pid))
        if q is None:
            raise ConfigError(f"{tr.path}: prompt {pid!r} is not a first turn of {spec}; the live loop decodes "
                              "first turns only")
        ids = P.chat_ids(tokenizer, [{"role": "user", "content": q.turns[0]}])
        if len(ids) != int(plen):
            raise ConfigError(f"{tr.path}: prompt {pid!r} has {len(ids)} tokens with this target's tokenizer; "
                              f"the trace recorded {int(plen)}: expected the target the trace was collected on")
        out.append(ids)
    return out


def open_session(cfg: RunConfig, target: str, *, device: str = "auto", dtype: str = "auto") -> LiveSession:
    """Resolve ``cfg`` against its trace, load ``target`` and the trace's drafters (those the
    arms use), and rebuild the prompts.

    Parameters
    ----------
    cfg : RunConfig
        The run (``trace``, ``policies``, ``arms``, ``seed``, ``objective`` ...); setting replay.
    target : str
        The model the trace was collected on (a folder, a Hugging Face id or ``smollm2-135m``).
    device, dtype : str
        As ``python -m gpu_collect collect`` takes them.
    """
    from gpu_collect.drafters import make_drafter
    from gpu_collect.live import live_drafters
    from gpu_collect.models import load_model, resolve_device, resolve_dtype

    if cfg.setting != "replay" or cfg.carry_state:
        raise ConfigError("live: expected setting replay without carried state (one prompt per lane)")
    prep = check_request(cfg)
    tr = prep.trace
    if float(tr.manifest.get("decoding", {}).get("temperature", 0) or 0) != 0:
        raise ConfigError(f"{tr.path}: a sampled trace; the live loop decodes greedily only (for now)")
    dev = resolve_device(device)
    loaded = load_model(target, dev, resolve_dtype(dtype, dev))
    used = {a.drafter for a in prep.arms if a.drafter != PLAIN}
    specs = {d["name"]: d["params"]["spec"] for d in tr.manifest["drafters"]}
    ds = [make_drafter(specs[n]) for n in specs if n in used]
    for d in ds:
        d.prepare(loaded)
    arms = [(None if a.drafter == PLAIN else a.drafter, int(a.k)) for a in prep.arms]
    if any(getattr(a, "tree", None) for a in prep.arms):
        raise ConfigError("live: tree arms are not run live yet; expected chain arms (NAME@K)")
    max_new = int(tr.manifest.get("decoding", {}).get("max_new_tokens") or tr.output_lens.max())
    session = LiveSession(prep, loaded, live_drafters(ds), arms, _prompt_ids(prep, loaded.tokenizer), max_new)
    session.suffix_ = [d for d in ds if d.kind == "suffix"]
    session.outputs_ = [list(map(int, y)) for y in tr.prompts["output_ids"]]
    return session


def run_policy(session: LiveSession, spec: str, prompts: list[int] | None = None) -> tuple[dict, list[dict]]:
    """Decode every prompt live with policy ``spec`` choosing each round's arm.

    Returns the simulator's result arrays (``stopping_time``, ``time_s`` = measured wall clock,
    ``feedback_s``, ``pulls``; indexed ``[prompt, run 0]``) and the per-round log rows.
    """
    from gpu_collect.live import RoundState, decode_live

    prep, cfg = session.prep, session.prep.cfg
    A = prep.env.n_arms
    prompts = list(range(prep.env.n_prompts)) if prompts is None else prompts
    probe = make_policy(spec)
    if probe.feedback != "bandit":
        raise ConfigError(f"policy {probe.spec()}: full-information policies are not run live yet (each round "
                          "would score every drafter); expected a bandit policy")
    ctx = prep.context(probe)
    rscale = prep.reward_scale(ctx.reward_kind)
    key = crng.policy_key(cfg.seed, carry=False)
    P = len(prompts)
    res = {"stopping_time": np.zeros((P, 1), np.int64), "time_s": np.zeros((P, 1)), "feedback_s": np.zeros((P, 1)),
           "pulls": np.zeros((P, 1, A), np.int64)}
    log: list[dict] = []
    for slot, p in enumerate(prompts):
        policy = make_policy(spec)
        call_policy(policy, "reset", 1, prep.context(policy))
        call_policy(policy, "on_prompt_start", np.arange(1), np.array([p]))
        lane = crng.lane_key(np.array([p]), np.array([0]))
        j = np.arange(max(policy.n_random, 1))  # after reset: a policy may set it there (thompson)
        spent = [0.0]

        def choose(st: RoundState, policy=policy, lane=lane, spent=spent, j=j) -> int:
            t = time.perf_counter()
            u = crng.uniform(key, lane[:, None], np.array([[st.round]]), j[None, :])
            if policy.reads_batch:  # one request at a time
                call_policy(policy, "on_batch", np.ones(1, np.int64))
            arm = int(select_arms(policy, u, 1, A)[0])
            spent[0] += time.perf_counter() - t
            return arm

        def feedback(arm: int, drafted: int, accepted: int, emitted: int, policy=policy, p=p, spent=spent) -> None:
            t = time.perf_counter()
            call_policy(policy, "update", np.array([arm]), np.array([emitted * rscale[p, arm]]), np.array([True]))
            spent[0] += time.perf_counter() - t

        for d in session.suffix_:  # the collector's history: the earlier outputs, in trace order
            d.set_history(session.outputs_[:p])
        run = decode_live(session.target, session.drafters, session.arms, session.prompt_ids[p],
                          session.max_new_tokens, choose, feedback)
        res["stopping_time"][slot, 0] = len(run.rounds)
        res["time_s"][slot, 0] = run.wall_s
        res["pulls"][slot, 0] = np.bincount(run.arms, minlength=A)
        names = [a.name for a in prep.arms]
        pid = prep.env.prompt_ids[p]
        log += [{"policy": probe.spec(), "prompt_id": pid, "round": i, "arm": names[r.arm], "drafted": r.drafted,
                 "accepted": r.accepted, "emitted": r.emitted, "draft_s": r.draft_s, "verify_s": r.verify_s}
                for i, r in enumerate(run.rounds)]
        log[-1]["policy_s_prompt"] = spent[0]
    return res, log


def live_run(cfg: RunConfig, target: str, out: str | Path | None = None, *, device: str = "auto",
             dtype: str = "auto", progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Run every policy of ``cfg`` live on the trace's prompts; optionally write a results folder.

    Parameters
    ----------
    cfg : RunConfig
        ``trace`` (collected on ``target``), ``policies``, ``arms``, ``seed``, ``objective``;
        ``runs`` is 1 (one live decode per prompt and policy).
    target : str
        The trace's target model.
    out : path, optional
        A results folder to write (``results.parquet``, ``fixed.parquet``, ``config.json``,
        ``rounds.csv``), replaced as a whole.

    Returns
    -------
    results, rounds : DataFrame
        The results rows (``time_s`` is the measured wall clock per prompt) and the per-round log.
    config : dict
        ``config.json``.

    Examples
    --------
    >>> from simulator.runner import RunConfig                         # doctest: +SKIP
    >>> res, rounds, conf = live_run(RunConfig(trace="T", policies=("ucbspec",), arms="pld@1-4",  # doctest: +SKIP
    ...                                        runs=1), target="M", out="LIVE")
    """
    session = open_session(cfg, target, device=device, dtype=dtype)
    tables, logs = [], []
    for spec in cfg.policies:
        res, log = run_policy(session, spec)
        tables.append(results_table(session.prep, spec, res, np.arange(session.prep.env.n_prompts), np.arange(1))
                      .to_pandas())
        logs += log
        if progress:
            print(f"live {spec}: {sum(r['emitted'] for r in log)} tokens in {res['time_s'].sum():.2f} s",
                  flush=True)
    results = pd.concat(tables, ignore_index=True)
    rounds = pd.DataFrame(logs)
    conf = resolved_config(session.prep)
    conf["live"] = {"target": target, "device": str(session.target.device),
                    "time_s": "measured wall clock per prompt (prefill, drafting, verification, policy)",
                    "regret_s, plain_time_s, best_time_s": "from the trace's cost model",
                    "rounds_file": ROUNDS_FILE}
    if out is not None:
        from simulator.results import write_results
        from traces.outdir import staged_folder

        with staged_folder(out, "run") as tmp:
            write_results(results, conf, tmp, fixed=fixed_frame(session.prep))
            rounds.to_csv(tmp / ROUNDS_FILE, index=False)
    return results, rounds, conf


def add_arguments(ap) -> None:
    """The flags of ``python -m experiments live``."""
    from traces import clikit as ck

    ck.add_trace(ap)
    ap.add_argument("--target", default=None,
                    help="the model the trace was collected on (default: the trace's target id)")
    ap.add_argument("--policy", action="append",
                    help="policy NAME[:k=v,...] or fixed:DRAFTER@K (repeatable; default ucbspec); bandit "
                         "feedback only")
    ap.add_argument("--policy-module", action="append", help="module or .py file defining policies (repeatable)")
    ap.add_argument("--arms", default=None, help="chain arms, e.g. 'plain@0,pld@1-4' (default: all of the trace)")
    ap.add_argument("--objective", choices=["rounds", "time"], default=None,
                    help="as `simulator run` (time: throughput reward from the trace's cost model)")
    ap.add_argument("--reward", choices=["tokens", "throughput"], default=None, help="as `simulator run`")
    ck.add_seed(ap)
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--dtype", default="auto", help="auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16")
    ap.add_argument("--threads", type=ck.positive_int, default=None, help="torch CPU threads")
    ck.add_out(ap, "results folder (results.parquet, fixed.parquet, config.json, rounds.csv)")
    ck.add_quiet(ap)


def run_cli(a) -> int:
    """``python -m experiments live``: every policy decodes every trace prompt live."""
    from gpu_collect.errors import CollectError

    try:
        import torch
    except ImportError:
        raise ConfigError("live: needs torch and transformers (pip install -e '.[collect]')") from None
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = RunConfig(trace=a.trace, policies=tuple(a.policy or ["ucbspec"]), runs=1, seed=a.seed, arms=a.arms,
                    objective=a.objective, reward=a.reward, engine="numpy",
                    policy_modules=tuple(a.policy_module or ()))
    target = a.target
    try:
        if target is None:
            import traces

            target = str(traces.load(a.trace).manifest.get("target", {}).get("id") or "")
            if not target:
                raise ConfigError(f"{a.trace}/manifest.json: no target id recorded; pass --target")
        res, rounds, _ = live_run(cfg, target, a.out, device=a.device, dtype=a.dtype, progress=not a.quiet)
    except CollectError as exc:
        raise ConfigError(str(exc)) from None
    if not a.quiet:
        for pol, g in res.groupby("policy", sort=False):
            print(f"{pol}: {int(g.tokens.sum())} tokens, {int(g.stopping_time.sum())} rounds, "
                  f"{g.time_s.sum():.3f} s measured" if "time_s" in g else
                  f"{pol}: {int(g.tokens.sum())} tokens, {int(g.stopping_time.sum())} rounds")
        print(f"wrote {a.out}")
    return 0
