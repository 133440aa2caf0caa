"""CodeContests conversion, the binary index, samplers, collate and the training DataModule."""

from wmtp_lightning.data.datamodule import WMTPDataModule

__all__ = ["WMTPDataModule"]
