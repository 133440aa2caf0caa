"""validate_datasets: every problem named as file:line: field: expected; nothing modified."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from tests.conftest import load_script
from wmtp_lightning.data.index import index_path, load_index
from wmtp_lightning.io import sha256_file


@pytest.fixture
def ds(tmp_path, local_dataset):
    root = tmp_path / "ds"
    shutil.copytree(local_dataset, root)
    return root


def run(root, capsys):
    code = load_script("validate_datasets")["main"]([str(root)])
    return code, capsys.readouterr().out


def rewrite_line(path, lineno, fn):
    lines = path.read_text().splitlines(keepends=True)
    lines[lineno - 1] = fn(lines[lineno - 1])
    path.write_text("".join(lines))


def test_clean_dataset_passes(ds, capsys):
    assert run(ds, capsys) == (0, "")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: {**r, "is_correct": "yes"}, "is_correct: bool, got str"),
        (lambda r: {k: v for k, v in r.items() if k != "output"}, "output: missing"),
        (lambda r: {**r, "extra": 1}, "extra: no such field (unexpected key)"),
        (lambda r: {**r, "output": "   "}, "output: a non-empty string"),
        (
            lambda r: {**r, "metadata": {**r["metadata"], "difficulty": 42}},
            "metadata.difficulty: a CodeContests difficulty enum",
        ),
        (lambda r: {**r, "metadata": {**r["metadata"], "has_tests": "true"}}, "metadata.has_tests: bool, got str"),
    ],
)
def test_each_problem_is_named(ds, capsys, mutate, expected):
    path = ds / "processed" / "valid.jsonl"
    rewrite_line(path, 2, lambda line: json.dumps(mutate(json.loads(line))) + "\n")
    before = sha256_file(path)
    code, out = run(ds, capsys)
    assert code == 1
    assert f"{path}:2: {expected}" in out
    assert "index.offset/length" in out  # the edit also shifted the bytes the index points to
    assert re.search(r"valid.jsonl:0: (size|sha256)", out)  # and the manifest no longer matches
    assert sha256_file(path) == before  # the validator never modifies a file


def test_malformed_json_index_rows_and_missing_split(ds, capsys):
    path = ds / "processed" / "test.jsonl"
    rewrite_line(path, 1, lambda line: line[:10] + "\n")
    index = load_index(ds / "processed" / "valid.jsonl", mmap=False)
    np.save(index_path(ds / "processed" / "valid.jsonl"), index[:-1])
    (ds / "processed" / "train.jsonl").unlink()
    code, out = run(ds, capsys)
    assert code == 1
    assert f"{path}:1: <line>: valid JSON" in out
    assert "valid.index.npy:0: rows: 16 (one per line of valid.jsonl), got 15" in out
    assert "train.jsonl:0: file: present" in out
