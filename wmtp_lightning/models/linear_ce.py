"""Unembedding + cross entropy over chunks of tokens, without the (N, V) logits tensor.

    logits_i  = h_i · Wᵀ               h (N, D), W (V, D), computed in h's dtype, then float32
    m_i       = max_v logits_iv,       lse_i = m_i + log Σ_v exp(logits_iv − m_i)
    ce_i      = lse_i − logits_i[t_i]                    0 where t_i = −100
    correct_i = logits_i[t_i] == m_i   (t_i is a most likely token)   False where t_i = −100
    ∂ce_i/∂logits_i = softmax(logits_i) − onehot(t_i)

The training loss is a weighted sum of the ce_i with weights known only after the forward pass
(token weights can depend on every ce), so the gradient g_i = ∂loss/∂ce_i reaches this function
only in backward. Backward then needs softmax(logits_i) − onehot(t_i) for every token, and there
are two ways to have it:

  - `recompute=False` (speed): forward keeps exp(logits − max), one float32 (N, V) tensor, which
    backward turns in place into the logits' gradient. No matmul is repeated (3 of N·D·V, as unfused).
  - `recompute=True` (memory): forward keeps only lse (N,); backward recomputes each chunk's
    logits. Nothing larger than `chunk_size` × V ever exists, for one extra N·D·V matmul.

Either way the work happens in one buffer, in place: the unfused path (logits, log-softmax
output, a zero-filled gradient for `nll_loss`, the log-softmax gradient, an argmax pass) makes
four (N, V) tensors, and on a CPU a fresh large tensor costs about as much in page faults as an
elementwise pass over it. Forward always goes chunk by chunk, so the logits of more than
`chunk_size` tokens never exist at once. Results equal
`F.cross_entropy(F.linear(h, W).float(), t, reduction="none")` and its gradients up to float
rounding (summation order); `correct` equals `argmax == t` except that a target tied with another
token for the maximum also counts as a hit.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100  # label of a position that is not learned (prompt, padding); F.cross_entropy's default
CHUNK_SIZE = 1024


def linear_cross_entropy(
    h: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_size: int = CHUNK_SIZE,
    recompute: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token cross entropy of `h @ weight.T` against `targets`, and whether the target is a top token.

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
            ce, correct, _, _ = _forward(h2, weight, t, chunk_size, keep_grad=False)
    return ce.view(shape), correct.view(shape)


def _logits_into(out: torch.Tensor, h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """out (c, V) float32 <- h (c, D) @ weight.T, computed in h's dtype (as F.linear would)."""
    if h.dtype == torch.float32:
        return torch.mm(h, weight.t(), out=out)
    return out.copy_(h @ weight.t())


def _forward(
    h: torch.Tensor, weight: torch.Tensor, t: torch.Tensor, chunk_size: int, keep_grad: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """ce (N,), correct (N,), and for backward: lse (N,), or with `keep_grad` (1/Σexp (N,), exp (N, V)).

    With `keep_grad` the kept tensor is exp(logits − max) = softmax · Σexp, float32: backward
    normalises it with the same multiply that applies ∂loss/∂ce, which saves a pass over it.
    """
    N, V = h.shape[0], weight.shape[0]
    valid = t != IGNORE_INDEX
    safe = torch.where(valid, t, 0)[:, None]  # (N, 1): a real index where t is ignored
    ce = torch.empty(N, dtype=torch.float32, device=h.device)
    correct = torch.empty(N, dtype=torch.bool, device=h.device)
    stat = torch.empty(N, dtype=torch.float32, device=h.device)  # lse, or 1/Σexp when keeping
    keep = torch.empty(N, V, dtype=torch.float32, device=h.device) if keep_grad else None
    buf = keep if keep is not None else torch.empty(min(chunk_size, N), V, dtype=torch.float32, device=h.device)
    for s in range(0, N, chunk_size):
        e = min(s + chunk_size, N)
        z = _logits_into(buf[s:e] if keep is not None else buf[: e - s], h[s:e], weight)  # (c, V)
        m = z.amax(-1, keepdim=True)
        z_t = z.gather(1, safe[s:e])
        correct[s:e] = (z_t == m).squeeze(1) & valid[s:e]
        total = z.sub_(m).exp_().sum(-1, keepdim=True)  # z <- exp(logits − m)
        log_total = total.log()
        ce[s:e] = torch.where(valid[s:e], (log_total - (z_t - m)).squeeze(1), 0.0)
        stat[s:e] = total.reciprocal().squeeze(1) if keep is not None else (m + log_total).squeeze(1)
    return ce, correct, stat, keep


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, t, chunk_size, recompute):  # type: ignore[override]
        ce, correct, stat, keep = _forward(h, weight, t, chunk_size, keep_grad=not recompute)
        ctx.chunk_size = chunk_size
        ctx.save_for_backward(h, weight, t, stat, *(() if keep is None else (keep,)))
        ctx.mark_non_differentiable(correct)
        return ce, correct

    @staticmethod
    def backward(ctx, grad_ce, _grad_correct):  # type: ignore[override]
        h, weight, t, stat, *kept = ctx.saved_tensors
        need_h, need_w = ctx.needs_input_grad[:2]
        N, V, c = h.shape[0], weight.shape[0], min(ctx.chunk_size, h.shape[0])
        valid = t != IGNORE_INDEX
        g = torch.where(valid, grad_ce.float(), 0.0)[:, None]  # (N, 1) ∂loss/∂ce, 0 where unscored
        safe = torch.where(valid, t, 0)[:, None]
        buf = None if kept else torch.empty(c, V, dtype=torch.float32, device=h.device)
        low = torch.empty(c, V, dtype=h.dtype, device=h.device) if h.dtype != torch.float32 else None
        grad_h = torch.empty_like(h) if need_h else None
        grad_w = None
        for s in range(0, N, ctx.chunk_size):
            e = min(s + ctx.chunk_size, N)
            # d = g · (softmax − onehot(t)): the logits' gradient, (c, V) float32
            if kept:  # in place: backward runs once (autograd refuses a second: the saved tensor changed)
                d = kept[0][s:e].mul_(g[s:e] * stat[s:e, None])
            else:  # recompute: softmax = exp(logits − lse)
                d = _logits_into(buf[: e - s], h[s:e], weight).sub_(stat[s:e, None]).exp_().mul_(g[s:e])
            d.scatter_add_(1, safe[s:e], -g[s:e])
            if low is not None:  # the unfused path casts the float32 logits' gradient back the same way
                d = low[: e - s].copy_(d)
            if need_h:
                torch.mm(d, weight, out=grad_h[s:e])
            if need_w:  # summed over chunks in float32 (one chunk: exactly the unfused path's matmul)
                if grad_w is None:
                    grad_w = d.t() @ h[s:e]  # (V, D)
                    if e < N:
                        grad_w = grad_w.float()
                elif d.dtype == grad_w.dtype:
                    grad_w.addmm_(d.t(), h[s:e])
                else:
                    grad_w += d.t() @ h[s:e]
        if grad_w is not None:
            grad_w = grad_w.to(weight.dtype)
        return grad_h, grad_w, None, None, None
