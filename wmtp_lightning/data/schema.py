"""The processed-record schema and CodeContests' enums (DESIGN §5).

A processed record is one JSON object per line:

    {"instruction": str, "input": str, "output": str, "task_id": str, "is_correct": bool,
     "metadata": {"source": str, "difficulty": int, "has_tests": bool, "cf_rating": int}}

`difficulty` is CodeContests' enum, not a scale: 0 UNKNOWN, 1-5 EASY..HARDEST, 6 EXTERNAL,
7.. Codeforces problem letters A, B, C, ... Grouping it into low/medium/high is a choice made
by configurable bins (`DEFAULT_BINS`, the seed's), never by comparing enum values as ratings.
"""

from __future__ import annotations

import json
import string
from itertools import pairwise
from typing import Any

from wmtp_lightning.errors import BadInput

DIFFICULTY_NAMES: dict[int, str] = {
    0: "UNKNOWN_DIFFICULTY",
    1: "EASY",
    2: "MEDIUM",
    3: "HARD",
    4: "HARDER",
    5: "HARDEST",
    6: "EXTERNAL",
}
DIFFICULTY_NAMES.update({7 + i: letter for i, letter in enumerate(string.ascii_uppercase[:22])})  # A..V
MAX_DIFFICULTY = max(DIFFICULTY_NAMES)

# HF `deepmind/code_contests` enums (the HF card; the .proto numbers sources differently).
LANGUAGES = {0: "UNKNOWN_LANGUAGE", 1: "PYTHON", 2: "CPP", 3: "PYTHON3", 4: "JAVA"}
SOURCES = {0: "UNKNOWN_SOURCE", 1: "CODECHEF", 2: "CODEFORCES", 3: "HACKEREARTH", 4: "CODEJAM", 5: "ATCODER", 6: "AIZU"}

# The seed's bins over the enum (inclusive ranges). 0 (unknown) is in no bin by default.
DEFAULT_BINS: dict[str, tuple[int, int]] = {"low": (1, 3), "medium": (4, 7), "high": (8, 11)}

RECORD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "instruction": str,
    "input": str,
    "output": str,
    "task_id": str,
    "is_correct": bool,
    "metadata": dict,
}
METADATA_FIELDS: dict[str, type | tuple[type, ...]] = {
    "source": str,
    "difficulty": int,
    "has_tests": bool,
    "cf_rating": int,
}


def is_unicode(text: str) -> bool:
    """`text` can be written as UTF-8 (JSON can carry lone surrogates such as "\\ud800"; text cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def record_problems(obj: Any) -> list[tuple[str, str]]:
    """Every schema problem of one parsed line, as (field, problem), e.g. ("is_correct", "expected bool, got int")."""
    if not isinstance(obj, dict):
        return [("<line>", f"expected a JSON object, got {type(obj).__name__}")]
    problems = []
    for name in sorted(set(obj) - set(RECORD_FIELDS)):
        problems.append((name, "unexpected key"))
    for name, typ in RECORD_FIELDS.items():
        if name not in obj:
            problems.append((name, "missing"))
        elif not isinstance(obj[name], typ):
            problems.append((name, f"expected {typ.__name__}, got {type(obj[name]).__name__}"))  # type: ignore[union-attr]
    for name in ("instruction", "output", "task_id"):
        if isinstance(obj.get(name), str) and not obj[name].strip():
            problems.append((name, "expected a non-empty string"))
    for name in ("instruction", "input", "output", "task_id"):
        if isinstance(obj.get(name), str) and not is_unicode(obj[name]):
            problems.append(
                (name, "expected valid Unicode text (a lone surrogate such as \\ud800 cannot be tokenized)")
            )
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for name in sorted(set(meta) - set(METADATA_FIELDS)):
            problems.append((f"metadata.{name}", "unexpected key"))
        for name, typ in METADATA_FIELDS.items():
            value = meta.get(name)
            if name not in meta:
                problems.append((f"metadata.{name}", "missing"))
            elif (typ is int and isinstance(value, bool)) or not isinstance(value, typ):
                problems.append((f"metadata.{name}", f"expected {typ.__name__}, got {type(value).__name__}"))  # type: ignore[union-attr]
        d = meta.get("difficulty")
        if isinstance(d, int) and not isinstance(d, bool) and d not in DIFFICULTY_NAMES:
            problems.append(
                ("metadata.difficulty", f"expected a CodeContests difficulty enum 0..{MAX_DIFFICULTY}, got {d}")
            )
        r = meta.get("cf_rating")
        if isinstance(r, int) and not isinstance(r, bool) and (r < 0 or r > 25500 or r % 100):
            problems.append(("metadata.cf_rating", f"expected 0 or a multiple of 100 up to 25500, got {r}"))
    return problems


def line_problem(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """Parse one JSONL line (strict UTF-8: `json.loads` alone would guess UTF-16 for some garbage)
    and check it: (record, None), or (None, "field: problem") with the line's first problem."""
    try:
        rec = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        return None, f"<line>: expected UTF-8 text ({err.reason} at byte {err.start})"
    except json.JSONDecodeError as err:
        return None, f"<line>: expected a JSON object ({err.msg} at column {err.colno})"
    problems = record_problems(rec)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s) on this line)" if len(problems) > 1 else ""
        return None, f"{problems[0][0]}: {problems[0][1]}{more}"
    return rec, None


def bin_of(difficulty: int, bins: dict[str, tuple[int, int]]) -> str | None:
    for name, (lo, hi) in bins.items():
        if lo <= difficulty <= hi:
            return name
    return None


def check_bins(bins: dict[str, tuple[int, int]] | dict[str, list[int]]) -> dict[str, tuple[int, int]]:
    """Validate bin ranges (inclusive, non-overlapping); returns them as tuples."""
    out: dict[str, tuple[int, int]] = {}
    for name, rng in bins.items():
        if len(rng) != 2 or rng[0] > rng[1]:
            raise BadInput(f"difficulty bin {name!r}: expected [low, high] with low <= high, got {rng}")
        out[name] = (int(rng[0]), int(rng[1]))
    spans = sorted(out.values())
    for (a_lo, a_hi), (b_lo, b_hi) in pairwise(spans):
        if b_lo <= a_hi:
            raise BadInput(f"difficulty bins overlap: [{a_lo}, {a_hi}] and [{b_lo}, {b_hi}]")
    return out
