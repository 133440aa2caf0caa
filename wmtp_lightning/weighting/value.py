"""Value targets, the clipped value loss and critic diagnostics (DESIGN §3).

The value head is trained on the states s_t, t = p−1 .. T−1 (p = first response index,
T = EOS): the state in which each response token is chosen. Targets G_t:

    Monte-Carlo (default):  G_t = γ^(T−1−t) · R            (γ = 1: every target is R)
    TD(λ):                  G_{T−1} = R,
                            G_t = γ·[(1−λ)·V_{t+1} + λ·G_{t+1}]   (rewards are 0 before the end;
                                                                 V is stop-gradient)

Loss, with V_anchor an EMA copy of the value head (a drift guard, PPO-style clipping):

    V_clip = V_anchor + clamp(V − V_anchor, −ε, ε)
    loss   = mean_t ½·max((V−G)², (V_clip−G)²)        (MSE)  or max(huber(V−G), huber(V_clip−G))
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from wmtp_lightning.weighting.losses import response_bounds


def value_state_mask(labels: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: True on t = p−1 .. T−1, the states that choose a response token."""
    first, last, has = response_bounds(labels)
    pos = torch.arange(labels.shape[1], device=labels.device)[None, :]
    return (pos >= (first - 1)[:, None]) & (pos <= (last - 1)[:, None]) & has[:, None]


def mc_value_targets(
    labels: torch.Tensor, reward: torch.Tensor, gamma: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monte-Carlo targets G_t = γ^(T−1−t)·R on the state mask. Returns (G (B, L), mask (B, L))."""
    mask = value_state_mask(labels)
    _, last, _ = response_bounds(labels)
    pos = torch.arange(labels.shape[1], device=labels.device)[None, :]
    steps = (last[:, None] - 1 - pos).clamp_min(0).to(torch.float32)
    G = reward[:, None].float() * torch.pow(torch.tensor(gamma, dtype=torch.float32, device=labels.device), steps)
    return G * mask, mask


@torch.no_grad()
def td_lambda_value_targets(
    values: torch.Tensor, labels: torch.Tensor, reward: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """TD(λ) targets with stop-gradient bootstrap (backward recursion over positions)."""
    mask = value_state_mask(labels)
    _, last, _ = response_bounds(labels)
    B, L = labels.shape
    v = values.detach().float()
    G = torch.zeros(B, L, dtype=torch.float32, device=values.device)
    nxt = torch.zeros(B, dtype=torch.float32, device=values.device)  # G_{t+1}
    for t in range(L - 1, -1, -1):
        is_last = t == (last - 1)
        v_next = v[:, t + 1] if t + 1 < L else torch.zeros_like(nxt)
        g = torch.where(is_last, reward.float(), gamma * ((1 - lam) * v_next + lam * nxt))
        G[:, t] = g
        nxt = g
    return G * mask, mask


def clipped_value_loss(
    v: torch.Tensor,
    v_anchor: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    clip: float | None = 0.2,
    kind: Literal["mse", "huber"] = "mse",
    huber_delta: float = 1.0,
    denominator: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """Mean over masked states of the clipped loss above. `clip=None` disables clipping.

    `denominator` replaces the number of masked states (training passes the state count of the
    whole optimizer step, so the value loss does not depend on how the step is split either).
    """

    def err(x: torch.Tensor) -> torch.Tensor:
        if kind == "mse":
            return 0.5 * (x - target) ** 2
        if kind == "huber":
            return F.huber_loss(x, target, reduction="none", delta=huber_delta)
        raise ValueError(f"value loss kind must be 'mse' or 'huber', got {kind!r}")

    loss = err(v)
    if clip is not None:
        v_clip = v_anchor.detach() + (v - v_anchor.detach()).clamp(-clip, clip)
        loss = torch.maximum(loss, err(v_clip))
    m = mask.to(loss.dtype)
    den = m.sum() if denominator is None else torch.as_tensor(denominator, dtype=loss.dtype, device=loss.device)
    return (loss * m).sum() / den.clamp_min(1.0)


@torch.no_grad()
def explained_variance(v: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 − Var(G − V)/Var(G) over masked entries (NaN when Var(G) = 0)."""
    m = mask.bool()
    g, e = target[m].float(), (target - v)[m].float()
    var_g = g.var(unbiased=False)
    return 1 - e.var(unbiased=False) / var_g if var_g > 0 else torch.tensor(float("nan"))


@torch.no_grad()
def final_values(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """V_{T−1} per row: the value of the state that chooses EOS (used for AUC vs is_correct)."""
    _, last, _ = response_bounds(labels)
    return values.gather(1, (last - 1).clamp_min(0)[:, None]).squeeze(1)


@torch.no_grad()
def binary_auc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """ROC AUC (torchmetrics' `binary_auroc`; ties count ½); NaN when a class is absent (no AUC exists)."""
    from torchmetrics.functional.classification import binary_auroc

    y = labels.flatten().long()
    if y.numel() == 0 or bool(y.all()) or not bool(y.any()):
        return torch.tensor(float("nan"))
    return binary_auroc(scores.flatten().float(), y)


@torch.no_grad()
def cosine_drift(params: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """1 − cos(θ, θ_anchor): how far the value head has turned away from its EMA anchor."""
    return 1 - F.cosine_similarity(params.flatten().float(), anchor.flatten().float(), dim=0)
