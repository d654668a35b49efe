"""Live KV-cached decoding (``gpu_collect.live.decode_live``) and policy-driven live runs
(``experiments.live``) on a tiny random Llama (CPU): output == plain greedy, per-round emitted ==
the trace's replay for every supported drafter kind, arm switching every round, and a results
folder that ``simulator summary`` reads."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the live loop needs the [collect] extra")

import traces  # noqa: E402
from gpu_collect import prompts as P  # noqa: E402
from gpu_collect.collector import CollectConfig, collect  # noqa: E402
from gpu_collect.drafters import make_drafter  # noqa: E402
from gpu_collect.errors import CollectError  # noqa: E402
from gpu_collect.live import decode_live, live_drafters, speculative_decode  # noqa: E402
from gpu_collect.models import load_model  # noqa: E402
from gpu_collect.tiny import build_tiny  # noqa: E402
from traces import Arm  # noqa: E402

pytestmark = pytest.mark.collect

# one drafter of every token-input kind the live loop runs
SPECS = ("pld", "ngram:2", "early:2", "skip:1", "quant:rtn4", "draft=hf:{noisy}", "rest:{corpus}", "suffix")
N_PROMPTS, MAX_NEW = 3, 24


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and the machine is shared
    yield _setup(tmp_path_factory)
    torch.set_num_threads(threads)


def _setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    t = build_tiny(root / "target", seed=0)
    n = build_tiny(root / "noisy", seed=1, base=t, noise=0.01)
    corpus = root / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\nhow are you today, the quick brown fox\n")
    specs = tuple(s.format(noisy=n, corpus=corpus) for s in SPECS)
    out = root / "trace"
    collect(CollectConfig(target=str(t), drafters=specs, prompts="builtin:specregret-84", max_new_tokens=MAX_NEW,
                          k_max=4, out=str(out), limit=N_PROMPTS, batch_size=3, device="cpu",
                          cost_contexts=(32,), cost_batch_sizes=(1,), cost_budget_s=0.5), progress=False)
    target = load_model(str(t), torch.device("cpu"), torch.float32)
    ds = [make_drafter(s) for s in specs]
    for d in ds:
        d.prepare(target)
    qs, _ = P.load_questions("builtin:specregret-84")
    ids = [P.chat_ids(target.tokenizer, [{"role": "user", "content": q.turns[0]}]) for q in qs[:N_PROMPTS]]
    return {"trace": traces.load(out), "trace_dir": out, "target": target, "target_dir": t, "drafters": ds,
            "fns": live_drafters(ds), "ids": ids}


def _live(s, arms, p, choose):
    tr = s["trace"]
    for d in s["drafters"]:
        if d.kind == "suffix":  # the collector's history: the earlier outputs in trace order
            d.set_history([list(map(int, y)) for y in tr.prompts.output_ids[:p]])
    return decode_live(s["target"], s["fns"], arms, s["ids"][p], MAX_NEW, choose)


def test_kv_cached_plain_equals_greedy(setup):
    """Plain decoding through the KV-cached loop == the uncached reference loop == the trace's output."""
    for p in range(N_PROMPTS):
        run = _live(setup, [(None, 0)], p, lambda st: 0)
        ref = speculative_decode(setup["target"], None, setup["ids"][p], 0, MAX_NEW)
        assert run.output_ids == ref.output_ids == setup["trace"].prompts.output_ids[p].tolist()
        assert run.emitted == [1] * len(run.output_ids)


@pytest.mark.parametrize("kind", [s.partition("=")[2].partition(":")[0] or s.partition(":")[0] for s in SPECS])
def test_fixed_arm_rounds_equal_replay(setup, kind):
    """Every drafter kind: output == greedy and per-round emitted == the trace's fixed-arm replay."""
    d = next(x for x in setup["drafters"] if x.kind == kind)
    tr = setup["trace"]
    arms = [(d.name, k) for k in (1, 4)]
    for i, (name, k) in enumerate(arms):
        for p in range(N_PROMPTS):
            run = _live(setup, arms, p, lambda st, i=i: i)
            assert run.output_ids == tr.prompts.output_ids[p].tolist()
            assert run.emitted == tr.fixed_arm_rounds(Arm(name, k), p).tolist(), (name, k, p)
            assert all(r.accepted <= r.drafted <= k for r in run.rounds)
            assert all(r.draft_s >= 0 and r.verify_s > 0 for r in run.rounds)


