"""On-policy verified samples as processed records: the critic's verifiable-reward data.

`scripts/sample_and_verify.py` has the policy sample k solutions per problem and runs each in the
sandbox against the problem's tests. This module turns one problem's samples and verdicts into a
*sampled row* and that row into processed records (DESIGN §5 schema), which
`codecontests.convert_split` writes exactly as it writes CodeContests (index, seed metadata, stats,
token limit):

    sampled row = {"name", "description", "input", "source", "difficulty",
                   "solutions": [str, ...], "passed": [bool, ...]}

`is_correct` is the sandbox's verdict, nothing else. `difficulty` comes from the problem's
empirical pass rate c/n over its k samples, put on CodeContests' five difficulty levels
(1 EASY .. 5 HARDEST, the enum's named levels) in fifths: c/n ≥ 0.8 → 1, ≥ 0.6 → 2, ≥ 0.4 → 3,
≥ 0.2 → 4, else 5. The default bins (low 1–3, medium 4–7) then put pass rates ≥ 0.4 in "low" and
the rest in "medium"; a curriculum over sampled data sets its own bins, e.g. low [1, 2],
medium [3, 3], high [4, 5].
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from wmtp_lightning.data.codecontests import ConvertConfig
from wmtp_lightning.data.schema import is_unicode
from wmtp_lightning.errors import BadInput

SAMPLED_FIELDS: dict[str, type] = {
    "name": str,
    "description": str,
    "input": str,
    "source": str,
    "difficulty": int,
    "solutions": list,
    "passed": list,
}
_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL)


def difficulty_of(n_correct: int, n: int) -> int:
    """CodeContests level 1 (EASY) .. 5 (HARDEST) of a problem that `n_correct` of `n` samples solve."""
    if not 0 <= n_correct <= n or n < 1:
        raise ValueError(f"need 0 <= n_correct <= n and n >= 1, got n_correct={n_correct}, n={n}")
    return 5 - min(4, 5 * n_correct // n)  # integer arithmetic: c/n >= 0.8 <=> 5c // n >= 4


def extract_code(text: str) -> str:
    """The first Markdown code block of `text` (an unclosed one runs to the end), else `text` itself.

    Chat-tuned models answer an instruction with prose around a fenced block; the program that is
    run (and recorded) is the block.
    """
    m = _FENCE.search(text)
    return m.group(1) if m else text


def sampled_row(
    name: str,
    instruction: str,
    input_: str,
    source: str,
    solutions: Sequence[str],
    passed: Sequence[bool],
) -> dict[str, Any]:
    """The sampled row of one problem (its difficulty from the pass rate of `passed`)."""
    if len(solutions) != len(passed) or not solutions:
        raise ValueError(f"{name}: expected one verdict per sample and at least one sample")
    return {
        "name": name,
        "description": instruction,
        "input": input_,
        "source": source,
        "difficulty": difficulty_of(sum(map(bool, passed)), len(passed)),
        "solutions": list(solutions),
        "passed": [bool(p) for p in passed],
    }


def check_sampled(where: str, row: Any) -> None:
    """One line naming the first field of a malformed sampled row (`convert_split`'s `check`)."""
    if not isinstance(row, dict):
        raise BadInput(f"{where}: expected a sampled row (JSON object), got {type(row).__name__}")
    for key, typ in SAMPLED_FIELDS.items():
        if key not in row:
            raise BadInput(f"{where}: {key}: missing")
        if not isinstance(row[key], typ) or (typ is int and isinstance(row[key], bool)):
            raise BadInput(f"{where}: {key}: expected {typ.__name__}, got {type(row[key]).__name__}")
    if len(row["solutions"]) != len(row["passed"]) or not all(isinstance(p, bool) for p in row["passed"]):
        raise BadInput(f"{where}: passed: expected one bool per solution")
    if row["difficulty"] != difficulty_of(sum(row["passed"]), max(1, len(row["passed"]))):
        raise BadInput(f"{where}: difficulty: {row['difficulty']} does not match the pass rate of its samples")


def sampled_records(row: dict[str, Any], cfg: ConvertConfig) -> Iterator[tuple[dict[str, Any] | None, str | None]]:
    """(record, None) for each sample, or (None, reason) for one that cannot be a record
    (`convert_split`'s `records`; `cfg` is unused: languages do not apply to sampled Python)."""
    meta = {"source": row["source"], "difficulty": row["difficulty"], "has_tests": True, "cf_rating": 0}
    for i, (code, ok) in enumerate(zip(row["solutions"], row["passed"])):
        if not isinstance(code, str) or not code.strip():
            yield None, "empty_solution"
        elif not is_unicode(code):
            yield None, "invalid_unicode"
        else:
            kind = "correct" if ok else "incorrect"
            yield (
                {
                    "instruction": row["description"],
                    "input": row["input"],
                    "output": code,
                    "task_id": f"{row['name']}_{kind}_{i}",
                    "is_correct": ok,
                    "metadata": dict(meta),
                },
                None,
            )
