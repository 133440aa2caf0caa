"""Meta's multi-token-prediction LLaMA, in one readable file.

References:
  - Gloeckle et al., "Better & Faster Large Language Models via Multi-token Prediction" (2024).
  - facebookresearch/llama `model.py` (RMSNorm, interleaved complex RoPE, SwiGLU, GQA), and the
    multi-token variant released with the 7B_1T_4 checkpoint.

Architecture (names are Meta's, so their state dict loads without a key map):

    tokens ─ tok_embeddings ─ layers[0] ─ ... ─ layers[-2] ─┐ h_trunk
                                                            ├─ layers[-1]      ─┐ norm -> output
                                                            ├─ extra_heads[0]  ─┤ (shared)
                                                            └─ extra_heads[H-2]─┘ logits of each head

Every prediction head is one transformer block applied to the *same* trunk output (parallel, not
chained). Head k (k = 1..H) at position t predicts token x_{t+k}; head 1 is the ordinary
next-token head, so `n_future_tokens = 1` is a plain LLaMA. In training (`targets` given) no
logits tensor is returned: each head's unembedding and cross entropy run over chunks of tokens
(`linear_ce.py`), so neither (B, T, H, V) nor (B, T, V) logits ever exist at once.

This file imports nothing from Lightning: it is the pure model, usable in any training loop.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from wmtp_lightning.models.linear_ce import CHUNK_SIZE, IGNORE_INDEX, linear_cross_entropy

# `enable_gqa` in scaled_dot_product_attention (torch >= 2.5); compared as numbers, not strings.
SDPA_GQA = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 5)


def shift_targets(labels: torch.Tensor, k: int) -> torch.Tensor:
    """Targets of head k: out[b, t] = labels[b, t + k], or IGNORE_INDEX where t + k >= L.  (B, L) -> (B, L)."""
    out = torch.full_like(labels, IGNORE_INDEX)
    if k < labels.shape[1]:
        out[:, : labels.shape[1] - k] = labels[:, k:]
    return out


@dataclass(frozen=True)
class ModelArgs:
    """Hyper-parameters, with the field names of Meta's `params.json`.

    `ffn_hidden_dim` is not Meta's: Hugging Face configs give the FFN width directly
    (`intermediate_size`); when set it overrides the `multiple_of`/`ffn_dim_multiplier` rule.

    `use_scaled_rope` is Llama 3.1's frequency-dependent RoPE scaling (Meta's params.json key).
    The four `rope_*` numbers default (None) to the constants of Meta's reference code (factor 8,
    low/high frequency factors 1 and 4, original context 8192); Hugging Face configs state them
    (`rope_scaling: {rope_type: llama3, ...}`; Llama 3.2 uses factor 32).
    """

    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int | None = None
    vocab_size: int = 32000
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_seq_len: int = 2048
    n_future_tokens: int = 1
    ffn_hidden_dim: int | None = None
    use_scaled_rope: bool = False
    rope_scaling_factor: float | None = None
    rope_low_freq_factor: float | None = None
    rope_high_freq_factor: float | None = None
    rope_original_max_seq_len: int | None = None

    def __post_init__(self) -> None:
        problems = []
        scaling = (self.rope_scaling_factor, self.rope_low_freq_factor, self.rope_high_freq_factor)
        if not self.use_scaled_rope and any(v is not None for v in (*scaling, self.rope_original_max_seq_len)):
            problems.append("rope_scaling_factor / rope_*_freq_factor / rope_original_max_seq_len need use_scaled_rope")
        if self.use_scaled_rope:
            factor, low, high = self.llama3_rope_scaling[:3]
            if factor < 1 or not 0 < low < high:
                problems.append(
                    f"llama3 RoPE scaling needs factor >= 1 and 0 < low_freq_factor < high_freq_factor, "
                    f"got factor {factor}, low {low}, high {high}"
                )
        if self.n_future_tokens < 1:
            problems.append(f"n_future_tokens must be >= 1, got {self.n_future_tokens}")
        if self.n_layers < self.n_future_tokens:
            problems.append(
                f"n_layers ({self.n_layers}) must be >= n_future_tokens ({self.n_future_tokens}): "
                "each head is one of the n_layers blocks"
            )
        if self.dim % self.n_heads:
            problems.append(f"dim ({self.dim}) must be divisible by n_heads ({self.n_heads})")
        elif self.head_dim % 2:
            problems.append(f"head dim dim/n_heads = {self.head_dim} must be even for RoPE")
        if self.n_heads % self.kv_heads:
            problems.append(f"n_heads ({self.n_heads}) must be divisible by n_kv_heads ({self.kv_heads})")
        if self.vocab_size < 1:
            problems.append(f"vocab_size must be >= 1, got {self.vocab_size} (Meta writes -1: set it)")
        if problems:
            raise ValueError("invalid ModelArgs: " + "; ".join(problems))

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def llama3_rope_scaling(self) -> tuple[float, float, float, int] | None:
        """(factor, low_freq_factor, high_freq_factor, original context) or None (plain RoPE)."""
        if not self.use_scaled_rope:
            return None
        return (
            8.0 if self.rope_scaling_factor is None else self.rope_scaling_factor,
            1.0 if self.rope_low_freq_factor is None else self.rope_low_freq_factor,
            4.0 if self.rope_high_freq_factor is None else self.rope_high_freq_factor,
            8192 if self.rope_original_max_seq_len is None else self.rope_original_max_seq_len,
        )

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def n_trunk_layers(self) -> int:
        """Blocks shared by all heads (`layers[:-1]`)."""
        return self.n_layers - self.n_future_tokens

    @property
    def hidden_dim(self) -> int:
        """SwiGLU width: Meta's rule (2/3 of 4·dim, scaled, rounded up to `multiple_of`)."""
        if self.ffn_hidden_dim is not None:
            return self.ffn_hidden_dim
        hidden = int(2 * (4 * self.dim) / 3)
        if self.ffn_dim_multiplier is not None:
            hidden = int(self.ffn_dim_multiplier * hidden)
        return self.multiple_of * ((hidden + self.multiple_of - 1) // self.multiple_of)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for `params.json` (None fields are left out, like Meta's files)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "params") -> ModelArgs:
        """Build from a `params.json`-like dict; unknown keys are an error naming `source`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {unknown}; expected a subset of {sorted(known)}")
        try:
            return cls(**d)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: {err}") from err

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> ModelArgs:
        """A preset by name (see `PRESETS`), with optional field overrides."""
        if name not in PRESETS:
            raise KeyError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
        return replace(PRESETS[name], **overrides)


PRESETS: dict[str, ModelArgs] = {
    # Meta's released 7B model trained on 1T tokens with 4 future-token heads.
    "7B_1T_4": ModelArgs(
        dim=4096,
        n_layers=32,
        n_heads=32,
        vocab_size=32000,
        multiple_of=256,
        norm_eps=1e-5,
        rope_theta=10000.0,
        max_seq_len=2048,
        n_future_tokens=4,
    ),
    # CPU debug model. dim 256 / 6 blocks (2 trunk + 4 heads) keeps a training step on a laptop
    # core well under a second; vocab is set by the tokenizer it is paired with.
    "micro": ModelArgs(
        dim=256,
        n_layers=6,
        n_heads=8,
        n_kv_heads=4,
        vocab_size=32000,
        multiple_of=64,
        max_seq_len=2048,
        n_future_tokens=4,
    ),
    # Unit-test model: every shape small, GQA on, 2 trunk blocks + 3 heads.
    "tiny": ModelArgs(
        dim=64, n_layers=5, n_heads=4, n_kv_heads=2, vocab_size=256, multiple_of=16, max_seq_len=128, n_future_tokens=3
    ),
}


@dataclass
class MTPOutput:
    """Training terms from `Transformer.forward(tokens, targets=...)`.

    ce (B, T, H): cross entropy of head k at position t (0 where not scored);
    correct (B, T, H) bool: argmax hit; h_normed (B, T, D): `norm(h_trunk)`, the value head's input.
    """

    ce: torch.Tensor
    correct: torch.Tensor
    h_normed: torch.Tensor


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in float32 (as Meta does) and cast back before the gain: bf16 rsqrt loses too
        # many bits. F.rms_norm is x·rsqrt(mean(x²) + eps), fused where torch has a kernel.
        return F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).type_as(x) * self.weight


def llama3_scale_freqs(
    freqs: torch.Tensor, factor: float, low_freq_factor: float, high_freq_factor: float, original_len: int
) -> torch.Tensor:
    """Llama 3.1's RoPE frequency scaling (Meta's `apply_scaling`, HF's `rope_type: llama3`).

    With wavelength λ = 2π / f and L = original_len: frequencies whose wavelength exceeds
    L / low_freq_factor are divided by `factor` (long-range positions interpolated), those
    shorter than L / high_freq_factor are kept, and in between s = (L/λ − low) / (high − low)
    blends the two: f' = (1 − s)·f/factor + s·f.
    """
    wavelen = 2 * math.pi / freqs
    scaled = torch.where(wavelen > original_len / low_freq_factor, freqs / factor, freqs)
    smooth = (original_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    medium = (wavelen >= original_len / high_freq_factor) & (wavelen <= original_len / low_freq_factor)
    return torch.where(medium, (1 - smooth) * scaled / factor + smooth * scaled, scaled)


def precompute_freqs_cis(
    head_dim: int,
    end: int,
    theta: float = 10000.0,
    llama3_scaling: tuple[float, float, float, int] | None = None,
) -> torch.Tensor:
    """RoPE rotations as unit complex numbers, shape (end, head_dim // 2), complex64.

    llama3_scaling: (factor, low_freq_factor, high_freq_factor, original context) for
    `llama3_scale_freqs`, or None for plain RoPE.
    """
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    if llama3_scaling is not None:
        freqs = llama3_scale_freqs(freqs, *llama3_scaling)
    t = torch.arange(end, dtype=torch.float32)
    angles = torch.outer(t, freqs)  # (end, hd/2)
    return torch.polar(torch.ones_like(angles), angles)


def apply_rotary_emb(xq: torch.Tensor, xk: torch.Tensor, freqs_cis: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Rotate interleaved pairs (x0, x1), (x2, x3), ... of q and k (Meta's layout, not rotate-half).

    xq: (B, T, nh, hd), xk: (B, T, nkv, hd), freqs_cis: (T, hd/2) complex.
    """
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))  # (B, T, nh, hd/2)
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    f = freqs_cis[None, :, None, :]  # (1, T, 1, hd/2)
    xq_out = torch.view_as_real(xq_ * f).flatten(3)
    xk_out = torch.view_as_real(xk_ * f).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


