"""Multi-token-prediction cross entropy and its weighted reduction (DESIGN §3).

Notation (a contract shared by every module in `weighting/`):
    B batch rows, L row length, H heads, V vocabulary.
    labels[b, j] = x_j on response tokens (the solution and EOS), -100 elsewhere (prompt, padding).
    Head k (1..H) at position t predicts x_{t+k}; it is scored iff t + k <= L - 1 and
    labels[b, t + k] != -100.
    Token-indexed tensors ([B, L], index j = target token) hold one value per token x_j:
    weights w_j, TD errors δ_j, Rho-1 scores.
    Position-indexed per-head tensors ([B, L, H], index (t, k-1)) hold one value per prediction
    "head k at position t": cross entropies, validity, the weight that prediction gets.
`head_weights` turns token weights into position-indexed ones: W[b, t, k-1] = w[b, t + k].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from wmtp_lightning.models.transformer import IGNORE_INDEX, shift_targets

Normalize = Literal["token", "weight"]


def mtp_targets(labels: torch.Tensor, n_future: int) -> torch.Tensor:
    """(B, L) -> (B, L, H): targets[b, t, k-1] = labels[b, t + k]."""
    return torch.stack([shift_targets(labels, k) for k in range(1, n_future + 1)], dim=-1)


def token_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-position cross entropy, 0 where target == -100.  logits (..., V), targets (...) -> (...)."""
    V = logits.shape[-1]
    ce = F.cross_entropy(
        logits.reshape(-1, V).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none"
    )
    return ce.view(targets.shape)


def mtp_token_ce(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All heads at once: logits (B, L, H, V), labels (B, L) -> (ce (B, L, H), valid (B, L, H) bool)."""
    targets = mtp_targets(labels, logits.shape[2])
    return token_ce(logits, targets), targets != IGNORE_INDEX


def head_weights(w: torch.Tensor, n_future: int) -> torch.Tensor:
    """Token weights (B, L) -> per-prediction weights (B, L, H): W[b, t, k-1] = w[b, t + k] (0 past the end).

    This is the only place where token weights meet heads; with it the weight of EOS (index T)
    reaches head k at position T - k for every k, so the terminal reward reaches all heads.
    """
    B, L = w.shape
    out = w.new_zeros(B, L, n_future)
    for k in range(1, n_future + 1):
        if k < L:
            out[:, : L - k, k - 1] = w[:, k:]
    return out


def weighted_mtp_loss(
    ce: torch.Tensor,
    valid: torch.Tensor,
    weights: torch.Tensor | None = None,
    normalize: Normalize = "token",
    head_coefs: Sequence[float] | None = None,
    denominators: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted MTP loss.

        L_k = Σ_{b,t} W[b,t,k]·CE[b,t,k]·valid / D_k,   D_k = Σ valid ("token") or Σ W·valid ("weight")
        total = mean_k L_k, or Σ_k c_k·L_k with `head_coefs`.

    ce, valid, weights: (B, L, H); weights None means uniform (the baseline). Prediction slots
    that are not valid never enter a sum or a normaliser. A head with an empty denominator
    contributes 0. `denominators` (H,) replaces D_k: training passes the counts of the whole
    optimizer step (`target_counts` summed over its rows), so a micro-batch contributes its share of one loss
    over the effective batch instead of a mean of its own. Returns (total, per-head losses (H,)).
    """
    if normalize not in ("token", "weight"):
        raise ValueError(f"normalize must be 'token' or 'weight', got {normalize!r}")
    v = valid.to(ce.dtype)
    w = v if weights is None else torch.where(valid, weights.to(ce.dtype), 0.0)
    num = torch.where(valid, w * ce, 0.0).sum(dim=(0, 1))  # (H,); nothing unscored can leak in
    if denominators is not None:
        den = denominators.to(ce.dtype)
    else:
        den = (v if normalize == "token" else w).sum(dim=(0, 1))
    per_head = num / den.clamp_min(torch.finfo(ce.dtype).tiny) * (den > 0)
    if head_coefs is None:
        return per_head.mean(), per_head
    coefs = torch.as_tensor(head_coefs, dtype=ce.dtype, device=ce.device)
    if coefs.shape != per_head.shape:
        raise ValueError(f"head_coefs has {coefs.numel()} entries for {per_head.numel()} heads")
    return (coefs * per_head).sum(), per_head


def target_counts(prompt_len: torch.Tensor, response_len: torch.Tensor, n_future: int) -> torch.Tensor:
    """How many predictions of each head a row of `prompt_len` + `response_len` tokens scores.  (N,) -> (N, H).

    Row tokens x_0..x_{p+r-1} with the response at p..p+r-1 (EOS last): head k predicts x_j from
    position j − k, so it scores the response tokens with j >= k: max(0, r − max(0, k − p)).
    This is the count `weighted_mtp_loss` divides by, known from the index before a step runs.
    """
    k = torch.arange(1, n_future + 1, device=prompt_len.device)
    p, r = prompt_len.long()[:, None], response_len.long()[:, None]
    return (r - (k[None, :] - p).clamp_min(0)).clamp_min(0)


def response_bounds(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """First response index p, last response index T (EOS) per row, and has_response (B,) bool."""
    mask = labels != IGNORE_INDEX
    L = labels.shape[1]
    pos = torch.arange(L, device=labels.device).expand_as(labels)
    has = mask.any(dim=1)
    first = torch.where(mask, pos, L).min(dim=1).values
    last = torch.where(mask, pos, -1).max(dim=1).values
    return first, last, has
