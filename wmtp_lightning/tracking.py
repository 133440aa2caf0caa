"""MLflow set-up: a local SQLite store by default, a server when MLFLOW_TRACKING_URI (or .env) says so."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger

DEFAULT_STORE = "storage/mlflow.db"
DEFAULT_ARTIFACTS = "storage/mlartifacts"


def load_dotenv(path: str | Path = ".env", override: bool = False) -> dict[str, str]:
    """Read KEY=VALUE lines (comments, blank lines and `export ` prefixes allowed) into os.environ."""
    path = Path(path)
    loaded: dict[str, str] = {}
    if not path.is_file():
        return loaded
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        if "=" not in line:
            raise ValueError(f"{path}:{lineno}: expected KEY=VALUE, got {raw!r}")
        key, value = (x.strip() for x in line.split("=", 1))
        value = value.strip("'\"")
        loaded[key] = value
        if override or key not in os.environ:
            os.environ[key] = value
    return loaded


def resolve_tracking_uri(uri: str | None = None, env_file: str | Path = ".env") -> str:
    """Explicit argument > MLFLOW_TRACKING_URI (environment or .env) > local SQLite under storage/."""
    if uri:
        return uri
    load_dotenv(env_file)
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
