"""CodeContests conversion, the binary index, samplers, collate and the training DataModule.

`WMTPDataModule` is imported lazily (PEP 562) so that light users of this package (the sample
scorer, the validator) never pay for importing torch and Lightning.
"""

from typing import Any

__all__ = ["WMTPDataModule"]


def __getattr__(name: str) -> Any:
    if name == "WMTPDataModule":
        from wmtp_lightning.data.datamodule import WMTPDataModule

        return WMTPDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
