"""The training DataModule: index -> selection -> sampler -> dataset -> collator (wiring only).

It also keeps the sampler's progress itself: a batch counts as consumed when Lightning moves it to
the device for the training step (`on_after_batch_transfer`), not when a loader prefetched it, and
the position is saved in checkpoints through `state_dict`, so a resumed run sees exactly the rest.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from wmtp_lightning.data.collate import MTPCollator, kept_lengths
from wmtp_lightning.data.dataset import BadLineError, IndexedJsonlDataset
from wmtp_lightning.data.index import LEN_MAX, load_index, token_len
from wmtp_lightning.data.manifest import manifest_problems, processed_dir
from wmtp_lightning.data.samplers import (
    DEFAULT_SCHEDULE,
    Phase,
    SelectionSampler,
    line_pools,
    replace_lines,
    select_all,
    select_balanced,
    select_correct,
    select_curriculum,
    step_micro_ids,
)
from wmtp_lightning.data.schema import DEFAULT_BINS, check_bins
from wmtp_lightning.errors import BadInput
from wmtp_lightning.models.tokenizer import Tokenizer
from wmtp_lightning.seed import run_seed

__all__ = ["WMTPDataModule", "processed_dir"]

log = logging.getLogger(__name__)

Sampling = Literal["correct", "balanced", "curriculum", "all"]


class WMTPDataModule(pl.LightningDataModule):
    """Processed CodeContests splits for MTP training.

    **Budget.** The run consumes `trainer.max_steps × batch_size × accumulate_grad_batches ×
    world_size` training lines, and that is the selection's size (`n_samples=None`), so every
    experiment under one trainer budget sees the same number of samples and the curriculum's
    phases are fractions of what the run really consumes (DESIGN §5).

    **Batch contract** (what the training module may rely on). Every batch has
    `input_ids`, `labels`, `attention_mask` (B, L) int64 (labels −100 on BOS, prompt, header and
    padding); `is_correct` (B,) float; `difficulty` (B,) int64; `index` (B,) int64 (0-based line
    of the split); `truncated` (B,) bool (the row was cut to `max_length`: its last label is not
    EOS); `n_items` () int64 (lines sampled for the batch, rows dropped by truncation included).
    Every *training* micro-batch also gets, in `on_after_batch_transfer` (before the sampler
    advances), three int64 tensors on the batch's device describing all E = batch_size ×
    accumulate × world_size lines of its optimizer step, every rank's, in global selection order:

    - `step_prompt_len` (E,): BOS + prompt tokens of each line;
    - `step_response_len` (E,): learned tokens (labels ≠ −100: solution + EOS) of each line;
    - `step_micro` (E,): `rank × accumulate + micro_index` of the micro-batch the line lands in.

    Counts follow the collator's truncation rules (`collate.kept_lengths`): a truncated correct
    row counts 0/0, a truncated incorrect row keeps `max_length − prompt_len` response tokens.
    Rank r's i-th line is `selection[r + i·W]`, so step s covers global positions [s·E, (s+1)·E);
    the step index comes from the sampler's consumed count (checkpoints are saved at optimizer-
    step boundaries). Σ `step_response_len` is the step's token count, known before the step, so
    a loss normalised by it does not depend on how the step is split. Every row is checked against
    the index (label count = its `response_len` after truncation), and a mismatch stops training
    with `file:line` and both counts. (The last step of a pass over an explicit `n_samples` that
    is not a multiple of E is shorter: E is then the lines left.) Validation batches carry no
    `step_*` keys; they keep `is_correct` so the module can separate the yardstick rows.

    **Validation.** The same lines for every experiment: `val_samples` correct lines (the yardstick,
    `val/ce_head{k}` and `val/acc_head{k}`) plus `val_incorrect_samples` incorrect lines
    (diagnostics, the critic's AUC), each drawn with the run's seed and split into equal per-rank
    shares.

    **Checks at set-up.** The manifest (fast: its own integrity + file sizes; `validate: full`:
    sha256 of every file), every selected line (parsed and schema-checked), and lengths (a line
    over `max_length` without `truncate` is refused). A bad line is refused, or with
    `skip_bad_lines` replaced by another line of the same pool, so the plan and the counts stay
    exact; with `validate: none` nothing is checked and a bad line found when read is an error.

    Args:
        data_dir: dataset root (with `processed/`) or the processed folder itself.
        tokenizer: the policy's tokenizer: a bundle's `tokenizer/` folder, or a tokenizer.model / tokenizer.json.
        sampling: "correct" (baseline, Rho-1), "balanced" (critic stage 1), "curriculum" (stage 2),
            or "all" (every line, shuffled).
        n_samples: training lines to select. None (default) derives it from the run (above); an
            explicit value must agree with it, and is needed when `trainer.max_steps` is -1.
        correct_ratio: share of correct solutions for "balanced"; for "curriculum", None keeps
            the natural mix.
        difficulty_range: inclusive [lo, hi] filter for "correct" / "balanced".
        difficulty_field: "difficulty" (CodeContests enum) or "cf_rating" (bins in rating units).
        bins: name -> inclusive [lo, hi] over `difficulty_field`.
        difficulty_schedule: curriculum phases (start, end, weights per bin).
        val_samples: correct validation lines (the yardstick).
        val_incorrect_samples: incorrect validation lines (keep it equal across experiments).
        batch_size / val_batch_size: rows per device per step.
        max_length / truncate / pad_to_multiple_of: see `MTPCollator` (max_length ≤ 65535, the
            index's count range).
        num_workers / pin_memory / prefetch_factor / persistent_workers: DataLoader settings.
        validate: "selected" (default; fast manifest check + selected lines), "full" (also every
            file's sha256), or "none".
        skip_bad_lines: replace lines that fail validation (counted and logged) instead of refusing.
        train_split / val_split: file stems under the processed folder.

    The selection is seeded by the run's one seed (`seed_everything`, see `wmtp_lightning.seed`):
    the same seed gives the same lines in the same order.
    """

    def __init__(
        self,
        data_dir: str,
        tokenizer: str,
        sampling: Sampling = "correct",
        n_samples: int | None = None,
        correct_ratio: float | None = 0.5,
        difficulty_range: tuple[int, int] | None = None,
        difficulty_field: Literal["difficulty", "cf_rating"] = "difficulty",
        bins: dict[str, tuple[int, int]] | None = None,
        difficulty_schedule: list[Phase] | None = None,
        val_samples: int = 64,
        val_incorrect_samples: int = 64,
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
        if n_samples is not None and n_samples <= 0:
            raise BadInput(
                f"data.n_samples: expected a positive count or null (derive it from the run), got {n_samples}"
            )
        if min(val_samples, val_incorrect_samples) < 0 or batch_size <= 0:
            raise BadInput("data.val_samples / val_incorrect_samples: expected >= 0; data.batch_size: expected > 0")
        if not 0 < max_length <= LEN_MAX:
            raise BadInput(f"data.max_length: expected 1..{LEN_MAX} (the index's token-count range), got {max_length}")
        if skip_bad_lines and validate == "none":
            raise BadInput("data.skip_bad_lines: needs validate 'selected' or 'full' (bad lines are found at set-up)")
        self.save_hyperparameters()
        self.bins = check_bins(bins or DEFAULT_BINS)
        self.schedule = list(difficulty_schedule or DEFAULT_SCHEDULE)
        self.tokenizer = Tokenizer(tokenizer)
        self.collator = MTPCollator(self.tokenizer, max_length, truncate, pad_to_multiple_of)
        self.train_sampler: SelectionSampler | None = None
        self.val_sampler: SelectionSampler | None = None
        self.val_lines: np.ndarray | None = None
        self._pending_state: dict[str, Any] | None = None
        self._step: dict[str, torch.Tensor] = {}
        self._manifest_checked = False
        self.accumulate = 1
        self.world_size = 1
        self.bad_lines = 0

    # ------------------------------------------------------------------ budget and selection
    def train_budget(self) -> int:
        """Training lines the run consumes: max_steps × batch_size × accumulate × world size."""
        h, t = self.hparams, self.trainer
        if t is None or t.max_steps is None or t.max_steps < 0:
            if h.n_samples is None:
                raise BadInput(
                    "data.n_samples: needed when trainer.max_steps is -1 (there is no step budget to derive it from)"
                )
            return h.n_samples
        derived = t.max_steps * h.batch_size * t.accumulate_grad_batches * t.world_size
        if h.n_samples is not None and h.n_samples != derived:
            raise BadInput(
                f"data.n_samples: {h.n_samples} (set in the config) but the run consumes {derived} = "
                f"trainer.max_steps {t.max_steps} × data.batch_size {h.batch_size} × "
                f"trainer.accumulate_grad_batches {t.accumulate_grad_batches} × world size {t.world_size} "
                "(devices × num_nodes); remove data.n_samples to derive it, or make the two agree"
            )
        return derived

    def select_train(self, index: np.ndarray, n_samples: int) -> np.ndarray:
        h = self.hparams
        seed = run_seed()
        if h.sampling == "correct":
            return select_correct(index, n_samples, seed, h.difficulty_range, h.difficulty_field)
        if h.sampling == "balanced":
            ratio = 0.5 if h.correct_ratio is None else h.correct_ratio
            return select_balanced(index, n_samples, seed, ratio, h.difficulty_range, h.difficulty_field)
        if h.sampling == "curriculum":
            return select_curriculum(
                index, n_samples, seed, self.schedule, self.bins, h.difficulty_field, h.correct_ratio
            )
        return select_all(index, n_samples, seed)

    def train_pools(self, index: np.ndarray) -> np.ndarray:
        h = self.hparams
        split = h.sampling != "curriculum" or h.correct_ratio is not None
        return line_pools(index, h.sampling, h.difficulty_range, h.difficulty_field, self.bins, split)

    def select_val(self, index: np.ndarray, world_size: int) -> np.ndarray:
        """`val_samples` correct then `val_incorrect_samples` incorrect lines, each cut to a multiple
        of the world size, so that `SelectionSampler` gives every rank an equal share of each."""
        h = self.hparams
        parts = []
        for stream, (correct, n) in enumerate(((1, h.val_samples), (0, h.val_incorrect_samples))):
            if n == 0:
                continue
            pool = np.flatnonzero(index["is_correct"] == correct)
            size = min(n, len(pool)) // world_size * world_size
            if size < n:
                log.warning("validation: %d %s lines wanted, %d used", n, "correct" if correct else "incorrect", size)
            rng = np.random.default_rng([run_seed(), stream])
            parts.append(np.sort(rng.choice(pool, size=size, replace=False)))  # sorted: reads in file order
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    # ------------------------------------------------------------------ checks
    def _check_manifest(self, folder: Path, splits: list[str]) -> None:
        required = [f"{s}{ext}" for s in splits for ext in (".jsonl", ".index.npy")]
        problems = manifest_problems(folder, full=self.hparams.validate == "full", required=required)
        if problems:
            more = (
                f" (and {len(problems) - 1} more; scripts/validate_datasets.py lists them)" if len(problems) > 1 else ""
            )
            raise BadInput(problems[0] + more)

    def _checked(self, ds: IndexedJsonlDataset, selection: np.ndarray, pools: np.ndarray) -> np.ndarray:
        """The selection with every line read and schema-checked; bad ones refused or replaced."""
        checked = np.zeros(len(ds), dtype=bool)
        bad: list[int] = []
        while True:
            todo = np.unique(selection)
            todo = todo[~checked[todo]]
            found = []
            for line in todo.tolist():
                try:
                    ds.read(line)
                except BadLineError as err:
                    found.append((line, str(err)))
            checked[todo] = True
            if not found:
                return selection
            if not self.hparams.skip_bad_lines:
                more = f" (and {len(found) - 1} more bad line(s))" if len(found) > 1 else ""
                raise BadInput(f"{found[0][1]}{more}; fix the data or set data.skip_bad_lines=true to replace them")
            log.warning("replacing %d bad line(s) of %s; first: %s", len(found), ds.path, found[0][1])
            self.bad_lines += len(found)
            bad += [line for line, _ in found]
            selection = replace_lines(selection, np.array(bad), pools, run_seed())

    def _check_lengths(self, path: Path, index: np.ndarray, lines: np.ndarray, batch_size: int) -> None:
        """No selected line over max_length unless truncating; no micro-batch truncation would empty."""
        h = self.hparams
        too_long = lines[token_len(index[lines]) > h.max_length] if len(lines) else lines
        if len(too_long) and not h.truncate:
            line = int(too_long[0])
            raise BadInput(
                f"{path}:{line + 1}: {int(token_len(index[line : line + 1])[0])} tokens > data.max_length "
                f"{h.max_length} ({len(np.unique(too_long))} selected line(s) are); filter the dataset or set "
                "data.truncate=true"
            )
        _, kept = kept_lengths(
            index["prompt_len"][lines], index["response_len"][lines], index["is_correct"][lines], h.max_length
        )
        per_rank = len(lines) // self.world_size
        n_batches = -(-per_rank // batch_size)
        for r in range(self.world_size):
            mine = np.zeros(n_batches * batch_size, dtype=bool)
            mine[:per_rank] = kept[r :: self.world_size][:per_rank] > 0
            empty = np.flatnonzero(~mine.reshape(n_batches, batch_size).any(1))
            if len(empty):
                first = int(empty[0]) * batch_size
                raise BadInput(
                    f"{path}: every line of rank {r}'s micro-batch {int(empty[0])} is dropped by truncation "
                    f"(lines {lines[r :: self.world_size][first : first + batch_size].tolist()}); raise "
                    "data.max_length or filter the dataset"
                )

    # ------------------------------------------------------------------ set-up
    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        folder = processed_dir(h.data_dir)
        train = stage in (None, "fit") and self.train_sampler is None
        val = stage in (None, "fit", "validate") and self.val_sampler is None
        rank = self.trainer.global_rank if self.trainer else 0
        self.world_size = self.trainer.world_size if self.trainer else 1
        self.accumulate = self.trainer.accumulate_grad_batches if self.trainer else 1
        if h.validate != "none" and not self._manifest_checked and (train or val):
            self._check_manifest(folder, [s for s, want in ((h.train_split, train), (h.val_split, val)) if want])
            self._manifest_checked = True
        if train:
            path = folder / f"{h.train_split}.jsonl"
            index = load_index(path)
            selection = self.select_train(index, self.train_budget())
            self.train_ds = IndexedJsonlDataset(path, index)
            if h.validate != "none":
                selection = self._checked(self.train_ds, selection, self.train_pools(index))
            self._check_lengths(path, index, selection, h.batch_size)
            self.train_sampler = SelectionSampler(selection, rank, self.world_size)
            self._plan_steps(index, selection)
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
        if val:
            path = folder / f"{h.val_split}.jsonl"
            index = load_index(path)
            lines = self.select_val(index, self.world_size)
            self.val_ds = IndexedJsonlDataset(path, index)
            if h.validate != "none":
                lines = self._checked(self.val_ds, lines, index["is_correct"].astype(np.int64))
            self._check_lengths(path, index, lines, h.val_batch_size or h.batch_size)
            self.val_sampler = SelectionSampler(lines, rank, self.world_size)  # equal shares: same steps per rank
            self.val_lines = self.val_sampler.lines

    def _plan_steps(self, index: np.ndarray, selection: np.ndarray) -> None:
        """Token counts of every line in global order (what `step_*` slices), after truncation."""
        lines = selection[: len(self.train_sampler.lines) * self.world_size]
        p, r = kept_lengths(
            index["prompt_len"][lines],
            index["response_len"][lines],
            index["is_correct"][lines],
            self.hparams.max_length,
        )
        self._step = {"step_prompt_len": torch.from_numpy(p), "step_response_len": torch.from_numpy(r)}

    def step_tensors(self, consumed: int) -> dict[str, torch.Tensor]:
        """`step_*` of the optimizer step whose micro-batch starts after `consumed` lines of this rank."""
        per_step = self.hparams.batch_size * self.accumulate  # lines per rank per optimizer step
        E = per_step * self.world_size
        lo = consumed // per_step * E
        hi = min(lo + E, len(self._step["step_prompt_len"]))
        micro = step_micro_ids(hi - lo, self.world_size, self.accumulate, self.hparams.batch_size)
        return {
            "step_prompt_len": self._step["step_prompt_len"][lo:hi],
            "step_response_len": self._step["step_response_len"][lo:hi],
            "step_micro": torch.from_numpy(micro),
        }

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
        return self._loader(self.val_ds, self.val_sampler, self.hparams.val_batch_size or self.hparams.batch_size)

    # ------------------------------------------------------------------ progress and resume
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Lightning moves a training batch to the device right before its training step (the
        # loader may have prefetched it earlier), and before ModelCheckpoint can save at the end
        # of that step: counting here records exactly what was consumed.
        if self.trainer is not None and self.trainer.training and self.train_sampler is not None:
            device = batch["input_ids"].device
            for key, value in self.step_tensors(self.train_sampler.consumed).items():
                batch[key] = value.to(device)
            self.train_sampler.advance(int(batch["n_items"]))
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.train_sampler.state_dict()} if self.train_sampler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "sampler" not in state:
            return
        if self.train_sampler is not None:
            self.train_sampler.load_state_dict(state["sampler"])
        else:  # restored before setup(): apply once the selection exists
            self._pending_state = state["sampler"]
