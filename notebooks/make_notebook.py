#!/usr/bin/env python
"""Regenerate notebooks/analyze_weights.ipynb (kept as code here so the notebook diff stays reviewable).

python notebooks/make_notebook.py
"""

from pathlib import Path

import nbformat as nbf

CELLS = [
    (
        "md",
        """# Token weights of a WMTP run

Loads an MLflow run and the model it exported, then shows what the weighting did: token-weight heat
maps over code, TD-error / weight histograms for correct vs incorrect solutions, per-head loss
curves, and Rho-1 selected-token maps. Set the inputs with environment variables (defaults: the
local demo's outputs):

| variable | meaning |
|---|---|
| `WMTP_RUN_ID` | MLflow run id (default: the latest run of experiment `wmtp`) |
| `MLFLOW_TRACKING_URI` | tracking store (default: `sqlite:///storage/mlflow.db`) |
| `WMTP_EXPORT` | exported bundle with `value_head/` (default: `storage/runs/local/verifiable_stage2/export`) |
| `WMTP_DATA` | processed dataset (default: `storage/datasets_local_small`) |
| `WMTP_REF` | reference bundle for Rho-1 maps (default: `storage/models_v2/micro-ref`) |
| `WMTP_RHO1_CONFIG` | a Rho-1 run's `config.yaml` for its ratio/score/mode (default: ratio 0.6, token, hard) |""",
    ),
    (
        "code",
        """import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from wmtp_lightning.experiments.analysis import critic_token_weights, load_samples, rho1_selection, run_hparams
from wmtp_lightning.experiments.plots import token_heatmap, weight_histogram
from wmtp_lightning.tracking import metric_history, resolve_tracking_uri

ROOT = Path(os.environ.get("WMTP_ROOT", ".")).resolve()
URI = resolve_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI"))
EXPORT = Path(os.environ.get("WMTP_EXPORT", ROOT / "storage/runs/local/verifiable_stage2/export"))
DATA = Path(os.environ.get("WMTP_DATA", ROOT / "storage/datasets_local_small"))
REF = Path(os.environ.get("WMTP_REF", ROOT / "storage/models_v2/micro-ref"))
RUN_ID = os.environ.get("WMTP_RUN_ID")
if not RUN_ID:
    import mlflow
    client = mlflow.MlflowClient(URI)
    RUN_ID = client.search_runs([client.get_experiment_by_name("wmtp").experiment_id], order_by=["attributes.start_time DESC"])[0].info.run_id
print("run", RUN_ID, "| store", URI, "| model", EXPORT)""",
    ),
    ("md", "## Per-head loss curves"),
    (
        "code",
        """history = metric_history(URI, RUN_ID)
heads = sorted(k for k in history if k.startswith("train/loss_head"))
fig, ax = plt.subplots(figsize=(7, 3.5))
for k in heads:
    steps, values = zip(*history[k])
    ax.plot(steps, values, label=k.removeprefix("train/"))
ax.set_xlabel("step"); ax.set_ylabel("weighted CE"); ax.legend(); ax.set_title("per-head MTP loss")
assert heads, "the run logged no per-head losses"
plt.show()""",
    ),
    ("md", "## Token weights over code (critic, w = clamp(exp(δ/β)))"),
    (
        "code",
        """samples = load_samples(DATA, "valid", n=8)
critic = run_hparams(EXPORT.parent / "config.yaml")  # the run's own weighting hyperparameters
print("critic weighting:", {k: critic.get(k) for k in ("beta", "min_weight", "max_weight", "gamma", "td_terminal", "whiten")})
rows = critic_token_weights(EXPORT, EXPORT / "value_head" / "value_head.safetensors", samples, critic)
for r in [next(x for x in rows if x["is_correct"]), next(x for x in rows if not x["is_correct"])]:
    token_heatmap(r["pieces"], r["weight"], title=f"{r['task_id']}  correct={r['is_correct']}")
    plt.show()""",
    ),
    ("md", "## TD errors and weights: correct vs incorrect solutions"),
    (
        "code",
        """fig = weight_histogram({"correct": np.concatenate([r["td"] for r in rows if r["is_correct"]]),
                        "incorrect": np.concatenate([r["td"] for r in rows if not r["is_correct"]])}, title="TD error δ")
plt.show()
fig = weight_histogram({"correct": np.concatenate([r["weight"] for r in rows if r["is_correct"]]),
                        "incorrect": np.concatenate([r["weight"] for r in rows if not r["is_correct"]])}, title="weight w")
plt.show()
summary = {lab: float(np.mean(np.concatenate([r["weight"] for r in rows if r["is_correct"] == lab]))) for lab in (True, False)}
print("mean weight by is_correct:", summary)""",
    ),
    ("md", "## Rho-1 selected tokens (excess loss against the reference; a Rho-1 run's config if given)"),
    (
        "code",
        """RHO1_CONFIG = os.environ.get("WMTP_RHO1_CONFIG")  # e.g. storage/runs/local/rho1/config.yaml
rho1 = run_hparams(RHO1_CONFIG) if RHO1_CONFIG else {"ratio": 0.6, "score": "token", "mode": "hard"}
sel = rho1_selection(EXPORT, REF, samples, rho1)
r = sel[0]
token_heatmap(r["pieces"], [5.0 if w > 0.5 else 0.1 for w in r["weight"]], title=f"Rho-1 selection, {r['task_id']} (red = kept)")
plt.show()
print("kept fraction:", np.mean(np.concatenate([x["weight"] for x in sel])))""",
    ),
]


def main() -> None:
    nb = nbf.v4.new_notebook()
    nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src) for kind, src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbf.write(nb, Path(__file__).with_name("analyze_weights.ipynb"))


if __name__ == "__main__":
    main()
