"""Benchmarks on the real files in ../shared/data/eval: loading, prompts, and every reference passes."""

from __future__ import annotations

import pytest

from tests.conftest import HUMANEVAL, MBPP, MBPP_SANITIZED, require
from wmtp_lightning.evaluation.benchmarks import load_humaneval, load_local, load_mbpp
from wmtp_lightning.evaluation.sandbox import SandboxLimits
from wmtp_lightning.evaluation.scoring import score


def test_loaders_and_templates():
    he = load_humaneval(require(HUMANEVAL))
    assert len(he) == 164 and he[0].task_id == "HumanEval/0"
    assert he[0].prompt("raw") == he[0].raw_prompt and he[0].prompt("alpaca").endswith("### Response:\n")
    assert "\ndef " in he[0].stop("raw") and "\n### " in he[0].stop("alpaca")
    mb = load_mbpp(require(MBPP))
    assert len(mb) == 500 and {int(p.task_id) for p in mb} == set(range(11, 511))
    p = next(x for x in mb if x.task_id == "11")
    assert "assert remove_Occ" in p.prompt("alpaca") and p.prompt("raw").endswith("[BEGIN]\n")
    assert "[DONE]" in p.stop("raw")
    san = load_mbpp(require(MBPP_SANITIZED))
    assert len(san) == 257
    assert len(load_mbpp(MBPP, task_ids=None)) == 974
    local = load_local("test")
    assert len(local) == 4 and all(x.kind == "stdio" and x.tests for x in local)
    with pytest.raises(FileNotFoundError, match="problems file not found"):
        load_mbpp(HUMANEVAL.with_name("nope.jsonl"))


LIMITS = SandboxLimits(timeout_s=20.0, memory_mb=2048)


def test_all_humaneval_canonical_solutions_pass_and_broken_ones_fail():
    problems = {p.task_id: p for p in load_humaneval(HUMANEVAL)}
    good = [{"task_id": t, "completion": p.reference} for t, p in problems.items()]
    results, metrics, _ = score(problems, good, [1], workers=2, limits=LIMITS)
    assert metrics["pass@1"] == 1.0, [r for r in results if not r["passed"]][:3]
    broken = [{"task_id": t, "completion": "    return None\n"} for t in problems]
    broken += [
        {"task_id": t, "completion": p.reference[: len(p.reference) // 2] + "\n  )(\n"} for t, p in problems.items()
    ]
    results, metrics, _ = score(problems, broken, [1], workers=2, limits=LIMITS)
    assert not any(r["passed"] for r in results)
    assert any(r["result"].startswith("failed: SyntaxError") for r in results)


def test_all_mbpp_test_split_references_pass_and_broken_ones_fail():
    problems = {p.task_id: p for p in load_mbpp(MBPP)}
    good = [{"task_id": t, "completion": p.reference} for t, p in problems.items()]
    results, metrics, _ = score(problems, good, [1], workers=2, limits=LIMITS)
    assert metrics["pass@1"] == 1.0, [r for r in results if not r["passed"]][:3]
    broken = [{"task_id": t, "completion": p.reference.replace("def ", "def _broken_")} for t, p in problems.items()]
    broken += [{"task_id": t, "completion": p.reference + "\n)"} for t, p in list(problems.items())[:50]]
    results, _, _ = score(problems, broken, [1], workers=2, limits=LIMITS)
    assert not any(r["passed"] for r in results)
    assert {r["result"].split(":")[1].strip() for r in results} >= {"NameError", "SyntaxError"}
