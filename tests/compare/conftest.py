from __future__ import annotations

from tests.experiments.conftest import _mlflow_store  # noqa: F401  (one local MLflow store for in-process runs)
