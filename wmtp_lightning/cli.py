"""`wmtp`: the LightningCLI entry point (fit / validate / test / predict), and `wmtp compare`.

    wmtp fit --config configs/verifiable.yaml [--config configs/local.yaml] [--trainer.max_steps 10]
    wmtp compare --overlay configs/local.yaml --overlay configs/local_rho1.yaml   # see compare/command.py

Any LightningModule / DataModule of the package can be selected by class path in a config.
`main(args)` runs in-process (tests use it).
"""

from __future__ import annotations

import logging
import sys
import warnings

import lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI

from wmtp_lightning.tracking import MLflowSaveConfig

for _msg in (".*LeafSpec.*", ".*does not have many workers.*", ".*sqlalchemy.*"):
    warnings.filterwarnings("ignore", message=_msg)


class WMTPCLI(LightningCLI):
    def __init__(self, args: list[str] | None = None, run: bool = True):
        super().__init__(
            model_class=pl.LightningModule,
            datamodule_class=pl.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=MLflowSaveConfig,
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            parser_kwargs={
                "description": "wmtp fit|validate|test|predict (LightningCLI); wmtp compare --help: "
                "the three experiments as one controlled comparison"
            },
            args=args,
            run=run,
        )

    def before_fit(self) -> None:
        place_run_outputs(self.trainer, self.model)


def place_run_outputs(trainer: pl.Trainer, module: pl.LightningModule) -> None:
    """Give checkpoints and the export a stable home: `<default_root_dir>/<run_label>/`.

    Lightning's default checkpoint folder depends on the logger's run id, so `--ckpt_path last`
    could never find the previous run's checkpoint; with a fixed folder it does.
    """
    from pathlib import Path

    from lightning.pytorch.callbacks import ModelCheckpoint

    from wmtp_lightning.experiments.callbacks import ExportBundle

    root = Path(trainer.default_root_dir) / getattr(module, "run_label", type(module).__name__.lower())
    for cb in trainer.callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.dirpath is None:
            cb.dirpath = str(root / "checkpoints")
        if isinstance(cb, ExportBundle) and cb.dirpath is None:
            cb.dirpath = str(root / "export")


def _package_logging() -> None:
    pkg = logging.getLogger("wmtp_lightning")
    if not pkg.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[wmtp] %(levelname)s %(name)s: %(message)s"))
        pkg.addHandler(handler)
        pkg.setLevel(logging.INFO)


def main(args: list[str] | None = None, run: bool = True) -> WMTPCLI:
    """Run the CLI on `args` (default: sys.argv) and return it (tests inspect `.trainer`, `.model`)."""
    _package_logging()
    return WMTPCLI(args=args, run=run)


def entrypoint() -> None:
    """The `wmtp` console script: `wmtp compare ...` runs the comparison, anything else is LightningCLI."""
    if sys.argv[1:2] == ["compare"]:
        from wmtp_lightning.compare.command import main as compare

        raise SystemExit(compare(sys.argv[2:]))
    main()


if __name__ == "__main__":
    entrypoint()
