"""export_mlflow_artifacts against a real MLflow server, on runs made by a real short training."""

from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import load_script
from tests.integration.helpers import free_port
from tests.integration.test_mlflow_server import train_against

pytestmark = pytest.mark.slow


def test_export_runs(tmp_path, mlflow_server, tiny_bundle, local_dataset, micro_tokenizer_path, capsys):
    train_against(mlflow_server, tmp_path / "r1", tiny_bundle, local_dataset, micro_tokenizer_path, experiment="export")
    train_against(mlflow_server, tmp_path / "r2", tiny_bundle, local_dataset, micro_tokenizer_path, experiment="export")
    main = load_script("export_mlflow_artifacts")["main"]
    out = main(["--tracking-uri", mlflow_server, "--experiment", "export", "--out", str(tmp_path / "x")])
    assert len(out) == 2
    for run_dir in out:
        assert (run_dir / "EXPORT_COMPLETE").is_file()
        params = json.loads((run_dir / "params.json").read_text())
        assert params["experiment_class"] == "VerifiableCriticMTP"
        with open(run_dir / "metrics" / "train__loss.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) >= 2 and float(rows[0]["value"]) > 0
        art = run_dir / "artifacts"
        assert (art / "config.yaml").is_file() and (art / "model" / "metadata.json").is_file()
        assert list((art / "plots").glob("*.png"))
    run_id = json.loads((out[0] / "run.json").read_text())["run_id"]
    one = main(["--tracking-uri", mlflow_server, "--run-id", run_id, "--out", str(tmp_path / "y")])
    assert len(one) == 1 and one[0].name.endswith(run_id[:8])

    with pytest.raises(SystemExit):
        main(["--tracking-uri", mlflow_server, "--run-id", "0" * 32, "--out", str(tmp_path / "z")])
    assert "no such run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(
            [
                "--tracking-uri",
                f"http://127.0.0.1:{free_port()}",
                "--experiment",
                "export",
                "--out",
                str(tmp_path / "z"),
            ]
        )
    assert "does not answer" in capsys.readouterr().err
    assert not (tmp_path / "z").exists() or not list((tmp_path / "z").iterdir())  # nothing half-exported
