"""Run a short 2-process CPU training (launched by test_distributed.py, never by pytest itself).

    python tests/integration/dist_train.py STRATEGY OUT_DIR BUNDLE DATA_DIR TOKENIZER [sequential]
    python tests/integration/dist_train.py step OUT_DIR BUNDLE DATA_DIR TOKENIZER

STRATEGY is "ddp" or "fsdp2" (Lightning ModelParallelStrategy with fully_shard in configure_model).
Each rank writes the dataset lines it trained on and its losses to OUT_DIR/rank{r}.json.
"step": one SGD step (lr 1) of BaselineMTP under FSDP2 with 2 ranks × 2 accumulated micro-batches
of 1 row; rank 0 saves the change of every parameter to OUT_DIR/update.pt (for the split test).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch

from wmtp_lightning.data import WMTPDataModule
from wmtp_lightning.experiments import VerifiableCriticMTP
from wmtp_lightning.experiments.callbacks import ExportBundle
from wmtp_lightning.tracking import WMTPMLFlowLogger


class Record(pl.Callback):
    def __init__(self) -> None:
        self.lines: list[int] = []
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.lines += batch["index"].tolist()
        self.losses.append(float(outputs["loss"]))


def one_step(out: Path, bundle: str, data_dir: str, tokenizer: str) -> None:
    from lightning.pytorch.strategies import ModelParallelStrategy

    from wmtp_lightning.experiments import BaselineMTP
    from wmtp_lightning.experiments.callbacks import full_state_dict

    pl.seed_everything(0, verbose=False)
    model = BaselineMTP(model=bundle, optimizer=lambda p: torch.optim.SGD(p, lr=1.0))
    dm = WMTPDataModule(data_dir, tokenizer, sampling="correct", batch_size=1, val_samples=2, val_incorrect_samples=2)

    class Snapshot(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            self.before = full_state_dict(pl_module.model)  # collective: every rank

        def on_train_end(self, trainer, pl_module):
            after = full_state_dict(pl_module.model)
            if trainer.is_global_zero:
                torch.save({k: after[k] - self.before[k] for k in after}, out / "update.pt")

    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1),
        max_steps=1,
        accumulate_grad_batches=2,
        precision="32-true",
        logger=False,
        callbacks=[Snapshot()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        default_root_dir=str(out),
    )
    trainer.fit(model, dm)


def main() -> None:
    strategy_name, out, bundle, data_dir, tokenizer = sys.argv[1:6]
    if strategy_name == "step":
        Path(out).mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(1)
        one_step(Path(out), bundle, data_dir, tokenizer)
        return
    sequential = sys.argv[6:7] == ["sequential"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if strategy_name == "ddp":
        strategy = "ddp"
    else:
        from lightning.pytorch.strategies import ModelParallelStrategy

        strategy = ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1)
    model = VerifiableCriticMTP(
        model=bundle,
        sequential_heads=sequential,
        stage=2,
        value_head=None,
        beta=0.9,
        optimizer=lambda p: torch.optim.AdamW(p, lr=3e-3),
    )
    dm = WMTPDataModule(data_dir, tokenizer, sampling="curriculum", correct_ratio=None, val_samples=4, batch_size=4)
    record = Record()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=strategy,
        max_steps=6,
        precision="32-true",
        logger=WMTPMLFlowLogger(experiment_name="dist"),
        callbacks=[record, ExportBundle(str(out / "export"))],
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        log_every_n_steps=1,
        gradient_clip_val=1.0,
        default_root_dir=str(out),
    )
    trainer.fit(model, dm)
    rank = trainer.global_rank
    (out / f"rank{rank}.json").write_text(
        json.dumps({"lines": record.lines, "losses": record.losses, "world": trainer.world_size})
    )


if __name__ == "__main__":
    main()
