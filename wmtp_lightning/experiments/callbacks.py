"""Callbacks: export the trained model as a bundle, plot token weights, log the config to MLflow."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import MLFlowLogger

from wmtp_lightning.experiments.plots import token_heatmap, weight_histogram
from wmtp_lightning.models.bundle import save_bundle, tokenizer_path
from wmtp_lightning.models.transformer import Transformer

log = logging.getLogger(__name__)


def mlflow_logger(trainer: pl.Trainer) -> MLFlowLogger | None:
    for lg in trainer.loggers:
        if isinstance(lg, MLFlowLogger):
            return lg
    return None


def full_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole, unsharded state dict on CPU (every rank must call this under FSDP)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


class ExportBundle(pl.Callback):
    """At the end of `fit`, write the policy as a bundle (+ the value head, if any) and log it to MLflow.

    Args:
        dirpath: output folder; `wmtp` sets `<default_root_dir>/<experiment>/export`, else
            `<default_root_dir>/export`.
        dtype: dtype of the exported weights (default: as trained).
    """

    def __init__(self, dirpath: str | None = None, dtype: str | None = None):
        self.dirpath = dirpath
        self.dtype = dtype
        self.exported: Path | None = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        state = full_state_dict(pl_module.model)  # collective: all ranks
        value_head = pl_module.value_head_state() if hasattr(pl_module, "value_head_state") else None
        if not trainer.is_global_zero:
            return
        out = Path(self.dirpath or Path(trainer.default_root_dir) / "export")
        with torch.device("meta"):
            model = Transformer(pl_module.args)
        model.load_state_dict(state, assign=True)
        src = pl_module.hparams.get("model")
        tokenizer = tokenizer_path(src) if src else None
        save_bundle(
            model,
            out,
            tokenizer=tokenizer,
            dtype=self.dtype,
            source={
                "kind": "trained",
                "experiment": type(pl_module).__name__,
                "from": src,
                "global_step": trainer.global_step,
            },
        )
        if value_head is not None:
            value_head.save(out / "value_head" / "value_head.safetensors")
        self.exported = out
        log.info("exported the trained model to %s", out)
        mlf = mlflow_logger(trainer)
        if mlf is not None:
            mlf.experiment.log_artifacts(mlf.run_id, str(out), artifact_path="model")


class WeightPlots(pl.Callback):
    """Every `every_n_steps` training steps, log a weight histogram and a token heat map to MLflow."""

    def __init__(self, every_n_steps: int = 50, max_tokens: int = 400):
        self.every_n_steps = every_n_steps
        self.max_tokens = max_tokens

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: dict[str, torch.Tensor],
        batch_idx: int,
    ) -> None:
        last = getattr(pl_module, "_last_weights", None)
        mlf = mlflow_logger(trainer)
        if (
            last is None
            or mlf is None
            or not trainer.is_global_zero
            or self.every_n_steps <= 0
            or trainer.global_step % self.every_n_steps
        ):
            return
        import matplotlib.pyplot as plt

        tokens, w, mask = (t.detach().cpu() for t in last)
        correct = batch["is_correct"].detach().cpu().bool()
        groups = {"correct": w[correct][mask[correct]].numpy(), "incorrect": w[~correct][mask[~correct]].numpy()}
        step = trainer.global_step
        fig = weight_histogram(groups, title=f"{type(pl_module).__name__} token weights, step {step}")
        mlf.experiment.log_figure(mlf.run_id, fig, f"plots/weights_hist_step{step:06d}.png")
        plt.close(fig)
        tok = trainer.datamodule.tokenizer if trainer.datamodule is not None else None
        if tok is None:
            return
        row = 0
        sel = mask[row].nonzero().flatten()[: self.max_tokens]
        pieces = [tok.piece_text(int(tokens[row, j])) for j in sel]
        fig = token_heatmap(pieces, w[row, sel].tolist(), title=f"row 0 (correct={bool(correct[row])}), step {step}")
        mlf.experiment.log_figure(mlf.run_id, fig, f"plots/weights_heatmap_step{step:06d}.png")
        plt.close(fig)


class MLflowSaveConfig(SaveConfigCallback):
    """Write the resolved config to `<default_root_dir>/<run_label>/config.yaml` and log it to MLflow.

    (Lightning's own callback writes to `trainer.log_dir`, which an MLflow logger with a
    database store does not have.)
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        if trainer.is_global_zero:
            folder = Path(trainer.default_root_dir) / getattr(pl_module, "run_label", "run")
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "config.yaml"
            self.parser.save(self.config, path, overwrite=True, multifile=False)
            mlf = mlflow_logger(trainer)
            if mlf is not None:
                mlf.experiment.log_artifact(mlf.run_id, str(path))
                mlf.log_hyperparams({"experiment_class": type(pl_module).__name__})
        self.already_saved = True
