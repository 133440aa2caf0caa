"""The critic finds the bug: strongly negative TD error at the BUG token, ~0 elsewhere, AUC > 0.95."""

from __future__ import annotations

import runpy

import pytest

from tests.integration.helpers import ROOT

pytestmark = pytest.mark.slow


def test_td_error_localises_the_bug():
    run = runpy.run_path(str(ROOT / "bench" / "science_check.py"), run_name="bench")["run"]
    r = run(steps=300, seed=0)
    assert r["td_at_bug_mean"] < -0.4, r
    assert abs(r["td_elsewhere_mean"]) < 0.1 and r["td_elsewhere_abs_mean"] < 0.1, r
    assert r["weight_at_bug_mean"] < 0.7 < r["weight_elsewhere_mean"], r
    assert r["final_value_auc"] > 0.95, r
