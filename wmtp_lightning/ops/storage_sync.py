"""Sync `storage/` folders to a VESSL volume (or any backend) with a manifest (DESIGN §7).

The manifest lists every synced file (relative path, size, sha256). A run:
  1. hashes the local files of the selected folders,
  2. reads the destination's manifest (`.wmtp-manifest.json`), checks it is well formed, and
     checks every entry against the destination: its size, and its content (sha256) where the
     backend can hash; an entry that does not match (missing, truncated, corrupted at the same
     size) is dropped from the manifest and uploaded again,
  3. uploads only files that are new or changed, each to a temporary name first, verifies it
     (sha256 where the backend can hash, size otherwise), moves it into place and records it in
     the manifest right away, so an interrupted sync resumes where it stopped and the manifest
     never lists a file that is not complete.
`--dry-run` prints the plan. The VESSL transfer uses VESSL's own SDK behind `StorageBackend`;
`LocalDirBackend` implements the same interface for tests and for NFS-style mounts.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from wmtp_lightning.errors import BadInput, MissingInput, UserError
from wmtp_lightning.io import sha256_file

MANIFEST = ".wmtp-manifest.json"


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


class StorageBackend(Protocol):
    """What a destination must offer. Paths are relative, '/'-separated."""

    name: str

    def upload(self, local: Path, rel: str) -> None: ...
    def rename(self, src_rel: str, dst_rel: str) -> None: ...
    def size(self, rel: str) -> int | None: ...
    def sha256(self, rel: str) -> str | None: ...  # None: the backend cannot hash
    def read_text(self, rel: str) -> str | None: ...
    def write_text(self, rel: str, text: str) -> None: ...
    def delete(self, rel: str) -> None: ...


class LocalDirBackend:
    """A folder as the destination (tests, mounted volumes)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise MissingInput(f"{self.root}: destination folder not found")
        self.name = f"local:{self.root}"

    def _p(self, rel: str) -> Path:
        return self.root / rel

    def upload(self, local: Path, rel: str) -> None:
        dst = self._p(rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, dst)

    def rename(self, src_rel: str, dst_rel: str) -> None:
        os.replace(self._p(src_rel), self._p(dst_rel))

    def size(self, rel: str) -> int | None:
        p = self._p(rel)
        return p.stat().st_size if p.is_file() else None

    def sha256(self, rel: str) -> str | None:
        p = self._p(rel)
        return sha256_file(p) if p.is_file() else None

    def read_text(self, rel: str) -> str | None:
        p = self._p(rel)
        return p.read_text() if p.is_file() else None

    def write_text(self, rel: str, text: str) -> None:
        tmp = self._p(rel + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, self._p(rel))

    def delete(self, rel: str) -> None:
        self._p(rel).unlink(missing_ok=True)


class VesslBackend:
    """A VESSL volume through the `vessl` SDK (optional extra: pip install 'wmtp_lightning[vessl]').

    The SDK exposes no checksum, so uploads are verified by size; the manifest itself is read back
    and compared byte for byte.
    """

    def __init__(self, volume_id: int):
        try:
            import vessl
        except ImportError as err:
            raise UserError(
                "the VESSL SDK is not installed: pip install 'wmtp_lightning[vessl]' (package `vessl`)"
            ) from err
        try:
            vessl.configure()
        except Exception as err:  # the SDK raises its own types for a missing token / organisation
            raise UserError(
                f"the VESSL SDK is not configured ({err}); run `vessl configure` or set "
                "VESSL_ACCESS_TOKEN and VESSL_DEFAULT_ORGANIZATION"
            ) from err
        self.vessl = vessl
        self.volume_id = volume_id
        self.name = f"vessl-volume:{volume_id}"

    def upload(self, local: Path, rel: str) -> None:
        self.vessl.copy_volume_file(
            source_volume_id=None, source_path=str(local), dest_volume_id=self.volume_id, dest_path=rel
        )

    def rename(self, src_rel: str, dst_rel: str) -> None:
        self.vessl.copy_volume_file(
            source_volume_id=self.volume_id, source_path=src_rel, dest_volume_id=self.volume_id, dest_path=dst_rel
        )
        self.delete(src_rel)

    def size(self, rel: str) -> int | None:
        files = self.vessl.list_volume_files(volume_id=self.volume_id, path=rel)
        for f in files or []:
            if getattr(f, "path", "").rstrip("/").endswith(rel.split("/")[-1]):
                return int(getattr(f, "size", -1))
        return None

    def sha256(self, rel: str) -> str | None:
        return None

    def read_text(self, rel: str) -> str | None:
        if self.size(rel) is None:
            return None
        data = self.vessl.read_volume_file(volume_id=self.volume_id, path=rel)
        return data.decode() if isinstance(data, bytes) else str(data)

    def write_text(self, rel: str, text: str) -> None:
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write(text)
        try:
            self.upload(Path(f.name), rel)
        finally:
            os.unlink(f.name)

    def delete(self, rel: str) -> None:
        self.vessl.delete_volume_file(volume_id=self.volume_id, path=rel)


