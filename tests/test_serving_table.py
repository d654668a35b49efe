"""``serve``'s terminal table names no winner inside the cost table's timing noise."""

from __future__ import annotations

import pandas as pd

from simulator.serving import format_serving, hindsight_summary


def _frame(best: float, second: float) -> pd.DataFrame:
    rows = []
    for run in range(2):
        for method, kind, k, imp in (("plain@0", "arm", 0, 1.0), ("eagle@2", "arm", 2, best),
                                     ("eagle@3", "arm", 3, second), ("ucbspec", "policy", -1, 1.1)):
            rows.append(dict(sample=0, batch_size=4, run=run, method=method, kind=kind, k=k, improvement=imp))
    return pd.DataFrame(rows)


def test_runner_up_is_the_second_best_arm():
    m = hindsight_summary(_frame(1.30, 1.25))
    assert m.loc[0, "best arm name"] == "eagle@2" and m.loc[0, "runner-up name"] == "eagle@3"
    assert m.loc[0, "runner-up arm"] == 1.25


def test_tie_inside_the_noise_names_both():
    out = format_serving(_frame(1.30, 1.29), width=100, rel=0.02)
    assert "eagle@2 ~ eagle@3" in out and "timing noise (2.0 %)" in out


def test_a_gap_beyond_the_noise_names_one_winner():
    out = format_serving(_frame(1.30, 1.20), width=100, rel=0.02)
    assert "eagle@2 ~" not in out and "eagle@2" in out
    assert "~" not in format_serving(_frame(1.30, 1.29), width=100, rel=0.0)  # no noise known: a winner
