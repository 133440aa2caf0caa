"""The binary index: its 15-byte format, and one line naming the file and the rebuild command for
every way an index file can be wrong (missing, older format, truncated, not numpy at all)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from wmtp_lightning.data.index import INDEX_DTYPE, LEN_MAX, IndexWriter, index_path, load_index, token_len
from wmtp_lightning.errors import UserError

OLD_DTYPE = np.dtype(  # the format before prompt/response lengths (17 bytes)
    [
        ("offset", "<u8"),
        ("length", "<u4"),
        ("token_len", "<u2"),
        ("difficulty", "u1"),
        ("is_correct", "u1"),
        ("rating", "u1"),
    ]
)


@pytest.fixture
def split(tmp_path, local_dataset):
    folder = tmp_path / "processed"
    shutil.copytree(local_dataset / "processed", folder)
    return folder / "valid.jsonl"


def test_record_layout():
    assert INDEX_DTYPE.itemsize == 15
    assert INDEX_DTYPE.names == ("offset", "prompt_len", "response_len", "difficulty", "is_correct", "rating")


def test_writer_rows_and_saturation():
    w = IndexWriter()
    w.add(0, 12, 30, 7, True, 1200)
    w.add(50, 70_000, 5, 2, False, 0)
    arr = w.array()
    assert arr[0].tolist() == (0, 12, 30, 7, 1, 12)
    assert arr[1]["prompt_len"] == LEN_MAX  # saturates: a row that long never fits a model (max_length <= LEN_MAX)
    assert token_len(arr).tolist() == [42, LEN_MAX + 5]  # summed without u2 wrap-around


def one_line_error(split) -> str:
    with pytest.raises(UserError) as info:
        load_index(split)
    msg = str(info.value)
    assert "\n" not in msg and str(index_path(split)) in msg
    assert f"python scripts/extract_metadata.py {split.parent} --tokenizer" in msg  # the command that rebuilds it
    return msg


def test_old_format_is_refused_with_the_rebuild_command(split):
    old = np.zeros(16, dtype=OLD_DTYPE)
    np.save(index_path(split), old)
    assert "an index of an older format (17-byte records without prompt/response lengths)" in one_line_error(split)


def test_truncated_index_is_named_not_mmap_jargon(split):
    path = index_path(split)
    path.write_bytes(path.read_bytes()[:-7])
    msg = one_line_error(split)
    assert "expected" in msg and "(truncated or corrupt)" in msg and "mmap" not in msg


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not numpy at all", "not a numpy index file"),
        (b"", "not a numpy index file"),
        (None, "index missing"),
    ],
)
def test_garbage_or_missing_index(split, content, expected):
    path = index_path(split)
    path.unlink()
    if content is not None:
        path.write_bytes(content)
    assert expected in one_line_error(split)


def test_wrong_shape_or_dtype(split):
    np.save(index_path(split), np.zeros((4, 2), dtype=INDEX_DTYPE))
    assert "shape (4, 2)" in one_line_error(split)
    np.save(index_path(split), np.zeros(3, dtype=np.int64))
    assert "dtype int64, expected" in one_line_error(split)
