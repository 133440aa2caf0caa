"""Unembedding + cross entropy over chunks of tokens, without the (N, V) logits tensor.

    logits_i = h_i · Wᵀ                      h (N, D), W (V, D), computed in h's dtype, then float32
    ce_i     = logsumexp(logits_i) − logits_i[t_i]          0 where t_i = −100
    correct_i = argmax(logits_i) == t_i                    False where t_i = −100
    ∂ce_i/∂logits_i = softmax(logits_i) − onehot(t_i)

The training loss is a weighted sum of the ce_i with weights known only after the forward pass
(token weights can depend on every ce), so the gradient g_i = ∂loss/∂ce_i reaches this function
only in backward. Backward then needs softmax(logits_i) − onehot(t_i) for every token, and there
are two ways to have it:

  - `recompute=False` (speed): forward keeps it, one float32 (N, V) tensor, which backward
    scales in place into the logits' gradient. The unfused path's logits, log-softmax output and
    their gradients (four such tensors, one of them zero-filled for `nll_loss`' backward) never
    exist, and no matmul is repeated: 3 matmuls of N·D·V, as unfused.
  - `recompute=True` (memory): forward keeps nothing of size V; backward recomputes each chunk's
    logits. Nothing larger than `chunk_size` × V ever exists, for one extra N·D·V matmul.

Forward always works chunk by chunk, so the logits of more than `chunk_size` tokens never exist
at once. The result equals `F.cross_entropy(F.linear(h, W).float(), t, reduction="none")` and its
gradients up to float rounding (summation order differs across chunks).
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100
CHUNK_SIZE = 1024


def linear_cross_entropy(
    h: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_size: int = CHUNK_SIZE,
    recompute: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token cross entropy of `h @ weight.T` against `targets`, and argmax hits.

    Args:
        h: (..., D) hidden states (already normalised).
        weight: (V, D) unembedding matrix.
        targets: (...) token ids, −100 where not scored.
        chunk_size: tokens per chunk; chunk_size × V float32 logits exist at a time.
        recompute: keep nothing of size V for backward; recompute each chunk's logits there.

    Returns:
        ce (...) float32 (0 where the target is −100), correct (...) bool.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    shape = targets.shape
    h2, t = h.reshape(-1, h.shape[-1]), targets.reshape(-1)
    if h2.shape[0] != t.shape[0]:
        raise ValueError(f"h {tuple(h.shape)} and targets {tuple(shape)} disagree on the token count")
    device = h.device.type
    if torch.is_autocast_enabled(device):  # what autocast would do to F.linear, outside the Function
        dtype = torch.get_autocast_dtype(device)
        h2, weight = h2.to(dtype), weight.to(dtype)
    with torch.autocast(device, enabled=False):
        if torch.is_grad_enabled() and (h2.requires_grad or weight.requires_grad):
            ce, correct = _LinearCrossEntropy.apply(h2, weight, t, chunk_size, recompute)
        else:
            ce, correct, _ = _forward(h2, weight, t, chunk_size, keep_grad=False)
    return ce.view(shape), correct.view(shape)


def _chunks(n: int, size: int) -> range:
    return range(0, n, size)


def _forward(
    h: torch.Tensor, weight: torch.Tensor, t: torch.Tensor, chunk_size: int, keep_grad: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """ce (N,), correct (N,), and softmax − onehot (N, V) float32 when `keep_grad`."""
    N, V = h.shape[0], weight.shape[0]
    valid = t != IGNORE_INDEX
    safe = torch.where(valid, t, 0)[:, None]  # (N, 1): a real index where t is ignored
    ce = torch.empty(N, dtype=torch.float32, device=h.device)
    correct = torch.empty(N, dtype=torch.bool, device=h.device)
    grad_unit = torch.empty(N, V, dtype=torch.float32, device=h.device) if keep_grad else None
    for s in _chunks(N, chunk_size):
        e = min(s + chunk_size, N)
        if grad_unit is not None and h.dtype == torch.float32:  # into the kept buffer: no new (c, V)
            logits = torch.mm(h[s:e], weight.t(), out=grad_unit[s:e])
        else:
            logits = (h[s:e] @ weight.t()).float()  # (c, V)
        correct[s:e] = (logits.argmax(-1) == t[s:e]) & valid[s:e]
        logp = torch.log_softmax(logits, dim=-1)  # what F.cross_entropy computes, bit for bit
        del logits
        ce[s:e] = torch.where(valid[s:e], -logp.gather(1, safe[s:e]).squeeze(1), 0.0)
        if grad_unit is not None:
            p = torch.exp(logp, out=grad_unit[s:e])  # softmax, written in place
            p.scatter_add_(1, safe[s:e], -valid[s:e, None].to(p.dtype))  # − onehot on scored rows
    return ce, correct, grad_unit


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, t, chunk_size, recompute):  # type: ignore[override]
        ce, correct, grad_unit = _forward(h, weight, t, chunk_size, keep_grad=not recompute)
        ctx.chunk_size = chunk_size
        ctx.save_for_backward(h, weight, t, *(() if grad_unit is None else (grad_unit,)))
        ctx.mark_non_differentiable(correct)
        return ce, correct

    @staticmethod
    def backward(ctx, grad_ce, _grad_correct):  # type: ignore[override]
        h, weight, t, *kept = ctx.saved_tensors
        need_h, need_w = ctx.needs_input_grad[:2]
        valid = t != IGNORE_INDEX
        g = torch.where(valid, grad_ce.float(), 0.0)[:, None]  # (N, 1) ∂loss/∂ce, 0 where unscored
        safe = torch.where(valid, t, 0)[:, None]
        grad_h = torch.empty_like(h) if need_h else None
        grad_w = None
        for s in _chunks(h.shape[0], ctx.chunk_size):
            e = min(s + ctx.chunk_size, h.shape[0])
            if kept:  # scaled in place: backward runs once (autograd refuses a second, the
                d = kept[0][s:e].mul_(g[s:e])  # saved tensor having changed)
            else:
                d = torch.softmax((h[s:e] @ weight.t()).float(), dim=-1)
                d.scatter_add_(1, safe[s:e], -valid[s:e, None].to(d.dtype)).mul_(g[s:e])
            d = d.to(h.dtype)  # the plain path casts the float32 logits' gradient back the same way
            if need_h:
                torch.mm(d, weight, out=grad_h[s:e])
            if need_w:  # summed over chunks in float32 (one chunk: exactly the plain path's matmul)
                if grad_w is None:
                    grad_w = d.t() @ h[s:e]  # (V, D)
                    if e < h.shape[0]:
                        grad_w = grad_w.float()
                elif d.dtype == grad_w.dtype:
                    grad_w.addmm_(d.t(), h[s:e])
                else:
                    grad_w += d.t() @ h[s:e]
        if grad_w is not None:
            grad_w = grad_w.to(weight.dtype)
        return grad_h, grad_w, None, None, None
