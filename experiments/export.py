"""Spec-Bench / FastChat answer lines from simulator results.

One JSON line per prompt, as Spec-Bench's ``evaluation/eval.py`` writes them:
``{"question_id", "category", "answer_id", "model_id", "choices": [{"index", "turns",
"decoding_steps", "new_tokens", "wall_time", "accept_lengths"}], "tstamp"}`` where
``accept_lengths`` lists the tokens emitted per verification round (bonus included, as
Spec-Bench counts them) and ``wall_time`` comes from the trace's cost table (0 without one).
The per-round lengths are re-simulated for the chosen run, which the counter-based random
numbers make exact; the stored stopping times are checked against them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from simulator.policies import make_policy
from simulator.results import ResultsError, read_config, read_results
from simulator.runner import RunConfig, prepare, simulate


def _configs(results_dir) -> list[dict]:
    out = []
    for c in read_config(results_dir):
        out.extend(c["settings"] if "settings" in c else [c])
    return out


def export_specbench(results_dir: str | os.PathLike[str], policy: str, out_file: str | os.PathLike[str],
                     *, setting: str | None = None, run: int = 0) -> Path:
    df = read_results(results_dir)
    spec = make_policy(policy).spec()
    confs = [c for c in _configs(results_dir) if spec in c["policies"] and (setting is None or c["setting"] == setting)]
    if not confs:
        raise ResultsError(f"{results_dir}: no results for policy {spec!r}"
                           + (f" in setting {setting!r}" if setting else ""))
    c = confs[0]
    if not 0 <= run < c["runs"]:
        raise ResultsError(f"--run: expected 0..{c['runs'] - 1}, got {run}")
    cfg = RunConfig(trace=c["trace"], setting=c["setting"], policies=(spec,), runs=c["runs"], seed=c["seed"],
                    arms=",".join(c["arms"]), objective=c.get("objective"), reward=c["reward"],
                    carry_state=c["carry_state"], law=c["law"], stream=c["stream"], cost_device=c.get("cost_device"),
                    free_feedback=bool(c.get("free_feedback", False)),
                    policy_modules=tuple(c.get("policy_modules") or ()))
    prep = prepare(cfg)
    P = prep.env.n_prompts
    res = simulate(prep, make_policy(spec), np.arange(P), np.array([run]), record=True)
    lengths: list[list[int]] = [[] for _ in range(P)]
    for pos, _arms, e, cur in res["history"]:
        for lane in np.flatnonzero(pos >= 0):
            lengths[int(cur[lane])].append(int(e[lane]))
    rows = df[(df.setting == c["setting"]) & (df.policy == spec) & (df.run == run)].set_index("prompt_id")
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for p, pid in enumerate(prep.env.prompt_ids):
            st = int(rows.loc[pid, "stopping_time"])
            if st != len(lengths[p]):
                raise ResultsError(f"{results_dir}: re-simulated run {run} of prompt {pid!r} took {len(lengths[p])} "
                                   f"rounds, results say {st}; were they made by another version?")
            wall = float(rows.loc[pid, "time_s"]) if "time_s" in rows.columns else 0.0
            f.write(json.dumps({
                "question_id": pid, "category": prep.env.categories[p],
                "answer_id": f"{spec}-{c['setting']}-run{run}-{pid}", "model_id": f"specregret-{spec}",
                "choices": [{"index": 0, "turns": [""], "decoding_steps": [st],
                             "new_tokens": [int(prep.env.lengths[p])], "wall_time": [wall],
                             "accept_lengths": lengths[p]}],
                "tstamp": 0.0,
            }) + "\n")
    os.replace(tmp, out)
    return out
