"""make_local_codecontests: the raw files, complete or not at all; a bad destination is one line."""

from __future__ import annotations

from tests.conftest import run_script
from wmtp_lightning.data.local_problems import FOLDER


def test_writes_the_three_raw_splits(tmp_path, capsys):
    assert run_script("make_local_codecontests", ["--dst", str(tmp_path / "raw")]) == 0
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["test.jsonl", "train.jsonl", "valid.jsonl"]
    for p in (tmp_path / "raw").iterdir():
        assert p.read_bytes() == (FOLDER / p.name).read_bytes()
    assert "wrote 34 problems" in capsys.readouterr().out


def test_bad_destination_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for dst, expected in ((blocker, "exists and is not a directory"), (blocker / "raw", "not a writable directory")):
        assert run_script("make_local_codecontests", ["--dst", str(dst)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {dst}: {expected}"), err
    assert blocker.read_text() == "x"
