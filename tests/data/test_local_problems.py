"""Every label of the project's own problem set is checked by running the solutions in the sandbox."""

from __future__ import annotations

from collections import Counter

from wmtp_lightning.data.local_problems import SPLITS, io_tests, load_local_problems
from wmtp_lightning.data.schema import DEFAULT_BINS, bin_of
from wmtp_lightning.evaluation.sandbox import SandboxLimits, parallel_map, run_stdio

LIMITS = SandboxLimits(timeout_s=3.0, memory_mb=1024)


def test_problem_set_shape():
    rows = load_local_problems()
    assert len(rows) >= 30
    assert len({r["name"] for r in rows}) == len(rows)
    for r in rows:
        assert len(r["solutions"]["solution"]) >= 2 and len(r["incorrect_solutions"]["solution"]) >= 2, r["name"]
        assert set(r["solutions"]["language"]) == {3} == set(r["incorrect_solutions"]["language"]), r["name"]
        assert "Input" in r["description"] and "Output" in r["description"], r["name"]
        assert 1 <= len(r["public_tests"]["input"]) < len(io_tests(r)), r["name"]
    bins = Counter(bin_of(r["difficulty"], DEFAULT_BINS) for r in rows)
    assert all(bins[b] >= 5 for b in DEFAULT_BINS), bins
    assert all(load_local_problems(split) for split in SPLITS)
    assert sum(len(load_local_problems(split)) for split in SPLITS) == len(rows)


def test_every_label_is_true():
    rows = load_local_problems()
    jobs = [(r, code, True) for r in rows for code in r["solutions"]["solution"]]
    jobs += [(r, code, False) for r in rows for code in r["incorrect_solutions"]["solution"]]

    def judge(job):
        r, code, label = job
        ok, results = run_stdio(code, io_tests(r), LIMITS, stop_on_failure=True)
        return r["name"], label, ok, results[-1].result

    wrong = [(name, label, why) for name, label, ok, why in parallel_map(judge, jobs, workers=2) if ok != label]
    assert wrong == [], f"labels that do not hold (name, is_correct, last result): {wrong}"
