"""Value targets, the clipped loss and critic diagnostics by hand."""

from __future__ import annotations

import pytest
import torch

from wmtp_lightning.weighting import (
    binary_auc,
    clipped_value_loss,
    cosine_drift,
    explained_variance,
    final_values,
    mc_value_targets,
    td_lambda_value_targets,
    value_state_mask,
)

LABELS = torch.tensor([[-100, -100, 7, 8, 2, -100]])  # response 2..4, T = 4
VALUES = torch.tensor([[0.1, 0.2, 0.5, 0.4, 0.9, 0.7]])


def test_state_mask_is_p_minus_1_to_T_minus_1():
    assert value_state_mask(LABELS).tolist() == [[False, True, True, True, False, False]]


def test_monte_carlo_targets():
    G, _ = mc_value_targets(LABELS, torch.tensor([1.0]), gamma=1.0)
    assert G.tolist() == [[0.0, 1.0, 1.0, 1.0, 0.0, 0.0]]
    G, _ = mc_value_targets(LABELS, torch.tensor([1.0]), gamma=0.9)
    torch.testing.assert_close(G, torch.tensor([[0.0, 0.81, 0.9, 1.0, 0.0, 0.0]]))
    G, _ = mc_value_targets(LABELS, torch.tensor([0.0]))
    assert G.abs().sum() == 0


def test_td_lambda_targets():
    G, _ = td_lambda_value_targets(VALUES, LABELS, torch.tensor([1.0]), gamma=1.0, lam=0.5)
    # G_3 = R = 1; G_2 = 0.5·V_3 + 0.5·G_3 = 0.7; G_1 = 0.5·V_2 + 0.5·G_2 = 0.6
    torch.testing.assert_close(G, torch.tensor([[0.0, 0.6, 0.7, 1.0, 0.0, 0.0]]))
    G1, _ = td_lambda_value_targets(VALUES, LABELS, torch.tensor([1.0]), lam=1.0)
    torch.testing.assert_close(G1, mc_value_targets(LABELS, torch.tensor([1.0]))[0])  # λ = 1 is Monte-Carlo


def test_clipped_loss_by_hand():
    v = torch.tensor([0.5, 0.9], requires_grad=True)
    anchor = torch.tensor([0.2, 0.8])
    target = torch.tensor([1.0, 1.0])
    mask = torch.tensor([True, True])
    loss = clipped_value_loss(v, anchor, target, mask, clip=0.2)
    # V_clip = [0.4, 0.9]; ½·max((V−G)², (V_clip−G)²) = [½·0.36, ½·0.01]
    assert loss.item() == pytest.approx((0.18 + 0.005) / 2)
    loss.backward()
    assert v.grad[0] == 0  # the clipped branch wins and is saturated: no push past the anchor
    assert clipped_value_loss(v, anchor, target, mask, clip=None).item() == pytest.approx((0.125 + 0.005) / 2)
    huber = clipped_value_loss(
        torch.tensor([3.0]), torch.tensor([3.0]), torch.tensor([0.0]), torch.tensor([True]), kind="huber"
    )
    assert huber.item() == pytest.approx(2.5)  # δ·(|x| − δ/2)
    masked = clipped_value_loss(torch.tensor([0.0, 100.0]), torch.zeros(2), torch.zeros(2), torch.tensor([True, False]))
    assert masked.item() == 0.0


def test_diagnostics():
    G = torch.tensor([1.0, 0.0, 1.0, 0.0])
    V = torch.tensor([0.8, 0.2, 0.6, 0.4])
    assert explained_variance(V, G, torch.ones(4, dtype=torch.bool)).item() == pytest.approx(0.6)
    assert binary_auc(torch.tensor([0.9, 0.8, 0.3, 0.1]), torch.tensor([1, 0, 1, 0])).item() == 0.75
    assert binary_auc(torch.tensor([0.5, 0.5]), torch.tensor([1, 0])).item() == 0.5
    assert torch.isnan(binary_auc(torch.tensor([0.5]), torch.tensor([1])))
    assert final_values(VALUES, LABELS).tolist() == [pytest.approx(0.4)]  # V_{T−1}
    assert cosine_drift(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(1.0)
