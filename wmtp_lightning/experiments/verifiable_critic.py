"""VerifiableCriticMTP: TD-error token weights from a value head and a binary reward (DESIGN §3, §4).

Stage 1 trains the value head alone (policy frozen) on a balanced mix of correct and incorrect
solutions, so that V(s_t) predicts whether the solution being written will pass. Stage 2 trains
the policy with weights w_j = clamp(exp(δ_j/β)) and keeps training the critic with
`value_coef` · value loss as an auxiliary loss.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from wmtp_lightning.errors import MissingInput
from wmtp_lightning.experiments.base import Exportable, MTPModule, StepNorm, Weights
from wmtp_lightning.models.transformer import MTPOutput
from wmtp_lightning.models.value_head import ValueHead
from wmtp_lightning.weighting import (
    after_first_drop,
    binary_auc,
    clipped_value_loss,
    cosine_drift,
    critic_weights,
    explained_variance,
    final_values,
    masked_stats,
    mc_value_targets,
    td_lambda_value_targets,
    weight_stats,
)

log = logging.getLogger(__name__)


class VerifiableCriticMTP(MTPModule):
    """Critic-weighted MTP.

    Args:
        stage: 1 = value-head pre-training (no policy loss), 2 = weighted policy training.
        value_head: path of a stage-1 value head (`value_head.safetensors`) to start from; a
            missing file is an error. "auto" (stage 2) uses `<default_root_dir>/verifiable_stage1/
            export/value_head/value_head.safetensors` when it exists (what stage 1 writes with the
            same overlay); in stage 1 it means a fresh head, so that re-running stage 1 in the same
            folder starts over instead of silently continuing the last critic (give the path to
            continue one). Stage 2 without a head is allowed but warned: the first weights come
            from an untrained critic.
        freeze_policy: stage 1 only; freeze the transformer (default). False trains the trunk
            through the value loss too.
        beta / min_weight / max_weight: w = clamp(exp(δ/β), min, max).
        gamma: discount of the TD errors and Monte-Carlo targets.
        td_terminal: "sequence" (δ_T = R − V_{T−1}, default) or the seed's "horizon" variant.
        signal: what the weight exponentiates: "delta" (the one-step TD error δ_j, the seed's
            method, default) or "cumulative" (Σ_{i<=j} δ_i = V_j − V_{p−1}: the continuation after
            a value drop stays down-weighted, where δ returns to ≈ 0 and w to ≈ 1; see
            docs/experiments.md).
        whiten: standardise the signal over the batch's response tokens before exponentiating (off).
        value_coef: weight of the value loss in stage 2.
        value_target: "mc" (Monte-Carlo, G_t = γ^(T−1−t) R) or "td_lambda".
        td_lambda: λ of the TD(λ) targets.
        value_loss: "mse" or "huber".
        value_clip: ε of the clip around the EMA anchor (None disables).
        anchor_decay: EMA decay of the anchor value head (updated after every optimizer step).
        value_grad_to_trunk: in stage 2, let the value loss train the shared trunk (auxiliary
            loss semantics); False detaches the value head's input.
        drop_threshold: a δ <= −drop_threshold is a "strong drop" for the diagnostics
            (`weight_mean_after_drop`, `mass_after_drop_share`: how much weight the continuation
            after the first strong drop of an incorrect solution keeps). Logging only.

    Validation: the value head's figures on all validation rows are `val_all/value_*`; its AUC of
    V_{T−1} against is_correct is `val_all/value_auc`. Stage 1 exports the value head of its best
    validation AUC (not the last), stage 2 the last one (it belongs with the last policy).
    """

    def __init__(
        self,
        *args: Any,
        stage: Literal[1, 2] = 2,
        value_head: str | None = "auto",
        freeze_policy: bool = True,
        beta: float = 0.9,
        min_weight: float = 0.1,
        max_weight: float = 5.0,
        gamma: float = 1.0,
        td_terminal: Literal["sequence", "horizon"] = "sequence",
        signal: Literal["delta", "cumulative"] = "delta",
        whiten: bool = False,
        value_coef: float = 0.5,
        value_target: Literal["mc", "td_lambda"] = "mc",
        td_lambda: float = 0.95,
        value_loss: Literal["mse", "huber"] = "mse",
        value_clip: float | None = 0.2,
        anchor_decay: float = 0.99,
        value_grad_to_trunk: bool = True,
        drop_threshold: float = 0.25,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        if value_head not in (None, "auto") and not Path(value_head).is_file():
            raise MissingInput(
                f"stage-1 value head not found: {value_head} (run configs/verifiable_stage1.yaml "
                "first, or drop model.init_args.value_head to start from an untrained critic)"
            )
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.value_head: ValueHead | None = None
        self._val_final: list[torch.Tensor] = []
        self._val_reward: list[torch.Tensor] = []
        self.best_auc = float("-inf")
        self.best_value_head: dict[str, torch.Tensor] | None = None  # CPU copy at the best val AUC (stage 1)

    @property
    def run_label(self) -> str:
        return f"verifiable_stage{self.hparams.stage}"

    def value_head_path(self) -> Path | None:
        path = self.hparams.value_head
        if path == "auto":
            if self._trainer is None or self.hparams.stage == 1:
                return None
            auto = Path(self.trainer.default_root_dir) / "verifiable_stage1" / "export" / "value_head"
            return auto / "value_head.safetensors" if (auto / "value_head.safetensors").is_file() else None
        return None if path is None else Path(path)

    def build_extra(self) -> None:
        h = self.hparams
        path = self.value_head_path()
        if path is not None:
            self.value_head = ValueHead.load(path, dim=self.args.dim)
            log.info("value head loaded from %s", path)
        else:
            if h.stage == 2:
                log.warning("stage 2 without a stage-1 value head: TD weights start from an untrained critic")
            self.value_head = ValueHead(self.args.dim)
        # The EMA anchor is deliberately not a registered submodule: it stays whole (never
        # sharded) on every rank and out of the optimizer; checkpoints carry it explicitly.
        object.__setattr__(self, "value_anchor", copy.deepcopy(self.value_head).requires_grad_(False))
        if h.stage == 1 and h.freeze_policy:
            self.model.requires_grad_(False)

    def shardable_extras(self) -> list[nn.Module]:
        return [self.value_head]

    def heads_needed(self) -> int | None:
        return 0 if self.hparams.stage == 1 else None

    # ------------------------------------------------------------------ the hook
    def token_weights(
        self, batch: dict[str, torch.Tensor], out: MTPOutput, valid: torch.Tensor, stage: str, norm: StepNorm
    ) -> Weights:
        h = self.hparams
        labels, reward = batch["labels"], batch["is_correct"]
        ended = ~batch["truncated"].bool() if "truncated" in batch else None
        h_in = out.h_normed if (h.stage == 1 or h.value_grad_to_trunk) else out.h_normed.detach()
        values = self.value_head(h_in)  # (B, L) float32
        with torch.no_grad():
            self.value_anchor.to(out.h_normed.device)
            anchor = self.value_anchor(out.h_normed.detach().float())
        v_det = values.detach()
        if h.value_target == "mc":
            target, smask = mc_value_targets(labels, reward, h.gamma)
        else:
            target, smask = td_lambda_value_targets(v_det, labels, reward, h.gamma, h.td_lambda)
        # Σ over this batch's states, divided by the step's state count: split-invariant (StepNorm).
        vsum = clipped_value_loss(values, anchor, target, smask, h.value_clip, h.value_loss, denominator=1.0)
        vloss = vsum / norm.states.clamp_min(1).to(vsum.dtype)
        metrics = {
            "explained_variance": explained_variance(v_det, target, smask),
            **masked_stats(v_det, smask, "value"),
        }
        sums = {"value_loss": (vsum.detach(), smask.sum())}
        if stage == "val":
            self._val_final.append(final_values(v_det, labels).cpu())
            self._val_reward.append(reward.detach().cpu())
        if h.stage == 1:  # `heads_needed` is 0: no policy loss, the value loss is the whole loss
            return Weights(aux_loss=vloss, metrics=metrics, sums=sums)

        H = out.ce.shape[-1]
        cw = critic_weights(
            v_det,
            labels,
            reward,
            H,
            beta=h.beta,
            min_weight=h.min_weight,
            max_weight=h.max_weight,
            gamma=h.gamma,
            td_terminal=h.td_terminal,
            whiten_delta=h.whiten,
            signal=h.signal,
            ended=ended,
        )
        metrics.update(masked_stats(cw.delta, cw.mask, "td"))
        metrics.update(
            weight_stats(
                cw.token_weights if cw.token_weights is not None else cw.weights, cw.mask, h.min_weight, h.max_weight
            )
        )
        if cw.token_weights is not None:  # the buggy continuation: weight after the first strong drop
            incorrect = ~reward.bool()[:, None]
            after = after_first_drop(cw.delta, cw.mask, h.drop_threshold) & incorrect
            w_inc = cw.token_weights * (cw.mask & incorrect)
            sums["weight_mean_after_drop"] = ((cw.token_weights * after).sum(), after.sum())
            sums["mass_after_drop_share"] = ((cw.token_weights * after).sum(), w_inc.sum())
        return Weights(
            weights=cw.weights,
            aux_loss=h.value_coef * vloss,
            metrics=metrics,
            sums=sums,
            bounds=(h.min_weight, h.max_weight),
            token_weights=cw.token_weights,
            token_mask=cw.mask if cw.token_weights is not None else None,
        )

    # ------------------------------------------------------------------ anchor, AUC, drift
    def after_optimizer_step(self) -> None:
        d = self.hparams.anchor_decay
        with torch.no_grad(), full_params(self.value_head) as params:
            for pa, p in zip(self.value_anchor.parameters(), params):
                pa.mul_(d).add_(p.detach().to(pa.device, pa.dtype), alpha=1 - d)
            drift = cosine_drift(
                torch.cat([p.detach().flatten().float().cpu() for p in params]),
                torch.cat([p.flatten().float().cpu() for p in self.value_anchor.parameters()]),
            )
        self.log("train/value_drift", drift, on_step=True, on_epoch=False)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["wmtp_value_anchor"] = {k: v.cpu() for k, v in self.value_anchor.state_dict().items()}
        if self.best_value_head is not None:
            checkpoint["wmtp_best_value_head"] = {"auc": self.best_auc, "state": self.best_value_head}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if "wmtp_value_anchor" in checkpoint and getattr(self, "value_anchor", None) is not None:
            self.value_anchor.load_state_dict(checkpoint["wmtp_value_anchor"])
        if "wmtp_best_value_head" in checkpoint:
            self.best_auc = float(checkpoint["wmtp_best_value_head"]["auc"])
            self.best_value_head = checkpoint["wmtp_best_value_head"]["state"]

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._val_final, self._val_reward = [], []

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if not self._val_final:
            return
        # Ranks may hold different numbers of rows (the collator can drop some): gather unevenly.
        scores = self.gather_rows(torch.cat(self._val_final).to(self.device)).cpu()
        labels = self.gather_rows(torch.cat(self._val_reward).to(self.device)).cpu()
        auc = binary_auc(scores, labels)
        if not torch.isfinite(auc):
            return
        self.log("val_all/value_auc", auc, rank_zero_only=True)
        if self.hparams.stage == 1 and not self.trainer.sanity_checking and float(auc) > self.best_auc:
            self.best_auc = float(auc)
            self.best_value_head = {k: v.cpu() for k, v in self._whole_value_head().state_dict().items()}
            self.log("val_all/value_auc_best", auc, rank_zero_only=True)

    def _whole_value_head(self) -> ValueHead:
        """A plain (unsharded, CPU) copy of the value head (collective under sharding)."""
        head = ValueHead(self.args.dim)
        with torch.no_grad(), full_params(self.value_head) as params:
            for dst, p in zip(head.parameters(), params):
                dst.copy_(p.detach().cpu())
        return head

    def export_extras(self) -> dict[str, Exportable]:
        """The value head, whole and on CPU: stage 1's best-AUC one (stage 2 starts from it), else the last."""
        head = self._whole_value_head()
        if self.hparams.stage == 1 and self.best_value_head is not None:
            head.load_state_dict(self.best_value_head)
            log.info("exporting the stage-1 value head of the best validation AUC (%.4f)", self.best_auc)
        return {"value_head": head}


@contextmanager
def full_params(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    """The module's parameters as whole tensors, whatever wraps it (FSDP1 unit, FSDP2 DTensors, none)."""
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP1

    if isinstance(module, FSDP1):
        with FSDP1.summon_full_params(module, writeback=False):
            yield list(module.parameters())
    else:
        yield [p.full_tensor() if hasattr(p, "full_tensor") else p for p in module.parameters()]
