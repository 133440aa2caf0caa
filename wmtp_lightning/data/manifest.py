"""The dataset's manifest: what a complete processed folder holds, and the check that it still does.

`manifest.json` lists every data file with its sha256 and size, plus `files_sha256`, the sha256
of that list itself (so an edited or damaged manifest is caught without hashing gigabytes). The
writers (`setup_datasets`, `extract_metadata`) delete it before they change any file and write it
last: a folder without a valid manifest is incomplete, whatever else it holds, and `wmtp fit`
refuses it. Checking is fast by default (the manifest's own integrity + each file's size) and
full on request (every file's sha256).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from wmtp_lightning.errors import MissingInput
from wmtp_lightning.io import sha256_file, write_json

MANIFEST = "manifest.json"
FORMAT_VERSION = 2


def processed_dir(data_dir: str | Path) -> Path:
    """The processed folder of a dataset root (`<root>/processed`), or the folder itself."""
    root = Path(data_dir)
    if (root / "processed").is_dir():
        return root / "processed"
    if root.is_dir():
        return root
    raise MissingInput(f"{root}: dataset directory not found (make it with scripts/setup_datasets.py)")


def files_digest(files: dict[str, Any]) -> str:
    """sha256 of the manifest's file list in canonical JSON (the manifest's own integrity)."""
    return hashlib.sha256(json.dumps(files, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def manifest_extras(processed: Path) -> dict[str, Any]:
    """The provenance keys of the current manifest (tokenizer, max_tokens, ...), {} if it has none:
    a writer that rewrites the manifest keeps them."""
    try:
        manifest = json.loads((processed / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict):
        return {}
    return {k: v for k, v in manifest.items() if k not in ("format_version", "files", "files_sha256")}


def invalidate_manifest(processed: Path) -> None:
    """Remove the manifest before a writer changes any file: a run that dies midway leaves a folder
    that no reader takes for complete."""
    (processed / MANIFEST).unlink(missing_ok=True)


def write_manifest(processed: Path, extra: dict[str, Any] | None = None) -> Path:
    """sha256 and size of every data file (temporaries excluded), written last and atomically."""
    files = {
        p.name: {"sha256": sha256_file(p), "size": p.stat().st_size}
        for p in sorted(processed.iterdir())
        if p.is_file() and p.name != MANIFEST and ".tmp" not in p.name
    }
    path = processed / MANIFEST
    write_json(
        path, {**(extra or {}), "format_version": FORMAT_VERSION, "files": files, "files_sha256": files_digest(files)}
    )
    return path


def manifest_problems(processed: Path, full: bool = False, required: Iterable[str] = ()) -> list[str]:
    """Every way the folder fails its manifest, one line each (`path: what is wrong`); never raises.

    Args:
        processed: the processed folder.
        full: also compare every file's sha256 (reads every byte); otherwise sizes only.
        required: file names that must be listed (the splits a run is about to read).
    """
    path = processed / MANIFEST
    rebuild = "re-run scripts/setup_datasets.py or scripts/extract_metadata.py"
    if not path.is_file():
        return [f"{path}: missing; the dataset is incomplete (its writer did not finish): {rebuild}"]
    try:
        manifest = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        where = f"{path}:{err.lineno}" if isinstance(err, json.JSONDecodeError) else str(path)
        return [f"{where}: invalid JSON ({err}); {rebuild}"]
    if not isinstance(manifest, dict):
        return [f"{path}: expected a JSON object with 'files', got {type(manifest).__name__}; {rebuild}"]
    files = manifest.get("files")
    if not isinstance(files, dict):
        return [f"{path}: files: expected an object of file name -> {{sha256, size}}, got {type(files).__name__}"]
    if manifest.get("files_sha256") is None:
        return [f"{path}: files_sha256: missing (a manifest of an older version); {rebuild}"]
    if manifest["files_sha256"] != files_digest(files):
        return [f"{path}: files_sha256: does not match the file list (the manifest was edited or damaged); {rebuild}"]
    problems = []
    for name in sorted(set(required) - set(files)):
        problems.append(f"{processed / name}: not listed in {MANIFEST}; {rebuild}")
    for name, entry in sorted(files.items()):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("size"), int)
            or not isinstance(entry.get("sha256"), str)
        ):
            problems.append(f"{path}: files.{name}: expected {{sha256: str, size: int}}, got {entry!r:.80}")
            continue
        if Path(name).name != name:
            problems.append(f"{path}: files.{name}: expected a file name in this folder")
            continue
        file = processed / name
        if not file.is_file():
            problems.append(f"{file}: missing (listed in {MANIFEST})")
        elif file.stat().st_size != entry["size"]:
            problems.append(f"{file}: {file.stat().st_size} bytes, {MANIFEST} says {entry['size']}; {rebuild}")
        elif full and sha256_file(file) != entry["sha256"]:
            problems.append(f"{file}: sha256 differs from {MANIFEST} (same size, other content); {rebuild}")
    return problems
