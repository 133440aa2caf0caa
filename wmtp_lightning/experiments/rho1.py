"""Rho1MTP: train on the tokens where the policy lags a frozen reference most (DESIGN §3, §4)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import torch

from wmtp_lightning.errors import BadInput, MissingInput
from wmtp_lightning.experiments.base import MTPModule, StepNorm, Weights
from wmtp_lightning.io import sha256_file
from wmtp_lightning.models.bundle import load_bundle, read_params, tokenizer_path
from wmtp_lightning.models.transformer import MTPOutput, Transformer
from wmtp_lightning.weighting import ce_at_tokens, masked_stats, rho1_weights, shift_targets, token_ce, weight_stats

log = logging.getLogger(__name__)


@torch.no_grad()
def reference_token_ce(ref: Transformer, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CE_ref(x_j) per target token (B, L), from the reference's next-token head (0 off the response)."""
    logits = ref(input_ids)  # (B, L, V), head 1
    return ce_at_tokens(token_ce(logits, shift_targets(labels, 1)), 1)


class Rho1MTP(MTPModule):
    """Rho-1 selective language modelling on MTP heads.

    What the selection ranges over: the top ⌈ratio·N⌉ tokens are chosen within each micro-batch
    on each rank (the step's other micro-batches have not been scored yet when one runs its
    forward; ranking the whole step would take an extra forward pass over it). The loss divides by
    the number of tokens kept in the *whole optimizer step* (Σ over its micro-batches and ranks
    of ⌈ratio·N_m⌉, known from the data before the step), so each kept token weighs the same
    whatever the split; with `per_head`, each head keeps ⌈ratio·N_{m,k}⌉ of its own N_{m,k}.

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
            raise MissingInput(f"reference model bundle not found: {reference}")
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
                raise BadInput(f"{theirs} differs from {mine}: the reference must use the policy's tokenizer")
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])

    def build_extra(self) -> None:
        ref = load_bundle(self.hparams.reference, dtype=self.hparams.reference_dtype)
        ref.eval().requires_grad_(False)
        # Not a registered submodule: never in the optimizer, the checkpoint or FSDP sharding.
        object.__setattr__(self, "ref_model", ref)

    def reference_ce(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token-indexed CE_ref(x_j) (B, L) from the reference's next-token head."""
        ref: Transformer = self.ref_model
        ref.to(batch["input_ids"].device)
        return reference_token_ce(ref, batch["input_ids"], batch["labels"])

    def token_weights(
        self, batch: dict[str, torch.Tensor], out: MTPOutput, valid: torch.Tensor, stage: str, norm: StepNorm
    ) -> Weights:
        h = self.hparams
        rw = rho1_weights(
            out.ce,
            valid,
            self.reference_ce(batch),
            batch["labels"],
            ratio=h.ratio,
            score=h.score,
            mode=h.mode,
            beta=h.beta,
            min_weight=h.min_weight,
            max_weight=h.max_weight,
        )
        kept = rw.token_weights if rw.token_weights is not None else rw.weights
        metrics = {
            "selected_frac": (kept * rw.mask).sum() / rw.mask.sum().clamp_min(1),
            **masked_stats(rw.scores, rw.mask, "excess"),
        }
        if h.mode == "soft":
            metrics.update(weight_stats(rw.weights, valid, h.min_weight, h.max_weight))
        denominators = None
        if h.mode == "hard" and norm.micro_tokens is not None:  # the step's kept count (see class docstring)
            per_micro = norm.micro_tokens[:, None] if h.score == "token" else norm.micro_targets
            kept = torch.ceil(h.ratio * per_micro - 1e-9).sum(0)  # (H,) or (1,): as topk_mask counts
            denominators = kept.expand(out.ce.shape[-1]).to(out.ce.device)
        return Weights(
            weights=rw.weights,
            metrics=metrics,
            normalize=rw.normalize,
            denominators=denominators,
            bounds=(h.min_weight, h.max_weight) if h.mode == "soft" else None,
            token_weights=rw.token_weights,
            token_mask=rw.mask if rw.token_weights is not None else None,
        )
