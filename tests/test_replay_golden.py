"""Hand-worked replay on a 3-arm, 10-position trace (see conftest.L_A / L_B).

Arms plain@0, a@2, b@1.  Worked by hand:
  plain@0: 10 rounds.
  a@2: t=0 L=2 -> 3 tokens; t=3 L=3 -> 3; t=6 L=0 -> 1; t=7 L=0 -> 1; t=8 L=1 -> 2: 5 rounds.
  b@1: t=0 ->1, t=1 ->1, t=2 L=1 ->2, t=4 ->1, t=5 L=2 ->2, t=7 ->1, t=8 ->1, t=9 ->1: 8 rounds.
UCBSpec (K=3, delta=1/2), the paper's common width L = 2 (radius scale 1 for every arm):
round robin plain@t0 (1 tok), a@t1 (L=1: 2), b@t3 (1); round 4 (all n=1,
sqrt(2 (1 + 2 log(3*9*sqrt2/0.5))) = 4.398): plain 1 + 4.398, a 2 + 4.398, b 1 + 4.398 ->
a@t4 (L=2: 3 tok); round 5: a (n=2) 2.5 + 2.902 = 5.402, plain and b 1 + 4.652 (a tie: the
lowest index) -> plain@t7 (1 tok); round 6: plain (n=2) 1 + 3.015, a 2.5 + 3.015, b 1 + 4.840
-> b@t8 (1 tok); round 7: plain 1 + 3.104, a 2.5 + 3.104, b (n=2) 1 + 3.104 -> a@t9 (L=0:
1 tok, done).  ST = 7, pulls (2, 3, 2), regret 7 - 5 = 2.
``ucbspec:width=per-arm`` (arm i's radius scaled by its own width K_i/2: plain 0, a 1,
b 1/2): rounds 1-4 as above but plain 1, b 1 + 2.199 in round 4; round 5: a (n=2) 5.402,
b 1 + 2.326, plain 1 -> a@t7 (1 tok); round 6: a (n=3) 2 + 2.348, b 1 + 2.420, plain 1 ->
a@t8 (L=1: 2 tok, done).  ST = 6, pulls (1, 4, 1), regret 6 - 5 = 1.
"""

from __future__ import annotations

import numpy as np

from simulator.envs import ReplayEnv
from simulator.runner import RunConfig, run_experiment
from traces import Arm


def test_fixed_arm_stopping_times(tiny_trace):
    arms = [Arm("plain", 0), Arm("a", 2), Arm("b", 1)]
    env = ReplayEnv(tiny_trace, arms)
    assert env.expected_fixed_st().tolist() == [[10.0, 5.0, 8.0]]
    assert tiny_trace.fixed_arm_rounds(Arm("a", 2), 0).tolist() == [3, 3, 1, 1, 2]
    assert tiny_trace.fixed_arm_rounds(Arm("b", 1), 0).tolist() == [1, 1, 2, 1, 2, 1, 1, 1]


def test_ucbspec_by_hand(tiny_trace_dir):
    cfg = RunConfig(trace=str(tiny_trace_dir), setting="replay",
                    policies=("ucbspec", "ucbspec:width=per-arm", "fixed:b@1", "oracle"), runs=2,
                    arms="plain@0,a@2,b@1")
    df, conf = run_experiment(cfg, progress=False)
    assert conf["arms"] == ["plain@0", "a@2", "b@1"]
    c = df[df.policy == "ucbspec"]  # the paper's common width
    assert c.stopping_time.tolist() == [7, 7] and [list(p) for p in c.pulls] == [[2, 3, 2], [2, 3, 2]]
    assert c.regret_rounds.tolist() == [2.0, 2.0] and np.allclose(c.tokens / c.stopping_time, 10 / 7)
    u = df[df.policy == "ucbspec:width=per-arm"]
    assert u.stopping_time.tolist() == [6, 6]
    assert [list(p) for p in u.pulls] == [[1, 4, 1], [1, 4, 1]]
    assert u.regret_rounds.tolist() == [1.0, 1.0]
    f = df[df.policy == "fixed:b@1"]
    assert f.stopping_time.tolist() == [8, 8] and f.regret_rounds.tolist() == [3.0, 3.0]
    o = df[df.policy == "oracle"]
    assert o.regret_rounds.tolist() == [0.0, 0.0] and (o.best_arm_rounds == "a@2").all()
    assert np.allclose(u.tokens / u.stopping_time, 10 / 6)
