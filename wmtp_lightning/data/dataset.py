"""Random access to processed JSONL lines by byte offset (never the whole file)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from wmtp_lightning.data.schema import record_problems


class BadLineError(ValueError):
    """A processed line that fails to parse or to match the schema."""


class IndexedJsonlDataset(Dataset):
    """Map-style dataset over every line of a split; item i is line i (0-based), read by offset.

    Which lines are used, and in which order, is the sampler's business; this class only
    reads. Each worker process opens its own file handle (handles are not fork-safe).

    Args:
        jsonl: the processed split.
        index: its index array (`data.index.load_index`).
        skip_bad_lines: return None for a bad line (the collator drops it and counts it)
            instead of raising.
    """

    def __init__(self, jsonl: str | Path, index: np.ndarray, skip_bad_lines: bool = False):
        self.path = Path(jsonl)
        self.offsets = index["offset"]
        self.lengths = index["length"]
        self.skip_bad_lines = skip_bad_lines
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
        f.seek(int(self.offsets[line]))
        raw = f.read(int(self.lengths[line]))
        where = f"{self.path}:{line + 1}"
        try:
            rec = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise BadLineError(f"{where}: invalid JSON ({err}); index and file out of sync?") from err
        problems = record_problems(rec)
        if problems:
            raise BadLineError(f"{where}: " + "; ".join(f"{k}: expected {v}" for k, v in problems))
        return rec

    def __getitem__(self, line: int) -> dict[str, Any] | None:
        try:
            rec = self.read(int(line))
        except BadLineError:
            if self.skip_bad_lines:
                return None
            raise
        rec["line"] = int(line)
        return rec

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fh"] = None
        return state
