"""Alpaca template, loss masking and dynamic padding (DESIGN §5).

A row is `[BOS] prompt response [EOS]`, where the prompt is the instruction, the input and the
`### Response:` header. Labels are -100 on BOS, the prompt (header included) and padding, and the
token id on the response and EOS: only the solution is learned, and EOS is its last target, so
the terminal TD error lands on EOS.

The boundary is exact for both tokenizer kinds, by two routes:
  - Tokenizers that encode a fragment as is (byte-level BPE: SmolLM2, Llama 3, GPT-2 style):
    prompt and response are tokenized separately and concatenated. Tokenizing the full text
    would merge across the boundary whenever the response starts with whitespace (the template
    ends with "\n"; SmolLM2 makes "\n" + "    for" into 'ĊĠĠĠ' + 'Ġfor': 492 of 656 HumanEval
    responses tried), and such a merged token can never be generated after the prompt anyway:
    the concatenation is exactly the token sequence generation produces.
  - Tokenizers that prepend a space to a fragment (SentencePiece's dummy prefix: LLaMA, and
    Metaspace tokenizer.json files): the response cannot be tokenized alone without gaining a
    space, so the full text is tokenized and the prompt's ids must be its prefix. The template
    ends with a newline, a byte piece LLaMA never merges with what follows (tested on real
    data); if a tokenizer did merge, the shared prefix is used and the event is counted in
    `boundary_merges`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from wmtp_lightning.data.template import build_prompt
from wmtp_lightning.models.tokenizer import Tokenizer

IGNORE_INDEX = -100


def tokenize_example(tokenizer: Tokenizer, instruction: str, input: str, output: str) -> tuple[list[int], int, bool]:
    """Return (ids, n_prompt, merged).

    ids = [BOS] prompt response [EOS]; ids[:n_prompt] are not learned; `merged` tells that the
    tokenizer merged pieces across the prompt/response boundary (the shared prefix was used).
    """
    prompt = build_prompt(instruction, input)
    if not tokenizer.adds_prefix_space:
        prompt_ids, response_ids = tokenizer.encode_batch([prompt, output])
        head = tokenizer.encode("", bos=True)  # BOS, where the tokenizer starts sequences with one
        return [*head, *prompt_ids, *response_ids, tokenizer.eos_id], len(head) + len(prompt_ids), False
    prompt_ids = tokenizer.encode(prompt, bos=True)
    full_ids = tokenizer.encode(prompt + output, bos=True, eos=True)
    n = len(prompt_ids)
    if full_ids[:n] == prompt_ids:
        return full_ids, n, False
    return full_ids, next(i for i, (a, b) in enumerate(zip(prompt_ids, full_ids)) if a != b), True


def token_length(tokenizer: Tokenizer, instruction: str, input: str, output: str) -> int:
    """len(ids) of `tokenize_example` with one encode call."""
    prompt = build_prompt(instruction, input)
    if not tokenizer.adds_prefix_space:
        return len(tokenizer.encode("", bos=True)) + sum(map(len, tokenizer.encode_batch([prompt, output]))) + 1
    return len(tokenizer.encode(prompt + output, bos=True, eos=True))


@dataclass
class MTPCollator:
    """Turn dataset items into a padded batch.

    Args:
        tokenizer: the model's tokenizer.
        max_length: longest allowed row (prompt + response + BOS/EOS).
        truncate: cut rows longer than `max_length` instead of raising. A truncated *correct*
            solution is no longer a correct program, so it is dropped from the batch.
        pad_to_multiple_of: round the padded length up (e.g. 8 for tensor cores).
    """

    tokenizer: Tokenizer
    max_length: int = 2048
    truncate: bool = False
    pad_to_multiple_of: int | None = None
    boundary_merges: int = field(default=0, init=False)
    dropped_truncated: int = field(default=0, init=False)

    def encode(self, item: dict[str, Any]) -> tuple[list[int], list[int]] | None:
        ids, n_prompt, merged = tokenize_example(self.tokenizer, item["instruction"], item["input"], item["output"])
        self.boundary_merges += merged
        if len(ids) > self.max_length:
            if not self.truncate:
                raise ValueError(
                    f"line {item.get('line')} ({item.get('task_id')}): {len(ids)} tokens > max_length "
                    f"{self.max_length}; filter the dataset or set truncate=True"
                )
            if item["is_correct"] or n_prompt >= self.max_length:  # no longer correct / nothing to learn
                self.dropped_truncated += 1
                return None
            ids = ids[: self.max_length]
        labels = [IGNORE_INDEX] * n_prompt + ids[n_prompt:]
        return ids, labels

    def __call__(self, items: Sequence[dict[str, Any] | None]) -> dict[str, torch.Tensor]:
        rows, kept = [], []
        for item in items:
            if item is None:  # a bad line skipped by the dataset
                continue
            enc = self.encode(item)
            if enc is not None:
                rows.append(enc)
                kept.append(item)
        if not rows:
            raise ValueError("every item of this batch was dropped (bad lines or truncated correct solutions)")
        L = max(len(ids) for ids, _ in rows)
        if self.pad_to_multiple_of:
            L = -(-L // self.pad_to_multiple_of) * self.pad_to_multiple_of
        B = len(rows)
        input_ids = torch.full((B, L), self.tokenizer.pad_id, dtype=torch.long)
        labels = torch.full((B, L), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((B, L), dtype=torch.long)
        for i, (ids, lab) in enumerate(rows):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            labels[i, : len(lab)] = torch.tensor(lab)
            attention_mask[i, : len(ids)] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "is_correct": torch.tensor([float(it["is_correct"]) for it in kept]),
            "difficulty": torch.tensor([int(it["metadata"]["difficulty"]) for it in kept]),
            "index": torch.tensor([int(it.get("line", -1)) for it in kept]),
            "n_items": torch.tensor(len(items)),  # sampled items, dropped ones included (for resume)
        }
