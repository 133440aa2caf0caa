"""A thin SentencePiece wrapper that loads any LLaMA `tokenizer.model`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sentencepiece import SentencePieceProcessor


class Tokenizer:
    """bos/eos/pad ids, encode/decode and batch encode.

    LLaMA's tokenizer has no pad piece; `pad_id` falls back to EOS. Padding positions are always
    masked out of attention-free computations (labels -100), so its value never matters.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"tokenizer model not found: {self.path}")
        try:
            self.sp = SentencePieceProcessor(model_file=str(self.path))
        except (RuntimeError, OSError) as err:
            raise ValueError(f"{self.path}: not a SentencePiece model ({err})") from err
        self.bos_id: int = self.sp.bos_id()
        self.eos_id: int = self.sp.eos_id()
        if self.eos_id < 0:
            raise ValueError(f"{self.path}: tokenizer has no EOS piece; MTP training and generation need one")
        self.pad_id: int = self.sp.pad_id() if self.sp.pad_id() >= 0 else self.eos_id

    @property
    def vocab_size(self) -> int:
        return self.sp.vocab_size()

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        ids = self.sp.encode(text)
        if bos and self.bos_id >= 0:
            ids = [self.bos_id, *ids]
        return [*ids, self.eos_id] if eos else ids

    def encode_batch(self, texts: Sequence[str], bos: bool = False, eos: bool = False) -> list[list[int]]:
        batch = self.sp.encode(list(texts))
        head = [self.bos_id] if bos and self.bos_id >= 0 else []
        tail = [self.eos_id] if eos else []
        return [head + ids + tail for ids in batch]

    def decode(self, ids: Sequence[int]) -> str:
        return self.sp.decode(list(ids))

    def id_to_piece(self, i: int) -> str:
        return self.sp.id_to_piece(i)

    def piece_text(self, i: int) -> str:
        """The text one token stands for (for per-token displays): '▁' -> ' ', '<0x0A>' -> newline."""
        piece = self.sp.id_to_piece(i)
        if piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
            return chr(int(piece[3:5], 16))
        return piece.replace("\u2581", " ")


def train_sentencepiece(text_file: str | Path, out_prefix: str | Path, vocab_size: int) -> Path:
    """Train a small LLaMA-like BPE tokenizer (byte fallback, split digits, bos=1, eos=2).

    Used to make the micro model's own vocabulary from the local data, so the micro model can
    stay small (its embeddings dominate otherwise) and the demo needs nothing from a hub.
    """
    import sentencepiece as spm

    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        input=str(text_file),
        model_prefix=str(out_prefix),
        vocab_size=vocab_size,
        model_type="bpe",
        byte_fallback=True,
        split_digits=True,
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        character_coverage=1.0,
        allow_whitespace_only_pieces=True,
        hard_vocab_limit=False,
        max_sentence_length=1 << 16,
        num_threads=1,
        minloglevel=2,
        user_defined_symbols=["\n", "\t", "    "],
    )
    return out_prefix.with_suffix(".model")
