"""Rho-1 token selection by excess loss (Lin et al., 2024; DESIGN §3).

    s_j = CE_policy(x_j) − CE_ref(x_j)

`token` mode: one score per target token, CE_policy from head 1 (the next-token head), shared by
every head that predicts x_j. `per_head` mode: the prediction "head k at t" is scored by
CE_k(t) − CE_ref(x_{t+k}). Hard mode keeps exactly ⌈ratio·N⌉ of the N valid scores across the
whole batch (`per_head`: ⌈ratio·N_k⌉ of each head's N_k) (weight 1, others 0) and the loss is
normalised by the number kept; ties are broken by position, so the selection is deterministic.
Soft mode: w = clamp(exp(s/β), min, max).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from wmtp_lightning.weighting.losses import IGNORE_INDEX, head_weights
from wmtp_lightning.weighting.transforms import exp_weights


def ce_at_tokens(ce_pos: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Position-indexed values of head k (B, L) -> token-indexed (B, L): out[b, j] = ce_pos[b, j − k].

    (Any per-position quantity of head k, not only its CE: e.g. V_{j−1} for token j with k = 1.)
    """
    out = torch.zeros_like(ce_pos)
    if k < ce_pos.shape[1]:
        out[:, k:] = ce_pos[:, : ce_pos.shape[1] - k]
    return out


@torch.no_grad()
def rho1_token_scores(
    ce_policy_tok: torch.Tensor, ce_ref_tok: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-indexed excess loss (B, L) and its mask (response tokens)."""
    mask = labels != IGNORE_INDEX
    return (ce_policy_tok.detach() - ce_ref_tok.detach()) * mask, mask


@torch.no_grad()
def rho1_per_head_scores(ce: torch.Tensor, valid: torch.Tensor, ce_ref_tok: torch.Tensor) -> torch.Tensor:
    """Position-indexed per-head scores (B, L, H): CE_k(t) − CE_ref(x_{t+k}), 0 where not valid."""
    ref = head_weights(ce_ref_tok.detach(), ce.shape[-1])  # ref[b, t, k-1] = CE_ref(x_{t+k})
    return (ce.detach() - ref) * valid


@torch.no_grad()
def topk_mask(scores: torch.Tensor, mask: torch.Tensor, ratio: float) -> torch.Tensor:
    """Exactly ⌈ratio·N⌉ of the N masked-in entries with the highest scores (any shape) -> float 0/1.

    Ties: a stable descending sort keeps the earlier flat position first, so the result is
    deterministic.
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    flat_s, flat_m = scores.flatten().float(), mask.flatten().bool()
    n = int(flat_m.sum())
    k = math.ceil(ratio * n - 1e-9)
    keyed = torch.where(flat_m, flat_s, torch.full_like(flat_s, -math.inf))
    order = torch.sort(keyed, descending=True, stable=True).indices
    out = torch.zeros_like(flat_s)
    out[order[:k]] = 1.0
    return out.view(scores.shape)


@torch.no_grad()
def topk_mask_per_head(scores: torch.Tensor, mask: torch.Tensor, ratio: float) -> torch.Tensor:
    """`topk_mask` on each head separately: ⌈ratio·N_k⌉ of head k's N_k valid entries.  (B, L, H) -> (B, L, H).

    A joint top-k over all heads would starve head 1: heads further ahead have larger losses, so
    their excess losses dominate any shared ranking.
    """
    return torch.stack([topk_mask(scores[..., k], mask[..., k], ratio) for k in range(scores.shape[-1])], dim=-1)


@dataclass
class Rho1Weights:
    """What `rho1_weights` gives the loss and the logs.

    weights (B, L, H): position-indexed per-prediction weights. scores / mask: the excess losses
    the selection ranked, token-indexed (B, L) for `score="token"`, position-indexed (B, L, H) for
    `per_head`. token_weights (B, L): w_j per response token (`token` scores only, else None).
    normalize: "weight" for hard selection (the loss divides by the number kept, as in Rho-1),
    None to keep the module's normaliser (soft mode).
    """

    weights: torch.Tensor
    scores: torch.Tensor
    mask: torch.Tensor
    token_weights: torch.Tensor | None
    normalize: str | None


@torch.no_grad()
def rho1_weights(
    ce: torch.Tensor,
    valid: torch.Tensor,
    ce_ref_tok: torch.Tensor,
    labels: torch.Tensor,
    *,
    ratio: float = 0.6,
    score: Literal["token", "per_head"] = "token",
    mode: Literal["hard", "soft"] = "hard",
    beta: float = 1.0,
    min_weight: float = 0.1,
    max_weight: float = 5.0,
) -> Rho1Weights:
    """The Rho-1 recipe: excess losses -> exact top-`ratio` selection (hard) or clamp(exp(s/β)) (soft).

    ce, valid: the policy's per-prediction CE and validity (B, L, H); ce_ref_tok: the reference's
    CE per target token (B, L); labels (B, L). Training and the analysis notebook both call this.
    """
    if mode not in ("hard", "soft"):
        raise ValueError(f"mode must be 'hard' or 'soft', got {mode!r}")
    H = ce.shape[-1]
    if score == "token":
        scores, mask = rho1_token_scores(ce_at_tokens(ce[..., 0].detach(), 1), ce_ref_tok, labels)
        w_tok = (
            topk_mask(scores, mask, ratio)
            if mode == "hard"
            else exp_weights(scores, mask, beta, min_weight, max_weight)
        )
        weights = head_weights(w_tok, H)
    elif score == "per_head":
        scores, mask, w_tok = rho1_per_head_scores(ce, valid, ce_ref_tok), valid, None
        if mode == "hard":
            weights = topk_mask_per_head(scores, mask, ratio)
        else:
            weights = exp_weights(scores, mask, beta, min_weight, max_weight)
    else:
        raise ValueError(f"score must be 'token' or 'per_head', got {score!r}")
    return Rho1Weights(weights, scores, mask, w_tok, "weight" if mode == "hard" else None)
