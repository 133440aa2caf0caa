"""Training callbacks: export the trained model as a bundle, plot token weights (both logged to MLflow)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from wmtp_lightning.experiments.base import MTPModule
from wmtp_lightning.experiments.plots import token_heatmap, weight_histogram
from wmtp_lightning.models.bundle import save_bundle, tokenizer_path
from wmtp_lightning.models.transformer import Transformer
from wmtp_lightning.tracking import log_artifacts, log_figure

log = logging.getLogger(__name__)


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

    def on_fit_end(self, trainer: pl.Trainer, pl_module: MTPModule) -> None:
        state = full_state_dict(pl_module.model)  # collective: all ranks
        extras = pl_module.export_extras()  # collective too
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
        for name, module in extras.items():
            module.save(out / name / f"{name}.safetensors")
        self.exported = out
        log.info("exported the trained model to %s", out)
        log_artifacts(trainer, out, artifact_path="model")


class WeightPlots(pl.Callback):
    """Every `every_n_steps` training steps, log a weight histogram and a token heat map to MLflow.

    Reads the step's `token_weights` / `token_mask` from the training step's outputs (see
    `MTPModule.training_step`); experiments without one weight per token (baseline, per-head
    variants) have none and get no plot.
    """

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
        w = outputs.get("token_weights") if isinstance(outputs, dict) else None
        if w is None or self.every_n_steps <= 0 or trainer.global_step % self.every_n_steps:
            return
        import matplotlib.pyplot as plt

        w, mask = w.detach().cpu(), outputs["token_mask"].detach().cpu().bool()
        tokens = batch["input_ids"].detach().cpu()
        correct = batch["is_correct"].detach().cpu().bool()
        groups = {"correct": w[correct][mask[correct]].numpy(), "incorrect": w[~correct][mask[~correct]].numpy()}
        step = trainer.global_step
        fig = weight_histogram(groups, title=f"{type(pl_module).__name__} token weights, step {step}")
        logged = log_figure(trainer, fig, f"plots/weights_hist_step{step:06d}.png")
        plt.close(fig)
        tok = getattr(trainer.datamodule, "tokenizer", None)
        if not logged or tok is None:
            return
        row = 0
        sel = mask[row].nonzero().flatten()[: self.max_tokens]
        pieces = [tok.piece_text(int(tokens[row, j])) for j in sel]
        fig = token_heatmap(pieces, w[row, sel].tolist(), title=f"row 0 (correct={bool(correct[row])}), step {step}")
        log_figure(trainer, fig, f"plots/weights_heatmap_step{step:06d}.png")
        plt.close(fig)
