"""Scale-out: Ray sweeps equal local ones; sharded collections merge to the unsharded trace."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import traces
from gpu_collect.tiny import build_tiny
from simulator.runner import RunConfig, run_experiment
from traces.cli import main as traces_main
from traces.merge import merge_shards

ray = pytest.importorskip("ray")  # in the test extra; CI installs it

COLLECT = ["--drafter", "pld", "--drafter", "early:2", "--drafter", "skip:1", "--prompts", "builtin:specregret-84",
           "--limit", "5", "--max-new-tokens", "16", "--k-max", "4", "--batch-size", "1", "--no-costs",
           "--device", "cpu"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_target(tmp_path_factory):
    return str(build_tiny(tmp_path_factory.mktemp("tiny") / "target", seed=0))


@pytest.fixture(scope="module")
def unsharded(tiny_target, tmp_path_factory):
    from gpu_collect.collect_traces import main

    out = tmp_path_factory.mktemp("ref") / "ref"
    assert main(["--target", tiny_target, *COLLECT, "--out", str(out), "--quiet"]) == 0
    return traces.load(out)


def _same_trace(a: traces.Trace, b: traces.Trace) -> None:
    assert a.prompt_ids == b.prompt_ids
    np.testing.assert_array_equal(a.accept, b.accept)
    cols = [c for c in a.prompts.columns if c != "output_ids"]
    assert a.prompts[cols].equals(b.prompts[cols])
    assert a.prompts.output_ids.map(list).tolist() == b.prompts.output_ids.map(list).tolist()
    for key in ("kind", "target", "drafters", "k_max", "decoding", "prompt_set", "seed"):
        assert a.manifest[key] == b.manifest[key]


def test_unreachable_ray_address_fails_fast_with_one_line(tmp_path, capsys):
    import time

    from simulator.cli import main as sim_main

    assert not ray.is_initialized()  # runs before the module's local instance starts
    t0 = time.perf_counter()
    rc = sim_main(["run", "--trace", "builtin:smollm2-greedy", "--runs", "1", "--out", str(tmp_path / "x"),
                   "--backend", "ray", "--address", "127.0.0.1:1", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--address 127.0.0.1:1: cannot connect" in err
    assert time.perf_counter() - t0 < 30 and not (tmp_path / "x").exists()


def test_ray_sweep_is_bit_identical_to_local(local_ray):
    cfg = RunConfig(trace="builtin:smollm2-greedy", setting="replay", runs=3, seed=4, arms="pld@4,rtn4@4,early28@4",
                    policies=("ucbspec", "exp3spec", "hedgespec", "thompson"))
    local, _ = run_experiment(cfg, progress=False)
    remote, _ = run_experiment(replace(cfg, backend="ray", workers=3), progress=False)
    assert local.drop(columns=["pulls"]).equals(remote.drop(columns=["pulls"]))
    assert local.pulls.map(list).tolist() == remote.pulls.map(list).tolist()
    sto = replace(cfg, setting="stochastic", policies=("ucbspec", "exp3spec"))
    a, _ = run_experiment(sto, progress=False)
    b, _ = run_experiment(replace(sto, backend="ray"), progress=False)
    assert a["stopping_time"].tolist() == b["stopping_time"].tolist()


def test_shard_flag_and_traces_merge_equal_unsharded(tiny_target, unsharded, tmp_path, capsys):
    from gpu_collect.collect_traces import main

    dirs = []
    for i in range(3):
        d = tmp_path / f"s{i}"
        assert main(["--target", tiny_target, *COLLECT, "--shard", f"{i}/3", "--out", str(d), "--quiet"]) == 0
        dirs.append(str(d))
    assert [traces.load(d).n_prompts for d in dirs] == [2, 2, 1]
    out = tmp_path / "merged"
    assert traces_main(["merge", "--trace", dirs[2], "--trace", dirs[0], "--trace", dirs[1], "--out", str(out)]) == 0
    _same_trace(traces.load(out), unsharded)
    # a missing shard and a shard of another collection are refused with one line
    assert traces_main(["merge", "--trace", dirs[0], "--trace", dirs[1], "--out", str(tmp_path / "bad")]) == 2
    assert "expected every index 0..2" in capsys.readouterr().err
    with pytest.raises(traces.TraceError, match="collection.shard"):
        merge_shards([unsharded])


def test_ray_launcher_merges_cpu_shards(local_ray, tiny_target, unsharded, tmp_path):
    from gpu_collect.ray_collect import run

    out = run(2, tmp_path / "trace", ["--target", tiny_target, *COLLECT], num_gpus=0)
    merged = traces.load(out)
    assert traces.validate(out) == []
    _same_trace(merged, unsharded)
    assert merged.manifest["collection"]["merged_from_shards"] == 2
