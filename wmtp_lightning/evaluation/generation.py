"""Batched generation with the KV cache, and self-speculative decoding with the MTP heads (DESIGN §6).

`generate` left-pads a batch of prompts (a key-padding mask keeps padding out of attention;
RoPE is relative, so a shifted row gives the same result up to float rounding), then decodes
with head 1: greedy, or temperature / top-p sampling from a seeded generator, until an end id
(`Tokenizer.eos_ids`: EOS and, e.g., chat-template end tokens), a stop sequence or
`max_new_tokens`.

`speculative_generate` (greedy, one prompt) uses the MTP heads as a draft model (Gloeckle et al.
2024, §3.2 / Stern et al. 2018): at the last accepted position, head 1 gives the next token and
heads 2..H draft the H−1 after it. One forward pass over [next, drafts] then verifies: the k-th draft
is accepted iff head 1, given everything before it, would have chosen it too; the first mismatch
is replaced by head 1's own choice. Every emitted token is therefore head 1's greedy choice, so
the output is identical to plain greedy decoding; the KV cache past the accepted prefix is simply
overwritten by the next pass.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import torch

from wmtp_lightning.models.tokenizer import Tokenizer
from wmtp_lightning.models.transformer import KVCache, Transformer


@dataclass(frozen=True)
class GenerationConfig:
    """Args:
    max_new_tokens: generated tokens per sample at most.
    temperature: 0 = greedy.
    top_p: nucleus sampling mass (1.0 = off).
    stop: strings that end a completion (the completion is cut before them).
    n_samples: completions per prompt.
    seed: sampling seed.
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    n_samples: int = 1
    seed: int = 0


@dataclass
class Generation:
    text: str
    tokens: list[int]
    finish_reason: str  # "eos" | "stop" | "length"


