"""A compact binary index over a processed JSONL split (DESIGN §5, §8).

One fixed-size record per line (15 bytes, numpy structured array saved as `.npy`):

    offset u8 | prompt_len u2 | response_len u2 | difficulty u1 | is_correct u1 | rating u1

`prompt_len` counts BOS + the Alpaca prompt (header included) and `response_len` the solution +
EOS, both as `collate.tokenize_example` tokenizes the line: exactly what the collator produces, so
the token count of every optimizer step is known before the step (the normaliser of a
split-invariant loss). `rating` is `cf_rating // 100` (Codeforces ratings are multiples of 100).
Lines are contiguous, so line i spans `offset[i]` to `offset[i + 1]` and the last line ends at
the end of the file; a reader seeks to the offset and reads one line.

3.7 M lines make a ~55.5 MB file that `np.load(mmap_mode="r")` opens in milliseconds, against 217 MB
of JSON for the seed's `*_metadata.json`, which takes seconds and gigabytes to parse. Selection
works on these arrays; the JSONL is then read only at the selected byte offsets.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from wmtp_lightning.errors import BadInput, MissingInput

INDEX_DTYPE = np.dtype(
    [
        ("offset", "<u8"),
        ("prompt_len", "<u2"),
        ("response_len", "<u2"),
        ("difficulty", "u1"),
        ("is_correct", "u1"),
        ("rating", "u1"),
    ]
)
LEN_MAX = int(np.iinfo(np.uint16).max)  # counts saturate here; longer rows never fit a model anyway


def index_path(jsonl: str | Path) -> Path:
    p = Path(jsonl)
    return p.with_name(p.stem + ".index.npy")


def metadata_path(jsonl: str | Path) -> Path:
    p = Path(jsonl)
    return p.with_name(p.stem + "_metadata.json")


def rebuild_command(jsonl: str | Path) -> str:
    """The command that rebuilds the index of `jsonl` (named in every index error)."""
    return f"python scripts/extract_metadata.py {Path(jsonl).parent} --tokenizer <the model's tokenizer.model>"


def token_len(index: np.ndarray) -> np.ndarray:
    """BOS + prompt + solution + EOS tokens per line (int32: the u2 sum would wrap)."""
    return index["prompt_len"].astype(np.int32) + index["response_len"]


class IndexWriter:
    """Accumulates index rows while a JSONL file is written (or scanned), in 15-byte numpy rows
    (3.7 M lines take 55.5 MB here, not the ~1 GB a list of Python tuples would)."""

    CHUNK = 1 << 16

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._cur = np.zeros(self.CHUNK, dtype=INDEX_DTYPE)
        self._n = 0

    def add(
        self, offset: int, prompt_len: int, response_len: int, difficulty: int, is_correct: bool, cf_rating: int
    ) -> None:
        if self._n == self.CHUNK:
            self._chunks.append(self._cur)
            self._cur = np.zeros(self.CHUNK, dtype=INDEX_DTYPE)
            self._n = 0
        self._cur[self._n] = (
            offset,
            min(prompt_len, LEN_MAX),
            min(response_len, LEN_MAX),
            difficulty,
            int(is_correct),
            cf_rating // 100,
        )
        self._n += 1

    def add_record(self, offset: int, prompt_len: int, response_len: int, rec: dict) -> None:
        """`add` with is_correct / difficulty / cf_rating taken from a processed record."""
        meta = rec["metadata"]
        self.add(offset, prompt_len, response_len, meta["difficulty"], rec["is_correct"], meta["cf_rating"])

    def array(self) -> np.ndarray:
        return np.concatenate([*self._chunks, self._cur[: self._n]])


def save_index(arr: np.ndarray, jsonl: str | Path) -> Path:
    """Write the index of `jsonl` under a temporary name, then rename it (never half-written)."""
    path = index_path(jsonl)
    tmp = path.with_name(path.name + ".tmp.npy")
    try:
        np.save(tmp, arr)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_index(path: str | Path, jsonl: str | Path | None = None, mmap: bool = True) -> np.ndarray:
    """Open an index file, refusing (one line naming the file and the rebuild command) one that is
    missing, not an `.npy`, of an older format, or truncated."""
    path = Path(path)
    jsonl = Path(jsonl) if jsonl is not None else path.with_name(path.name.removesuffix(".index.npy") + ".jsonl")
    rebuild = f"rebuild it with `{rebuild_command(jsonl)}`"
    if not path.is_file():
        raise MissingInput(f"{path}: index missing; {rebuild}")
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read_header:
                raise ValueError(f"npy format version {version}")
            shape, fortran, dtype = read_header[version](f)
            header = f.tell()
    except (ValueError, OSError, EOFError, SyntaxError) as err:
        raise BadInput(f"{path}: not a numpy index file ({err}); {rebuild}") from err
    if dtype != INDEX_DTYPE:
        names = dtype.names or ()
        what = (
            f"an index of an older format ({dtype.itemsize}-byte records without prompt/response lengths)"
            if "token_len" in names
            else f"dtype {dtype}, expected {INDEX_DTYPE}"
        )
        raise BadInput(f"{path}: {what}; {rebuild}")
    if len(shape) != 1 or fortran:
        raise BadInput(f"{path}: shape {shape}, expected one record per line; {rebuild}")
    expected = header + shape[0] * INDEX_DTYPE.itemsize
    size = path.stat().st_size
    if size != expected:
        raise BadInput(
            f"{path}: {size} bytes, expected {expected} for {shape[0]} records (truncated or corrupt); {rebuild}"
        )
    return np.load(path, mmap_mode="r" if mmap else None)


def load_index(jsonl: str | Path, mmap: bool = True) -> np.ndarray:
    """Load the index next to `jsonl`, checking its format and that it covers the file.

    The check is cheap (one read of the last line): the first line starts at 0, the last starts
    inside the file and runs, as one newline-terminated line, to its end. A stale index (the JSONL was rewritten or
    appended to) fails here; a full line-by-line comparison is `validate.validate_split`.
    """
    jsonl = Path(jsonl)
    path = index_path(jsonl)
    arr = read_index(path, jsonl, mmap)
    if not jsonl.is_file():
        raise MissingInput(f"{jsonl}: file missing (its index {path.name} exists)")
    size = jsonl.stat().st_size
    stale = f"{path}: does not match {jsonl}"
    hint = f"the JSONL changed after indexing; rebuild the index with `{rebuild_command(jsonl)}`"
    if len(arr) == 0:
        if size:
            raise BadInput(f"{stale} (0 records for {size} bytes); {hint}")
        return arr
    first, last = int(arr["offset"][0]), int(arr["offset"][-1])
    if first != 0 or last >= size:
        raise BadInput(f"{stale} (lines at bytes {first}..{last}, file has {size} bytes); {hint}")
    with open(jsonl, "rb") as f:
        f.seek(last)
        tail = f.read()
    if not tail.endswith(b"\n"):
        raise BadInput(f"{jsonl}: the last line has no newline (truncated?); {hint}")
    if b"\n" in tail[:-1]:
        raise BadInput(f"{stale} (the file has more lines than the {len(arr)} indexed); {hint}")
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
    try:
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
    finally:
        tmp.unlink(missing_ok=True)
    return path
