"""Dataset validation: schema of every line, manifest sha256, index <-> JSONL, token limits.

Every problem is one line, `file:line: field: what was expected` (or `path: what is wrong` for a
whole file); nothing is modified and nothing the validator reads can crash it (a corrupt `.npy`,
a manifest of the wrong shape, a truncated or binary file are reported like any other problem).
A line gets at most one problem, its first, and an index that falls out of step with its file is
reported once, where it happens, not on every line after it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from wmtp_lightning.data.index import index_path, read_index, rebuild_command
from wmtp_lightning.data.manifest import manifest_problems
from wmtp_lightning.data.schema import line_problem
from wmtp_lightning.errors import UserError


def _index_or_problem(jsonl: Path) -> tuple[np.ndarray | None, str | None]:
    try:
        return read_index(index_path(jsonl), jsonl), None
    except UserError as err:
        return None, str(err)


def _index_problem(where: str, row: np.void, rec: dict, max_tokens: int | None) -> str | None:
    meta = rec["metadata"]
    if bool(row["is_correct"]) != rec["is_correct"]:
        return f"{where}: index.is_correct: {rec['is_correct']} in the line, the index has {bool(row['is_correct'])}"
    if int(row["difficulty"]) != meta["difficulty"]:
        return f"{where}: index.difficulty: {meta['difficulty']} in the line, the index has {int(row['difficulty'])}"
    if int(row["rating"]) != meta["cf_rating"] // 100:
        return f"{where}: index.rating: {meta['cf_rating'] // 100} (cf_rating/100), the index has {int(row['rating'])}"
    n = int(row["prompt_len"]) + int(row["response_len"])
    if max_tokens is not None and n > max_tokens:
        return f"{where}: tokens: expected at most {max_tokens} (BOS + prompt + solution + EOS), got {n}"
    return None


def validate_split(
    jsonl: Path, max_tokens: int | None = 2048, max_problems: int = 100, progress: Callable[[int], None] | None = None
) -> list[str]:
    """Check one split line by line against the schema and its index."""
    if not jsonl.is_file():
        return [f"{jsonl}: missing"]
    index, problem = _index_or_problem(jsonl)
    problems = [problem] if problem else []
    in_step = index is not None  # the index's offsets still match the file
    offset = n = 0
    with open(jsonl, "rb") as f:
        for n, raw in enumerate(f, 1):
            if len(problems) >= max_problems:
                problems.append(f"{jsonl}:{n}: ...: stopped after {max_problems} problems")
                break
            where = f"{jsonl}:{n}"
            rec, problem = line_problem(raw)
            problem = problem and f"{where}: {problem}"
            if problem is None and not raw.endswith(b"\n"):
                problem = f"{where}: <line>: expected a newline at its end (a truncated file?)"
            if in_step and (n > len(index) or int(index["offset"][n - 1]) != offset):
                in_step = False
                said = "no record" if n > len(index) else f"offset {int(index['offset'][n - 1])}"
                problem = problem or (
                    f"{where}: index.offset: the line starts at byte {offset}, the index has {said}; the index is "
                    f"out of step with the file from here on: rebuild it with `{rebuild_command(jsonl)}`"
                )
            if problem is None and in_step and rec is not None:
                problem = _index_problem(where, index[n - 1], rec, max_tokens)
            if problem:
                problems.append(problem)
            offset += len(raw)
            if progress:
                progress(1)
    if index is not None and n != len(index) and len(problems) < max_problems:
        problems.append(f"{index_path(jsonl)}: {len(index)} records for the {n} lines of {jsonl.name}")
    return problems


def validate_dataset(
    processed: Path,
    splits: tuple[str, ...] = ("train", "valid", "test"),
    max_tokens: int | None = 2048,
    check_manifest: bool = True,
) -> list[str]:
    """The manifest (full sha256), then every split; problems in that order."""
    problems = manifest_problems(processed, full=True) if check_manifest else []
    for split in splits:
        problems += validate_split(processed / f"{split}.jsonl", max_tokens)
    return problems
