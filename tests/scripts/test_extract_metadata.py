"""extract_metadata rebuilds exactly the index and seed metadata that setup_datasets wrote."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import load_script
from wmtp_lightning.data.index import index_path, load_index, metadata_path


def test_rebuilds_index_and_metadata(tmp_path, local_dataset, micro_tokenizer_path):
    folder = tmp_path / "processed"
    shutil.copytree(local_dataset / "processed", folder)
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


def test_bad_line_stops_with_file_line_field(tmp_path, local_dataset, micro_tokenizer_path):
    folder = tmp_path / "processed"
    shutil.copytree(local_dataset / "processed", folder)
    lines = (folder / "valid.jsonl").read_text().splitlines(keepends=True)
    rec = json.loads(lines[2])
    rec["metadata"]["difficulty"] = "hard"
    lines[2] = json.dumps(rec) + "\n"
    (folder / "valid.jsonl").write_text("".join(lines))
    with pytest.raises(SystemExit, match=r"valid.jsonl:3: metadata.difficulty: expected int, got str"):
        load_script("extract_metadata")["main"]([str(folder), "--tokenizer", str(micro_tokenizer_path)])
