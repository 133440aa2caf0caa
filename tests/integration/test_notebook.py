"""notebooks/analyze_weights.ipynb runs end to end (nbclient) on a run made like the local demo's."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.integration.helpers import ROOT, fit_args, run

pytestmark = pytest.mark.slow


def test_notebook_executes(tmp_path, tiny_bundle, tiny_ref_bundle, local_dataset, micro_tokenizer_path):
    db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for cfg in ("configs/verifiable_stage1.yaml", "configs/verifiable.yaml"):
        args = fit_args([cfg, "configs/local.yaml"], tmp_path, tiny_bundle, local_dataset, micro_tokenizer_path, 4)
        run(args, timeout=300, MLFLOW_TRACKING_URI=db)
    nb = nbformat.read(ROOT / "notebooks" / "analyze_weights.ipynb", as_version=4)
    env = {
        "MLFLOW_TRACKING_URI": db,
        "WMTP_EXPORT": str(tmp_path / "verifiable_stage2" / "export"),
        "WMTP_DATA": str(local_dataset),
        "WMTP_REF": str(tiny_ref_bundle),
        "WMTP_ROOT": str(ROOT),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits the environment
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) >= 5  # loss curves, 2 heat maps, 2 histograms, (Rho-1 map)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "mean weight by is_correct" in text and "kept fraction" in text
    Path(tmp_path / "executed.ipynb").write_text(nbformat.writes(nb))
