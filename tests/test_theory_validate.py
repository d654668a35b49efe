"""`python -m experiments theory --quick` (the CI run of the theory checks): exit 0 when every
non-vacuous check passes, exit 1 when a check is broken on purpose."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import experiments.theory_validate as tv
from experiments.cli import main


def test_validate_quick(tmp_path):
    assert main(["theory", "--quick", "--drafters", "pld,skip5-24,rtn4,hf-rtn3,early28", "--out", str(tmp_path)]) == 0
    checks = pd.read_csv(tmp_path / "checks.csv")
    for col in ("check", "setting", "policy", "status", "passed", "value", "bound", "lo", "hi"):
        assert col in checks.columns
    assert set(checks.status) <= {"pass", "fail", "vacuous", "info"}
    assert {"1", "2", "3", "4", "5"} <= set(checks.check.str.split("-").str[0])
    assert (checks.status != "fail").all(), checks[checks.status == "fail"]
    # no check passes on NaN; vacuous rows are not counted as passed
    passed = checks[checks.status == "pass"]
    assert np.isfinite(passed[["value", "bound"]]).all().all()
    assert not checks[checks.status == "vacuous"].passed.any()
    # the lower-bound rows are slopes with an interval, not finite-length levels
    lower = checks[checks.check.str.endswith("-lower")]
    assert len(lower) == 6 and (lower.hi >= lower.bound).all() and (lower.lo < lower.hi).all()
    # the named streams' rates, fitted from 1e3 to 1e5 tokens (done-when of issue 8, item 10)
    slope = checks[checks.check == "5-slope"].set_index(["setting", "policy"])
    for key, target in ((("sqrt-burst", "exp3spec"), 0.5), (("ucb-trap", "ucbspec"), 1.0)):
        r = slope.loc[key]
        assert r.status == "pass" and target - 0.1 <= r.lo <= r.value <= r.hi <= target + 0.1, r
        assert "1000..100000" in r.detail
    curves = pd.read_csv(tmp_path / "curves.csv")
    trap = curves[(curves.setting == "ucb-trap")]
    # EXP3Spec stays below Theorem 5.3 (sqrt growth) where UCBSpec's regret is linear
    assert (trap[trap.policy == "exp3spec"].regret <= trap[trap.policy == "exp3spec"].upper).all()
    assert trap[trap.policy == "ucbspec"].regret.iloc[-1] > 2 * trap[trap.policy == "ucbspec"].upper.iloc[-1]
    report = (tmp_path / "report.md").read_text()
    assert "## Check 5" in report and "Every non-vacuous check passed." in report
    for c in ("1", "2", "3", "5"):
        assert (tmp_path / f"check{c}_regret_vs_length.png").stat().st_size > 5000


def _fixed_policy(monkeypatch, pick):
    """Replace every policy by the fixed arm ``pick(E[ST] of the fixed arms)``."""
    real = tv._run

    def run(env, spec, runs, seed):
        arm = env.table.arms[int(pick(env.expected_fixed_st()[0]))]
        return real(env, f"fixed:{arm.name}", runs, seed)

    monkeypatch.setattr(tv, "_run", run)


def test_always_playing_the_worst_arm_fails_the_upper_bounds(tmp_path, monkeypatch, capsys):
    _fixed_policy(monkeypatch, np.argmax)
    assert main(["theory", "--quick", "--only", "1", "--out", str(tmp_path)]) == 1
    checks = pd.read_csv(tmp_path / "checks.csv")
    failed = checks[checks.status == "fail"]
    assert set(failed.check) == {"1-upper"}  # identities still hold: they hold for every policy
    assert "FAIL 1-upper" in capsys.readouterr().out


def test_a_policy_that_knows_the_best_arm_fails_the_rate_checks(tmp_path, monkeypatch):
    """The hindsight-best fixed arm has zero regret: the Theorem 4.4 slope and the named
    streams' growth rates must fail (zero regret has no log-log slope: NaN never passes)."""
    _fixed_policy(monkeypatch, np.argmin)
    monkeypatch.setattr(tv, "QUICK", dataclasses.replace(tv.QUICK, lengths=[300, 1000, 3000],
                                                         named_lengths=[1000, 3000, 10000], named_runs=4))
    assert main(["theory", "--quick", "--only", "1,5", "--out", str(tmp_path)]) == 1
    checks = pd.read_csv(tmp_path / "checks.csv").set_index("check")
    assert (checks.loc["1-lower", "status"] == "fail").all()
    claimed = checks.loc["5-slope"][lambda d: d.status != "info"]
    assert len(claimed) == 2 and (claimed.status == "fail").all()
    assert checks.loc["5-limit", "status"] == "fail"


@pytest.mark.parametrize("only", ["7", "4", ","])
def test_only_rejects_unknown_checks(only, capsys):
    assert main(["theory", "--only", only, "--out", "x"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
