"""setup_datasets: every bad input is one line on stderr and a non-zero exit; a failed or killed run
leaves nothing that looks complete (and the previous dataset as it was)."""

from __future__ import annotations

import json
import os
import re
import signal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import load_script, run_script
from wmtp_lightning.data import WMTPDataModule
from wmtp_lightning.data.local_problems import load_local_problems, write_raw_splits
from wmtp_lightning.data.validate import validate_dataset
from wmtp_lightning.errors import MissingInput, UserError


@pytest.fixture
def raw(tmp_path):
    write_raw_splits(tmp_path / "raw")
    return tmp_path / "raw"


def setup_args(src, dst, tok, *extra: str) -> list[str]:
    return ["--src", str(src), "--dst", str(dst), "--tokenizer", str(tok), *extra]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def nothing_complete(dst) -> None:
    """No processed file, no manifest, no temporary anywhere under dst."""
    found = sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file()) if dst.exists() else []
    assert found == [], found


def rewrite_raw(raw, split, fn):
    rows = load_local_problems(split)
    (raw / f"{split}.jsonl").write_bytes(fn(rows))


def rows_jsonl(rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


BAD_RAW = [
    (
        "invalid JSON",
        lambda rows: rows_jsonl(rows[:2]) + b"{not json\n",
        r"valid.jsonl:3: <line>: expected a JSON object",
    ),
    ("not UTF-8", lambda rows: rows_jsonl(rows[:1]) + b"\xff\xfe\n", r"valid.jsonl:2: <line>: expected UTF-8 text"),
    (
        "missing field",
        lambda rows: rows_jsonl([rows[0], {k: v for k, v in rows[1].items() if k != "solutions"}]),
        r"valid.jsonl:2: solutions: missing \(deepmind/code_contests schema\)",
    ),
    (
        "bad difficulty",
        lambda rows: rows_jsonl([{**rows[0], "difficulty": "hard"}]),
        r"valid.jsonl:1: difficulty: expected an enum value 0..28, got 'hard'",
    ),
    (
        "lone surrogate",
        lambda rows: rows_jsonl([{**rows[0], "description": "\ud800"}]),
        r"valid.jsonl:1: description: expected a non-empty UTF-8 string",
    ),
    (
        "solutions of unequal length",
        lambda rows: rows_jsonl([{**rows[0], "solutions": {"language": [3, 3], "solution": ["x"]}}]),
        r"valid.jsonl:1: solutions: expected \{'language': \[...\], 'solution': \[...\]\} of equal length",
    ),
    ("a list, not a problem", lambda rows: b"[1, 2]\n", r"valid.jsonl:1: <row>: expected a JSON object"),
]


@pytest.mark.parametrize(("what", "content", "expected"), BAD_RAW, ids=[b[0] for b in BAD_RAW])
def test_bad_raw_rows_are_one_line(tmp_path, raw, micro_tokenizer_path, capsys, what, content, expected):
    rewrite_raw(raw, "valid", content)
    dst = tmp_path / "out"
    assert run_script("setup_datasets", setup_args(raw, dst, micro_tokenizer_path)) == 1
    assert re.search(expected, one_error_line(capsys))
    nothing_complete(dst)


def test_bad_arguments_and_paths_are_one_line(tmp_path, raw, micro_tokenizer_path, capsys):
    dst = tmp_path / "out"
    cases = [
        (setup_args(tmp_path / "nope", dst, micro_tokenizer_path), 1, f"{tmp_path / 'nope'}: raw folder not found"),
        (setup_args(raw / "train.jsonl", dst, micro_tokenizer_path), 1, "expected a folder of raw files, got a file"),
        (setup_args(raw, dst, tmp_path / "t.model"), 1, "tokenizer model not found"),
        (setup_args(raw, dst, raw / "train.jsonl"), 1, "not a SentencePiece model"),
        (setup_args(raw, dst, micro_tokenizer_path, "--languages", "3,x"), 2, "--languages: expected comma-separated"),
        (setup_args(raw, dst, micro_tokenizer_path, "--max-tokens", "-1"), 2, "--max-tokens: expected a positive"),
        (setup_args(raw, dst, micro_tokenizer_path, "--splits", "train,dev"), 2, "unknown split(s) ['dev']"),
        (["--src", str(raw)], 2, "the following arguments are required: --dst, --tokenizer"),
    ]
    for argv, code, expected in cases:
        assert run_script("setup_datasets", argv) == code, argv
        assert expected in one_error_line(capsys)
        nothing_complete(dst)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for bad_dst, expected in ((blocker, "not a writable directory"), (blocker / "sub", "not a writable directory")):
        assert run_script("setup_datasets", setup_args(raw, bad_dst, micro_tokenizer_path)) == 1
        assert expected in one_error_line(capsys)
    (raw / "test.jsonl").unlink()
    assert run_script("setup_datasets", setup_args(raw, dst, micro_tokenizer_path)) == 1
    assert "no raw files for split 'test'" in one_error_line(capsys)  # found before any split is converted
    nothing_complete(dst)


def test_corrupt_parquet_is_one_line(tmp_path, raw, micro_tokenizer_path, capsys):
    (raw / "valid.jsonl").unlink()
    path = raw / "valid-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(load_local_problems("valid")), path)
    path.write_bytes(path.read_bytes()[:100])
    dst = tmp_path / "out"
    assert run_script("setup_datasets", setup_args(raw, dst, micro_tokenizer_path)) == 1
    assert f"{path}: not a readable parquet file" in one_error_line(capsys)
    nothing_complete(dst)


def test_debug_shows_the_traceback(tmp_path, micro_tokenizer_path, monkeypatch):
    main = load_script("setup_datasets")["main"]
    with pytest.raises(MissingInput, match="raw folder not found"):
        main([*setup_args(tmp_path / "nope", tmp_path / "out", micro_tokenizer_path), "--debug"])
    monkeypatch.setenv("WMTP_DEBUG", "1")
    with pytest.raises(MissingInput):
        main(setup_args(tmp_path / "nope", tmp_path / "out", micro_tokenizer_path))


def test_failed_rerun_keeps_the_previous_dataset(tmp_path, raw, micro_tokenizer_path, capsys):
    dst = tmp_path / "out"
    assert run_script("setup_datasets", setup_args(raw, dst, micro_tokenizer_path)) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in (dst / "processed").iterdir()}
    rewrite_raw(raw, "test", lambda rows: rows_jsonl(rows[:1]) + b"{broken\n")
    assert run_script("setup_datasets", setup_args(raw, dst, micro_tokenizer_path, "--max-tokens", "900")) == 1
    assert "test.jsonl:2: <line>" in one_error_line(capsys)
    assert {p.name: p.read_bytes() for p in (dst / "processed").iterdir()} == before
    assert sorted(p.name for p in dst.iterdir()) == ["processed"]  # the staging folder is gone
    assert validate_dataset(dst / "processed") == []


