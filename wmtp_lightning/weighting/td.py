"""TD errors and exponential token weights for the verifiable critic (DESIGN §3).

V_t = V(s_t) is the value of the state after x_0..x_t (values[b, t]); token x_j is chosen in
state s_{j-1}. For response tokens j = p..T (T = EOS, the last response token), with the binary
reward R = 1 if the solution is correct else 0 and V(terminal) = 0:

    δ_j = γ·V_j − V_{j−1}     for p <= j < T   (intermediate: r = 0, bootstrapped)
    δ_T = R − V_{T−1}                           (terminal: the reward itself)

    w_j = clamp(exp(δ_j / β), min_weight, max_weight), computed without gradient
          (optionally δ is whitened over the batch's response tokens first).

A token that raises the expected reward gets w > 1, one that lowers it w < 1; in a failing
solution the token where the value drops (the bug) is down-weighted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from wmtp_lightning.weighting.losses import IGNORE_INDEX, head_weights, mtp_targets, response_bounds
from wmtp_lightning.weighting.transforms import exp_weights, whiten


def td_errors(
    values: torch.Tensor,
    labels: torch.Tensor,
    reward: torch.Tensor,
    gamma: float = 1.0,
    ended: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence-terminal TD errors, token-indexed.

    values (B, L) float, labels (B, L), reward (B,) -> (δ (B, L), response mask (B, L) bool).
    δ is 0 outside the response. Values at the first position are never needed: the response
    starts after the prompt, so V_{p-1} exists. `ended` (B,) bool says which rows end with their
    EOS (default: all). A truncated row has no terminal step in view: its last token is an
    ordinary, bootstrapped one (γ·V_T − V_{T−1}), so the reward never lands mid-solution.
    """
    mask = labels != IGNORE_INDEX
    _, last, _ = response_bounds(labels)
    v_prev = torch.zeros_like(values)
    v_prev[:, 1:] = values[:, :-1]  # v_prev[:, j] = V_{j-1}
    pos = torch.arange(labels.shape[1], device=labels.device)
    terminal = pos[None, :] == last[:, None]  # (B, L)
    if ended is not None:
        terminal = terminal & ended.bool()[:, None]
    delta = torch.where(terminal, reward[:, None].to(values.dtype) - v_prev, gamma * values - v_prev)
    return delta * mask, mask


def td_errors_horizon(
    values: torch.Tensor,
    labels: torch.Tensor,
    reward: torch.Tensor,
    n_future: int,
    gamma: float = 1.0,
    ended: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The seed's `horizon` variant, position-indexed per head (B, L, H).

    Heads k < H use the sequence TD error of their target token x_{t+k}; head H treats its own
    target as the end of its window: δ[b, t, H-1] = R − V_{t+H−1}. Returns (δ, valid) where
    valid[b, t, k-1] says head k at t has a response target.
    """
    delta_tok, _ = td_errors(values, labels, reward, gamma, ended)
    delta = head_weights(delta_tok, n_future)  # (B, L, H): δ_{t+k}
    valid = mtp_targets(labels, n_future) != IGNORE_INDEX
    H = n_future
    v_window = torch.zeros_like(values)
    if values.shape[1] > H - 1:
        v_window[:, : values.shape[1] - (H - 1)] = values[:, H - 1 :]  # V_{t+H-1}
    delta[..., H - 1] = reward[:, None].to(values.dtype) - v_window
    return delta * valid, valid


def cumulative_td(delta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ_{i <= j} δ_i over each row's response tokens (token-indexed (B, L); 0 outside the response).

    With γ = 1 this telescopes to V_j − V_{p−1} (and R − V_{p−1} at EOS): how much the prefix up to
    and including x_j has changed the expected reward since the response began. After a bug the
    value stays low, so every later token keeps a negative signal, where the one-step δ returns to
    ≈ 0 and the buggy continuation would be imitated at full weight.
    """
    return torch.cumsum(delta * mask, dim=1) * mask


@dataclass
class CriticWeights:
    """What `critic_weights` gives the loss and the logs.

    weights (B, L, H): position-indexed per-prediction weights (see `losses.head_weights`).
    delta: the one-step TD errors, token-indexed (B, L) for `sequence`, position-indexed (B, L, H)
        for `horizon`. signal: what was exponentiated (delta, its cumulative sum, whitened if asked).
        mask: where `delta`/`signal`/`weights` are defined (same shape as delta).
    token_weights (B, L): w_j per response token (`sequence` only; None for `horizon`, whose weights
        differ per head).
    """

    weights: torch.Tensor
    delta: torch.Tensor
    signal: torch.Tensor
    mask: torch.Tensor
    token_weights: torch.Tensor | None


@torch.no_grad()
def critic_weights(
    values: torch.Tensor,
    labels: torch.Tensor,
    reward: torch.Tensor,
    n_future: int,
    *,
    beta: float = 0.9,
    min_weight: float = 0.1,
    max_weight: float = 5.0,
    gamma: float = 1.0,
    td_terminal: Literal["sequence", "horizon"] = "sequence",
    whiten_delta: bool = False,
    signal: Literal["delta", "cumulative"] = "delta",
    ended: torch.Tensor | None = None,
) -> CriticWeights:
    """The critic's recipe: values -> TD errors -> (cumulate) -> (whiten) -> clamp(exp(x/β)) -> per-head weights.

    values (B, L) (detached here), labels (B, L), reward (B,), ended (B,) bool (rows that end with
    EOS; default all). `signal`: "delta" weighs token j by its one-step TD error δ_j (the seed's
    method); "cumulative" by Σ_{i<=j} δ_i (`cumulative_td`), which keeps the continuation after a
    value drop down-weighted. Training and the analysis notebook both call this, so what the
    notebook shows is what the loss saw, for any hyperparameters.
    """
    v = values.detach().float()
    if td_terminal == "sequence":
        delta, mask = td_errors(v, labels, reward, gamma, ended)
    elif td_terminal == "horizon":
        if signal != "delta":
            raise ValueError("td_terminal='horizon' has per-head TD errors: use signal='delta'")
        delta, mask = td_errors_horizon(v, labels, reward, n_future, gamma, ended)
    else:
        raise ValueError(f"td_terminal must be 'sequence' or 'horizon', got {td_terminal!r}")
    if signal == "cumulative":
        x = cumulative_td(delta, mask)
    elif signal == "delta":
        x = delta
    else:
        raise ValueError(f"signal must be 'delta' or 'cumulative', got {signal!r}")
    if whiten_delta:
        x = whiten(x, mask)
    w = exp_weights(x, mask, beta, min_weight, max_weight)
    if td_terminal == "sequence":
        return CriticWeights(head_weights(w, n_future), delta, x, mask, w)
    return CriticWeights(w, delta, x, mask, None)


@torch.no_grad()
def after_first_drop(delta: torch.Tensor, mask: torch.Tensor, threshold: float) -> torch.Tensor:
    """(B, L) bool: the response tokens after each row's first δ <= −threshold (not the drop itself).

    The diagnostic of what the critic does to a buggy continuation: with the one-step δ the value
    stays low after the drop, δ ≈ 0, and those tokens keep w ≈ 1 (imitated at full weight).
    """
    m = mask.bool()
    drops = torch.cumsum(((delta <= -threshold) & m).int(), dim=1)  # drops seen up to and including j
    first = (drops == 1) & (delta <= -threshold) & m
    return (drops > 0) & ~first & m
