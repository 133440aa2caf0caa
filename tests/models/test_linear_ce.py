"""Chunked unembedding + cross entropy: equal to the unfused computation, and never (N, V) at once."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode  # the documented extension point

from wmtp_lightning.models.linear_ce import linear_cross_entropy


def unfused(h, w, t):
    logits = F.linear(h, w).float()
    ce = F.cross_entropy(logits.flatten(0, -2), t.flatten(), ignore_index=-100, reduction="none").view(t.shape)
    correct = (logits.argmax(-1) == t) & (t != -100)
    return ce, correct


def case(N=13, D=8, V=37, dtype=torch.float32):
    torch.manual_seed(0)
    h = torch.randn(N, D, dtype=dtype, requires_grad=True)
    w = torch.randn(V, D, dtype=dtype, requires_grad=True)
    t = torch.randint(0, V, (N,))
    t[[0, 5, 6]] = -100  # prompt / padding
    t[3] = int(F.linear(h, w)[3].argmax())  # at least one argmax hit
    g = torch.rand(N)  # d loss / d ce: weights known only after forward
    return h, w, t, g


def grads(fn, h, w, t, g):
    h.grad = w.grad = None
    ce, correct = fn(h, w, t)
    (ce * g).sum().backward()
    return ce.detach(), correct, h.grad.clone(), w.grad.clone()


def test_by_hand():
    h = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # logits [1, 0, 0] and [0, 2, 0]
    ce, correct = linear_cross_entropy(h, w, torch.tensor([0, 0]))
    assert ce[0].item() == pytest.approx(math.log(math.e + 2) - 1)
    assert ce[1].item() == pytest.approx(math.log(2 + math.e**2))
    assert correct.tolist() == [True, False]


@pytest.mark.parametrize("recompute", [False, True])
@pytest.mark.parametrize("chunk", [1, 4, 13, 100])
def test_equals_unfused_loss_and_gradients(chunk, recompute):
    h, w, t, g = case()
    ref = grads(unfused, h, w, t, g)
    got = grads(lambda *a: linear_cross_entropy(*a, chunk_size=chunk, recompute=recompute), h, w, t, g)
    torch.testing.assert_close(got[0], ref[0], atol=1e-6, rtol=1e-6)
    assert torch.equal(got[1], ref[1]) and got[1].any()
    torch.testing.assert_close(got[2], ref[2], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(got[3], ref[3], atol=1e-6, rtol=1e-6)
    assert (got[0][t == -100] == 0).all() and not got[1][t == -100].any()


def test_leading_dims_frozen_weight_and_no_grad():
    h, w, t, g = case(N=12)
    h3, t3 = h.detach().view(3, 4, 8).requires_grad_(), t.view(3, 4)
    w.requires_grad_(False)
    ce, correct = linear_cross_entropy(h3, w, t3, chunk_size=5)
    assert ce.shape == correct.shape == (3, 4)
    (ce * g.view(3, 4)).sum().backward()
    ref_ce, _ = unfused(h3, w, t3)
    torch.testing.assert_close(ce, ref_ce)
    assert h3.grad is not None and w.grad is None
    with torch.no_grad():
        ce2, _ = linear_cross_entropy(h3, w, t3)
    assert ce2.grad_fn is None and torch.equal(ce2, ce.detach())


def test_bfloat16_matches_the_unfused_bf16_path():
    h, w, t, g = case(N=40, D=16, V=64, dtype=torch.bfloat16)
    ref = grads(unfused, h, w, t, g)
    for chunk, recompute in ((64, False), (7, True)):
        got = grads(lambda *a, c=chunk, r=recompute: linear_cross_entropy(*a, chunk_size=c, recompute=r), h, w, t, g)
        assert got[2].dtype == got[3].dtype == torch.bfloat16
        torch.testing.assert_close(got[0], ref[0], atol=1e-5, rtol=1e-5)  # same bf16 logits, float32 CE
        assert torch.equal(got[1], ref[1])
        for a, b in zip(got[2:], ref[2:]):  # bf16 gradients: a rounding step apart at most
            torch.testing.assert_close(a.float(), b.float(), atol=1e-2, rtol=1e-2)


def test_autocast_computes_the_matmul_like_linear_would():
    h, w, t, g = case(N=20, D=16, V=48)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = grads(unfused, h, w, t, g)
        got = grads(lambda *a: linear_cross_entropy(*a, chunk_size=20), h, w, t, g)
    assert got[2].dtype == got[3].dtype == torch.float32  # grads land on the fp32 leaves
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b)


class _Largest(TorchDispatchMode):
    """Records the largest new tensor (not a view) any aten op returns, in forward and in backward."""

    def __init__(self):
        super().__init__()
        self.largest = 0
        self.calls: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.calls.add(func.overloadpacket.__name__)
        for o in () if func.is_view else out if isinstance(out, tuple) else (out,):
            if isinstance(o, torch.Tensor):
                self.largest = max(self.largest, o.numel())
        return out


@pytest.mark.parametrize("recompute", [False, True])
def test_no_more_than_a_chunk_of_logits_at_once(recompute):
    N, D, V, chunk = 64, 4, 50, 8  # N·D and V·D below chunk·V: the probe sees only V-sized tensors
    h, w, t, g = case(N=N, D=D, V=V)
    with _Largest() as seen:
        ce, _ = linear_cross_entropy(h, w, t, chunk_size=chunk, recompute=recompute)
        (ce * g).sum().backward()
    # recompute: nothing of size V beyond a chunk; otherwise one (N, V) softmax kept for backward.
    assert seen.largest == (chunk * V if recompute else N * V)
    assert "mul_" in seen.calls  # only backward scales by ∂loss/∂ce: the probe saw it
    with _Largest() as seen:
        ce, _ = unfused(h, w, t)
    assert seen.largest == N * V  # the probe sees what the unfused path makes


def test_bad_arguments():
    h, w, t, _ = case()
    with pytest.raises(ValueError, match="chunk_size"):
        linear_cross_entropy(h, w, t, chunk_size=0)
    with pytest.raises(ValueError, match="token count"):
        linear_cross_entropy(h, w, t[:-1])


def test_a_second_backward_is_refused_not_wrong():
    """The kept softmax is scaled in place by backward: autograd must refuse to reuse it."""
    h, w, t, g = case()
    ce, _ = linear_cross_entropy(h, w, t)
    loss = (ce * g).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
