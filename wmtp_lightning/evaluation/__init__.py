"""Benchmarks, sandboxed execution, generation (with self-speculative decoding) and pass@k.

`EvalMTP` (the evaluation LightningModule) and `EvalDataModule` are imported lazily (PEP 562):
`scripts/score_samples.py` uses benchmarks + sandbox + pass@k without importing torch or Lightning.
"""

from typing import Any

__all__ = ["EvalDataModule", "EvalMTP"]


def __getattr__(name: str) -> Any:
    if name == "EvalDataModule":
        from wmtp_lightning.evaluation.datamodule import EvalDataModule

        return EvalDataModule
    if name == "EvalMTP":
        from wmtp_lightning.evaluation.module import EvalMTP

        return EvalMTP
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