def test_switching_arms_every_round_equals_replay(setup):
    """An arm sequence that switches drafter and k every round (stale drafter caches included):
    every round's emitted count is the replay's at that position, and the output is greedy."""
    tr = setup["trace"]
    arms = [(None, 0)] + [(d.name, k) for d in setup["drafters"] for k in (1, 3)]
    rng = np.random.default_rng(0)
    for p in range(N_PROMPTS):
        seq = rng.integers(0, len(arms), size=MAX_NEW)
        run = _live(setup, arms, p, lambda st, seq=seq: int(seq[st.round]))
        assert run.output_ids == tr.prompts.output_ids[p].tolist()
        pos = 0
        for r in run.rounds:
            name, k = arms[r.arm]
            want = 1 if name is None else int(tr.emitted(Arm(name, k), p)[pos])
            assert r.emitted == want, (p, pos, name, k)
            pos += r.emitted


def test_heads_and_bad_arm_refused(setup):
    with pytest.raises(CollectError, match="live loop does not run hidden-state heads"):
        live_drafters([make_drafter("medusa:/nonexistent")])
    with pytest.raises(CollectError, match="choose returned arm 5; expected 0..0"):
        decode_live(setup["target"], setup["fns"], [(None, 0)], setup["ids"][0], 4, lambda st: 5)


def test_policy_live_run_equals_replay_and_summary_reads_it(setup, tmp_path, capsys):
    """A policy-driven live run: its arm sequence equals the simulator's replay, round for round,
    and its folder is a results folder (``simulator summary`` reads it)."""
    from experiments.live import live_run
    from simulator.cli import main as sim_main
    from simulator.policies import make_policy
    from simulator.runner import RunConfig, resolve, simulate

    arms = "plain@0,pld@1-3,early2@2,draft@1-4,rest@2,suffix@2"
    for pol in ("ucbspec", "exp3spec", "thompson"):
        cfg = RunConfig(trace=str(setup["trace_dir"]), policies=(pol,), arms=arms, runs=1, seed=3)
        out = tmp_path / pol
        res, rounds, conf = live_run(cfg, str(setup["target_dir"]), out, device="cpu")
        prep = resolve(cfg)
        sim = simulate(prep, make_policy(pol), np.arange(prep.env.n_prompts), np.arange(1), record=True)
        names = [a.name for a in prep.arms]
        for p, pid in enumerate(prep.env.prompt_ids):
            want = [names[int(h[1][p])] for h in sim["history"] if h[1][p] >= 0]
            assert rounds[rounds.prompt_id == pid].arm.tolist() == want, (pol, pid)
        assert res.stopping_time.tolist() == sim["stopping_time"].ravel().tolist()
        assert (res.time_s > 0).all() and conf["live"]["time_s"].startswith("measured")
        assert sim_main(["summary", "--results", str(out)]) == 0
        assert pol in capsys.readouterr().out


def test_cli_live_fixed_arms(setup, tmp_path, capsys):
    from gpu_collect.cli import main

    out = tmp_path / "fixed"
    assert main(["live", "--target", str(setup["target_dir"]), "--drafter", "pld", "--arms", "plain@0,pld@2",
                 "--prompts", "builtin:specregret-84", "--limit", "2", "--max-new-tokens", "8", "--out", str(out),
                 "--quiet"]) == 0
    import pandas as pd

    pp = pd.read_csv(out / "prompts.csv")
    assert list(pp.arm) == ["plain@0", "plain@0", "pld@2", "pld@2"] and (pp.tokens == 8).all()
    assert main(["live", "--target", str(setup["target_dir"]), "--drafter", "pld", "--arms", "pld@tree:2x2",
                 "--prompts", "builtin:specregret-84", "--out", str(tmp_path / "t")]) == 2
    assert "tree arms are not run live yet" in capsys.readouterr().err
