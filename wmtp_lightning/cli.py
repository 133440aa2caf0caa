"""`wmtp`: the LightningCLI entry point (fit / validate / test / predict), and `wmtp compare`.

    wmtp fit --config configs/verifiable.yaml [--config configs/local.yaml] [--trainer.max_steps 10]
    wmtp compare --overlay configs/local.yaml --overlay configs/local_rho1.yaml   # see compare/command.py

Any LightningModule / DataModule of the package can be selected by class path in a config.
`main(args)` runs in-process (tests use it). The console script reports any error as one line
(`wmtp: error: <what is wrong>`, exit 1; config errors exit 2); `--debug` or `WMTP_DEBUG=1` gives
the full traceback instead.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings

import lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI

from wmtp_lightning.tracking import MLflowSaveConfig

for _msg in (".*LeafSpec.*", ".*does not have many workers.*", ".*sqlalchemy.*"):
    warnings.filterwarnings("ignore", message=_msg)


class WMTPCLI(LightningCLI):
    def __init__(self, args: list[str] | None = None, run: bool = True, exit_on_error: bool = True):
        super().__init__(
            model_class=pl.LightningModule,
            datamodule_class=pl.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=MLflowSaveConfig,
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            parser_kwargs={
                "exit_on_error": exit_on_error,
                "description": "wmtp fit|validate|test|predict (LightningCLI); wmtp compare --help: "
                "the three experiments as one controlled comparison",
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


def main(args: list[str] | None = None, run: bool = True, exit_on_error: bool = True) -> WMTPCLI:
    """Run the CLI on `args` (default: sys.argv) and return it (tests inspect `.trainer`, `.model`).

    exit_on_error: False raises config errors (`jsonargparse.ArgumentError`) instead of printing
    the parser's usage and exiting.
    """
    _package_logging()
    return WMTPCLI(args=args, run=run, exit_on_error=exit_on_error)


_BOILERPLATE = (
    "Does not validate against any of the Union subtypes",
    "Subtypes:",
    "Errors:",
    "Given value type:",
    "Given value:",
    "- Expected a <class 'NoneType'>",
    "Problem with given class_path",
)


def one_line(err: BaseException) -> str:
    """The message of the error that started it all, on one line.

    jsonargparse wraps an error raised while a class is built (e.g. "model bundle not found")
    in a union error that ends with a dump of the whole namespace; the root cause is what the
    user needs, with the config key it belongs to ('Parser key "x"') when there is one.
    """
    root = err
    while root.__cause__ is not None:
        root = root.__cause__
    key, kept = None, []
    for is_root, text in ((root is err, str(err)), (root is not err, str(root))):
        for ln in (ln.strip() for ln in text.splitlines()):
            m = re.match(r'^Parser key "([^"]+)":\s*(.*)$', ln)
            if m:
                key = key or f'Parser key "{m.group(1)}"'
                ln = m.group(2)
            if is_root and ln and not ln.startswith(_BOILERPLATE):
                kept.append(_undouble(ln.removeprefix("- ")))
    message = "; ".join(dict.fromkeys(kept)) or type(root).__name__
    return f"{key}: {message}" if key else message


def _undouble(line: str) -> str:
    """'X: X' -> 'X' (jsonargparse repeats some messages after their own key)."""
    for i in range(len(line)):
        if line.startswith(": ", i) and line[:i] == line[i + 2 :]:
            return line[:i]
    return line


def entrypoint() -> None:
    """The `wmtp` console script: errors as one line, tracebacks only with --debug / WMTP_DEBUG=1.

    `wmtp compare ...` runs the comparison (its own one-line errors); anything else is LightningCLI.
    """
    from jsonargparse import ArgumentError

    if sys.argv[1:2] == ["compare"]:
        from wmtp_lightning.compare.command import main as compare

        raise SystemExit(compare(sys.argv[2:]))
    argv = sys.argv[1:]
    debug = "--debug" in argv or os.environ.get("WMTP_DEBUG", "") not in ("", "0")
    sys.argv = [sys.argv[0], *(a for a in argv if a != "--debug")]
    if debug:
        main()
        return
    try:
        main(exit_on_error=False)
    except ArgumentError as err:
        sub = sys.argv[1] if len(sys.argv) > 1 else ""
        print(f"wmtp: error: {one_line(err)} (see `wmtp {sub} --help`)", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as err:
        print(f"wmtp: error: {one_line(err)} [WMTP_DEBUG=1 for the traceback]", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    entrypoint()
