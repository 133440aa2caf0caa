"""Rho-1 token selection by excess loss (Lin et al., 2024; DESIGN §3).

    s_j = CE_policy(x_j) − CE_ref(x_j)

`token` mode: one score per target token, CE_policy from head 1 (the next-token head), shared by
every head that predicts x_j. `per_head` mode: the prediction "head k at t" is scored by
CE_k(t) − CE_ref(x_{t+k}). Hard mode keeps exactly ⌈ratio·N⌉ of the N valid scores across the
whole batch (weight 1, others 0) and the loss is normalised by the number kept; ties are broken
by position, so the selection is deterministic. Soft mode: w = clamp(exp(s/β), min, max).
"""

from __future__ import annotations

import math

import torch

from wmtp_lightning.weighting.losses import IGNORE_INDEX, head_weights


def ce_at_tokens(ce_pos: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Position-indexed CE of head k (B, L) -> token-indexed (B, L): out[b, j] = ce_pos[b, j − k]."""
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
def soft_weights(
    scores: torch.Tensor, mask: torch.Tensor, beta: float = 1.0, min_weight: float = 0.1, max_weight: float = 5.0
) -> torch.Tensor:
    return torch.exp(scores.float() / beta).clamp(min_weight, max_weight) * mask
