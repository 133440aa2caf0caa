"""Benchmarks, sandboxed execution, generation (with self-speculative decoding) and pass@k."""

from wmtp_lightning.evaluation.datamodule import EvalDataModule

__all__ = ["EvalDataModule"]
