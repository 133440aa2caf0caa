"""Storage sync with the local-directory backend: plan, incremental upload, resume, verification, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import load_script
from wmtp_lightning.errors import UserError
from wmtp_lightning.ops.storage_sync import MANIFEST, LocalDirBackend, VesslBackend, sync


@pytest.fixture
def storage(tmp_path) -> Path:
    s = tmp_path / "storage"
    for rel, text in {
        "models_v2/m/metadata.json": "{}",
        "models_v2/m/safetensors/model.safetensors": "w" * 1000,
        "datasets_v2/cc/processed/train.jsonl": "{}\n" * 50,
        "datasets_v2/cc/processed/x.tmp": "junk",
        "runs/ignored.txt": "not selected",
    }.items():
        (s / rel).parent.mkdir(parents=True, exist_ok=True)
        (s / rel).write_text(text)
    return s


@pytest.fixture
def dest(tmp_path) -> LocalDirBackend:
    (tmp_path / "volume").mkdir()
    return LocalDirBackend(tmp_path / "volume")


FOLDERS = ["models_v2", "datasets_v2"]


def manifest(dest):
    return json.loads((dest.root / MANIFEST).read_text())["files"]


def test_incremental_sync_keeps_layout(storage, dest):
    plan = sync(storage, dest, FOLDERS, log=lambda _: None)
    assert len(plan.upload) == 3 and not (dest.root / "runs").exists()
    assert (dest.root / "models_v2/m/safetensors/model.safetensors").read_text() == "w" * 1000
    assert set(manifest(dest)) == {
        "models_v2/m/metadata.json",
        "models_v2/m/safetensors/model.safetensors",
        "datasets_v2/cc/processed/train.jsonl",
    }
    assert sync(storage, dest, FOLDERS, log=lambda _: None).upload == []  # nothing changed
    (storage / "models_v2/m/metadata.json").write_text('{"v": 2}')
    again = sync(storage, dest, FOLDERS, log=lambda _: None)
    assert [e.path for e in again.upload] == ["models_v2/m/metadata.json"]
    assert not list(dest.root.rglob("*.part"))


def test_dry_run_uploads_nothing(storage, dest, capsys):
    code = load_script("sync_to_vessl_storage")["main"](
        ["--dest", str(dest.root), "--storage", str(storage), "--dry-run"]
    )
    out = capsys.readouterr().out
    assert code == 0 and "3 file(s) to upload" in out and "upload models_v2/m/metadata.json" in out
    assert not (dest.root / MANIFEST).exists() and not (dest.root / "models_v2").exists()


class Flaky(LocalDirBackend):
    """Fails on the n-th upload (an interruption), or corrupts what it receives."""

    def __init__(self, root, fail_at=None, corrupt=False):
        super().__init__(root)
        self.n, self.fail_at, self.corrupt = 0, fail_at, corrupt

    def upload(self, local, rel):
        self.n += 1
        if self.n == self.fail_at:
            raise ConnectionError("network dropped")
        super().upload(local, rel)
        if self.corrupt:
            with open(self._p(rel), "r+b") as f:
                f.write(b"X")


def test_interrupted_sync_resumes(storage, dest):
    with pytest.raises(ConnectionError):
        sync(storage, Flaky(dest.root, fail_at=3), FOLDERS, log=lambda _: None)
    assert len(manifest(dest)) == 2  # the two verified uploads are recorded
    resumed = sync(storage, dest, FOLDERS, log=lambda _: None)
    assert len(resumed.upload) == 1 and len(manifest(dest)) == 3


def test_verification_failure_records_nothing(storage, dest):
    with pytest.raises(OSError, match="verification failed after upload"):
        sync(storage, Flaky(dest.root, corrupt=True), FOLDERS, log=lambda _: None)
    assert not (dest.root / MANIFEST).exists() and not list(dest.root.rglob("*.part"))


def test_missing_or_corrupted_destination_files_are_uploaded_again(storage, dest):
    sync(storage, dest, FOLDERS, log=lambda _: None)
    target = dest.root / "datasets_v2/cc/processed/train.jsonl"
    good = target.read_bytes()
    target.write_bytes(b"X" + good[1:])  # corrupted at the same size: only the content says so
    lines = []
    again = sync(storage, dest, FOLDERS, log=lines.append)
    assert [e.path for e in again.upload] == ["datasets_v2/cc/processed/train.jsonl"]
    assert any("does not match the manifest" in ln for ln in lines) and target.read_bytes() == good
    target.unlink()  # missing
    assert [e.path for e in sync(storage, dest, FOLDERS, log=lambda _: None).upload] == [
        "datasets_v2/cc/processed/train.jsonl"
    ]
    assert sync(storage, dest, FOLDERS, log=lambda _: None).upload == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "corrupted manifest, not JSON"),
        ('{"files": []}', "files: expected an object"),
        ("[1, 2]", "files: expected an object"),
        ('{"files": {"a": {"size": "9"}}}', "files.a: expected {size: int, sha256: str}"),
    ],
)
def test_bad_manifest_is_one_clear_error(storage, dest, text, message):
    (dest.root / MANIFEST).write_text(text)
    with pytest.raises(ValueError, match=message):
        sync(storage, dest, FOLDERS, log=lambda _: None)


def test_missing_folders(storage, dest, tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="storage folder not found"):
        sync(tmp_path / "nope", dest, FOLDERS)
    with pytest.raises(FileNotFoundError, match="selected folder does not exist"):
        sync(storage, dest, ["models_v3"])
    main = load_script("sync_to_vessl_storage")["main"]
    with pytest.raises(SystemExit) as info:
        main(["--dest", str(tmp_path / "no-volume"), "--storage", str(storage)])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 1 and len(err) == 1 and "destination folder not found" in err[0]
    with pytest.raises(SystemExit) as info:
        main(["--dest", "vessl:abc", "--storage", str(storage)])
    assert info.value.code == 1 and "expected vessl:<numeric volume id>" in capsys.readouterr().err


def test_vessl_backend_without_sdk_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "vessl", None)  # as on a machine without the extra
    with pytest.raises(UserError, match=r"VESSL SDK is not installed: pip install 'wmtp_lightning\[vessl\]'"):
        VesslBackend(123)
