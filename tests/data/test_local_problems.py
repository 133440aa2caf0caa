"""Every label of the project's own problem set is checked by running the solutions in the sandbox."""

from __future__ import annotations

from collections import Counter

from wmtp_lightning.data.local_problems import PROBLEMS
from wmtp_lightning.data.schema import DEFAULT_BINS, bin_of
from wmtp_lightning.evaluation.sandbox import SandboxLimits, parallel_map, run_stdio

LIMITS = SandboxLimits(timeout_s=3.0, memory_mb=1024)


def test_problem_set_shape():
    assert len(PROBLEMS) >= 30
    assert len({p.name for p in PROBLEMS}) == len(PROBLEMS)
    for p in PROBLEMS:
        assert len(p.correct) >= 2 and len(p.incorrect) >= 2, p.name
        assert "Input" in p.description and "Output" in p.description, p.name
        assert 1 <= p.n_public < len(p.tests), p.name
    bins = Counter(bin_of(p.difficulty, DEFAULT_BINS) for p in PROBLEMS)
    assert all(bins[b] >= 5 for b in DEFAULT_BINS), bins
    assert {p.split for p in PROBLEMS} == {"train", "valid", "test"}


def test_every_label_is_true():
    jobs = [(p, code, True) for p in PROBLEMS for code in p.correct]
    jobs += [(p, code, False) for p in PROBLEMS for code in p.incorrect]

    def judge(job):
        p, code, label = job
        ok, results = run_stdio(code, p.tests, LIMITS, stop_on_failure=True)
        return p.name, label, ok, results[-1].result

    wrong = [(name, label, why) for name, label, ok, why in parallel_map(judge, jobs, workers=2) if ok != label]
    assert wrong == [], f"labels that do not hold (name, is_correct, last result): {wrong}"
