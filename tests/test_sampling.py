"""Sampling mode: replaying Bernoulli(beta) acceptance given recorded samples reproduces the
round-count distribution of live speculative sampling (two-sample KS test)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch", reason="the collector needs the [collect] extra")

import traces  # noqa: E402
from gpu_collect.collector import generate_sample  # noqa: E402
from gpu_collect.drafters import Seq, make_drafter  # noqa: E402
from gpu_collect.live import speculative_decode  # noqa: E402
from gpu_collect.models import load_model  # noqa: E402
from gpu_collect.tiny import build_tiny  # noqa: E402
from simulator.envs.base import simulate_fixed  # noqa: E402
from simulator.envs.replay import ReplayEnv, expected_rounds_bernoulli  # noqa: E402
from traces import Arm  # noqa: E402
from traces.accept import run_lengths  # noqa: E402
from traces.manifest import make_manifest  # noqa: E402

T, N, K, M = 1.0, 16, 3, 160


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("samp")
    t = build_tiny(root / "t", seed=0)
    target = load_model(str(t), torch.device("cpu"), torch.float32)
    drafter = make_drafter("early:3")
    drafter.prepare(target)
    prompt = target.tokenizer("The museum is open every day except")["input_ids"]
    return target, drafter, prompt


def _sampling_trace(target, drafter, prompt):
    """M recorded samples of the same prompt (seeds 0..M-1), scored like the collector."""
    accept, alpha, beta, outs = [], [], [], []
    for m in range(M):
        y = generate_sample(target, prompt, N, T, seed=10_000 + m)
        a, b = drafter.sampling_probs(Seq(prompt, y, target), T)
        alpha.append(a)
        beta.append(b)
        accept.append(run_lengths(np.random.default_rng(m).random(N) < b, 8))
        outs.append(y)
    prompts = pd.DataFrame({"prompt_id": [f"s{m}" for m in range(M)], "category": "x", "turn": 0,
                            "prompt_len": len(prompt), "output_len": N, "finish_reason": "length",
                            "output_ids": outs})
    man = make_manifest(kind="sampling", synthetic=False, target={"id": "tiny"},
                        drafters=[drafter.info()], k_max=8,
                        decoding={"temperature": T, "max_new_tokens": N}, prompt_set={"name": "one"},
                        seed=0, name="samp")
    tr = traces.Trace(man, prompts, np.stack(accept)[:, None].astype(np.int16),
                      np.stack(alpha)[:, None].astype(np.float32), np.stack(beta)[:, None].astype(np.float32))
    return tr


def test_replay_round_distribution_matches_live_sampling(setup, tmp_path):
    from scipy.stats import ks_2samp

    target, drafter, prompt = setup
    tr = traces.load(traces.write(_sampling_trace(target, drafter, prompt), tmp_path / "s"))
    env = ReplayEnv(tr, [Arm(drafter.name, K)], seed=1)
    replay = simulate_fixed(env, run=0)[:, 0]
    live = np.array([speculative_decode(target, drafter, prompt, K, N, temperature=T, seed=m).rounds
                     for m in range(M)])
    res = ks_2samp(replay, live)
    assert res.pvalue > 0.01, (replay.mean(), live.mean(), res)
    assert abs(replay.mean() - live.mean()) < 4 * np.sqrt(replay.var() / M + live.var() / M)
    # the exact expectation given each recorded output agrees with the replay draws
    exact = env.expected_fixed_st()[:, 0]
    many = np.stack([simulate_fixed(env, run=r)[:, 0] for r in range(40)])
    np.testing.assert_allclose(many.mean(), exact.mean(), atol=4 * many.std() / np.sqrt(many.size))


def test_expected_rounds_bernoulli_against_simulation():
    rng = np.random.default_rng(0)
    beta = rng.random(30)
    sims = []
    for _ in range(4000):
        t, r = 0, 0
        while t < 30:
            a = 0
            while a < 4 and t + a < 30 and rng.random() < beta[t + a]:
                a += 1
            t += a + 1
            r += 1
        sims.append(r)
    assert abs(np.mean(sims) - expected_rounds_bernoulli(beta, 4)) < 4 * np.std(sims) / np.sqrt(4000)
