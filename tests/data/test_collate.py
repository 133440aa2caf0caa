"""Template, loss masking and padding, checked with the real LLaMA (SentencePiece) and SmolLM2
(byte-level BPE tokenizer.json) tokenizers."""

from __future__ import annotations

import pytest
import torch

from wmtp_lightning.data.collate import IGNORE_INDEX, MTPCollator, kept_lengths, tokenize_example
from wmtp_lightning.data.local_problems import load_local_problems
from wmtp_lightning.data.template import build_prompt
from wmtp_lightning.evaluation.benchmarks import load_humaneval
from wmtp_lightning.models.tokenizer import Tokenizer

from ..conftest import HUMANEVAL, require


def item(instruction="Add two numbers.", inp="Example 1\nInput:\n1 2\nOutput:\n3", out="print(1 + 2)", ok=True, line=0):
    return {
        "instruction": instruction,
        "input": inp,
        "output": out,
        "is_correct": ok,
        "task_id": f"t_{line}",
        "metadata": {"difficulty": 3},
        "line": line,
    }


def test_template_has_header_and_optional_input():
    p = build_prompt("Do X.", "1 2")
    assert p.endswith("### Response:\n") and "### Input:\n1 2" in p and "### Instruction:\nDo X." in p
    assert "### Input" not in build_prompt("Do X.", "")


def test_prompt_response_boundary_is_exact_with_llama(llama_tokenizer_path):
    tok = Tokenizer(llama_tokenizer_path)
    for p in load_local_problems():
        for code in p["solutions"]["solution"] + p["incorrect_solutions"]["solution"]:
            ids, n_prompt, merged = tokenize_example(tok, p["description"], "", code)
            assert not merged, p["name"]
            assert ids[:n_prompt] == tok.encode(build_prompt(p["description"], ""), bos=True)
            assert tok.decode(ids[n_prompt:-1]) == code and ids[-1] == tok.eos_id


def _responses():
    """Local solutions, and HumanEval bodies: indented, so they start with whitespace after the
    template's final newline (the case a byte-level BPE merges across), also after a blank line."""
    for p in load_local_problems():
        for code in p["solutions"]["solution"] + p["incorrect_solutions"]["solution"]:
            yield p["description"], code
    for p in load_humaneval(require(HUMANEVAL))[:40]:
        yield p.instruction, p.reference
        yield p.instruction, "\n" + p.reference
        yield p.instruction, "\t" + p.reference.lstrip()


def test_boundary_is_exact_with_llama_for_responses_starting_with_whitespace(llama_tokenizer_path):
    tok = Tokenizer(llama_tokenizer_path)
    for instruction, code in _responses():
        ids, n_prompt, merged = tokenize_example(tok, instruction, "", code)
        prompt = build_prompt(instruction, "")
        assert not merged and ids[:n_prompt] == tok.encode(prompt, bos=True)
        assert tok.decode(ids) == prompt + code and ids[-1] == tok.eos_id


def test_boundary_is_exact_with_smollm2_by_concatenation(smollm2_tokenizer_dir):
    tok = Tokenizer(smollm2_tokenizer_dir)
    assert not tok.adds_prefix_space and not tok.add_bos
    merges_in_full_text = 0
    for instruction, code in _responses():
        prompt = build_prompt(instruction, "")
        ids, n_prompt, merged = tokenize_example(tok, instruction, "", code)
        assert not merged and ids[:n_prompt] == tok.encode(prompt, bos=True)
        assert ids[n_prompt:] == [*tok.encode(code), tok.eos_id]  # what generation after the prompt produces
        assert tok.decode(ids) == prompt + code
        merges_in_full_text += tok.encode(prompt + code)[:n_prompt] != ids[:n_prompt]
    # Why the two are tokenized apart: the full text merges "\n" with the response's indentation.
    assert merges_in_full_text >= 40


