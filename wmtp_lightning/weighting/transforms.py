"""Elementwise transforms shared by the weighting recipes: the clamped exponential and whitening."""

from __future__ import annotations

import torch


@torch.no_grad()
def exp_weights(
    x: torch.Tensor, mask: torch.Tensor, beta: float, min_weight: float = 0.1, max_weight: float = 5.0
) -> torch.Tensor:
    """w = clamp(exp(x/β), min, max) on masked-in entries, 0 elsewhere; never carries gradient.

    The one exponential weighting of the project: TD weights (x = δ) and Rho-1's soft mode
    (x = excess loss) both call it.
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not 0 <= min_weight <= max_weight:
        raise ValueError(f"need 0 <= min_weight <= max_weight, got {min_weight}, {max_weight}")
    w = torch.exp(x.detach().float() / beta).clamp(min_weight, max_weight)
    return w * mask


@torch.no_grad()
def whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(x − mean) / (std + eps) over masked-in entries, 0 elsewhere; unchanged with < 2 entries."""
    v = x[mask.bool()].float()
    if v.numel() < 2:
        return x * mask
    return (x - v.mean()) / (v.std(unbiased=False) + eps) * mask
