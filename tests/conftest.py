from __future__ import annotations

import numpy as np
import pytest

import traces

# The hand-worked 10-position trace of tests/test_replay_golden.py
L_A = [2, 1, 0, 3, 2, 1, 0, 0, 1, 0]
L_B = [0, 0, 1, 0, 0, 2, 1, 0, 0, 0]


@pytest.fixture
def tiny_trace() -> traces.Trace:
    return traces.from_arrays([np.array([L_A, L_B])], ["a", "b"], k_max=3, name="tiny")


@pytest.fixture
def tiny_trace_dir(tmp_path, tiny_trace):
    return traces.write(tiny_trace, tmp_path / "tiny")


@pytest.fixture(scope="session")
def tgd_trace_dir(tmp_path_factory):
    from traces import synthetic

    tr = synthetic.tgd([0.8, 0.5, 0.3], n_prompts=4, output_len=400, k_max=4, seed=3)
    return traces.write(tr, tmp_path_factory.mktemp("tgd") / "tgd")
