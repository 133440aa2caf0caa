"""Batched generation with the KV cache, and self-speculative decoding identical to greedy; on the real
SmolLM2 (slow), token-for-token agreement with transformers' greedy `generate`."""

from __future__ import annotations

import pytest
import torch

from wmtp_lightning.evaluation.benchmarks import load_humaneval
from wmtp_lightning.evaluation.generation import (
    GenerationConfig,
    SpeculativeStats,
    apply_end_rules,
    cut_at_stop,
    generate,
    greedy_tokens,
    sample_next,
    speculative_tokens,
)
from wmtp_lightning.models import ModelArgs, Transformer, bundle_tokenizer, load_bundle
from wmtp_lightning.models.tokenizer import Tokenizer

from ..conftest import HUMANEVAL, require


@pytest.fixture(scope="module")
def model_and_tok(tiny_bundle):
    return load_bundle(tiny_bundle).eval(), bundle_tokenizer(tiny_bundle)


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


def test_finished_rows_leave_the_batch_and_the_others_are_unchanged(model_and_tok):
    model, tok = model_and_tok
    prompts = ["def add(a, b):", "print(", "n = int(input())\nfor i in range(n):\n    print(i)", "x = 1"]
    free = [greedy_tokens(model, tok.encode(p, bos=True), 16, tok.eos_ids) for p in prompts]
    stop = (tok.decode(free[1][:3]),)  # ends the second row after a few tokens, the others run on
    gens = [g[0] for g in generate(model, tok, prompts, GenerationConfig(max_new_tokens=16, stop=stop))]
    for g, ids in zip(gens, free):
        stream = ids if len(ids) == 16 else [*ids, tok.eos_id]  # greedy_tokens drops the end id
        assert (g.tokens, g.finish_reason) == apply_end_rules(tok, stream, stop)
    assert gens[1].finish_reason == "stop" and len(gens[1].tokens) < 16


def test_every_end_id_ends_a_generation(hf_tokenizer_dir):
    tok = Tokenizer(hf_tokenizer_dir)
    assert tok.eos_ids == {2, 0} and tok.eos_id == 2
    model = Transformer(ModelArgs.from_name("tiny", vocab_size=tok.vocab_size, n_future_tokens=2)).eval()
    torch.nn.init.zeros_(model.output.weight)  # all logits tie: argmax is the first id, 0
    g = generate(model, tok, ["def f():", "x"], GenerationConfig(max_new_tokens=8))
    assert [(x[0].tokens, x[0].finish_reason) for x in g] == [([], "eos"), ([], "eos")]
    prompt = tok.encode("x", bos=True)
    assert greedy_tokens(model, prompt, 8, tok.eos_ids) == speculative_tokens(model, prompt, 8, tok.eos_ids) == []
    assert len(greedy_tokens(model, prompt, 8, tok.eos_id)) == 8  # 0 alone is not an end id


def test_apply_end_rules():
    class Tok:
        eos_ids = frozenset({9})

        def decode(self, ids):
            return "".join(chr(ord("a") + i) for i in ids)

    assert apply_end_rules(Tok(), [0, 1, 9, 2], ()) == ([0, 1], "eos")
    assert apply_end_rules(Tok(), [0, 1, 2, 3], ("bc",)) == ([0, 1, 2], "stop")
    assert apply_end_rules(Tok(), [0, 1], ("zz",)) == ([0, 1], "length")


@pytest.mark.slow
def test_greedy_is_token_for_token_transformers_on_humaneval(smollm2_bundle, smollm2_hf):
    """The first 20 HumanEval problems, Alpaca prompts (as `wmtp test` sends them), 128 new tokens:
    the project's batched, left-padded, KV-cached greedy completions (with the problems' stop
    sequences) equal transformers' greedy `generate` on the same left-padded batch (attention
    mask, same end ids), cut by the same end rule. bench/generation_vs_hf.py also compares with
    transformers run one prompt at a time."""
    model, tok = load_bundle(smollm2_bundle).eval(), bundle_tokenizer(smollm2_bundle)
    problems = load_humaneval(require(HUMANEVAL))[:20]
    stop = tuple(problems[0].stop("alpaca"))
    prompts = [p.prompt("alpaca") for p in problems]
    gens = [g[0] for g in generate(model, tok, prompts, GenerationConfig(max_new_tokens=128, stop=stop))]
    encoded = [tok.encode(p, bos=True) for p in prompts]
    P = max(map(len, encoded))
    ids = torch.tensor([[tok.pad_id] * (P - len(e)) + e for e in encoded])
    mask = torch.tensor([[0] * (P - len(e)) + [1] * len(e) for e in encoded])
    with torch.no_grad():
        ref = smollm2_hf.generate(
            ids,
            attention_mask=mask,
            max_new_tokens=128,
            do_sample=False,
            eos_token_id=sorted(tok.eos_ids),
            pad_token_id=tok.pad_id,
        )[:, P:].tolist()
    for p, g, r in zip(problems, gens, ref):
        assert (g.tokens, g.finish_reason) == apply_end_rules(tok, r, stop), p.task_id
    assert {g.finish_reason for g in gens} != {"length"}  # the end rules were exercised
