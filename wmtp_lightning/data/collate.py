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

import numpy as np
import torch

from wmtp_lightning.data.template import build_prompt
from wmtp_lightning.errors import BadInput
from wmtp_lightning.models.tokenizer import Tokenizer
from wmtp_lightning.models.transformer import IGNORE_INDEX


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


def kept_lengths(
    prompt_len: np.ndarray | int, response_len: np.ndarray | int, is_correct: np.ndarray | bool, max_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Prompt and learned (label) token counts of rows after the collator's truncation rules.

    A row of at most `max_length` tokens is kept whole. A longer one is dropped (0, 0) when it is
    a correct solution (cut, it is no longer correct) or when its prompt fills the window (nothing
    left to learn); otherwise (an incorrect solution) it keeps its prompt and the first
    `max_length - prompt_len` response tokens. Works on scalars and arrays alike.
    """
    p = np.asarray(prompt_len, dtype=np.int64)
    r = np.asarray(response_len, dtype=np.int64)
    over = p + r > max_length
    dropped = over & (np.asarray(is_correct, dtype=bool) | (p >= max_length))
    r = np.where(over, max_length - p, r)
    return np.where(dropped, 0, p), np.where(dropped, 0, r)


@dataclass
class MTPCollator:
    """Turn dataset items into a padded batch.

    Items read through `IndexedJsonlDataset` carry the index's `prompt_len` / `response_len`; each
    is checked against what this collator actually produces (after truncation, `kept_lengths`),
    so token counts computed from the index before a step are the ones the loss sees. A mismatch
    means the index was built with another tokenizer or template.

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

    def encode(self, item: dict[str, Any]) -> tuple[list[int], list[int], bool] | None:
        """(ids, labels, truncated) of one item, or None when truncation drops it."""
        ids, n_prompt, merged = tokenize_example(self.tokenizer, item["instruction"], item["input"], item["output"])
        self.boundary_merges += merged
        where = f"{item['path']}:{item['line'] + 1}" if "path" in item else f"line {item.get('line')}"
        if len(ids) > self.max_length and not self.truncate:
            raise BadInput(
                f"{where} ({item.get('task_id')}): {len(ids)} tokens > max_length {self.max_length}; "
                "filter the dataset or set truncate=True"
            )
        p, r = (int(x) for x in kept_lengths(n_prompt, len(ids) - n_prompt, item["is_correct"], self.max_length))
        if "response_len" in item:
            want = tuple(
                int(x)
                for x in kept_lengths(item["prompt_len"], item["response_len"], item["is_correct"], self.max_length)
            )
            if (p, r) != want:
                raise BadInput(
                    f"{where}: {r} learned tokens after {p} prompt tokens, the index says {want[1]} after {want[0]} "
                    "(index built with another tokenizer or template? rebuild with scripts/extract_metadata.py)"
                )
        if r == 0:  # a long correct solution, or a prompt that fills the window
            self.dropped_truncated += 1
            return None
        truncated = len(ids) > p + r
        ids = ids[: p + r]
        return ids, [IGNORE_INDEX] * p + ids[p:], truncated

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        rows, kept = [], []
        for item in items:
            enc = self.encode(item)
            if enc is not None:
                rows.append(enc)
                kept.append(item)
        if not rows:
            raise BadInput(
                f"every item of this batch was dropped by truncation (lines {[it.get('line') for it in items]}); "
                "raise max_length or filter the dataset"
            )
        L = max(len(ids) for ids, _, _ in rows)
        if self.pad_to_multiple_of:
            L = -(-L // self.pad_to_multiple_of) * self.pad_to_multiple_of
        B = len(rows)
        input_ids = torch.full((B, L), self.tokenizer.pad_id, dtype=torch.long)
        labels = torch.full((B, L), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((B, L), dtype=torch.long)
        for i, (ids, lab, _) in enumerate(rows):
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
            "truncated": torch.tensor([cut for _, _, cut in rows], dtype=torch.bool),  # last label is not EOS
            "n_items": torch.tensor(len(items)),  # sampled items, dropped ones included (for resume)
        }