def test_labels_mask_prompt_header_and_padding(llama_tokenizer_path):
    tok = Tokenizer(llama_tokenizer_path)
    coll = MTPCollator(tok, pad_to_multiple_of=8)
    items = [item(line=3), item(out="x = 1\nprint(x)\n" * 3, ok=False, line=5)]
    batch = coll(items)
    ids, labels, att = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert ids.shape[1] % 8 == 0 and ids.shape == labels.shape == att.shape
    for row, it in enumerate(items):
        full, n_prompt, _ = tokenize_example(tok, it["instruction"], it["input"], it["output"])
        n = len(full)
        assert (labels[row, :n_prompt] == IGNORE_INDEX).all()  # BOS, instruction, input, header
        assert labels[row, n_prompt:n].tolist() == full[n_prompt:]  # solution ...
        assert labels[row, n - 1] == tok.eos_id  # ... and EOS are learned
        assert (labels[row, n:] == IGNORE_INDEX).all() and (att[row, n:] == 0).all() and (att[row, :n] == 1).all()
    assert batch["is_correct"].tolist() == [1.0, 0.0] and batch["index"].tolist() == [3, 5]
    assert batch["difficulty"].tolist() == [3, 3] and int(batch["n_items"]) == 2
    assert batch["truncated"].dtype == torch.bool and batch["truncated"].tolist() == [False, False]


def test_kept_lengths_by_hand():
    # rows (prompt, response, correct) against max_length 10
    p, r = kept_lengths([3, 3, 4, 10, 12, 2], [7, 8, 8, 1, 5, 3], [1, 1, 0, 0, 0, 0], 10)
    assert p.tolist() == [3, 0, 4, 0, 0, 2]  # fits | long correct: dropped | long incorrect: cut | prompt fills
    assert r.tolist() == [7, 0, 6, 0, 0, 3]  # | ... | 10 - 4 = 6 learned | window: dropped | longer: dropped
    assert tuple(int(x) for x in kept_lengths(3, 8, False, 10)) == (3, 7)  # scalars too


def test_long_rows_raise_or_truncate(micro_tokenizer_path):
    tok = Tokenizer(micro_tokenizer_path)
    long_out = "print(1)\n" * 200
    _, n_prompt, _ = tokenize_example(tok, item()["instruction"], item()["input"], long_out)
    limit = n_prompt + 10
    with pytest.raises(ValueError, match=rf"line 7 \(t_7\): \d+ tokens > max_length {limit}"):
        MTPCollator(tok, max_length=limit)([item(out=long_out, line=7)])
    coll = MTPCollator(tok, max_length=limit, truncate=True)
    batch = coll([item(out=long_out, ok=False, line=1), item(out=long_out, ok=True, line=2), item(line=4)])
    assert batch["index"].tolist() == [1, 4] and coll.dropped_truncated == 1  # truncated correct = dropped
    assert batch["input_ids"].shape[1] == limit and int(batch["n_items"]) == 3
    assert (batch["labels"][0, n_prompt:] != IGNORE_INDEX).sum() == 10  # the kept (incorrect) row learns 10 tokens
    assert batch["truncated"].tolist() == [True, False]
    assert batch["labels"][0, -1] != tok.eos_id and tok.eos_id in batch["labels"][1].tolist()
    with pytest.raises(ValueError, match=r"every item of this batch was dropped by truncation \(lines \[2\]\)"):
        coll([item(out=long_out, ok=True, line=2)])


def test_rows_are_checked_against_the_index(micro_tokenizer_path):
    """An item read through the index carries its counts; the collator refuses one that differs."""
    tok = Tokenizer(micro_tokenizer_path)
    it = item(line=4)
    ids, n_prompt, _ = tokenize_example(tok, it["instruction"], it["input"], it["output"])
    good = {**it, "path": "/d/train.jsonl", "prompt_len": n_prompt, "response_len": len(ids) - n_prompt}
    batch = MTPCollator(tok)([good])
    assert int((batch["labels"] != IGNORE_INDEX).sum()) == good["response_len"]
    bad = {**good, "response_len": good["response_len"] + 1}
    want = rf"/d/train.jsonl:5: {len(ids) - n_prompt} learned tokens after {n_prompt} prompt tokens, the index says {len(ids) - n_prompt + 1} after {n_prompt} \(index built with another tokenizer or template\? rebuild with scripts/extract_metadata.py\)"
    with pytest.raises(ValueError, match=want):
        MTPCollator(tok)([bad])
    # after truncation the counts are compared as the loss will see them: a cut incorrect row agrees
    # with an index that had it longer, a row the index says is dropped but the collator keeps does not
    limit = n_prompt + 2
    cut = {**good, "is_correct": False, "response_len": good["response_len"] + 50}
    assert MTPCollator(tok, max_length=limit, truncate=True)([cut])["truncated"].tolist() == [True]
    short = {**good, "response_len": 1}  # fits max_length per the index; really too long, so dropped
    with pytest.raises(ValueError, match=rf"0 learned tokens after 0 prompt tokens, the index says 1 after {n_prompt}"):
        MTPCollator(tok, max_length=n_prompt + 1, truncate=True)([short, good])
