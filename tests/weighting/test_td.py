"""TD errors and weights against values computed by hand (DESIGN §3 notation)."""

from __future__ import annotations

import math

import pytest
import torch

from wmtp_lightning.weighting import (
    after_first_drop,
    critic_weights,
    cumulative_td,
    exp_weights,
    head_weights,
    td_errors,
    td_errors_horizon,
    whiten,
)

# One row: x_0, x_1 prompt; x_2, x_3 solution; x_4 = EOS (T = 4); x_5 padding.
LABELS = torch.tensor([[-100, -100, 7, 8, 2, -100]])
VALUES = torch.tensor([[0.1, 0.2, 0.5, 0.4, 0.9, 0.7]])


def test_td_errors_by_hand():
    delta, mask = td_errors(VALUES, LABELS, torch.tensor([1.0]), gamma=1.0)
    # δ_2 = V_2 − V_1 = 0.3; δ_3 = V_3 − V_2 = −0.1; δ_4 = R − V_3 = 0.6 (terminal: V_4 is never used)
    torch.testing.assert_close(delta, torch.tensor([[0.0, 0.0, 0.3, -0.1, 0.6, 0.0]]))
    assert mask.tolist() == [[False, False, True, True, True, False]]
    delta, _ = td_errors(VALUES, LABELS, torch.tensor([0.0]), gamma=0.9)
    # δ_2 = 0.9·0.5 − 0.2 = 0.25; δ_3 = 0.9·0.4 − 0.5 = −0.14; δ_4 = 0 − 0.4
    torch.testing.assert_close(delta, torch.tensor([[0.0, 0.0, 0.25, -0.14, -0.4, 0.0]]))


def test_weights_by_hand_and_clamp():
    delta, mask = td_errors(VALUES, LABELS, torch.tensor([1.0]))
    w = exp_weights(delta, mask, beta=0.9, min_weight=0.1, max_weight=5.0)
    expected = [0.0, 0.0, math.exp(0.3 / 0.9), math.exp(-0.1 / 0.9), math.exp(0.6 / 0.9), 0.0]
    torch.testing.assert_close(w, torch.tensor([expected]))
    big = exp_weights(torch.tensor([[5.0, -5.0, 0.0]]), torch.ones(1, 3, dtype=torch.bool), beta=0.9)
    assert big.tolist() == [[5.0, pytest.approx(0.1), 1.0]]
    with pytest.raises(ValueError, match="beta"):
        exp_weights(delta, mask, beta=0.0)


def test_no_gradient_flows_through_weights():
    values = VALUES.clone().requires_grad_(True)
    delta, mask = td_errors(values, LABELS, torch.tensor([1.0]))
    w = exp_weights(delta, mask, beta=0.9)
    assert not w.requires_grad
    ce = torch.ones(1, 6, requires_grad=True)
    (w * ce).sum().backward()
    assert values.grad is None and ce.grad is not None


def test_terminal_reward_reaches_eos_weight_for_every_head():
    H = 3
    T = 4
    ws = {}
    for R in (0.0, 1.0):
        delta, mask = td_errors(VALUES, LABELS, torch.tensor([R]))
        ws[R] = head_weights(exp_weights(delta, mask, beta=0.9), H)  # (1, L, H)
    changed = (ws[0.0] != ws[1.0]).nonzero().tolist()
    # Only the predictions of x_T change with R: head k at position T − k, for every k.
    assert sorted(changed) == sorted([0, T - k, k - 1] for k in (1, 2, 3))
    for k in (1, 2, 3):
        assert ws[1.0][0, T - k, k - 1] == pytest.approx(math.exp(0.6 / 0.9))
        assert ws[0.0][0, T - k, k - 1] == pytest.approx(math.exp(-0.4 / 0.9))


def test_head_weights_shift():
    w = torch.tensor([[0.0, 0.0, 2.0, 3.0, 4.0, 0.0]])
    W = head_weights(w, 2)
    assert W[0, :, 0].tolist() == [0.0, 2.0, 3.0, 4.0, 0.0, 0.0]  # head 1 at t predicts x_{t+1}
    assert W[0, :, 1].tolist() == [2.0, 3.0, 4.0, 0.0, 0.0, 0.0]  # head 2 at t predicts x_{t+2}


def test_horizon_variant_by_hand():
    delta, valid = td_errors_horizon(VALUES, LABELS, torch.tensor([1.0]), n_future=2)
    # head 1 (k < H): sequence δ of its target x_{t+1}; head 2 (= H): R − V_{t+1}
    assert valid[0, :, 1].tolist() == [True, True, True, False, False, False]
    torch.testing.assert_close(delta[0, :, 0], torch.tensor([0.0, 0.3, -0.1, 0.6, 0.0, 0.0]))
    torch.testing.assert_close(delta[0, :, 1], torch.tensor([1 - 0.2, 1 - 0.5, 1 - 0.4, 0.0, 0.0, 0.0]))


