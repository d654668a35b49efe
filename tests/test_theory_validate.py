"""`python -m theory validate --quick` (the CI run of the theory checks)."""

from __future__ import annotations

import pandas as pd

from theory.__main__ import main


def test_validate_quick(tmp_path):
    assert main(["validate", "--quick", "--out", str(tmp_path)]) == 0
    checks = pd.read_csv(tmp_path / "checks.csv")
    for col in ("check", "setting", "policy", "passed", "value", "bound"):
        assert col in checks.columns
    kinds = set(checks.check.str.split("-").str[0])
    assert {"1", "2", "3", "4"} <= kinds
    # identities and upper bounds must hold on every run of every experiment
    must = checks[checks.check.str.startswith("4-") | checks.check.str.endswith("-upper")]
    assert must.passed.all(), must[~must.passed]
    report = (tmp_path / "report.md").read_text()
    assert "## Check 1" in report and "## Findings" in report
    assert (tmp_path / "check1_regret_vs_length.png").stat().st_size > 5000
