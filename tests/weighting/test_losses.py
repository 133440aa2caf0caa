"""MTP cross entropy with the k-shift and masks, and the weighted reduction."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from wmtp_lightning.weighting import (
    mtp_targets,
    mtp_token_ce,
    response_bounds,
    shift_targets,
    target_counts,
    weighted_mtp_loss,
)


def test_targets_shift_and_pad():
    labels = torch.tensor([[-100, 5, 6, 7]])
    assert shift_targets(labels, 1).tolist() == [[5, 6, 7, -100]]
    assert shift_targets(labels, 3).tolist() == [[7, -100, -100, -100]]
    assert shift_targets(labels, 5).tolist() == [[-100] * 4]
    assert mtp_targets(labels, 2)[0].tolist() == [[5, 6], [6, 7], [7, -100], [-100, -100]]


def test_token_ce_matches_cross_entropy_and_masks():
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 2, 10)
    labels = torch.tensor([[-100, 3, 4, 5]])
    ce, valid = mtp_token_ce(logits, labels)
    assert valid[0].tolist() == [[True, True], [True, True], [True, False], [False, False]]
    assert ce[0, 0, 1] == pytest.approx(F.cross_entropy(logits[0, 0, 1][None], torch.tensor([4])).item())
    assert ce[0, 2, 1] == 0 and ce[0, 3, 0] == 0


def test_weighted_loss_by_hand():
    ce = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])  # (1, 3, 2)
    valid = torch.tensor([[[True, True], [True, False], [False, False]]])
    w = torch.tensor([[[2.0, 0.5], [1.0, 9.0], [7.0, 7.0]]])
    total, per_head = weighted_mtp_loss(ce, valid, w, "token")
    # head 1: (2·1 + 1·3) / 2 = 2.5; head 2: (0.5·2) / 1 = 1.0
    assert per_head.tolist() == [2.5, 1.0] and total.item() == 1.75
    _, per_head = weighted_mtp_loss(ce, valid, w, "weight")
    assert per_head.tolist() == [pytest.approx(5 / 3), 2.0]  # divided by Σ w over valid slots
    total, _ = weighted_mtp_loss(ce, valid, w, "token", head_coefs=[1.0, 0.5])
    assert total.item() == 2.5 + 0.5
    total, per_head = weighted_mtp_loss(ce, valid, None)
    assert per_head.tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match="head_coefs"):
        weighted_mtp_loss(ce, valid, w, head_coefs=[1.0])
    with pytest.raises(ValueError, match="normalize"):
        weighted_mtp_loss(ce, valid, w, normalize="mean")


def test_prompt_and_padding_never_enter_loss_or_normaliser():
    ce = torch.tensor([[[1.0], [2.0], [3.0], [4.0]]])
    valid = torch.tensor([[[False], [True], [True], [False]]])
    loss, _ = weighted_mtp_loss(ce, valid, torch.ones(1, 4, 1))
    garbage = ce.clone()
    garbage[~valid] = float("nan")
    w = torch.tensor([[[1e9], [1.0], [1.0], [float("inf")]]])
    loss2, _ = weighted_mtp_loss(garbage, valid, w)
    assert loss.item() == loss2.item() == 2.5
    empty, per_head = weighted_mtp_loss(ce, torch.zeros_like(valid), None)
    assert empty.item() == 0.0 and per_head.tolist() == [0.0]


def test_response_bounds():
    first, last, has = response_bounds(torch.tensor([[-100, 1, 2, -100], [-100, -100, -100, -100]]))
    assert first[0] == 1 and last[0] == 2 and has.tolist() == [True, False]


def test_explicit_denominators_replace_the_batch_count():
    ce = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    valid = torch.tensor([[[True, True], [True, False], [False, False]]])
    total, per_head = weighted_mtp_loss(ce, valid, None, denominators=torch.tensor([8.0, 4.0]))
    assert per_head.tolist() == [(1 + 3) / 8, 2 / 4] and total.item() == pytest.approx(0.5)


def test_target_counts_by_hand():
    # p = 3 prompt tokens, r = 4 response tokens: every head scores all 4 (j >= 3 >= k for k <= 3)
    # p = 1 (BOS only), r = 3: head 1 scores 3, head 2 scores x_2, x_3 (2), head 3 only x_3 (1)
    counts = target_counts(torch.tensor([3, 1, 5]), torch.tensor([4, 3, 0]), 3)
    assert counts.tolist() == [[4, 4, 4], [3, 2, 1], [0, 0, 0]]


def test_target_counts_match_the_collated_labels():
    """The counts known before a step equal what `mtp_targets` marks valid in the padded batch."""
    rows = [(3, 4), (1, 3), (6, 2), (2, 1)]
    L = max(p + r for p, r in rows) + 2  # padding too
    labels = torch.full((len(rows), L), -100)
    for i, (p, r) in enumerate(rows):
        labels[i, p : p + r] = torch.arange(r) + 5
    for H in (1, 2, 4):
        valid = mtp_targets(labels, H) != -100
        expected = valid.sum(1)  # (B, H)
        got = target_counts(torch.tensor([p for p, _ in rows]), torch.tensor([r for _, r in rows]), H)
        assert got.tolist() == expected.tolist(), H
