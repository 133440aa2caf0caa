"""Export MLflow runs to a folder: params, metric histories (CSV), config, plots, model.

Each run goes to `<out>/<run name or id>/` written first as `<...>.partial` and renamed at the
end, so an export that fails half way never looks complete.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any


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


def find_runs(
    client: Any, run_id: str | None, experiment: str | None, name: str | None = None, tags: dict[str, str] | None = None
) -> list[Any]:
    from mlflow.exceptions import MlflowException

    if run_id:
        try:
            return [client.get_run(run_id)]
        except MlflowException as err:
            raise ValueError(f"run {run_id!r} does not exist in {client.tracking_uri}") from err
    if not experiment:
        raise ValueError("give a run id or an experiment name")
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ValueError(f"experiment {experiment!r} does not exist in {client.tracking_uri}")
    filters = [f"tags.mlflow.runName = '{name}'"] if name else []
    filters += [f"tags.`{k}` = '{v}'" for k, v in (tags or {}).items()]
    runs = client.search_runs([exp.experiment_id], filter_string=" and ".join(filters), max_results=10_000)
    if not runs:
        raise ValueError(f"no runs in experiment {experiment!r} match {filters or 'anything'}")
    return runs


def export_run(client: Any, run: Any, out: Path) -> Path:
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
