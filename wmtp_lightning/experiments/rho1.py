"""Rho1MTP: train on the tokens where the policy lags a frozen reference most (DESIGN §3, §4)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import torch

from wmtp_lightning.experiments.base import MTPModule, Weights
from wmtp_lightning.io import sha256_file
from wmtp_lightning.models.bundle import load_bundle, read_params, tokenizer_path
from wmtp_lightning.models.transformer import MTPOutput, Transformer
from wmtp_lightning.weighting import (
    ce_at_tokens,
    head_weights,
    masked_stats,
    rho1_per_head_scores,
    rho1_token_scores,
    shift_targets,
    soft_weights,
    token_ce,
    topk_mask,
    weight_stats,
)

log = logging.getLogger(__name__)


class Rho1MTP(MTPModule):
    """Rho-1 selective language modelling on MTP heads.

    Args:
        reference: bundle path of the frozen reference model (same vocabulary as the policy).
        ratio: share of the batch's response tokens kept (hard mode).
        score: "token" (head-1 excess loss shared by all heads) or "per_head".
        mode: "hard" (top ratio, weight 1, normalised by the number kept) or "soft" (exp weights).
        beta / min_weight / max_weight: soft-mode weights clamp(exp(s/β), min, max).
        reference_dtype: dtype of the reference weights ("bfloat16" halves its memory on GPU).
    """

    def __init__(
        self,
        *args: Any,
        reference: str | None = None,
        ratio: float = 0.6,
        score: Literal["token", "per_head"] = "token",
        mode: Literal["hard", "soft"] = "hard",
        beta: float = 1.0,
        min_weight: float = 0.1,
        max_weight: float = 5.0,
        reference_dtype: Literal["float32", "bfloat16", "float16"] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        if reference is None:
            raise ValueError("Rho1MTP needs model.init_args.reference: the bundle of a frozen reference model")
        if not Path(reference).is_dir():
            raise FileNotFoundError(f"reference model bundle not found: {reference}")
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        ref_args = read_params(Path(reference) / "configs" / "params.json")
        if ref_args.vocab_size != self.args.vocab_size:
            raise ValueError(
                f"reference {reference} has vocab_size {ref_args.vocab_size}, the policy "
                f"{self.args.vocab_size}: Rho-1 compares per-token losses, the vocabularies must match"
            )
        if self.hparams.model is not None:
            mine, theirs = tokenizer_path(self.hparams.model), tokenizer_path(reference)
            if mine and theirs and (mine.name != theirs.name or sha256_file(mine) != sha256_file(theirs)):
                raise ValueError(f"{theirs} differs from {mine}: the reference must use the policy's tokenizer")
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])

    def build_extra(self) -> None:
        ref = load_bundle(self.hparams.reference, dtype=self.hparams.reference_dtype)
        ref.eval().requires_grad_(False)
        # Not a registered submodule: never in the optimizer, the checkpoint or FSDP sharding.
        object.__setattr__(self, "ref_model", ref)

    @torch.no_grad()
    def reference_ce(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token-indexed CE_ref(x_j) (B, L) from the reference's next-token head."""
        ref: Transformer = self.ref_model
        ref.to(batch["input_ids"].device)
        logits = ref(batch["input_ids"])  # (B, L, V), head 1
        return ce_at_tokens(token_ce(logits, shift_targets(batch["labels"], 1)), 1)

    def token_weights(self, batch: dict[str, torch.Tensor], out: MTPOutput, valid: torch.Tensor, stage: str) -> Weights:
        h = self.hparams
        labels = batch["labels"]
        ce_ref = self.reference_ce(batch)
        H = out.ce.shape[-1]
        if h.score == "token":
            scores, mask = rho1_token_scores(ce_at_tokens(out.ce[..., 0].detach(), 1), ce_ref, labels)
            w_tok = (
                topk_mask(scores, mask, h.ratio)
                if h.mode == "hard"
                else soft_weights(scores, mask, h.beta, h.min_weight, h.max_weight)
            )
            weights = head_weights(w_tok, H)
            metrics = {
                "selected_frac": (w_tok * mask).sum() / mask.sum().clamp_min(1),
                **masked_stats(scores, mask, "excess"),
            }
            self._last_weights = (batch["input_ids"].detach(), w_tok.detach(), mask)
        else:
            scores = rho1_per_head_scores(out.ce, valid, ce_ref)
            weights = (
                topk_mask(scores, valid, h.ratio)
                if h.mode == "hard"
                else soft_weights(scores, valid, h.beta, h.min_weight, h.max_weight)
            )
            metrics = {
                "selected_frac": (weights * valid).sum() / valid.sum().clamp_min(1),
                **masked_stats(scores, valid, "excess"),
            }
        if h.mode == "soft":
            metrics.update(weight_stats(weights, valid, h.min_weight, h.max_weight))
        # Hard selection: normalise by the number of selected tokens (the Rho-1 paper).
        return Weights(weights=weights, metrics=metrics, normalize="weight" if h.mode == "hard" else None)
