"""Learning-rate schedule that follows the run: linear warm-up, then cosine decay to the run's last step.

A schedule written for a fixed number of steps stops matching as soon as an overlay changes
`trainer.max_steps` (the local overlay runs 24 steps, the VESSL one 2000): `WarmupCosine` takes
its length from the run itself (`MTPModule.configure_optimizers` passes the trainer's number of
optimizer steps), so every experiment under one budget gets the same schedule.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """LR multiplier at optimizer step `step` (0-based): (step+1)/warmup during warm-up, then a cosine
    from 1 down to `min_ratio` at the last step (`total_steps − 1`); `min_ratio` past the end."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(total_steps - 1 - warmup_steps, 1)
    progress = min((step - warmup_steps) / decay_steps, 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class WarmupCosine(LambdaLR):
    """Linear warm-up over `warmup_steps`, then cosine decay to `min_ratio`·lr at the run's last step.

    Args:
        optimizer: the optimizer (LightningCLI passes it).
        warmup_steps: optimizer steps of linear warm-up (clipped to the run's length).
        min_ratio: final learning rate as a fraction of the peak.
        total_steps: length of the run in optimizer steps; leave unset: the module sets it from
            the trainer (`max_steps`, or the estimated number of steps of an epoch-based run).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int = 0,
        min_ratio: float = 0.1,
        total_steps: int | None = None,
    ):
        if warmup_steps < 0 or not 0.0 <= min_ratio <= 1.0:
            raise ValueError(
                f"WarmupCosine: need warmup_steps >= 0 and 0 <= min_ratio <= 1, got {warmup_steps}, {min_ratio}"
            )
        self.warmup_steps, self.min_ratio, self.total_steps = warmup_steps, min_ratio, total_steps
        super().__init__(optimizer, self.multiplier)

    def multiplier(self, step: int) -> float:
        if self.total_steps is None:
            if step == 0:  # LambdaLR evaluates step 0 while it is built, before the run's length is set
                return 1 / self.warmup_steps if self.warmup_steps else 1.0
            raise RuntimeError("WarmupCosine.total_steps is unset: MTPModule.configure_optimizers sets it from the run")
        warmup = min(self.warmup_steps, max(self.total_steps - 1, 0))
        return warmup_cosine(step, warmup, self.total_steps, self.min_ratio)

    def set_total_steps(self, total_steps: int) -> None:
        """Fix the run's length and recompute the current learning rate from it."""
        self.total_steps = total_steps
        for group, base, lr_lambda in zip(self.optimizer.param_groups, self.base_lrs, self.lr_lambdas):
            group["lr"] = base * lr_lambda(self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
