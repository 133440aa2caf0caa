"""The training DataModule: index -> selection -> sampler -> dataset -> collator (wiring only)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
from torch.utils.data import DataLoader

from wmtp_lightning.data.collate import MTPCollator
from wmtp_lightning.data.dataset import BadLineError, IndexedJsonlDataset
from wmtp_lightning.data.index import load_index
from wmtp_lightning.data.samplers import (
    DEFAULT_SCHEDULE,
    Phase,
    SelectionSampler,
    select_balanced,
    select_correct,
    select_curriculum,
)
from wmtp_lightning.data.schema import DEFAULT_BINS, check_bins
from wmtp_lightning.data.validate import validate_manifest
from wmtp_lightning.models.tokenizer import Tokenizer

log = logging.getLogger(__name__)

Sampling = Literal["correct", "balanced", "curriculum", "all"]


def processed_dir(data_dir: str | Path) -> Path:
    root = Path(data_dir)
    if (root / "processed").is_dir():
        return root / "processed"
    if root.is_dir():
        return root
    raise FileNotFoundError(f"dataset directory not found: {root} (make it with scripts/setup_datasets.py)")


class WMTPDataModule(pl.LightningDataModule):
    """Processed CodeContests splits for MTP training.

    Args:
        data_dir: dataset root (with `processed/`) or the processed folder itself.
        tokenizer: the policy's tokenizer: a bundle's `tokenizer/` folder, or a tokenizer.model / tokenizer.json.
        sampling: "correct" (baseline, Rho-1), "balanced" (critic stage 1), "curriculum" (stage 2),
            or "all" (every line, shuffled).
        n_samples: training lines to select (the run's data plan; progress = position / n_samples).
        seed: selection seed; the same seed gives the same lines in the same order.
        correct_ratio: share of correct solutions for "balanced"; for "curriculum", None keeps
            the natural mix.
        difficulty_range: inclusive [lo, hi] filter for "correct" / "balanced".
        difficulty_field: "difficulty" (CodeContests enum) or "cf_rating" (bins in rating units).
        bins: name -> inclusive [lo, hi] over `difficulty_field`.
        difficulty_schedule: curriculum phases (start, end, weights per bin).
        val_samples: validation lines (a seeded random subset of the validation split, all labels).
        val_sampling: "all" (correct and incorrect: needed for value AUC) or "correct".
        batch_size / val_batch_size: rows per device per step.
        max_length / truncate / pad_to_multiple_of: see `MTPCollator`.
        num_workers / pin_memory / prefetch_factor / persistent_workers: DataLoader settings.
        validate: "selected" checks every selected line at set-up, "full" also each file's sha256
            against the manifest, "none" skips checks (lines are still checked when read).
        skip_bad_lines: drop lines that fail validation (counted and logged) instead of refusing.
        train_split / val_split: file stems under the processed folder.
    """

    def __init__(
        self,
        data_dir: str,
        tokenizer: str,
        sampling: Sampling = "correct",
        n_samples: int = 1000,
        seed: int = 0,
        correct_ratio: float | None = 0.5,
        difficulty_range: tuple[int, int] | None = None,
        difficulty_field: Literal["difficulty", "cf_rating"] = "difficulty",
        bins: dict[str, tuple[int, int]] | None = None,
        difficulty_schedule: list[Phase] | None = None,
        val_samples: int = 64,
        val_sampling: Literal["all", "correct"] = "all",
        batch_size: int = 2,
        val_batch_size: int | None = None,
        max_length: int = 2048,
        truncate: bool = False,
        pad_to_multiple_of: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        validate: Literal["selected", "full", "none"] = "selected",
        skip_bad_lines: bool = False,
        train_split: str = "train",
        val_split: str = "valid",
    ):
        super().__init__()
        self.save_hyperparameters()
        self.bins = check_bins(bins or DEFAULT_BINS)
        self.schedule = list(difficulty_schedule or DEFAULT_SCHEDULE)
        self.tokenizer = Tokenizer(tokenizer)
        self.collator = MTPCollator(self.tokenizer, max_length, truncate, pad_to_multiple_of)
        self.train_sampler: SelectionSampler | None = None
        self.val_lines: np.ndarray | None = None
        self._pending_state: dict[str, Any] | None = None
        self.bad_lines = 0

    # ------------------------------------------------------------------ selection
    def select_train(self, index: np.ndarray) -> np.ndarray:
        h = self.hparams
        if h.sampling == "correct":
            return select_correct(index, h.n_samples, h.seed, h.difficulty_range, h.difficulty_field)
        if h.sampling == "balanced":
            return select_balanced(
                index,
                h.n_samples,
                h.seed,
                0.5 if h.correct_ratio is None else h.correct_ratio,
                h.difficulty_range,
                h.difficulty_field,
            )
        if h.sampling == "curriculum":
            return select_curriculum(
                index, h.n_samples, h.seed, self.schedule, self.bins, h.difficulty_field, h.correct_ratio
            )
        return np.random.default_rng(h.seed).permutation(len(index))[: h.n_samples]

    def _check_lines(self, ds: IndexedJsonlDataset, lines: np.ndarray) -> int:
        bad = []
        for line in np.unique(lines).tolist():
            try:
                ds.read(line)
            except BadLineError as err:
                bad.append(str(err))
        if bad and not self.hparams.skip_bad_lines:
            shown = "\n  ".join(bad[:10])
            raise ValueError(
                f"{len(bad)} selected line(s) fail validation (set skip_bad_lines=true to drop them):\n  {shown}"
            )
        if bad:
            log.warning("skipping %d bad line(s) of %s; first: %s", len(bad), ds.path, bad[0])
        return len(bad)

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        folder = processed_dir(h.data_dir)
        if h.validate == "full":
            problems = validate_manifest(folder)
            if problems:
                raise ValueError(f"{folder} fails validation:\n  " + "\n  ".join(problems[:20]))
        rank = self.trainer.global_rank if self.trainer else 0
        world = self.trainer.world_size if self.trainer else 1
        if world > 1 and self.trainer is not None and self.trainer._accelerator_connector.use_distributed_sampler:
            raise ValueError(
                "WMTPDataModule shards data itself (samples[rank::world_size]); set "
                "trainer.use_distributed_sampler: false"
            )
        if stage in (None, "fit") and self.train_sampler is None:
            path = folder / f"{h.train_split}.jsonl"
            index = load_index(path)
            selection = self.select_train(index)
            self.train_ds = IndexedJsonlDataset(path, index, h.skip_bad_lines)
            if h.validate != "none":
                self.bad_lines += self._check_lines(self.train_ds, selection)
            self.train_sampler = SelectionSampler(selection, rank, world)
            if self._pending_state is not None:
                self.train_sampler.load_state_dict(self._pending_state)
                self._pending_state = None
            log.info(
                "train: %d lines selected (%s), %d on rank %d",
                len(selection),
                h.sampling,
                len(self.train_sampler.lines),
                rank,
            )
        if stage in (None, "fit", "validate") and self.val_lines is None:
            path = folder / f"{h.val_split}.jsonl"
            index = load_index(path)
            pool = len(index) if h.val_sampling == "all" else np.flatnonzero(index["is_correct"])
            size = min(h.val_samples, pool if isinstance(pool, int) else len(pool))
            lines = np.sort(np.random.default_rng(h.seed).choice(pool, size=size, replace=False))  # O(size) memory
            self.val_ds = IndexedJsonlDataset(path, index, h.skip_bad_lines)
            if h.validate != "none":
                self.bad_lines += self._check_lines(self.val_ds, lines)
            self.val_lines = lines[rank::world]

    # ------------------------------------------------------------------ loaders
    def _loader(self, ds: IndexedJsonlDataset, sampler: Any, batch_size: int) -> DataLoader:
        h = self.hparams
        extra = {"prefetch_factor": h.prefetch_factor} if h.num_workers > 0 and h.prefetch_factor else {}
        return DataLoader(
            ds,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=self.collator,
            num_workers=h.num_workers,
            pin_memory=h.pin_memory,
            persistent_workers=h.persistent_workers and h.num_workers > 0,
            **extra,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_ds, self.train_sampler, self.hparams.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader(
            self.val_ds, self.val_lines.tolist(), self.hparams.val_batch_size or self.hparams.batch_size
        )

    # ------------------------------------------------------------------ resume
    def advance(self, n_items: int) -> None:
        """Called by the LightningModule after a training batch of `n_items` has been trained."""
        if self.train_sampler is not None:
            self.train_sampler.advance(n_items)

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.train_sampler.state_dict()} if self.train_sampler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "sampler" not in state:
            return
        if self.train_sampler is not None:
            self.train_sampler.load_state_dict(state["sampler"])
        else:  # restored before setup(): apply once the selection exists
            self._pending_state = state["sampler"]
