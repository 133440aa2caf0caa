"""validate_datasets as a user runs it: problems on stdout (one per line), a summary on stderr, exit 1;
never a traceback on what it validates; a bad command line is one line, exit 2."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import run_script
from wmtp_lightning.data.index import index_path


@pytest.fixture
def ds(tmp_path, local_dataset):
    shutil.copytree(local_dataset, tmp_path / "ds")
    return tmp_path / "ds"


def test_clean_dataset(ds, capsys):
    assert run_script("validate_datasets", [str(ds)]) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err.strip() == f"{ds / 'processed'}: OK"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("manifest.json", json.dumps({"files": []}), "files: expected an object of file name"),
        ("manifest.json", "[]", "expected a JSON object with 'files', got list"),
        ("train.index.npy", b"garbage", "train.index.npy: not a numpy index file"),
        ("valid.jsonl", b"\x00" * 5000, "valid.jsonl:1: <line>:"),
    ],
)
def test_hostile_content_is_reported_not_crashed_on(ds, capsys, name, content, expected):
    path = ds / "processed" / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert run_script("validate_datasets", [str(ds)]) == 1
    out = capsys.readouterr()
    assert expected in out.out and "Traceback" not in out.out + out.err
    assert out.err.strip().endswith("problem(s)")


def test_wrong_dtype_index(ds, capsys):
    np.save(index_path(ds / "processed" / "test.jsonl"), np.arange(16))
    assert run_script("validate_datasets", [str(ds), "--no-manifest"]) == 1
    assert "test.index.npy: dtype int64, expected" in capsys.readouterr().out


def test_bad_command_line_is_one_line(tmp_path, capsys):
    assert run_script("validate_datasets", [str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {tmp_path / 'nope'}: dataset directory not found (make it with scripts/setup_datasets.py)"
    ]
    assert run_script("validate_datasets", [str(tmp_path), "--max-tokens", "many"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--max-tokens: invalid int value: 'many'" in err[0]
