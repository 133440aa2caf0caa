from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _mlflow_store(tmp_path_factory):
    """One local MLflow store for the in-process CLI runs of this package (a new SQLite DB costs ~4 s)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}")
    yield
    mp.undo()
