"""A compact binary index over a processed JSONL split (DESIGN §5, §8).

One fixed-size record per line (17 bytes, numpy structured array saved as `.npy`):

    offset u8 | length u4 | token_len u2 | difficulty u1 | is_correct u1 | rating u1

`rating` is `cf_rating // 100` (Codeforces ratings are multiples of 100). 3.7 M lines make a
~63 MB file that `np.load(mmap_mode="r")` opens in milliseconds, against 217 MB of JSON for the
seed's `*_metadata.json`, which takes seconds and gigabytes to parse. Selection works on these
arrays; the JSONL is then read only at the selected byte offsets.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

INDEX_DTYPE = np.dtype(
    [
        ("offset", "<u8"),
        ("length", "<u4"),
        ("token_len", "<u2"),
        ("difficulty", "u1"),
        ("is_correct", "u1"),
        ("rating", "u1"),
    ]
)
TOKEN_LEN_MAX = np.iinfo(np.uint16).max


def index_path(jsonl: str | Path) -> Path:
    p = Path(jsonl)
    return p.with_name(p.stem + ".index.npy")


def metadata_path(jsonl: str | Path) -> Path:
    p = Path(jsonl)
    return p.with_name(p.stem + "_metadata.json")


class IndexWriter:
    """Accumulates index rows while a JSONL file is written (or scanned), in 17-byte numpy rows
    (3.7 M lines take 63 MB here, not the ~1 GB a list of Python tuples would)."""

    CHUNK = 1 << 16

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._cur = np.zeros(self.CHUNK, dtype=INDEX_DTYPE)
        self._n = 0

    def add(self, offset: int, length: int, token_len: int, difficulty: int, is_correct: bool, cf_rating: int) -> None:
        if self._n == self.CHUNK:
            self._chunks.append(self._cur)
            self._cur = np.zeros(self.CHUNK, dtype=INDEX_DTYPE)
            self._n = 0
        self._cur[self._n] = (
            offset,
            length,
            min(token_len, TOKEN_LEN_MAX),
            difficulty,
            int(is_correct),
            cf_rating // 100,
        )
        self._n += 1

    def add_record(self, offset: int, length: int, token_len: int, rec: dict) -> None:
        """`add` with is_correct / difficulty / cf_rating taken from a processed record."""
        meta = rec["metadata"]
        self.add(offset, length, token_len, meta["difficulty"], rec["is_correct"], meta["cf_rating"])

    def array(self) -> np.ndarray:
        return np.concatenate([*self._chunks, self._cur[: self._n]])


def save_index(arr: np.ndarray, jsonl: str | Path) -> Path:
    path = index_path(jsonl)
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, arr)
    tmp.replace(path)
    return path


def load_index(jsonl: str | Path, mmap: bool = True) -> np.ndarray:
    """Load the index next to `jsonl`, checking its dtype and that it covers the file."""
    jsonl = Path(jsonl)
    path = index_path(jsonl)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: index missing; build it with `python scripts/extract_metadata.py {jsonl.parent}`"
        )
    arr = np.load(path, mmap_mode="r" if mmap else None)
    if arr.dtype != INDEX_DTYPE:
        raise ValueError(f"{path}: dtype {arr.dtype}, expected {INDEX_DTYPE}")
    if jsonl.is_file() and len(arr):
        end = int(arr["offset"][-1]) + int(arr["length"][-1])
        size = jsonl.stat().st_size
        if end > size or size - end > 1:
            raise ValueError(
                f"{path}: covers {end} bytes but {jsonl} has {size}; the index does not match its "
                "JSONL (rebuild it with scripts/extract_metadata.py)"
            )
    return arr


def seed_stats(arr: np.ndarray) -> dict:
    """The `stats` block of the seed's `*_metadata.json`."""
    diff = Counter(arr["difficulty"].tolist())
    n_correct = int(arr["is_correct"].sum())
    return {
        "total": len(arr),
        "correct": n_correct,
        "incorrect": int(len(arr) - n_correct),
        "difficulty_dist": {str(k): int(v) for k, v in sorted(diff.items())},
    }


def write_seed_metadata(arr: np.ndarray, jsonl: str | Path, chunk: int = 1 << 16) -> Path:
    """The seed's `*_metadata.json` ({"metadata": [{is_correct, difficulty}, ...], "stats": {...}}),
    written in chunks: 3.7 M entries as a list of dicts would take ~1 GB of memory."""
    path = metadata_path(jsonl)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write('{"metadata": [')
        for start in range(0, len(arr), chunk):
            part = arr[start : start + chunk]
            entries = (
                f'{{"is_correct": {"true" if c else "false"}, "difficulty": {int(d)}}}'
                for c, d in zip(part["is_correct"].tolist(), part["difficulty"].tolist())
            )
            f.write((", " if start else "") + ", ".join(entries))
        f.write('], "stats": ' + json.dumps(seed_stats(arr)) + "}")
    tmp.replace(path)
    return path
