"""Dataset validation: schema of every line, manifest sha256, index <-> JSONL, token limits.

Every problem is reported as `file:line: field: what was expected`; nothing is modified.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wmtp_lightning.data.index import INDEX_DTYPE, index_path
from wmtp_lightning.data.schema import record_problems
from wmtp_lightning.io import read_json, sha256_file


def validate_manifest(processed: Path) -> list[str]:
    manifest = processed / "manifest.json"
    if not manifest.is_file():
        return [f"{manifest}:0: manifest: missing (written by setup_datasets / extract_metadata)"]
    try:
        files = read_json(manifest)["files"]
    except (ValueError, KeyError) as err:
        return [f"{manifest}:0: files: a JSON object with 'files' ({err})"]
    problems = []
    for name, entry in sorted(files.items()):
        path = processed / name
        if not path.is_file():
            problems.append(f"{path}:0: file: present (listed in manifest.json)")
        elif path.stat().st_size != entry.get("size"):
            problems.append(f"{path}:0: size: {entry.get('size')} bytes per manifest.json, found {path.stat().st_size}")
        elif sha256_file(path) != entry.get("sha256"):
            problems.append(f"{path}:0: sha256: {entry.get('sha256')} per manifest.json")
    return problems


def validate_split(
    jsonl: Path, max_tokens: int | None = 2048, max_problems: int = 1000, progress: Callable[[int], None] | None = None
) -> list[str]:
    """Check one split line by line against the schema and its index."""
    problems: list[str] = []
    if not jsonl.is_file():
        return [f"{jsonl}:0: file: present"]
    ipath = index_path(jsonl)
    index = None
    if not ipath.is_file():
        problems.append(f"{ipath}:0: index: present (run scripts/extract_metadata.py)")
    else:
        index = np.load(ipath, mmap_mode="r")
        if index.dtype != INDEX_DTYPE:
            problems.append(f"{ipath}:0: dtype: {INDEX_DTYPE}, got {index.dtype}")
            index = None
    offset = 0
    n = 0
    with open(jsonl, "rb") as f:
        for n, raw in enumerate(f, 1):
            if len(problems) >= max_problems:
                problems.append(f"{jsonl}:{n}: ...: stopped after {max_problems} problems")
                break
            line = raw.rstrip(b"\n")
            where = f"{jsonl}:{n}"
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                problems.append(f"{where}: <line>: valid JSON ({err})")
                rec = None
            if rec is not None:
                problems += [f"{where}: {field}: {what}" for field, what in record_problems(rec)]
            if index is not None and n <= len(index):
                row = index[n - 1]
                if int(row["offset"]) != offset or int(row["length"]) != len(line):
                    problems.append(
                        f"{where}: index.offset/length: ({offset}, {len(line)}), index has "
                        f"({int(row['offset'])}, {int(row['length'])})"
                    )
                elif isinstance(rec, dict) and isinstance(rec.get("metadata"), dict):
                    if bool(row["is_correct"]) != rec.get("is_correct"):
                        problems.append(
                            f"{where}: index.is_correct: {rec.get('is_correct')}, index has {bool(row['is_correct'])}"
                        )
                    if int(row["difficulty"]) != rec["metadata"].get("difficulty"):
                        problems.append(
                            f"{where}: index.difficulty: {rec['metadata'].get('difficulty')}, index "
                            f"has {int(row['difficulty'])}"
                        )
                if max_tokens is not None and int(row["token_len"]) > max_tokens:
                    problems.append(f"{where}: token_len: <= {max_tokens}, got {int(row['token_len'])}")
            offset += len(raw)
            if progress:
                progress(1)
    if index is not None and n != len(index):
        problems.append(f"{ipath}:0: rows: {n} (one per line of {jsonl.name}), got {len(index)}")
    return problems


def validate_dataset(
    processed: Path,
    splits: tuple[str, ...] = ("train", "valid", "test"),
    max_tokens: int | None = 2048,
    check_manifest: bool = True,
) -> list[str]:
    problems = validate_manifest(processed) if check_manifest else []
    for split in splits:
        problems += validate_split(processed / f"{split}.jsonl", max_tokens)
    return problems
