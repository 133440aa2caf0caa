"""Random access to processed JSONL lines by byte offset (never the whole file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from wmtp_lightning.data.schema import line_problem
from wmtp_lightning.errors import BadInput


class BadLineError(BadInput):
    """A processed line that fails to parse or to match the schema (message: `file:line: ...`)."""


class IndexedJsonlDataset(Dataset):
    """Map-style dataset over every line of a split; item i is line i (0-based), read by offset.

    Which lines are used, and in which order, is the sampler's business; this class only reads
    (`seek` to the index's offset, read one line) and checks. Each item is the record plus `line`,
    `path` and the index's `prompt_len` / `response_len`, which the collator checks against what it
    produces. Each worker process opens its own file handle (handles are not fork-safe).

    Args:
        jsonl: the processed split.
        index: its index array (`data.index.load_index`).
    """

    def __init__(self, jsonl: str | Path, index: np.ndarray):
        self.path = Path(jsonl)
        # the columns once: a structured memmap builds a new view on every field access
        self.offsets, self.prompt_len, self.response_len = index["offset"], index["prompt_len"], index["response_len"]
        self.size = self.path.stat().st_size
        self._fh = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.offsets)

    def _file(self):
        if self._fh is None or self._pid != os.getpid():
            self._fh = open(self.path, "rb")  # noqa: SIM115 - kept open for the dataset's life
            self._pid = os.getpid()
        return self._fh

    def read(self, line: int) -> dict[str, Any]:
        """Parse and check line `line` (0-based); errors name `file:line` (1-based) and the field."""
        f = self._file()
        start = int(self.offsets[line])
        end = int(self.offsets[line + 1]) if line + 1 < len(self.offsets) else self.size
        f.seek(start)
        raw = f.readline()
        where = f"{self.path}:{line + 1}"
        if len(raw) != end - start:
            raise BadLineError(
                f"{where}: <line>: {len(raw)} bytes at offset {start}, the index says {end - start}; "
                "index and file out of sync (rebuild with scripts/extract_metadata.py)"
            )
        rec, problem = line_problem(raw)
        if problem:
            raise BadLineError(f"{where}: {problem}")
        return rec

    def __getitem__(self, line: int) -> dict[str, Any]:
        line = int(line)
        rec = self.read(line)
        rec.update(
            line=line,
            path=str(self.path),
            prompt_len=int(self.prompt_len[line]),
            response_len=int(self.response_len[line]),
        )
        return rec

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fh"] = None
        return state
