"""Spec-Bench / FastChat answer files from simulator results, and the vanilla baseline file.

One JSON line per question, as Spec-Bench's ``evaluation/inference_*.py`` write them:
``{"question_id", "category", "answer_id", "model_id", "choices": [{"index", "turns",
"decoding_steps", "new_tokens", "wall_time", "accept_lengths"}], "tstamp"}``, one list entry
per turn.  ``turns`` is the trace's decoded answer text (``prompts.parquet`` ``answer``);
``accept_lengths`` lists the tokens emitted per verification round (bonus included, as
Spec-Bench counts them); question ids that are integers are written as integers.

``wall_time`` is **simulated**: the rounds of the replayed run times the trace's cost table
(device chosen as in ``simulator run``), not a measured time.  A sidecar
``FILE.specregret.json`` next to each file says so, with the cost table, trace, policy, run
and seed.  The per-round lengths are re-simulated for the chosen run (the counter-based random
numbers make that exact) and checked against the stored stopping times; a fixed arm
(``fixed:DRAFTER@K``) needs no prior run.  The baseline file (vanilla decoding: one token
per round at the cost of a plain round) is written whatever the arm set.

Spec-Bench's ``evaluation/speed.py`` (hemingkx/Spec-Bench 132ba4cf) reports
``speedup = mean over answers of tokens/s (method) / mean over answers of tokens/s (vanilla)``,
the method's tokens = sum of ``new_tokens``, the baseline's = ``len(tokenizer(turn).input_ids)
- 1`` per turn (re-tokenised text minus the BOS token Llama tokenizers add), and ``MAT`` = the
mean of all ``accept_lengths``.  The toolkit computes the same (:data:`SPEEDUP_DEFINITION`,
``simulator summary``'s ``speedup_specbench``), the vanilla tokens counted as speed.py counts
them from the trace's ``answer_tokens`` (``simulator.runner.specbench_tokens``).  With a
tokenizer that adds no BOS (SmolLM2) speed.py's count is one short per answer, and one more
where the answer ended in EOS (decoded without special tokens): its speedup is that much low.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np

from simulator.policies import PolicyError, make_policy
from simulator.policies.plugins import load_module_file, resolve_module
from simulator.results import ResultsError
from simulator.results_reader import ResultsFolder, open_results
from simulator.runner import Experiment, RunConfig, resolve, simulate, specbench_tokens
from traces.manifest import toolkit_version

SIDECAR = ".specregret.json"
SPEEDUP_DEFINITION = ("Spec-Bench evaluation/speed.py: mean over answers of tokens/s of the method (generated "
                      "tokens) divided by the mean over answers of tokens/s of vanilla decoding (tokens = "
                      "len(tokenizer(answer).input_ids) - 1), simulated wall times")
_INT = re.compile(r"-?[0-9]{1,18}")


def _policy_spec(policy: str, folder: ResultsFolder, modules: tuple[str, ...]) -> str:
    """``policy`` resolved, plug-ins loaded only from the files the user named (``--policy-module``):
    a results folder is data, and the modules its config.json lists are never imported."""
    for path in modules:
        load_module_file(path)
    try:
        return make_policy(policy).spec()
    except PolicyError:
        named = sorted({m for c in folder.configs for m in c.get("policy_modules") or ()})
        if not named:
            raise
        raise PolicyError(f"--policy {policy}: not a registered policy; {folder.path} was made with --policy-module "
                          f"{', '.join(named)}: add --policy-module FILE (the file defining it) to this command (a "
                          "results folder's modules are never imported)") from None


def _prepare(folder: ResultsFolder, spec: str, setting: str | None, run: int,
             modules: tuple[str, ...]) -> tuple[Experiment, dict, bool]:
    results_dir = folder.path
    confs = [c for c in folder.configs if setting is None or c["setting"] == setting]
    if not confs:
        raise ResultsError(f"{results_dir}/config.json: field 'setting': no setting {setting!r}")
    ran = [c for c in confs if spec in c["policies"]]
    if not ran and not spec.startswith("fixed:"):
        raise ResultsError(f"{results_dir}: no results for policy {spec!r}"
                           + (f" in setting {setting!r}" if setting else "")
                           + "; only a fixed arm (fixed:DRAFTER@K) can be exported without a prior run")
    c = (ran or confs)[0]
    if ran and not 0 <= run < c["runs"]:
        raise ResultsError(f"--run: expected 0..{c['runs'] - 1}, got {run}")
    arms = list(c["arms"])
    if not ran and spec.split(":", 1)[1] not in arms:
        arms.append(spec.split(":", 1)[1])  # appended: the run's arms keep their indices
    cfg = RunConfig(trace=c["trace"], setting=c["setting"], policies=(spec,), runs=max(c["runs"], run + 1),
                    seed=c["seed"], arms=",".join(arms), objective=c.get("objective"), reward=c["reward"],
                    carry_state=c["carry_state"], law=c["law"], stream=c["stream"],
                    cost_device=c.get("cost_device"), free_feedback=bool(c.get("free_feedback", False)),
                    cost_fit=c.get("cost_fit", "raw") if c.get("cost_fit") in ("raw", "fit") else "raw",
                    policy_modules=modules)
    return resolve(cfg), c, bool(ran)


def _questions(prep: Experiment) -> list[tuple[object, list[int]]]:
    """(question id as Spec-Bench writes it, env prompts of its turns in turn order)."""
    tr = prep.trace
    row = {pid: i for i, pid in enumerate(tr.prompts["prompt_id"])}
    groups: dict[str, list[tuple[int, int]]] = {}
    for p, pid in enumerate(prep.env.prompt_ids):
        groups.setdefault(str(pid).split("#t")[0], []).append((int(tr.prompts["turn"].iloc[row[pid]]), p))
    as_int = all(_INT.fullmatch(q) for q in groups)
    return [(int(q) if as_int else q, [p for _, p in sorted(g)]) for q, g in groups.items()]


def _answers(prep: Experiment) -> tuple[list[str], str]:
    """The answer text per env prompt and what it is (a synthetic trace has none)."""
    tr = prep.trace
    if "answer" not in tr.prompts.columns and tr.manifest.get("synthetic") is True:
        return [""] * prep.env.n_prompts, ("empty: a synthetic trace has no text, so Spec-Bench's baseline "
                                           "token count (re-tokenised text) does not apply")
    if "answer" not in tr.prompts.columns:
        raise ResultsError(f"{tr.path or tr.label}/prompts.parquet: column 'answer' missing (the decoded output "
                           "text Spec-Bench re-tokenises); add it with `python -m gpu_collect answers --trace "
                           f"{tr.path or tr.label} --target TARGET`")
    text = dict(zip(tr.prompts["prompt_id"], tr.prompts["answer"], strict=True))
    return ([str(text[pid]) for pid in prep.env.prompt_ids],
            "the trace's answer text (output decoded without special tokens)")


def _check_ours(out: Path) -> None:
    """Only files this export wrote (they have a sidecar) are replaced; a link is never written
    through, a special file never opened."""
    for p in (out, Path(str(out) + SIDECAR)):
        if p.is_symlink() or (p.exists() and not p.is_file()):
            raise ResultsError(f"{p}: is not a regular file (a link, folder or special file); it is left alone: "
                               "choose another --out / --baseline")
    if out.exists() and not Path(str(out) + SIDECAR).is_file():
        raise ResultsError(f"{out}: already exists and was not written by export-specbench (no {out.name}{SIDECAR} "
                           "beside it); choose another --out / --baseline")


def _write_lines(out: Path, lines: list[dict], sidecar: dict) -> Path:
    from traces.outdir import FolderLock, write_file_atomic

    out.parent.mkdir(parents=True, exist_ok=True)
    with FolderLock(out, "export-specbench"):
        _check_ours(out)
        # the sidecar first: a kill between the two leaves an old answer file still marked as ours
        for path, body in ((Path(str(out) + SIDECAR), json.dumps(sidecar, indent=2) + "\n"),
                           (out, "".join(json.dumps(x) + "\n" for x in lines))):
            write_file_atomic(path, body)
    return out


def export_specbench(results_dir: str | os.PathLike[str], policy: str, out_file: str | os.PathLike[str], *,
                     setting: str | None = None, run: int = 0,
                     baseline: str | os.PathLike[str] | None = None, policy_modules: tuple[str, ...] = ()) -> dict:
    """Write the answer file of ``policy`` (run ``run``) and, with ``baseline``, the vanilla
    decoding file.  Returns the paths, ``mat`` and (with a cost table) ``speedup_specbench``.
    A plug-in policy needs its file in ``policy_modules`` (never taken from the results folder)."""
    folder = open_results(results_dir, want="run")  # every file checked before use
    modules = tuple(resolve_module(m) for m in policy_modules)
    spec = _policy_spec(policy, folder, modules)
    for f in (out_file, baseline):
        if f is not None:
            _check_ours(Path(f))
    prep, c, ran = _prepare(folder, spec, setting, run, modules)
    env, P = prep.env, prep.env.n_prompts
    res = simulate(prep, make_policy(spec), np.arange(P), np.array([run]), record=True)
    lengths: list[list[int]] = [[] for _ in range(P)]
    for pos, _arms, e, cur in res["history"]:
        for lane in np.flatnonzero(pos >= 0):
            lengths[int(cur[lane])].append(int(e[lane]))
    if ran:
        df = folder.results
        rows = df[(df.setting == c["setting"]) & (df.policy == spec) & (df.run == run)].set_index("prompt_id")
        for p, pid in enumerate(env.prompt_ids):
            if int(rows.loc[pid, "stopping_time"]) != len(lengths[p]):
                raise ResultsError(f"{results_dir}: re-simulated run {run} of prompt {pid!r} took {len(lengths[p])} "
                                   f"rounds, results say {int(rows.loc[pid, 'stopping_time'])}; made by another "
                                   "version?")
    (answers, turns_note), n = _answers(prep), env.lengths.astype(int)
    has_cost = prep.cost_s is not None
    wall = res["time_s"][:, 0] if has_cost else np.zeros(P)
    plain = n * prep.plain_s if has_cost else np.zeros(P)
    stamp = time.time()
    qs = _questions(prep)

    def lines(model: str, steps, acc, secs) -> list[dict]:
        return [{"question_id": q, "category": env.categories[ps[0]], "answer_id": f"{model}-{c['setting']}-{q}",
                 "model_id": model,
                 "choices": [{"index": 0, "turns": [answers[p] for p in ps],
                              "decoding_steps": [int(steps[p]) for p in ps], "new_tokens": [int(n[p]) for p in ps],
                              "wall_time": [float(secs[p]) for p in ps],
                              "accept_lengths": [x for p in ps for x in acc[p]]}],
                 "tstamp": stamp} for q, ps in qs]

    side = {"written_by": "python -m experiments export-specbench", "toolkit_version": toolkit_version(),
            "results": str(results_dir), "trace": c["trace"], "setting": c["setting"], "seed": c["seed"],
            "wall_time": ("simulated: the replayed rounds times the cost table's round times, not measured"
                          if has_cost else "0: the trace has no cost table (Spec-Bench's speedup is undefined)"),
            "cost_table": ({"device": prep.costs.device, "chosen": prep.costs.why,
                            "source": prep.trace.manifest.get("costs_from", "")} if has_cost else None),
            "turns": turns_note,
            "speedup_definition": SPEEDUP_DEFINITION}
    tokens = np.array([sum(x) for x in lengths])
    mat = float(np.mean([x for a in lengths for x in a]))
    out: dict = {"method": None, "baseline": None, "mat": mat, "speedup_specbench": None}
    if has_cost:  # per answer: sum of tokens / sum of wall times over its turns, as speed.py
        rate = np.array([tokens[ps].sum() / wall[ps].sum() for _, ps in qs])
        sbt = specbench_tokens(prep)  # the vanilla tokens as speed.py counts them
        base = np.array([sbt[ps].sum() / plain[ps].sum() for _, ps in qs])
        out["speedup_specbench"] = float(rate.mean() / base.mean())
    out["method"] = _write_lines(Path(out_file), lines(f"specregret-{spec}", [len(a) for a in lengths], lengths, wall),
                                 {**side, "policy": spec, "run": run, "mat": mat,
                                  "speedup_specbench": out["speedup_specbench"]})
    if baseline is not None:
        out["baseline"] = _write_lines(Path(baseline), lines("specregret-vanilla", n, [[1] * int(k) for k in n], plain),
                                       {**side, "policy": "vanilla (plain decoding, one token per round)",
                                        "run": None})
    return out
