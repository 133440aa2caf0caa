"""extract_metadata rebuilds exactly the index and seed metadata that setup_datasets wrote; a bad
input is one line on stderr and exit code 1, and leaves a folder `wmtp fit` refuses."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import load_script, run_script
from wmtp_lightning.data.index import index_path, load_index, metadata_path
from wmtp_lightning.data.manifest import manifest_problems, write_manifest


@pytest.fixture
def folder(tmp_path, local_dataset):
    shutil.copytree(local_dataset / "processed", tmp_path / "processed")
    write_manifest(tmp_path / "processed", {"provenance": "kept"})  # a writer's key that re-indexing keeps
    return tmp_path / "processed"


def test_rebuilds_index_and_metadata(folder, micro_tokenizer_path):
    before = {
        s: (load_index(folder / f"{s}.jsonl", mmap=False), metadata_path(folder / f"{s}.jsonl").read_text())
        for s in ("train", "valid", "test")
    }
    for s in before:
        index_path(folder / f"{s}.jsonl").unlink()
        metadata_path(folder / f"{s}.jsonl").unlink()
    load_script("extract_metadata")["main"]([str(folder), "--tokenizer", str(micro_tokenizer_path)])
    for s, (idx, meta) in before.items():
        assert np.array_equal(load_index(folder / f"{s}.jsonl", mmap=False), idx)
        assert json.loads(metadata_path(folder / f"{s}.jsonl").read_text()) == json.loads(meta)
    assert load_script("validate_datasets")["main"]([str(folder)]) == 0
    assert not [p for p in folder.iterdir() if ".tmp" in p.name]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["tokenizer"] == str(micro_tokenizer_path) and manifest["provenance"] == "kept"


def rewrite(path, lineno, fn):
    lines = path.read_bytes().splitlines(keepends=True)
    lines[lineno - 1] = fn(lines[lineno - 1])
    path.write_bytes(b"".join(lines))


BAD_LINES = [
    (
        lambda line: json.dumps({**json.loads(line), "metadata": "x"}).encode() + b"\n",
        "metadata: expected dict, got str",
    ),
    (
        lambda line: (
            json.dumps(
                {**json.loads(line), "metadata": {**json.loads(line)["metadata"], "difficulty": "hard"}}
            ).encode()
            + b"\n"
        ),
        "metadata.difficulty: expected int, got str",
    ),
    (lambda line: b"{not json\n", "<line>: expected a JSON object"),
    (lambda line: b"\xff\xfe\xfd\n", "<line>: expected UTF-8 text"),
    (
        lambda line: json.dumps({**json.loads(line), "output": "\ud800"}).encode() + b"\n",
        "output: expected valid Unicode",
    ),
    (lambda line: line.rstrip(b"\n"), "<line>: expected a newline at its end (a truncated file?)"),
]


@pytest.mark.parametrize(("fn", "expected"), BAD_LINES)
def test_bad_line_is_one_line_and_the_folder_is_refused(folder, micro_tokenizer_path, capsys, fn, expected):
    lineno = 16 if "newline" in expected else 3  # a missing newline can only be on the last line
    rewrite(folder / "valid.jsonl", lineno, fn)
    assert run_script("extract_metadata", [str(folder), "--tokenizer", str(micro_tokenizer_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {folder / 'valid.jsonl'}:{lineno}: {expected}"), err
    assert manifest_problems(folder)[0].startswith(f"{folder / 'manifest.json'}: missing")  # wmtp fit refuses it
    assert not [p for p in folder.iterdir() if ".tmp" in p.name]


def test_bad_paths_are_one_line(tmp_path, folder, micro_tokenizer_path, capsys):
    cases = [
        ([str(tmp_path / "nope"), "--tokenizer", str(micro_tokenizer_path)], 1, "nope: folder not found"),
        ([str(tmp_path), "--tokenizer", str(micro_tokenizer_path)], 1, "no *.jsonl files to index"),
        ([str(folder), "--tokenizer", str(tmp_path / "t.model")], 1, "tokenizer model not found"),
        ([str(folder), "--tokenizer", str(folder / "train.jsonl")], 1, "not a SentencePiece model"),
        ([str(folder)], 2, "the following arguments are required: --tokenizer"),
    ]
    for argv, code, expected in cases:
        assert run_script("extract_metadata", argv) == code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
