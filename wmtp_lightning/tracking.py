"""Everything MLflow, in one place.

- where runs go: a local SQLite store under `storage/` by default, or `MLFLOW_TRACKING_URI` from the
  environment or a `.env` file (python-dotenv) — `resolve_tracking_uri`;
- the Lightning logger (`WMTPMLFlowLogger`), the config saver (`MLflowSaveConfig`) and the small
  helpers callbacks use to log files and figures (`log_artifact`, `log_artifacts`, `log_figure`);
  they are no-ops when the run has no MLflow logger and only rank 0 logs;
- reading runs back: `client_for`, `find_runs`, `export_run` (used by
  `scripts/export_mlflow_artifacts.py`), `run_location` and `metric_history` (used by the analysis
  notebook and `wmtp compare`).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from dotenv import load_dotenv
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import MLFlowLogger

from wmtp_lightning.errors import BadInput

DEFAULT_STORE = "storage/mlflow.db"
DEFAULT_ARTIFACTS = "storage/mlartifacts"


def resolve_tracking_uri(uri: str | None = None, env_file: str | Path = ".env") -> str:
    """Explicit argument > MLFLOW_TRACKING_URI (environment, then .env) > local SQLite under storage/."""
    if uri:
        return uri
    load_dotenv(env_file, override=False)  # the environment wins over the file
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    store = Path(DEFAULT_STORE).resolve()
    store.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store}"


class WMTPMLFlowLogger(MLFlowLogger):
    """`MLFlowLogger` whose tracking URI and artifact location default as `resolve_tracking_uri` says.

    Args:
        experiment_name: MLflow experiment.
        run_name: MLflow run name.
        tracking_uri: overrides the environment / .env / local default.
        artifact_location: for new experiments on a local store (default storage/mlartifacts).
        log_model: log Lightning checkpoints as artifacts (True: at the end, "all": every save).
        tags / prefix / run_id: as `MLFlowLogger`.
    """

    def __init__(
        self,
        experiment_name: str = "wmtp",
        run_name: str | None = None,
        tracking_uri: str | None = None,
        artifact_location: str | None = None,
        log_model: bool | str = False,
        tags: dict[str, Any] | None = None,
        prefix: str = "",
        run_id: str | None = None,
    ):
        uri = resolve_tracking_uri(tracking_uri)
        if artifact_location is None and uri.startswith("sqlite:"):
            artifact_location = Path(DEFAULT_ARTIFACTS).resolve().as_uri()
        super().__init__(
            experiment_name=experiment_name,
            run_name=run_name,
            tracking_uri=uri,
            tags=tags,
            log_model=log_model,
            prefix=prefix,
            artifact_location=artifact_location,
            run_id=run_id,
        )


# ----------------------------------------------------------------------------- logging from a run


def mlflow_logger(trainer: pl.Trainer) -> MLFlowLogger | None:
    """The trainer's MLflow logger, if it has one."""
    for lg in trainer.loggers:
        if isinstance(lg, MLFlowLogger):
            return lg
    return None


def _rank_zero_logger(trainer: pl.Trainer) -> MLFlowLogger | None:
    return mlflow_logger(trainer) if trainer.is_global_zero else None


def log_artifact(trainer: pl.Trainer, path: str | Path, artifact_path: str | None = None) -> None:
    """Log one file to the run (rank 0; nothing without an MLflow logger)."""
    mlf = _rank_zero_logger(trainer)
    if mlf is not None:
        mlf.experiment.log_artifact(mlf.run_id, str(path), artifact_path=artifact_path)


def log_artifacts(trainer: pl.Trainer, folder: str | Path, artifact_path: str | None = None) -> None:
    """Log a folder to the run (rank 0; nothing without an MLflow logger)."""
    mlf = _rank_zero_logger(trainer)
    if mlf is not None:
        mlf.experiment.log_artifacts(mlf.run_id, str(folder), artifact_path=artifact_path)


def log_figure(trainer: pl.Trainer, figure: Any, name: str) -> bool:
    """Log a matplotlib figure as `name` (e.g. "plots/x.png"); False when nothing was logged."""
    mlf = _rank_zero_logger(trainer)
    if mlf is None:
        return False
    mlf.experiment.log_figure(mlf.run_id, figure, name)
    return True


