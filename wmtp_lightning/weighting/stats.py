"""Summary statistics of token weights and TD errors for logging (masked, no gradient)."""

from __future__ import annotations

import torch


@torch.no_grad()
def masked_stats(x: torch.Tensor, mask: torch.Tensor, prefix: str) -> dict[str, torch.Tensor]:
    """mean / std / min / max of x over masked-in entries."""
    v = x[mask.bool()].float()
    if v.numel() == 0:
        return {}
    return {
        f"{prefix}_mean": v.mean(),
        f"{prefix}_std": v.std(unbiased=False),
        f"{prefix}_min": v.min(),
        f"{prefix}_max": v.max(),
    }


@torch.no_grad()
def weight_stats(
    w: torch.Tensor, mask: torch.Tensor, min_weight: float, max_weight: float, prefix: str = "weight"
) -> dict[str, torch.Tensor]:
    """`masked_stats` plus the fraction of weights sitting on a clamp bound."""
    out = masked_stats(w, mask, prefix)
    v = w[mask.bool()].float()
    if v.numel():
        eps = 1e-6
        out[f"{prefix}_clip_frac"] = ((v <= min_weight + eps) | (v >= max_weight - eps)).float().mean()
    return out