def test_whiten_by_hand():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    m = torch.tensor([[True, True, True, False]])
    std = math.sqrt(2 / 3)  # population std of 1, 2, 3
    torch.testing.assert_close(whiten(x, m, eps=0.0), torch.tensor([[-1 / std, 0.0, 1 / std, 0.0]]))
    one = torch.tensor([[True, False, False, False]])
    assert whiten(x, one).tolist() == [[1.0, 0.0, 0.0, 0.0]]  # fewer than 2 entries: left as is


def test_critic_recipe_chains_the_parts():
    """critic_weights = td_errors -> (whiten) -> exp_weights -> head_weights, with every option honoured."""
    R = torch.tensor([1.0])
    cw = critic_weights(VALUES, LABELS, R, 2, beta=0.5, min_weight=0.2, max_weight=3.0, gamma=0.9)
    delta, mask = td_errors(VALUES, LABELS, R, gamma=0.9)
    w = exp_weights(delta, mask, 0.5, 0.2, 3.0)
    torch.testing.assert_close(cw.delta, delta)
    torch.testing.assert_close(cw.token_weights, w)
    torch.testing.assert_close(cw.weights, head_weights(w, 2))
    wh = critic_weights(VALUES, LABELS, R, 2, whiten_delta=True)
    torch.testing.assert_close(wh.signal, whiten(td_errors(VALUES, LABELS, R)[0], mask))
    torch.testing.assert_close(wh.delta, td_errors(VALUES, LABELS, R)[0])  # the raw δ is kept beside it
    hz = critic_weights(VALUES, LABELS, R, 2, td_terminal="horizon")
    d_h, v_h = td_errors_horizon(VALUES, LABELS, R, n_future=2)
    assert hz.token_weights is None and torch.equal(hz.mask, v_h)
    torch.testing.assert_close(hz.weights, exp_weights(d_h, v_h, 0.9))
    with pytest.raises(ValueError, match="td_terminal"):
        critic_weights(VALUES, LABELS, R, 2, td_terminal="window")


def test_truncated_row_has_no_terminal_step():
    """A truncated row does not end with EOS: its last token is bootstrapped, the reward is not in view."""
    delta, _ = td_errors(VALUES, LABELS, torch.tensor([0.0]), gamma=1.0, ended=torch.tensor([False]))
    # δ_4 = V_4 − V_3 = 0.9 − 0.4 (bootstrapped), not R − V_3 = −0.4
    torch.testing.assert_close(delta, torch.tensor([[0.0, 0.0, 0.3, -0.1, 0.5, 0.0]]))
    ended, _ = td_errors(VALUES, LABELS, torch.tensor([0.0]), ended=torch.tensor([True]))
    torch.testing.assert_close(ended, td_errors(VALUES, LABELS, torch.tensor([0.0]))[0])


def test_cumulative_signal_telescopes_to_the_value_change_since_the_start():
    R = torch.tensor([0.0])
    delta, mask = td_errors(VALUES, LABELS, R)  # [0, 0, 0.3, -0.1, -0.4, 0]
    cum = cumulative_td(delta, mask)
    # V_2 − V_1 = 0.3; V_3 − V_1 = 0.2; R − V_1 = −0.2 (γ = 1: Σ δ telescopes)
    torch.testing.assert_close(cum, torch.tensor([[0.0, 0.0, 0.3, 0.2, -0.2, 0.0]]))
    cw = critic_weights(VALUES, LABELS, R, 2, signal="cumulative", beta=0.5)
    torch.testing.assert_close(cw.signal, cum)
    torch.testing.assert_close(cw.delta, delta)
    torch.testing.assert_close(cw.token_weights, exp_weights(cum, mask, 0.5))
    with pytest.raises(ValueError, match="signal"):
        critic_weights(VALUES, LABELS, R, 2, signal="sum")
    with pytest.raises(ValueError, match="horizon"):
        critic_weights(VALUES, LABELS, R, 2, signal="cumulative", td_terminal="horizon")


def test_after_first_drop_marks_the_continuation_only():
    d = torch.tensor([[0.0, 0.1, -0.5, 0.0, -0.6, 0.1, 0.0], [0.0, 0.1, -0.1, 0.0, 0.0, 0.0, 0.0]])
    m = torch.tensor([[False, True, True, True, True, True, False]] * 2)
    after = after_first_drop(d, m, threshold=0.3)
    assert after.int().tolist() == [[0, 0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0, 0]]  # no strong drop: nothing