class MLflowSaveConfig(SaveConfigCallback):
    """Write the resolved config to `<default_root_dir>/<run_label>/config.yaml` and log it to MLflow.

    (Lightning's own callback writes to `trainer.log_dir`, which an MLflow logger with a
    database store does not have.) The analysis notebook reads the run's hyperparameters back
    from this file.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        if trainer.is_global_zero:
            folder = Path(trainer.default_root_dir) / getattr(pl_module, "run_label", "run")
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "config.yaml"
            self.parser.save(self.config, path, overwrite=True, multifile=False)
            log_artifact(trainer, path)
            mlf = mlflow_logger(trainer)
            if mlf is not None:
                mlf.log_hyperparams({"experiment_class": type(pl_module).__name__})
        self.already_saved = True


# ----------------------------------------------------------------------------- reading runs back


def client_for(uri: str, timeout_s: float = 5.0) -> Any:
    """An MlflowClient, after checking that a server URI answers (instead of retrying for minutes)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(timeout_s)))
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as r:
                if r.status != 200:
                    raise ConnectionError(f"status {r.status}")
        except OSError as err:
            raise ConnectionError(f"MLflow tracking server {uri} does not answer ({err})") from err
    import mlflow

    return mlflow.MlflowClient(uri)


def run_location(trainer: pl.Trainer) -> tuple[str, str] | None:
    """(tracking URI, run id) of the trainer's MLflow run on rank 0 (None elsewhere or without one).

    What a caller needs to read the run back (`metric_history`) after `fit` / `test` returned.
    """
    mlf = _rank_zero_logger(trainer)
    return None if mlf is None else (mlf.experiment.tracking_uri, mlf.run_id)


def metric_history(tracking_uri: str, run_id: str, prefix: str = "train/") -> dict[str, list[tuple[int, float]]]:
    """{metric: [(step, value), ...]} for every metric of the run starting with `prefix`."""
    client = client_for(tracking_uri)
    run = client.get_run(run_id)
    return {
        k: [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, k), key=lambda m: m.step)]
        for k in sorted(run.data.metrics)
        if k.startswith(prefix)
    }


def find_runs(
    client: Any, run_id: str | None, experiment: str | None, name: str | None = None, tags: dict[str, str] | None = None
) -> list[Any]:
    from mlflow.exceptions import MlflowException

    if run_id:
        try:
            return [client.get_run(run_id)]
        except MlflowException as err:
            raise BadInput(f"--run-id {run_id}: no such run in {client.tracking_uri}") from err
    if not experiment:
        raise BadInput("give a run id (--run-id) or an experiment name (--experiment)")
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise BadInput(f"--experiment {experiment}: no such experiment in {client.tracking_uri}")
    filters = [f"tags.mlflow.runName = '{name}'"] if name else []
    filters += [f"tags.`{k}` = '{v}'" for k, v in (tags or {}).items()]
    runs = client.search_runs([exp.experiment_id], filter_string=" and ".join(filters), max_results=10_000)
    if not runs:
        raise BadInput(f"--experiment {experiment}: no runs match {filters or 'anything'}")
    return runs


def export_run(client: Any, run: Any, out: Path) -> Path:
    """Params, metric histories (CSV), tags and artifacts of one run into `<out>/<name>-<id8>/`.

    Written as `<...>.partial` and renamed at the end, so a failed export never looks complete.
    """
    from mlflow.artifacts import download_artifacts

    label = run.info.run_name or run.info.run_id
    final = out / f"{label}-{run.info.run_id[:8]}"
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "run.json").write_text(
        json.dumps(
            {
                "run_id": run.info.run_id,
                "run_name": run.info.run_name,
                "experiment_id": run.info.experiment_id,
                "status": run.info.status,
                "start_time": run.info.start_time,
                "end_time": run.info.end_time,
                "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.log-model")},
            },
            indent=1,
        )
    )
    (partial / "params.json").write_text(json.dumps(run.data.params, indent=1, sort_keys=True))
    (partial / "metrics").mkdir()
    for key in sorted(run.data.metrics):
        with open(partial / "metrics" / (key.replace("/", "__") + ".csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", "timestamp", "value"])
            for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: (m.step, m.timestamp)):
                w.writerow([m.step, m.timestamp, m.value])
    if client.list_artifacts(run.info.run_id):
        download_artifacts(
            run_id=run.info.run_id, dst_path=str(partial / "artifacts"), tracking_uri=client.tracking_uri
        )
    (partial / "EXPORT_COMPLETE").write_text("ok\n")
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    return final
