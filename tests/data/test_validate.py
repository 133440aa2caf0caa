"""validate_dataset: every problem named as `file:line: field: problem` (or `path: what is wrong`), at
most one per line, never a crash on what it validates, nothing modified."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from wmtp_lightning.data.index import index_path, load_index
from wmtp_lightning.data.validate import validate_dataset
from wmtp_lightning.io import sha256_file


@pytest.fixture
def ds(tmp_path, local_dataset):
    root = tmp_path / "ds"
    shutil.copytree(local_dataset / "processed", root)
    return root


def rewrite_line(path, lineno, fn):
    lines = path.read_text().splitlines(keepends=True)
    lines[lineno - 1] = fn(lines[lineno - 1])
    path.write_text("".join(lines))


def test_clean_dataset_passes(ds):
    assert validate_dataset(ds) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: {**r, "is_correct": "yes"}, "is_correct: expected bool, got str"),
        (lambda r: {k: v for k, v in r.items() if k != "output"}, "output: missing"),
        (lambda r: {**r, "extra": 1}, "extra: unexpected key"),
        (lambda r: {**r, "output": "   "}, "output: expected a non-empty string"),
        (lambda r: {**r, "output": "print('\ud800')"}, "output: expected valid Unicode text"),
        (
            lambda r: {**r, "metadata": {**r["metadata"], "difficulty": 42}},
            "metadata.difficulty: expected a CodeContests difficulty enum",
        ),
        (
            lambda r: {**r, "metadata": {**r["metadata"], "has_tests": "true"}},
            "metadata.has_tests: expected bool, got str",
        ),
    ],
)
def test_one_bad_line_is_one_problem_not_a_cascade(ds, mutate, expected):
    path = ds / "valid.jsonl"
    rewrite_line(path, 2, lambda line: json.dumps(mutate(json.loads(line))) + "\n")
    before = sha256_file(path)
    problems = validate_dataset(ds)
    assert problems[0].startswith(f"{path}: ") and "manifest.json says" in problems[0]  # the manifest sees it
    assert problems[1].startswith(f"{path}:2: {expected}")  # the line, its first problem only
    # the edit shifted the bytes after it: said once, where the index falls out of step, not per line
    assert problems[2].startswith(f"{path}:3: index.offset: the line starts at byte")
    assert "rebuild it with `python scripts/extract_metadata.py" in problems[2]
    assert len(problems) == 3
    assert sha256_file(path) == before  # the validator never modifies a file


def test_index_fields_are_compared(ds):
    path = ds / "valid.jsonl"
    index = load_index(path, mmap=False)
    index["difficulty"][4] += 1
    index["prompt_len"][6] = 3000
    np.save(index_path(path), index)
    problems = validate_dataset(ds, check_manifest=False)
    assert problems == [
        f"{path}:5: index.difficulty: {int(index['difficulty'][4]) - 1} in the line, the index has "
        f"{int(index['difficulty'][4])}",
        f"{path}:7: tokens: expected at most 2048 (BOS + prompt + solution + EOS), got "
        f"{3000 + int(index['response_len'][6])}",
    ]


def write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(json.dumps(content))


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("valid.index.npy", b"\x93NUMPY garbage", "valid.index.npy: not a numpy index file"),
        ("valid.index.npy", b"", "valid.index.npy: not a numpy index file"),
        ("manifest.json", {"files": []}, "manifest.json: files: expected an object of file name"),
        ("manifest.json", [1, 2], "manifest.json: expected a JSON object with 'files', got list"),
        ("manifest.json", b"{not json", "manifest.json:1: invalid JSON"),
        ("manifest.json", {"files": {"x": 1}}, "manifest.json: files_sha256: missing"),
        ("valid.jsonl", b"\x00\xff" * 300, "valid.jsonl:1: <line>: expected UTF-8 text"),
        ("valid.jsonl", b'{"instruction": "x"}\n[1, 2]\n', "valid.jsonl:1: input: missing"),
    ],
)
def test_hostile_files_are_problems_not_crashes(ds, name, content, expected):
    write(ds / name, content)
    problems = validate_dataset(ds)
    assert any(p.split(str(ds) + "/", 1)[-1].startswith(expected) for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_old_truncated_and_mismatched_indexes(ds):
    old = [("offset", "<u8"), ("length", "<u4"), ("token_len", "<u2"), ("difficulty", "u1"), ("is_correct", "u1")]
    np.save(index_path(ds / "valid.jsonl"), np.zeros(16, dtype=[*old, ("rating", "u1")]))
    ipath = index_path(ds / "test.jsonl")
    ipath.write_bytes(ipath.read_bytes()[:-5])
    index = load_index(ds / "train.jsonl", mmap=False)
    np.save(index_path(ds / "train.jsonl"), index[:-1])
    problems = validate_dataset(ds, check_manifest=False)
    assert any("valid.index.npy: an index of an older format (17-byte records" in p for p in problems)
    assert any("test.index.npy:" in p and "(truncated or corrupt)" in p for p in problems)
    n = len(index)
    assert any(f"train.jsonl:{n}: index.offset:" in p and "the index has no record" in p for p in problems)
    assert f"{index_path(ds / 'train.jsonl')}: {n - 1} records for the {n} lines of train.jsonl" in problems
    assert len(problems) == 4


def test_truncated_jsonl_and_missing_split(ds):
    path = ds / "test.jsonl"
    path.write_bytes(path.read_bytes()[:-40])  # cut inside the last line
    (ds / "train.jsonl").unlink()
    problems = validate_dataset(ds, check_manifest=False)
    assert f"{ds / 'train.jsonl'}: missing" in problems
    assert any(p.startswith(f"{path}:16: <line>: expected a JSON object") for p in problems)
