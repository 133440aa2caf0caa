"""scripts/export_mlflow_artifacts.py: bad input is one line, found before anything is downloaded."""

from __future__ import annotations

import pytest

from tests.conftest import load_script


def one_line_error(capsys, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        load_script("export_mlflow_artifacts")["main"](list(args))
    text = capsys.readouterr().err
    errors = [ln for ln in text.splitlines() if ln.startswith("error:")]  # (a new MLflow DB logs INFO lines)
    assert len(errors) == 1 and "Traceback" not in text, text
    return info.value.code, errors[0]


def test_bad_tag_and_unwritable_out(tmp_path, capsys):
    code, err = one_line_error(capsys, "--experiment", "wmtp", "--tag", "nokey", "--out", str(tmp_path))
    assert code == 2 and "--tag expects key=value" in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, err = one_line_error(capsys, "--experiment", "wmtp", "--out", str(blocker / "sub"))
    assert code == 1 and str(blocker) in err


def test_dead_server_fails_fast(tmp_path, capsys):
    code, err = one_line_error(
        capsys, "--tracking-uri", "http://127.0.0.1:9", "--experiment", "wmtp", "--out", str(tmp_path / "x")
    )
    assert code == 1 and "does not answer" in err


def test_unknown_experiment(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, err = one_line_error(capsys, "--tracking-uri", uri, "--experiment", "nope", "--out", str(tmp_path / "x"))
    assert code == 1 and "--experiment nope: no such experiment" in err