def run_and_kill(argv: list[str], name: str, patch) -> None:
    main = load_script("setup_datasets")["main"]
    pid = os.fork()
    if pid == 0:  # the child: a setup_datasets run that dies by SIGKILL where `patch` says
        try:
            g = main.__wrapped__.__globals__
            g[name] = patch(g[name])
            main(argv)
        finally:
            os._exit(3)  # never reached when the kill happened
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def dm(root, tok) -> WMTPDataModule:
    m = WMTPDataModule(str(root), str(tok), n_samples=8, val_samples=2, val_incorrect_samples=2)
    m.setup("fit")
    return m


def test_killed_between_splits_leaves_nothing_half_used(tmp_path, raw, micro_tokenizer_path, capsys):
    dst = tmp_path / "out"
    argv = setup_args(raw, dst, micro_tokenizer_path)

    def in_second_split(real):
        def convert(raw_rows, out, tok, cfg, split, progress=None):
            if split == "valid":  # train is done; die two problems into valid
                raw_rows = (die() if i == 2 else row for i, row in enumerate(raw_rows))
            return real(raw_rows, out, tok, cfg, split, progress)

        return convert

    run_and_kill(argv, "convert_split", in_second_split)  # a first run, killed: nothing looks complete
    assert not (dst / "processed").exists() or not any((dst / "processed").iterdir())
    assert not (dst / "processed.tmp" / "manifest.json").exists()
    with pytest.raises(UserError, match=r"manifest.json: missing; the dataset is incomplete"):
        dm(dst, micro_tokenizer_path)

    assert run_script("setup_datasets", argv) == 0  # a full run; it also clears what the killed one left
    assert sorted(p.name for p in dst.iterdir()) == ["processed"]
    before = {p.name: p.read_bytes() for p in (dst / "processed").iterdir()}
    run_and_kill([*argv, "--max-tokens", "900"], "convert_split", in_second_split)
    assert {p.name: p.read_bytes() for p in (dst / "processed").iterdir()} == before  # untouched: trains as before
    assert validate_dataset(dst / "processed") == []

    run_and_kill([*argv, "--max-tokens", "900"], "write_manifest", lambda real: lambda *a, **k: die())
    # killed while moving the new splits into place: the folder is half old, half new, no manifest
    assert not (dst / "processed" / "manifest.json").exists()
    with pytest.raises(UserError, match=r"manifest.json: missing; the dataset is incomplete") as info:
        dm(dst, micro_tokenizer_path)
    assert "\n" not in str(info.value)
    capsys.readouterr()
    assert run_script("validate_datasets", [str(dst)]) == 1
    assert "manifest.json: missing" in capsys.readouterr().out