@dataclass
class SpeculativeStats:
    forward_passes: int = 0
    drafted: int = 0
    accepted: int = 0
    new_tokens: int = 0
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def tokens_per_pass(self) -> float:
        return self.new_tokens / self.forward_passes if self.forward_passes else 0.0


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Text before the earliest stop sequence, and whether one was found."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def sample_next(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator | None) -> torch.Tensor:
    """(B, V) logits -> (B,) token ids: argmax, or temperature + nucleus sampling."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < top_p  # smallest set whose mass reaches top_p
        sorted_p = sorted_p * keep
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    probs = probs / probs.sum(-1, keepdim=True)
    return torch.multinomial(probs.cpu(), 1, generator=gen).squeeze(-1).to(logits.device)


def end_step(tokenizer: Tokenizer, out: list[int], token: int, stop: Sequence[str]) -> str | None:
    """`generate`'s end rule for one new token: "eos" (an end id, not kept), "stop" (a stop
    sequence now appears in the last 64 tokens' text; the token is kept, the text is cut later)
    or None (kept, go on). Appends the token to `out` unless it is an end id."""
    if token in tokenizer.eos_ids:
        return "eos"
    out.append(token)
    if stop and cut_at_stop(tokenizer.decode(out[-64:]), stop)[1]:
        return "stop"
    return None


def apply_end_rules(tokenizer: Tokenizer, ids: Sequence[int], stop: Sequence[str]) -> tuple[list[int], str]:
    """The tokens `generate` would keep from a whole token stream (e.g. another implementation's
    greedy output), and its finish reason: the same end rule, token by token."""
    out: list[int] = []
    for t in ids:
        reason = end_step(tokenizer, out, int(t), stop)
        if reason is not None:
            return out, reason
    return out, "length"


def stop_set(eos: int | Collection[int] | None) -> frozenset[int]:
    """The ids that end a generation, from one id, a collection (`Tokenizer.eos_ids`) or None."""
    if eos is None:
        return frozenset()
    return frozenset({eos} if isinstance(eos, int) else eos)


def next_logits(
    model: Transformer,
    tokens: torch.Tensor,
    start_pos: int = 0,
    cache: KVCache | None = None,
    key_padding: torch.Tensor | None = None,
) -> torch.Tensor:
    """Head 1's logits (B, V) after the last of `tokens` (B, T).

    Only the last position is unembedded: a prefill of B prompts of P tokens would otherwise
    make a (B, P, V) float32 tensor (20 × 200 × 49152 = 0.8 GB for SmolLM2) that is thrown away.
    """
    h, freqs, mask = model.trunk(tokens, start_pos, cache, key_padding)
    return model.unembed(model.head_hidden(1, h, freqs, start_pos, cache, mask)[:, -1])


@torch.no_grad()
def generate(
    model: Transformer, tokenizer: Tokenizer, prompts: Sequence[str], cfg: GenerationConfig, bos: bool = True
) -> list[list[Generation]]:
    """`cfg.n_samples` completions for each prompt (outer list: prompts).

    A completion ends at any of `tokenizer.eos_ids`, at a stop sequence or after
    `cfg.max_new_tokens`. Finished rows leave the batch (and the KV cache), so the rest decode
    at the cost of the rows still running; once no remaining row is padded, decoding runs
    without a mask.
    """
    device = model.output.weight.device
    encoded = [tokenizer.encode(p, bos=bos) for p in prompts for _ in range(cfg.n_samples)]
    B = len(encoded)
    P = max(len(e) for e in encoded)
    total = P + cfg.max_new_tokens
    if total > model.args.max_seq_len:
        raise ValueError(
            f"prompt ({P} tokens) + max_new_tokens ({cfg.max_new_tokens}) exceeds max_seq_len {model.args.max_seq_len}"
        )
    prompt = torch.full((B, P), tokenizer.pad_id, dtype=torch.long, device=device)
    key_padding = torch.zeros((B, total), dtype=torch.bool, device=device)
    for i, e in enumerate(encoded):  # left padding
        prompt[i, P - len(e) :] = torch.tensor(e, device=device)
        key_padding[i, P - len(e) :] = True
    gen = torch.Generator().manual_seed(cfg.seed)
    cache = model.new_cache(B, total)
    out: list[list[int]] = [[] for _ in range(B)]
    reason = ["length"] * B
    rows = list(range(B))  # the prompt index of each row still decoding
    padded = not bool(key_padding[:, :P].all())
    logits = next_logits(model, prompt, 0, cache, key_padding if padded else None)
    for step in range(cfg.max_new_tokens):
        nxt = sample_next(logits, cfg.temperature, cfg.top_p, gen).tolist()
        keep = []
        for r, (i, t) in enumerate(zip(rows, nxt)):
            ended = end_step(tokenizer, out[i], t, cfg.stop)
            if ended is None:
                keep.append(r)
            else:
                reason[i] = ended
        if not keep or step == cfg.max_new_tokens - 1:
            break
        if len(keep) < len(rows):  # finished rows leave the batch and the cache
            idx = torch.tensor(keep, device=device)
            rows, nxt, key_padding = [rows[r] for r in keep], [nxt[r] for r in keep], key_padding[idx]
            cache.k, cache.v = [k[idx] for k in cache.k], [v[idx] for v in cache.v]
            padded = not bool(key_padding[:, :P].all())
        x = torch.tensor(nxt, device=device)[:, None]
        logits = next_logits(model, x, P + step, cache, key_padding if padded else None)
    results = []
    for i in range(B):
        text, _ = cut_at_stop(tokenizer.decode(out[i]), cfg.stop)
        results.append(Generation(text, out[i], reason[i]))
    return [results[j * cfg.n_samples : (j + 1) * cfg.n_samples] for j in range(len(prompts))]


@torch.no_grad()
def greedy_tokens(
    model: Transformer, prompt_ids: list[int], max_new_tokens: int, eos_id: int | Collection[int] | None
) -> list[int]:
    """Plain greedy decoding with head 1 and the KV cache (the reference for speculative decoding).

    eos_id: the id, or the ids (`Tokenizer.eos_ids`), that end the sequence.
    """
    stop_ids = stop_set(eos_id)
    device = model.output.weight.device
    cache = model.new_cache(1, len(prompt_ids) + max_new_tokens)
    logits = next_logits(model, torch.tensor([prompt_ids], device=device), 0, cache)
    out: list[int] = []
    pos = len(prompt_ids)
    for _ in range(max_new_tokens):
        t = int(logits.argmax(-1))
        if t in stop_ids:
            break
        out.append(t)
        if len(out) == max_new_tokens:
            break
        logits = next_logits(model, torch.tensor([[t]], device=device), pos, cache)
        pos += 1
    return out


@torch.no_grad()
def speculative_tokens(
    model: Transformer,
    prompt_ids: list[int],
    max_new_tokens: int,
    eos_id: int | Collection[int] | None,
    stats: SpeculativeStats | None = None,
) -> list[int]:
    """Self-speculative greedy decoding; returns exactly `greedy_tokens`' output."""
    stop_ids = stop_set(eos_id)
    H = model.n_future_tokens
    device = model.output.weight.device
    stats = stats if stats is not None else SpeculativeStats()
    start = time.perf_counter()
    cache = model.new_cache(1, len(prompt_ids) + max_new_tokens + H)
    logits = model(torch.tensor([prompt_ids], device=device), cache=cache, return_all_heads=True)[0, -1]  # (H, V)
    stats.forward_passes += 1
    pos = len(prompt_ids)  # position of the next token to emit
    guess = logits.argmax(-1).tolist()  # [next (head 1), draft +1, ..., draft +H-1]
    out: list[int] = []
    while True:
        nxt, drafts = guess[0], guess[1:]
        if nxt in stop_ids or len(out) >= max_new_tokens:
            break
        out.append(nxt)
        if len(out) >= max_new_tokens:
            break
        drafts = drafts[: max_new_tokens - len(out)]
        block = torch.tensor([[nxt, *drafts]], device=device)
        # One pass over [next, drafts]: every head block runs on every position (their KV caches
        # must stay complete), but only head 1 is unembedded everywhere; heads 2..H are unembedded
        # at the one position where their drafts will be used.
        h_trunk, freqs, mask = model.trunk(block, pos, cache)
        hidden = [model.head_hidden(k, h_trunk, freqs, pos, cache, mask) for k in range(1, H + 1)]
        stats.forward_passes += 1
        head1_logits = model.unembed(hidden[0])[0]  # (1 + d, V)
        head1 = head1_logits.argmax(-1).tolist()  # head 1's choice after each block token
        accepted = 0
        while accepted < len(drafts) and drafts[accepted] == head1[accepted] and drafts[accepted] not in stop_ids:
            accepted += 1
        stats.drafted += len(drafts)
        stats.accepted += accepted
        out.extend(drafts[:accepted])
        if len(out) >= max_new_tokens:
            out = out[:max_new_tokens]
            break
        pos += 1 + accepted
        fresh = [head1[accepted]]  # head 1's correction (or bonus token) ...
        if H > 1:  # ... and fresh drafts from heads 2..H at the same position
            fresh += model.unembed(torch.stack([hk[0, accepted] for hk in hidden[1:]])).argmax(-1).tolist()
        guess = fresh
    stats.new_tokens += len(out)
    stats.seconds += time.perf_counter() - start
    return out
