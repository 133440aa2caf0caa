"""Batched generation with the KV cache, and self-speculative decoding identical to greedy."""

from __future__ import annotations

import pytest
import torch

from wmtp_lightning.evaluation.generation import (
    GenerationConfig,
    SpeculativeStats,
    cut_at_stop,
    generate,
    greedy_tokens,
    sample_next,
    speculative_tokens,
)
from wmtp_lightning.models import ModelArgs, Transformer, load_bundle
from wmtp_lightning.models.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def model_and_tok(tiny_bundle):
    return load_bundle(tiny_bundle).eval(), Tokenizer(tiny_bundle / "tokenizer" / "tokenizer.model")


def test_batched_left_padded_greedy_equals_one_by_one(model_and_tok):
    model, tok = model_and_tok
    prompts = ["def add(a, b):", "print(", "n = int(input())\nfor i in range(n):\n    print(i)"]
    cfg = GenerationConfig(max_new_tokens=12)
    batched = [g[0].tokens for g in generate(model, tok, prompts, cfg)]
    for p, toks in zip(prompts, batched):
        single = greedy_tokens(model, tok.encode(p, bos=True), 12, tok.eos_id)
        assert toks == single


def test_sampling_is_seeded_and_top_p_tiny_is_greedy(model_and_tok):
    model, tok = model_and_tok
    p = ["x = "]
    a = generate(model, tok, p, GenerationConfig(max_new_tokens=10, temperature=1.0, n_samples=3, seed=1))[0]
    b = generate(model, tok, p, GenerationConfig(max_new_tokens=10, temperature=1.0, n_samples=3, seed=1))[0]
    c = generate(model, tok, p, GenerationConfig(max_new_tokens=10, temperature=1.0, n_samples=3, seed=2))[0]
    assert [g.tokens for g in a] == [g.tokens for g in b] != [g.tokens for g in c]
    nucleus = generate(model, tok, p, GenerationConfig(max_new_tokens=10, temperature=1.0, top_p=1e-6))[0][0]
    assert nucleus.tokens == generate(model, tok, p, GenerationConfig(max_new_tokens=10))[0][0].tokens
    logits = torch.tensor([[0.0, 5.0, 1.0]])
    assert sample_next(logits, 0.0, 1.0, None).item() == 1


def test_stop_sequences_and_limits(model_and_tok):
    model, tok = model_and_tok
    assert cut_at_stop("abc\ndef x", ["\ndef ", "zz"]) == ("abc", True)
    assert cut_at_stop("abc", ["\ndef "]) == ("abc", False)
    g = generate(model, tok, ["a"], GenerationConfig(max_new_tokens=5))[0][0]
    assert len(g.tokens) <= 5 and g.finish_reason in ("length", "eos", "stop")
    with pytest.raises(ValueError, match="exceeds max_seq_len"):
        generate(model, tok, ["a"], GenerationConfig(max_new_tokens=10_000))


@pytest.mark.parametrize("H", [1, 2, 4])
def test_speculative_is_token_for_token_greedy(H):
    torch.manual_seed(H)
    m = Transformer(ModelArgs.from_name("tiny", n_future_tokens=H, n_layers=2 + H, vocab_size=64)).eval()
    stats = SpeculativeStats()
    for trial in range(6):
        prompt = torch.randint(3, 64, (3 + trial,)).tolist()
        assert speculative_tokens(m, prompt, 30, 2, stats) == greedy_tokens(m, prompt, 30, 2), (H, trial)
    assert stats.drafted == 0 if H == 1 else stats.drafted > 0