class KVCache:
    """Per-block key/value buffers for incremental decoding.

    One buffer pair per block (trunk blocks and every head block), preallocated to `max_len`.
    Entries at positions >= the next `start_pos` are simply overwritten, so rolling back (as
    self-speculative decoding does after a rejected draft) costs nothing.
    """

    def __init__(self, args: ModelArgs, batch_size: int, max_len: int, device: torch.device | str, dtype: torch.dtype):
        if max_len > args.max_seq_len:
            raise ValueError(f"KV cache length {max_len} exceeds model max_seq_len {args.max_seq_len}")
        shape = (batch_size, max_len, args.kv_heads, args.head_dim)
        self.max_len = max_len
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(args.n_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(args.n_layers)]

    def update(self, block: int, start_pos: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Write k, v (B, T, nkv, hd) at start_pos; return all keys/values up to start_pos + T."""
        end = start_pos + k.shape[1]
        if end > self.max_len:
            raise ValueError(f"KV cache overflow: position {end} > cache length {self.max_len}")
        self.k[block][:, start_pos:end] = k
        self.v[block][:, start_pos:end] = v
        return self.k[block][:, :end], self.v[block][:, :end]


class Attention(nn.Module):
    def __init__(self, args: ModelArgs, block_id: int):
        super().__init__()
        self.block_id = block_id
        self.n_heads, self.n_kv_heads, self.head_dim = args.n_heads, args.kv_heads, args.head_dim
        self.wq = nn.Linear(args.dim, args.n_heads * args.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, args.kv_heads * args.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, args.kv_heads * args.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * args.head_dim, args.dim, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        freqs_cis: torch.Tensor,
        start_pos: int = 0,
        cache: KVCache | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim)
        q, k = apply_rotary_emb(q, k, freqs_cis)
        if cache is not None:
            k, v = cache.update(self.block_id, start_pos, k, v)  # (B, S, nkv, hd), S = start_pos + T
        # Grouped-query attention: each kv head serves `rep` query heads (query head h reads kv
        # head h // rep). Without a mask SDPA shares them itself (`enable_gqa`, no copies). With a
        # mask (padded batches, decoding) CUDA's fused kernels take a mask or GQA, not both, so
        # each kv head's `rep` query heads are folded into its query axis instead: one attention
        # of rep·T queries over the cache as it is, the same numbers without copying K and V rep
        # times per step (Hugging Face's Llama repeats them).
        rep = self.n_heads // self.n_kv_heads
        gqa = rep > 1 and mask is None and SDPA_GQA
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hd), k/v (B, nkv, S, hd)
        if rep > 1 and mask is not None:
            q = q.reshape(B, self.n_kv_heads, rep * T, self.head_dim)
            mask = mask.reshape(-1, 1, T, mask.shape[-1])  # (T, S) or (B, 1, T, S) -> (B or 1, 1, T, S)
            mask = mask[:, :, None].expand(-1, -1, rep, -1, -1).reshape(mask.shape[0], 1, rep * T, -1)
        elif rep > 1 and not gqa:  # torch < 2.5: no `enable_gqa`
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        causal = mask is None and start_pos == 0 and T > 1
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, **({"enable_gqa": True} if gqa else {})
        )
        y = y.reshape(B, self.n_heads, T, self.head_dim).transpose(1, 2).reshape(B, T, -1)  # (B, T, nh*hd)
        return self.wo(y)


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x)."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, args: ModelArgs, block_id: int):
        super().__init__()
        self.attention = Attention(args, block_id)
        self.feed_forward = FeedForward(args.dim, args.hidden_dim)
        self.attention_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, eps=args.norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        freqs_cis: torch.Tensor,
        start_pos: int = 0,
        cache: KVCache | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), freqs_cis, start_pos, cache, mask)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    """Trunk + `n_future_tokens` parallel prediction heads with a shared norm and unembedding."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        n_main = args.n_layers - args.n_future_tokens + 1  # trunk blocks + head 1
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList(TransformerBlock(args, i) for i in range(n_main))
        self.extra_heads = nn.ModuleList(TransformerBlock(args, i) for i in range(n_main, args.n_layers))
        self.norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)
        # RoPE table: a plain attribute, built lazily per device, so it is never in the state
        # dict, never cast by `.to(dtype)`, and never materialised on the meta device.
        self._freqs_cis: dict[torch.device, torch.Tensor] = {}
        # Recompute trunk blocks in backward (memory for compute); FSDP1 users may instead use
        # Lightning's `activation_checkpointing_policy={TransformerBlock}`.
        self.activation_checkpointing = False
        # Tokens per chunk of the training loss's unembedding: chunk × vocab float32 logits at a time.
        self.ce_chunk_size = CHUNK_SIZE
        self.reset_parameters()

    @property
    def n_future_tokens(self) -> int:
        return self.args.n_future_tokens

    @property
    def heads(self) -> list[TransformerBlock]:
        """Prediction-head blocks in order: head 1 (next token) is `layers[-1]`."""
        return [self.layers[-1], *self.extra_heads]

    def reset_parameters(self) -> None:
        """GPT-2/nanoGPT init: N(0, 0.02), residual projections scaled by 1/sqrt(2·depth).

        Only used for models made from scratch; converted checkpoints overwrite every weight.
        """
        depth = self.args.n_trunk_layers + 1
        for name, p in self.named_parameters():
            if p.dim() < 2:
                nn.init.ones_(p)  # RMSNorm gains
            elif name.endswith(("attention.wo.weight", "feed_forward.w2.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * depth))
            else:
                nn.init.normal_(p, std=0.02)

    def freqs_cis(self, start_pos: int, length: int, device: torch.device) -> torch.Tensor:
        if device not in self._freqs_cis:
            a = self.args
            table = precompute_freqs_cis(a.head_dim, a.max_seq_len * 2, a.rope_theta, a.llama3_rope_scaling)
            self._freqs_cis[device] = table.to(device)
        if start_pos + length > self.args.max_seq_len * 2:
            raise ValueError(f"position {start_pos + length} exceeds 2 x max_seq_len ({self.args.max_seq_len})")
        return self._freqs_cis[device][start_pos : start_pos + length]

    @staticmethod
    def attention_mask(
        T: int, start_pos: int, device: torch.device, key_padding: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """Boolean mask (True = attend) for T queries at positions start_pos.. over S = start_pos + T keys.

        key_padding: (B, S) True for real tokens (left padding in batched generation).
        Returns None when plain causal attention (or no mask at all) is enough.
        """
        if key_padding is None and (start_pos == 0 or T == 1):
            return None  # SDPA's is_causal path, or one query that may see every cached key
        S = start_pos + T
        q_pos = torch.arange(start_pos, S, device=device)[:, None]
        mask = torch.arange(S, device=device)[None, :] <= q_pos  # (T, S)
        if key_padding is not None:
            mask = mask[None, None] & key_padding[:, None, None, :S].bool()  # (B, 1, T, S)
            # A padding query sees no key and would give NaN, which then leaks through 0·NaN in
            # later layers: let every query see itself (a padding row's output is never used).
            diagonal = torch.arange(S, device=device)[None, :] == q_pos  # (T, S)
            mask = mask | diagonal
        return mask

    def trunk(
        self,
        tokens: torch.Tensor,
        start_pos: int = 0,
        cache: KVCache | None = None,
        key_padding: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Embed and run the shared blocks `layers[:-1]`.

        Returns (h_trunk (B, T, D), freqs_cis, mask) so heads can be run on the same inputs.
        """
        T = tokens.shape[1]
        freqs = self.freqs_cis(start_pos, T, tokens.device)
        mask = self.attention_mask(T, start_pos, tokens.device, key_padding)
        h = self.tok_embeddings(tokens)  # (B, T, D)
        for layer in self.layers[:-1]:
            if self.activation_checkpointing and cache is None and torch.is_grad_enabled():
                h = checkpoint(layer, h, freqs, start_pos, None, mask, use_reentrant=False)
            else:
                h = layer(h, freqs, start_pos, cache, mask)
        return h, freqs, mask

    def head_hidden(
        self,
        k: int,
        h_trunk: torch.Tensor,
        freqs_cis: torch.Tensor,
        start_pos: int = 0,
        cache: KVCache | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Hidden state (B, T, D) of head k (1-based) applied to the trunk output (before `norm`)."""
        return self.heads[k - 1](h_trunk, freqs_cis, start_pos, cache, mask)

    def unembed(self, h: torch.Tensor) -> torch.Tensor:
        """Shared final norm + output projection, returned in float32 (…, D) -> (…, V)."""
        return self.output(self.norm(h)).float()

    def forward(
        self,
        tokens: torch.Tensor,
        start_pos: int = 0,
        cache: KVCache | None = None,
        return_all_heads: bool = False,
        n_future: int | None = None,
        key_padding: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        sequential_heads: bool = False,
    ) -> torch.Tensor | MTPOutput:
        """Logits for `tokens` (B, T), or training terms when `targets` is given.

        Without targets: (B, T, V) next-token logits, or (B, T, H, V) with `return_all_heads=True`
        (H = `n_future` or all `n_future_tokens`), float32 whatever the weight dtype.

        With targets (B, T) (IGNORE_INDEX = not learned): an `MTPOutput` with per-prediction cross
        entropies instead of logits, computed by `linear_cross_entropy` over `ce_chunk_size`
        tokens at a time. The plain path keeps each head's softmax gradient (B·T, V) for
        backward (no matmul is repeated); `sequential_heads` keeps nothing of size V and runs
        each head block under activation checkpointing, so backward recomputes and
        back-propagates one head at a time, accumulating the trunk gradient (Meta's Fig. 2
        memory profile, at the cost of re-running the head blocks and their unembedding).
        `n_future=0` runs the trunk only (critic stage 1).
        Training goes through `forward` (not `trunk()` directly) because FSDP2 hooks the root
        module's forward.
        """
        if targets is not None:
            return self._training_terms(tokens, targets, n_future, sequential_heads)
        h_trunk, freqs, mask = self.trunk(tokens, start_pos, cache, key_padding)
        if not return_all_heads:  # head 1 only: no stack, no (B, T, 1, V) copy to select from
            return self.unembed(self.head_hidden(1, h_trunk, freqs, start_pos, cache, mask))
        H = n_future or self.n_future_tokens
        latents = [self.head_hidden(k, h_trunk, freqs, start_pos, cache, mask) for k in range(1, H + 1)]
        return self.unembed(torch.stack(latents, dim=-2))  # (B, T, H, V)

    def _training_terms(
        self, tokens: torch.Tensor, targets: torch.Tensor, n_future: int | None, sequential: bool
    ) -> MTPOutput:
        h_trunk, freqs, _ = self.trunk(tokens)  # plain causal attention: no mask tensor
        H = self.n_future_tokens if n_future is None else n_future
        ce, correct = [], []
        for k in range(1, H + 1):
            t_k = shift_targets(targets, k)  # head k at t predicts x_{t+k}
            if sequential and torch.is_grad_enabled():
                # Keep only the head's normed output (B, T, D); its block is recomputed in backward.
                h_k = checkpoint(self._head_normed, k, h_trunk, freqs, use_reentrant=False)
            else:
                h_k = self._head_normed(k, h_trunk, freqs)
            # Chunked unembedding + CE: never (B, T, V) logits at once. Sequential heads keep
            # nothing of size V for backward either (recomputed per chunk there).
            c, ok = linear_cross_entropy(h_k, self.output.weight, t_k, self.ce_chunk_size, recompute=sequential)
            ce.append(c)
            correct.append(ok)
        B, T = targets.shape
        empty = h_trunk.new_zeros(B, T, 0, dtype=torch.float32)
        return MTPOutput(
            ce=torch.stack(ce, -1) if ce else empty,
            correct=torch.stack(correct, -1) if correct else empty.bool(),
            h_normed=self.norm(h_trunk),
        )

    def _head_normed(self, k: int, h_trunk: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
        """norm(head k's hidden state) (B, T, D): the unembedding's input."""
        return self.norm(self.head_hidden(k, h_trunk, freqs))

    def new_cache(self, batch_size: int, max_len: int, dtype: torch.dtype | None = None) -> KVCache:
        p = self.tok_embeddings.weight
        return KVCache(self.args, batch_size, max_len, p.device, dtype or p.dtype)

    def num_params(self, exclude_embeddings: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.tok_embeddings.weight.numel() if exclude_embeddings else n
