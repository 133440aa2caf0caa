"""The shared training LightningModule: model set-up, the MTP step, optimisation, logging.

An experiment subclasses `MTPModule` and overrides one hook, `token_weights`, which turns a
batch and the forward outputs into per-prediction weights (and optionally an auxiliary loss
and metrics). Everything else (building the model, the weighted MTP loss, NaN policy, RNG in
checkpoints, sharding hooks) is here, once. Evaluation (`wmtp test`) is its own module,
`evaluation.module.EvalMTP`; the data side keeps its own sampler progress.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from wmtp_lightning.errors import MissingInput
from wmtp_lightning.experiments.schedule import WarmupCosine
from wmtp_lightning.experiments.sums import RunningSums
from wmtp_lightning.models.bundle import load_bundle, read_params
from wmtp_lightning.models.transformer import ModelArgs, MTPOutput, Transformer, TransformerBlock
from wmtp_lightning.seed import run_seed
from wmtp_lightning.weighting import IGNORE_INDEX, mtp_targets, target_counts, weighted_mtp_loss

log = logging.getLogger(__name__)


def default_optimizer(params: Any) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)


@dataclass
class StepNorm:
    """The denominators of one micro-batch's loss terms, and the factor that undoes Lightning's averaging.

    DESIGN §3: the sums run over the effective batch of one optimizer step. In training the
    data module tells every micro-batch the prompt/response lengths of all lines of its step (all
    micro-batches, all ranks), so each micro-batch divides its *sums* by the step's counts:

        targets (H,)   scored predictions of each head in the step (`weighting.target_counts`)
        states         value-head states in the step (one per response token)
        micro_tokens (M,) / micro_targets (M, H)   the same per micro-batch of the step (Rho-1)
        scale          accumulate × world size: Lightning divides each micro-batch loss by
                       `accumulate` and DDP/FSDP average gradients over ranks; multiplying by
                       `scale` makes the step's gradient the gradient of Σ(all sums) / counts,
                       whatever the split. 1 outside training.

    Outside training (and for hand-made batches without step fields) the counts are the batch's own.
    """

    targets: torch.Tensor
    states: torch.Tensor
    scale: float = 1.0
    micro_tokens: torch.Tensor | None = None
    micro_targets: torch.Tensor | None = None


@dataclass
class Weights:
    """What `token_weights` returns.

    weights: (B, L, H) per-prediction weights (position-indexed, see `weighting.losses`), or None
        for uniform weights. aux_loss: added to the MTP loss (e.g. value_coef · value loss),
        already normalised with the step's counts (`StepNorm`).
    normalize: override of the module's normaliser ("weight" divides each head by the Σ of its
        weights in this micro-batch). denominators (H,): explicit per-head normalisers of the step
        (Rho-1's number of kept tokens); they win over `normalize`.
    metrics: logged as they are (values of this micro-batch). sums: {name: (num, den)} added over
        the step's micro-batches and ranks and logged as num/den (exact per step / per epoch).
    bounds: (min, max) clamp of the weights, for the fraction-at-bound diagnostics.
    token_weights / token_mask: (B, L) weight per response token and where it is defined, when
        the experiment has one weight per token (for plots; None otherwise).
    """

    weights: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None
    normalize: str | None = None
    denominators: torch.Tensor | None = None
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)
    sums: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = field(default_factory=dict)
    bounds: tuple[float, float] | None = None
    token_weights: torch.Tensor | None = None
    token_mask: torch.Tensor | None = None


class Exportable(Protocol):
    """A module exported beside the policy (e.g. the value head): it knows how to save itself."""

    def save(self, path: str | Path) -> None: ...


class MTPModule(pl.LightningModule):
    """Base experiment: uniform weights unless a subclass says otherwise.

    Args:
        model: path of a model bundle (`storage/models_v2/<name>`). Exclusive with `preset`.
        preset: a `ModelArgs` preset name ("tiny", "micro", "7B_1T_4") for a randomly initialised model.
        model_overrides: ModelArgs fields to override on a preset (e.g. {"vocab_size": 1024}).
        optimizer: optimizer factory (LightningCLI: `class_path: torch.optim.AdamW`).
        lr_scheduler: optional scheduler factory, stepped every optimizer step. `WarmupCosine`
            (configs/common/schedule.yaml) takes its length from the run.
        sequential_heads: compute the heads one at a time with activation checkpointing so the
            (B, T, H, V) logits never exist at once (same gradients as the plain path).
        normalize: "token" divides each head's weighted loss by its number of scored tokens,
            "weight" by the sum of its weights.
        head_coefs: per-head loss coefficients (default: mean over heads).
        activation_checkpointing: recompute trunk blocks in backward.
        nan_policy: "stop" raises on a NaN/inf loss; "skip" drops the step and counts it
            (single device only: a skipped step on one rank would desynchronise the others).
        max_nan_skips: with "skip", stop after this many skipped steps.

    The run's one seed is `seed_everything` (see `wmtp_lightning.seed`): a preset model is
    initialised from it, and each rank draws from seed + rank once training starts.
    """

    def __init__(
        self,
        model: str | None = None,
        preset: str | None = None,
        model_overrides: dict[str, Any] | None = None,
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        sequential_heads: bool = False,
        normalize: Literal["token", "weight"] = "token",
        head_coefs: list[float] | None = None,
        activation_checkpointing: bool = False,
        nan_policy: Literal["stop", "skip"] = "stop",
        max_nan_skips: int = 10,
    ):
        super().__init__()
        if (model is None) == (preset is None):
            raise ValueError("give exactly one of model (a bundle path) or preset (a ModelArgs preset name)")
        if model is not None and not Path(model).is_dir():
            raise MissingInput(
                f"model bundle not found: {model} (make it with scripts/prepare_local_small_model.py "
                "or scripts/convert_checkpoint.py)"
            )
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        self.model: Transformer | None = None
        self.nan_skips = 0
        self.args = self._model_args()
        self.train_sums, self.val_sums = RunningSums(), RunningSums()
        self._skipped = False  # the current step's optimizer update was skipped (non-finite loss)
        self._warned_local_norm = False

    @property
    def run_label(self) -> str:
        """Folder name of this experiment's checkpoints and export under `default_root_dir`."""
        return type(self).__name__.removesuffix("MTP").lower()

    # ------------------------------------------------------------------ model
    def _model_args(self) -> ModelArgs:
        h = self.hparams
        if h.model is not None:
            return read_params(Path(h.model) / "configs" / "params.json")
        return ModelArgs.from_name(h.preset, **(h.model_overrides or {}))

    def build_model(self) -> Transformer:
        if self.hparams.model is not None:
            return load_bundle(self.hparams.model)
        torch.manual_seed(run_seed())
        return Transformer(self.args)

    def configure_model(self) -> None:
        """Build modules once (idempotent: Lightning may call it again, e.g. when resuming)."""
        if self.model is None:
            self.model = self.build_model()
            self.model.activation_checkpointing = self.hparams.activation_checkpointing
            self.build_extra()
        if self.device_mesh is not None:  # ModelParallelStrategy: shard with FSDP2
            self.shard(self.device_mesh)

    def build_extra(self) -> None:
        """Hook for subclasses to build their own modules (value head, reference model)."""

    def shard(self, mesh: Any) -> None:
        """FSDP2 `fully_shard` per transformer block, then the root (DESIGN §7)."""
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        dp_mesh = mesh["data_parallel"] if "data_parallel" in (mesh.mesh_dim_names or ()) else mesh
        mp = None
        if self.trainer.precision in ("bf16-true", "bf16-mixed"):
            mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        kwargs = {"mesh": dp_mesh, **({"mp_policy": mp} if mp else {})}
        for module in self.model.modules():
            if isinstance(module, TransformerBlock):
                fully_shard(module, **kwargs)
        fully_shard(self.model, **kwargs)
        for extra in self.shardable_extras():
            fully_shard(extra, **kwargs)

    def shardable_extras(self) -> list[nn.Module]:
        """Trainable modules besides the transformer that must be sharded/synchronised too."""
        return []

    def export_extras(self) -> dict[str, Exportable]:
        """Modules exported beside the policy (`ExportBundle` writes `<name>/<name>.safetensors`).

        Collective under sharding: every rank calls it; the modules returned are whole, on CPU.
        """
        return {}

    # ------------------------------------------------------------------ step
    def forward(self, batch: dict[str, torch.Tensor], n_future: int | None = None) -> MTPOutput:
        return self.model(
            batch["input_ids"],
            targets=batch["labels"],
            n_future=n_future,
            sequential_heads=self.hparams.sequential_heads,
        )

    def heads_needed(self) -> int | None:
        """How many heads the step computes (None = all). Critic stage 1 needs none."""
        return None

    def token_weights(
        self, batch: dict[str, torch.Tensor], out: MTPOutput, valid: torch.Tensor, stage: str, norm: StepNorm
    ) -> Weights:
        """The experiment's hook: per-prediction weights (B, L, H) for this batch. Default: uniform."""
        return Weights()

    def step_norm(self, batch: dict[str, torch.Tensor], valid: torch.Tensor, stage: str) -> StepNorm:
        """Counts of the optimizer step this micro-batch belongs to (see `StepNorm`)."""
        H = valid.shape[-1]
        if stage == "train" and "step_response_len" in batch:
            prompt, response, micro = batch["step_prompt_len"], batch["step_response_len"], batch["step_micro"]
            counts = target_counts(prompt, response, H).to(torch.float64)  # (E, H)
            M = int(micro.max()) + 1
            micro_targets = counts.new_zeros(M, H).index_add_(0, micro, counts)
            micro_tokens = counts.new_zeros(M).index_add_(0, micro, response.to(torch.float64))
            scale = float(self.trainer.accumulate_grad_batches * self.trainer.world_size)
            return StepNorm(counts.sum(0), response.sum().double(), scale, micro_tokens, micro_targets)
        if stage == "train" and not self._warned_local_norm:
            self._warned_local_norm = True
            log.warning(
                "training batches carry no step_* counts (not from WMTPDataModule): each micro-batch is "
                "normalised by its own counts, so the loss depends on how the effective batch is split"
            )
        states = (batch["labels"] != IGNORE_INDEX).sum().double()
        return StepNorm(valid.sum(dim=(0, 1)).double(), states)

    def step(self, batch: dict[str, torch.Tensor], stage: str) -> tuple[torch.Tensor, dict[str, torch.Tensor], Weights]:
        """The loss of one (micro-)batch, its per-batch metrics, and what the hook returned.

        The loss is scaled for Lightning (see `StepNorm.scale`); the batch's exact sums go to
        `train_sums` / `val_sums`, logged per optimizer step / validation epoch.
        """
        out = self(batch, self.heads_needed())
        H = out.ce.shape[-1]
        valid = mtp_targets(batch["labels"], H) != IGNORE_INDEX if H else out.correct
        norm = self.step_norm(batch, valid, stage)
        w = self.token_weights(batch, out, valid, stage, norm)
        loss = out.ce.new_zeros(())
        if H:
            normalize = w.normalize or self.hparams.normalize
            den = w.denominators if w.denominators is not None else (norm.targets if normalize == "token" else None)
            mtp, _ = weighted_mtp_loss(out.ce, valid, w.weights, normalize, self.hparams.head_coefs, den)
            loss = loss + mtp
        if w.aux_loss is not None:
            loss = loss + w.aux_loss
        if stage == "train":
            self.train_sums.add("train/loss", loss.detach())  # the step's loss is the sum of its micro-batches'
        self.add_sums(batch, out, valid, w, stage)
        return loss * norm.scale, dict(w.metrics), w

    @torch.no_grad()
    def add_sums(
        self, batch: dict[str, torch.Tensor], out: MTPOutput, valid: torch.Tensor, w: Weights, stage: str
    ) -> None:
        """Per-head CE / accuracy / weighted loss and the weight diagnostics, as exact sums.

        Training: `train/...` over the whole optimizer step. Validation: the yardstick
        (`val/ce_head{k}`, `val/acc_head{k}`) on the correct rows only — the same rows for every
        experiment —, `val_incorrect/...` on the incorrect rows, everything else `val_all/...`.
        """
        sums = self.train_sums if stage == "train" else self.val_sums
        rest = "train/" if stage == "train" else "val_all/"
        H = out.ce.shape[-1]
        correct = batch["is_correct"].bool()[:, None, None]
        groups = (
            {"train/": valid} if stage == "train" else {"val/": valid & correct, "val_incorrect/": valid & ~correct}
        )
        for prefix, m in groups.items():
            ce, hits, n = (out.ce.detach() * m).sum((0, 1)), (out.correct & m).sum((0, 1)), m.sum((0, 1))
            for k in range(H):
                sums.add(f"{prefix}ce_head{k + 1}", ce[k], n[k])
                sums.add(f"{prefix}acc_head{k + 1}", hits[k].double(), n[k])
        if H:
            W = valid.to(out.ce.dtype)
            if w.weights is not None:
                W = torch.where(valid, w.weights.detach().to(out.ce.dtype), 0.0)
            wce = W * out.ce.detach()
            den = W if (w.normalize or self.hparams.normalize) == "weight" else valid
            for k in range(H):  # the weighted loss of each head (the step's, for any normaliser)
                sums.add(f"{rest}loss_head{k + 1}", wce[..., k].sum(), den[..., k].sum())
            for name, rows in (("correct", correct), ("incorrect", ~correct)):
                sums.add(f"{rest}weight_mean_{name}", W[valid & rows].sum(), (valid & rows).sum())
            sums.add(f"{rest}mass_share_incorrect", (W * ~correct).sum(), W.sum())  # share of the weight mass
            sums.add(f"{rest}loss_mass_share_incorrect", (wce * ~correct).sum(), wce.sum())  # of the weighted loss
            if w.bounds is not None:
                lo, hi = w.bounds
                sums.add(f"{rest}weight_at_min_frac", ((lo + 1e-6 >= W) & valid).sum(), valid.sum())
                sums.add(f"{rest}weight_at_max_frac", ((hi - 1e-6 <= W) & valid).sum(), valid.sum())
        for name, (num, den) in w.sums.items():
            sums.add(f"{rest}{name}", num, den)

    def _reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        return self.trainer.strategy.reduce(t, reduce_op="sum") if self.trainer.world_size > 1 else t

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, Any] | None:
        self._skipped = False
        loss, metrics, w = self.step(batch, "train")
        if not torch.isfinite(loss):
            return self._non_finite(loss, batch_idx)
        if metrics:
            self.log_dict(
                {f"train/{k}": v for k, v in metrics.items()},
                on_step=True,
                on_epoch=False,
                batch_size=len(batch["input_ids"]),
            )
        # Callbacks (e.g. WeightPlots) read the step's token weights from `outputs`, not from the module.
        return {"loss": loss, "token_weights": w.token_weights, "token_mask": w.token_mask}

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Log the step's exact metrics (every micro-batch of it, every rank) once per optimizer step."""
        values = self.train_sums.compute(self._reduce_sum)
        self.train_sums.reset()
        if values:
            self.log_dict(values, on_step=True, on_epoch=False)
            self.log("loss", values["train/loss"], prog_bar=True, on_step=True, on_epoch=False, logger=False)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        _, metrics, _ = self.step(batch, "val")
        if metrics:
            self.log_dict(
                {f"val_all/{k}": v for k, v in metrics.items()},
                on_step=False,
                on_epoch=True,
                batch_size=len(batch["input_ids"]),
                sync_dist=True,
            )

    def on_validation_epoch_start(self) -> None:
        self.val_sums.reset()

    def on_validation_epoch_end(self) -> None:
        values = self.val_sums.compute(self._reduce_sum)
        self.val_sums.reset()
        self.log_dict(values, on_step=False, on_epoch=True)

    def gather_rows(self, t: torch.Tensor) -> torch.Tensor:
        """Concatenate a (N, ...) tensor over ranks when N differs per rank (`all_gather` needs equal shapes)."""
        if self.trainer.world_size == 1:
            return t
        n = self.all_gather(torch.tensor([len(t)], device=self.device)).flatten()
        padded = t.new_zeros((int(n.max()), *t.shape[1:]))
        padded[: len(t)] = t
        gathered = self.all_gather(padded.to(self.device))  # (W, max, ...)
        return torch.cat([gathered[r, : int(n[r])] for r in range(len(n))]).to(t.device)

    def _non_finite(self, loss: torch.Tensor, batch_idx: int) -> None:
        where = f"step {self.global_step} (batch {batch_idx})"
        if self.hparams.nan_policy == "stop":
            raise FloatingPointError(
                f"loss is {loss.item()} at {where}; lower the learning rate, check the data, "
                "or set model.init_args.nan_policy=skip"
            )
        self.nan_skips += 1
        self._skipped = True
        log.warning("non-finite loss %s at %s: step skipped (%d so far)", loss.item(), where, self.nan_skips)
        self.log("train/nan_skips", float(self.nan_skips), on_step=True)
        if self.nan_skips > self.hparams.max_nan_skips:
            raise FloatingPointError(f"{self.nan_skips} non-finite losses (max_nan_skips={self.hparams.max_nan_skips})")
        return None

    # ------------------------------------------------------------------ hooks
    def setup(self, stage: str) -> None:
        if self.hparams.nan_policy == "skip" and self.trainer.world_size > 1:
            raise ValueError(
                "nan_policy=skip is single-device only (a skipped step on one rank desynchronises the "
                "others); use nan_policy=stop"
            )
        dm = getattr(self.trainer, "datamodule", None)
        tok = getattr(dm, "tokenizer", None)
        if tok is not None and tok.vocab_size != self.args.vocab_size:
            raise ValueError(
                f"tokenizer {tok.path} has {tok.vocab_size} pieces but the model's vocab_size is "
                f"{self.args.vocab_size}: data.tokenizer must be the model's tokenizer"
            )

    def on_fit_start(self) -> None:
        rank_seed = run_seed() + self.global_rank
        torch.manual_seed(rank_seed)
        np.random.seed(rank_seed % 2**32)
        random.seed(rank_seed)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        if not self._skipped:  # a non-finite loss skipped the update: nothing changed, nothing to follow
            self.after_optimizer_step()

    def after_optimizer_step(self) -> None:
        """Hook run right after each optimizer step (before callbacks such as checkpointing)."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        _, keys, pos, has_gauss, gauss = np.random.get_state()
        # Plain tensors and numbers only, so the checkpoint loads with torch.load(weights_only=True).
        checkpoint["wmtp_rng"] = {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": (torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        }
        checkpoint["wmtp_model_args"] = self.args.to_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        rng = checkpoint.get("wmtp_rng")
        if rng:
            torch.set_rng_state(rng["torch"])
            keys, pos, has_gauss, gauss = rng["numpy"]
            np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
            random.setstate(rng["python"])

    # ------------------------------------------------------------------ optimisation
    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def configure_optimizers(self) -> Any:
        params = self.trainable_parameters()
        if not params:
            raise ValueError("no trainable parameters (is everything frozen?)")
        decay = [p for p in params if p.dim() >= 2]  # weight decay only on matrices (nanoGPT)
        no_decay = [p for p in params if p.dim() < 2]
        groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
        optimizer = self.optimizer_factory([g for g in groups if g["params"]])
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        if isinstance(scheduler, WarmupCosine) and scheduler.total_steps is None:
            scheduler.set_total_steps(int(self.trainer.estimated_stepping_batches))  # the run's own length
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
