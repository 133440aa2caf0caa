"""Benchmarks, sandboxed execution, generation (with self-speculative decoding) and pass@k.

Heavy members (Lightning modules) are imported lazily (PEP 562): `scripts/score_samples.py` uses
benchmarks + sandbox + pass@k without importing torch or Lightning.
"""

from typing import Any

__all__ = ["EvalDataModule"]


def __getattr__(name: str) -> Any:
    if name == "EvalDataModule":
        from wmtp_lightning.evaluation.datamodule import EvalDataModule

        return EvalDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
