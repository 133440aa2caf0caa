"""The project's own small CodeContests-style problem set, shipped as data with the package.

No real CodeContests sample can be had offline, so the local demo and the tests use 34 problems
written for this repository, stored in the raw Hugging Face `deepmind/code_contests` schema in
`local_codecontests/{train,valid,test}.jsonl`: statements with input/output specs, public +
private tests, a difficulty from CodeContests' enum spread over the default bins, two or more
correct Python 3 solutions and two or more *plausibly* wrong ones (off-by-one, missed edge case,
wrong output format, too slow). `tests/data/test_local_problems.py` runs every solution on every
test in the sandbox and checks each label. `setup_datasets.py` converts these files exactly as it
converts the real dataset.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).with_name("local_codecontests")
SPLITS = ("train", "valid", "test")


def load_local_problems(split: str = "all") -> list[dict[str, Any]]:
    """Raw rows of one split ("train", "valid", "test") or of all of them ("all"), in file order."""
    if split not in (*SPLITS, "all"):
        raise ValueError(f"unknown local split {split!r}; choose one of {[*SPLITS, 'all']}")
    rows = []
    for name in SPLITS if split == "all" else (split,):
        with open(FOLDER / f"{name}.jsonl", encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def io_tests(row: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (stdin, expected stdout) pair of a raw row: public, then private, then generated."""
    return [
        (i, o)
        for group in ("public_tests", "private_tests", "generated_tests")
        for i, o in zip(row[group]["input"], row[group]["output"])
    ]


def write_raw_splits(dst: str | Path) -> dict[str, Path]:
    """Copy `{train,valid,test}.jsonl` (the raw schema) under `dst`; returns the paths.

    Each file is copied under a temporary name and renamed when complete.
    """
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in SPLITS:
        path, tmp = dst / f"{split}.jsonl", dst / f"{split}.jsonl.tmp"
        try:
            shutil.copyfile(FOLDER / f"{split}.jsonl", tmp)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        paths[split] = path
    return paths


def corpus_text() -> str:
    """Statements, solutions and the Alpaca template as plain text (to train the micro model's own
    tokenizer on everything it will see)."""
    from wmtp_lightning.data.template import PROMPT_NO_INPUT, PROMPT_WITH_INPUT

    parts = [PROMPT_WITH_INPUT, PROMPT_NO_INPUT]
    for row in load_local_problems():
        parts.append(row["description"])
        parts.extend(row["solutions"]["solution"] + row["incorrect_solutions"]["solution"])
    return "\n".join(parts)
