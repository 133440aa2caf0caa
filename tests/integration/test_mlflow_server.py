"""Training against a real MLflow server: params, metrics, config, plots and the model come back."""

from __future__ import annotations

import mlflow
import pytest

from tests.integration.helpers import run

pytestmark = pytest.mark.slow


def train_against(url, root, bundle, data, tok, experiment="server-test"):
    return run(
        [
            "-m",
            "wmtp_lightning.cli",
            "fit",
            "--config",
            "configs/verifiable.yaml",
            "--config",
            "configs/local.yaml",
            "--model.init_args.model",
            str(bundle),
            "--data.init_args.data_dir",
            str(data),
            "--data.init_args.tokenizer",
            str(tok),
            "--trainer.default_root_dir",
            str(root),
            "--trainer.max_steps",
            "4",
            "--trainer.val_check_interval",
            "4",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.logger.init_args.experiment_name",
            experiment,
            "--trainer.callbacks+=wmtp_lightning.experiments.callbacks.WeightPlots",
            "--trainer.callbacks.every_n_steps=2",
            "--trainer.enable_progress_bar",
            "false",
        ],
        timeout=300,
        MLFLOW_TRACKING_URI=url,
    )


def test_run_is_readable_through_the_client(tmp_path, mlflow_server, tiny_bundle, local_dataset, micro_tokenizer_path):
    train_against(mlflow_server, tmp_path, tiny_bundle, local_dataset, micro_tokenizer_path)
    client = mlflow.MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("server-test")
    (r,) = client.search_runs([exp.experiment_id])
    assert r.data.params["beta"] == "0.9" and r.data.params["experiment_class"] == "VerifiableCriticMTP"
    assert len(client.get_metric_history(r.info.run_id, "train/loss")) >= 2
    assert "val/value_auc" in r.data.metrics
    names = {a.path for a in client.list_artifacts(r.info.run_id)}
    assert {"config.yaml", "model", "plots"} <= names
    model_files = {a.path for a in client.list_artifacts(r.info.run_id, "model")}
    assert "model/metadata.json" in model_files and "model/value_head" in model_files
    assert any(a.path.endswith(".png") for a in client.list_artifacts(r.info.run_id, "plots"))
