"""Rho-1 scores and exact top-k selection."""

from __future__ import annotations

import pytest
import torch

from wmtp_lightning.weighting import (
    ce_at_tokens,
    exp_weights,
    head_weights,
    masked_stats,
    rho1_per_head_scores,
    rho1_token_scores,
    rho1_weights,
    topk_mask,
    topk_mask_per_head,
    weight_stats,
)


def test_topk_exact_count_and_deterministic_ties():
    scores = torch.tensor([[3.0, 1.0, 2.0, 2.0], [2.0, 5.0, 0.0, 9.0]])
    mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    sel = topk_mask(scores, mask, 0.5)  # N = 7 -> ⌈3.5⌉ = 4; the masked-out 9 is never chosen
    assert sel.tolist() == [[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]]  # the third 2.0 loses the tie
    assert topk_mask(torch.ones(5), torch.ones(5, dtype=torch.bool), 0.6).sum() == 3  # 0.6·5 is 3, not 4
    assert topk_mask(torch.zeros(7), torch.ones(7, dtype=torch.bool), 0.3).tolist() == [1, 1, 1, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="ratio"):
        topk_mask(scores, mask, 0.0)


def test_token_scores_and_alignment():
    ce_pos = torch.tensor([[0.0, 1.0, 2.0, 3.0]])  # head-1 CE at positions t (predicting x_{t+1})
    assert ce_at_tokens(ce_pos, 1).tolist() == [[0.0, 0.0, 1.0, 2.0]]  # token j gets position j − 1
    labels = torch.tensor([[-100, -100, 5, 6]])
    scores, mask = rho1_token_scores(ce_at_tokens(ce_pos, 1), torch.tensor([[9.0, 9.0, 0.5, 2.5]]), labels)
    assert scores.tolist() == [[0.0, 0.0, 0.5, -0.5]] and mask.tolist() == [[False, False, True, True]]


def test_per_head_scores():
    ce = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    valid = torch.tensor([[[True, True], [True, False], [False, False]]])
    ref_tok = torch.tensor([[0.0, 0.5, 1.5]])  # CE_ref(x_j)
    s = rho1_per_head_scores(ce, valid, ref_tok)
    # head 1 at t=0 -> x_1: 1 − 0.5; at t=1 -> x_2: 3 − 1.5; head 2 at t=0 -> x_2: 2 − 1.5
    assert s[0].tolist() == [[0.5, 0.5], [1.5, 0.0], [0.0, 0.0]]


def test_soft_weights_and_stats():
    w = exp_weights(torch.tensor([0.0, 10.0, -10.0]), torch.tensor([True, True, False]), beta=1.0)
    assert w.tolist() == [1.0, 5.0, 0.0]
    st = weight_stats(torch.tensor([0.1, 1.0, 5.0, 2.0]), torch.tensor([True, True, True, False]), 0.1, 5.0)
    assert st["weight_mean"].item() == pytest.approx(6.1 / 3) and st["weight_clip_frac"].item() == pytest.approx(2 / 3)
    assert st["weight_min"].item() == pytest.approx(0.1) and st["weight_max"].item() == 5.0
    assert masked_stats(torch.ones(2), torch.zeros(2, dtype=torch.bool), "x") == {}


def test_per_head_topk_keeps_ceil_ratio_of_each_head():
    # Head 2's excess losses are all larger than head 1's: a joint top-k would keep none of head 1.
    scores = torch.tensor([[[0.1, 5.0], [0.3, 6.0], [0.2, 7.0], [0.0, 8.0]]])
    valid = torch.tensor([[[True, True], [True, True], [True, True], [True, False]]])
    sel = topk_mask_per_head(scores, valid, 0.5)
    assert sel[0, :, 0].tolist() == [0.0, 1.0, 1.0, 0.0]  # ⌈0.5·4⌉ = 2 of head 1: 0.3 and 0.2
    assert sel[0, :, 1].tolist() == [0.0, 1.0, 1.0, 0.0]  # ⌈0.5·3⌉ = 2 of head 2's 3 valid: 6 and 7
    assert topk_mask(scores, valid, 0.4)[0, :, 0].sum() == 0  # a joint ranking (⌈0.4·7⌉ = 3) starves head 1


def test_rho1_recipe_chains_the_parts():
    ce = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [0.0, 0.0]]])
    labels = torch.tensor([[-100, 7, 8, 9]])
    valid = torch.tensor([[[True, True], [True, True], [True, False], [False, False]]])
    ref = torch.tensor([[0.0, 0.5, 3.5, 1.0]])
    hard = rho1_weights(ce, valid, ref, labels, ratio=0.6)
    scores, mask = rho1_token_scores(ce_at_tokens(ce[..., 0], 1), ref, labels)
    assert scores.tolist() == [[0.0, 0.5, -0.5, 4.0]]  # x_1: 1 − 0.5, x_2: 3 − 3.5, x_3: 5 − 1
    assert hard.token_weights.tolist() == [[0.0, 1.0, 0.0, 1.0]]  # ⌈0.6·3⌉ = 2 kept: x_3, x_1
    torch.testing.assert_close(hard.weights, head_weights(hard.token_weights, 2))
    assert hard.normalize == "weight"
    soft = rho1_weights(ce, valid, ref, labels, mode="soft", beta=2.0, min_weight=0.5, max_weight=4.0)
    torch.testing.assert_close(soft.token_weights, exp_weights(scores, mask, 2.0, 0.5, 4.0))
    assert soft.normalize is None
    ph = rho1_weights(ce, valid, ref, labels, score="per_head", ratio=0.5)
    torch.testing.assert_close(ph.weights, topk_mask_per_head(rho1_per_head_scores(ce, valid, ref), valid, 0.5))
    assert ph.token_weights is None
    with pytest.raises(ValueError, match="mode"):
        rho1_weights(ce, valid, ref, labels, mode="medium")