@dataclass
class SyncPlan:
    upload: list[FileEntry] = field(default_factory=list)
    unchanged: list[FileEntry] = field(default_factory=list)

    @property
    def bytes_to_upload(self) -> int:
        return sum(e.size for e in self.upload)


def local_entries(
    storage: Path, folders: Iterable[str], progress: Callable[[int], None] | None = None
) -> list[FileEntry]:
    """Every file under storage/<folder> (temporary `.tmp` files excluded), hashed."""
    storage = Path(storage)
    if not storage.is_dir():
        raise MissingInput(f"{storage}: storage folder not found")
    entries = []
    for folder in folders:
        root = storage / folder
        if not root.is_dir():
            raise MissingInput(
                f"{root}: selected folder does not exist (have: "
                f"{sorted(p.name for p in storage.iterdir() if p.is_dir())})"
            )
        for p in sorted(root.rglob("*")):
            if p.is_file() and not p.name.endswith(".tmp"):
                entries.append(FileEntry(p.relative_to(storage).as_posix(), p.stat().st_size, sha256_file(p)))
                if progress:
                    progress(p.stat().st_size)
    return entries


def read_manifest(backend: StorageBackend) -> dict[str, FileEntry]:
    text = backend.read_text(MANIFEST)
    if text is None:
        return {}
    where = f"{backend.name}/{MANIFEST}"
    fix = "remove it to re-upload everything, or repair it"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadInput(f"{where}:{err.lineno}: corrupted manifest, not JSON ({err.msg}); {fix}") from err
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise ValueError(
            f"{where}: files: expected an object {{path: {{size, sha256}}}}, got {type(files).__name__}; {fix}"
        )
    out = {}
    for rel, v in files.items():
        if not (isinstance(v, dict) and isinstance(v.get("size"), int) and isinstance(v.get("sha256"), str)):
            raise BadInput(f"{where}: files.{rel}: expected {{size: int, sha256: str}}, got {v!r}; {fix}")
        out[rel] = FileEntry(rel, v["size"], v["sha256"])
    return out


def mismatched(backend: StorageBackend, manifest: dict[str, FileEntry]) -> list[str]:
    """Manifest entries the destination does not hold as recorded: missing, another size, or (where
    the backend can hash) other content. A same-size corruption is found only by the hash."""
    bad = []
    for rel, e in manifest.items():
        if backend.size(rel) != e.size:
            bad.append(rel)
            continue
        remote = backend.sha256(rel)
        if remote is not None and remote != e.sha256:
            bad.append(rel)
    return bad


def write_manifest(backend: StorageBackend, manifest: dict[str, FileEntry]) -> None:
    data = {
        "format_version": 1,
        "files": {rel: {"size": e.size, "sha256": e.sha256} for rel, e in sorted(manifest.items())},
    }
    backend.write_text(MANIFEST, json.dumps(data, indent=1) + "\n")


def plan(entries: list[FileEntry], manifest: dict[str, FileEntry]) -> SyncPlan:
    p = SyncPlan()
    for e in entries:
        (p.unchanged if manifest.get(e.path) == e else p.upload).append(e)
    return p


def sync(
    storage: Path,
    backend: StorageBackend,
    folders: Iterable[str],
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    log: Callable[[str], None] = print,
) -> SyncPlan:
    """Upload what changed; returns the plan that was (or, with dry_run, would be) carried out."""
    entries = local_entries(storage, folders)
    manifest = read_manifest(backend)
    for rel in mismatched(backend, manifest):
        log(f"  {backend.name}/{rel}: does not match the manifest (missing, truncated or corrupted); re-uploading it")
        del manifest[rel]
    if manifest and backend.sha256(next(iter(manifest))) is None:
        log(f"  {backend.name} cannot hash remote files: existing files were checked by size only")
    the_plan = plan(entries, manifest)
    log(
        f"{len(the_plan.upload)} file(s) to upload ({the_plan.bytes_to_upload / 1e6:.1f} MB), "
        f"{len(the_plan.unchanged)} unchanged, destination {backend.name}"
    )
    if dry_run:
        for e in the_plan.upload:
            log(f"  upload {e.path} ({e.size} B)")
        return the_plan
    for e in the_plan.upload:
        tmp = e.path + ".part"
        backend.upload(Path(storage) / e.path, tmp)
        remote_sha = backend.sha256(tmp)
        if backend.size(tmp) != e.size or (remote_sha is not None and remote_sha != e.sha256):
            backend.delete(tmp)
            raise OSError(
                f"{backend.name}/{e.path}: verification failed after upload (size "
                f"{backend.size(tmp)} vs {e.size}, sha256 {remote_sha} vs {e.sha256}); nothing recorded"
            )
        backend.rename(tmp, e.path)
        manifest[e.path] = e
        write_manifest(backend, manifest)  # after every file: an interrupted sync resumes here
        if progress:
            progress(e.size)
    return the_plan


def make_backend(spec: str) -> Any:
    """'vessl:<volume_id>' or a local folder path."""
    if spec.startswith("vessl:"):
        volume = spec.split(":", 1)[1]
        if not volume.isdigit():
            raise BadInput(f"--dest {spec}: expected vessl:<numeric volume id>")
        return VesslBackend(int(volume))
    return LocalDirBackend(spec)
