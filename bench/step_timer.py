"""A Lightning callback that times each training step, for benches that run the real `wmtp fit`.

A bench puts it in a fit config by class path (`class_path: step_timer.StepTimer`, with `bench/`
on `sys.path`, as it is for any `python bench/<script>.py`) and reads it back from
`cli.trainer.callbacks` after `wmtp_lightning.cli.main([...])` returns.
"""

from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl
import torch


class StepTimer(pl.Callback):
    """Wall time, tokens and loss of every training step (optimizer step included), and peak CUDA memory."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.tokens: list[int] = []
        self.losses: list[float] = []
        self.peak_cuda_mb: float | None = None
        self._start = 0.0

    def _sync(self, trainer: pl.Trainer) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int):
        self._sync(trainer)
        self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ):
        self._sync(trainer)
        self.seconds.append(time.perf_counter() - self._start)
        self.tokens.append(int(batch["input_ids"].numel()))
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss) if loss is not None else float("nan"))
        if trainer.strategy.root_device.type == "cuda":
            self.peak_cuda_mb = torch.cuda.max_memory_allocated() / 2**20
