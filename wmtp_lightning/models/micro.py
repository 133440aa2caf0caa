"""Micro models for CPU/MPS debugging: made from scratch, or sliced out of a real bundle.

Slicing keeps a subset of trunk blocks and prediction heads and optionally the first `dim`
channels / attention heads / FFN units of every matrix. It is *structural*: the result loads,
runs and trains with the real tokenizer and key layout, but its outputs are not a good model
(cutting channels out of a trained network destroys what it computed). Use it to debug code
paths against real shapes, never to judge quality.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from wmtp_lightning.models.transformer import ModelArgs, Transformer


def micro_args(
    vocab_size: int, n_future_tokens: int = 4, preset: str = "micro", trunk_layers: int | None = None
) -> ModelArgs:
    """The micro preset with its head count (and optionally trunk depth) adjusted.

    n_layers = trunk blocks (default: the preset's 2) + n_future_tokens.
    """
    base = ModelArgs.from_name(preset)
    trunk = base.n_trunk_layers if trunk_layers is None else trunk_layers
    return replace(base, vocab_size=vocab_size, n_future_tokens=n_future_tokens, n_layers=trunk + n_future_tokens)


def from_scratch(args: ModelArgs, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(args)


def slice_model(
    model: Transformer, trunk_layers: list[int] | None = None, n_future_keep: int | None = None, dim: int | None = None
) -> Transformer:
    """Keep trunk blocks `trunk_layers` (indices into layers[:-1]), the first `n_future_keep` heads, `dim` width."""
    a = model.args
    trunk_layers = list(range(a.n_trunk_layers)) if trunk_layers is None else trunk_layers
    if any(not 0 <= i < a.n_trunk_layers for i in trunk_layers):
        raise ValueError(f"trunk layer indices {trunk_layers} out of range 0..{a.n_trunk_layers - 1}")
    H = n_future_keep or a.n_future_tokens
    if not 1 <= H <= a.n_future_tokens:
        raise ValueError(f"can keep 1..{a.n_future_tokens} heads, asked for {H}")
    dim = dim or a.dim
    if dim % a.head_dim or dim > a.dim:
        raise ValueError(f"dim {dim} must be a multiple of the head dim {a.head_dim} and <= {a.dim}")
    nh = dim // a.head_dim
    rep = a.n_heads // a.kv_heads
    if nh % rep:
        raise ValueError(f"dim {dim} gives {nh} attention heads, not a multiple of the GQA group size {rep}")
    hidden = a.hidden_dim * dim // a.dim
    new = replace(
        a,
        dim=dim,
        n_heads=nh,
        n_kv_heads=None if a.n_kv_heads is None else nh // rep,
        n_layers=len(trunk_layers) + H,
        n_future_tokens=H,
        ffn_hidden_dim=hidden,
    )
    nkv = new.kv_heads * a.head_dim
    qd = nh * a.head_dim

    def cut(name: str, t: torch.Tensor) -> torch.Tensor:
        if name.endswith(("attention.wq.weight",)):
            return t[:qd, :dim]
        if name.endswith(("attention.wk.weight", "attention.wv.weight")):
            return t[:nkv, :dim]
        if name.endswith("attention.wo.weight"):
            return t[:dim, :qd]
        if name.endswith(("feed_forward.w1.weight", "feed_forward.w3.weight")):
            return t[:hidden, :dim]
        if name.endswith("feed_forward.w2.weight"):
            return t[:dim, :hidden]
        if t.dim() == 1:  # norms
            return t[:dim]
        return t[:, :dim]  # tok_embeddings, output

    old_blocks = [model.layers[i] for i in trunk_layers] + model.heads[:H]
    src = {
        f"layers.{j}.{k}": v
        for j, blk in enumerate(old_blocks[: len(trunk_layers) + 1])
        for k, v in blk.state_dict().items()
    }
    src.update(
        {
            f"extra_heads.{j}.{k}": v
            for j, blk in enumerate(old_blocks[len(trunk_layers) + 1 :])
            for k, v in blk.state_dict().items()
        }
    )
    for k in ("tok_embeddings.weight", "norm.weight", "output.weight"):
        src[k] = model.state_dict()[k]
    out = Transformer(new)
    out.load_state_dict({k: cut(k, v).clone() for k, v in src.items()}, strict=True)
    return out
