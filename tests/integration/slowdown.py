"""A test-only callback that makes each training step take a while, so a test can kill a run mid-way."""

from __future__ import annotations

import time

import lightning.pytorch as pl


class SlowDown(pl.Callback):
    def __init__(self, seconds: float = 0.5):
        self.seconds = seconds

    def on_train_batch_start(self, *args, **kwargs) -> None:
        time.sleep(self.seconds)
