"""Training against a real MLflow server: params, metrics, config, plots and the model come back."""

from __future__ import annotations

import mlflow
import pytest

from tests.integration.helpers import fit_args, run

pytestmark = pytest.mark.slow


def train_against(url, root, bundle, data, tok, experiment="server-test"):
    extra = [
        "--trainer.logger.init_args.experiment_name",
        experiment,
        "--trainer.callbacks+=wmtp_lightning.experiments.callbacks.WeightPlots",
        "--trainer.callbacks.every_n_steps=2",
        # One validation batch (limit_val_batches 1, batch 4) holding both kinds, so the AUC is defined.
        *("--data.init_args.val_samples", "2", "--data.init_args.val_incorrect_samples", "2"),
    ]
    args = fit_args(["configs/verifiable.yaml", "configs/local.yaml"], root, bundle, data, tok, 4, *extra)
    return run(args, timeout=300, MLFLOW_TRACKING_URI=url)


def test_run_is_readable_through_the_client(tmp_path, mlflow_server, tiny_bundle, local_dataset, micro_tokenizer_path):
    train_against(mlflow_server, tmp_path, tiny_bundle, local_dataset, micro_tokenizer_path)
    client = mlflow.MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("server-test")
    (r,) = client.search_runs([exp.experiment_id])
    assert r.data.params["beta"] == "0.9" and r.data.params["experiment_class"] == "VerifiableCriticMTP"
    assert len(client.get_metric_history(r.info.run_id, "train/loss")) >= 2
    assert 0.0 <= r.data.metrics["val_all/value_auc"] <= 1.0
    names = {a.path for a in client.list_artifacts(r.info.run_id)}
    assert {"config.yaml", "model", "plots"} <= names
    model_files = {a.path for a in client.list_artifacts(r.info.run_id, "model")}
    assert "model/metadata.json" in model_files and "model/value_head" in model_files
    assert any(a.path.endswith(".png") for a in client.list_artifacts(r.info.run_id, "plots"))
