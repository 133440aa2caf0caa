"""The `wmtp` console script answers bad input with one line (tracebacks only with --debug / WMTP_DEBUG=1)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from wmtp_lightning.cli import entrypoint, one_line

ROOT = Path(__file__).resolve().parents[1]
CFG = ["--config", str(ROOT / "configs" / "baseline.yaml"), "--config", str(ROOT / "configs" / "local.yaml")]


def run(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["wmtp", *args])
    with pytest.raises(SystemExit) as info:
        entrypoint()
    err = capsys.readouterr().err.strip().splitlines()
    return info.value.code, err[-1] if err else ""


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (("--model.init_args.bta", "3"), 2, "Parser key \"model\": Option 'bta' is not accepted"),
        (("--trainer.max_steps", "abc"), 2, "Parser key \"trainer.max_steps\": Expected a <class 'int'>"),
        (("--model.init_args.model", "/nonexistent"), 1, "model bundle not found: /nonexistent"),
    ],
)
def test_config_errors_are_one_line(monkeypatch, capsys, args, code, expected):
    monkeypatch.delenv("WMTP_DEBUG", raising=False)
    got_code, last = run(monkeypatch, capsys, "fit", *CFG, *args)
    assert got_code == code and last.startswith("wmtp: error: ") and expected in last, last
    assert "Namespace(" not in last and "Traceback" not in last


def test_missing_config_file_names_it(monkeypatch, capsys):
    code, last = run(monkeypatch, capsys, "fit", "--config", "nope.yaml")
    assert code == 2 and last.count("File does not exist") == 1 and "nope.yaml" in last


def test_debug_gives_the_traceback(monkeypatch):
    monkeypatch.setenv("WMTP_DEBUG", "1")
    monkeypatch.setattr(sys, "argv", ["wmtp", "fit", *CFG, "--model.init_args.model", "/nonexistent"])
    with pytest.raises(ValueError, match="model bundle not found"):
        entrypoint()


def test_one_line_finds_the_root_cause():
    try:
        try:
            raise FileNotFoundError("model bundle not found: /x")
        except FileNotFoundError as inner:
            raise ValueError(
                "Does not validate against any of the Union subtypes\nGiven value: Namespace(a=1)"
            ) from inner
    except ValueError as err:
        assert one_line(err) == "model bundle not found: /x"


def test_a_corrupt_bundle_is_one_line_naming_the_file(monkeypatch, capsys, tmp_path, tiny_bundle, local_dataset):
    import shutil

    from wmtp_lightning.models.bundle import WEIGHTS

    bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))
    data = (bundle / WEIGHTS).read_bytes()
    (bundle / WEIGHTS).write_bytes(data[: len(data) // 3])  # an interrupted copy
    monkeypatch.delenv("WMTP_DEBUG", raising=False)
    args = [
        *("--model.init_args.model", str(bundle)),
        *("--data.init_args.data_dir", str(local_dataset)),
        *("--data.init_args.tokenizer", str(bundle / "tokenizer")),
        *("--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.max_steps", "1"),
    ]
    code, last = run(monkeypatch, capsys, "fit", *CFG, *args)
    assert code == 1 and last.startswith("wmtp: error: ") and "Traceback" not in last, last
    assert str(bundle / WEIGHTS) in last and "sha256" in last, last
