"""The SentencePiece wrapper on the real LLaMA tokenizer, and the small tokenizer trainer."""

from __future__ import annotations

import pytest

from wmtp_lightning.models.tokenizer import Tokenizer, train_sentencepiece


def test_real_llama_tokenizer(llama_tokenizer_path):
    tok = Tokenizer(llama_tokenizer_path)
    assert tok.vocab_size == 32000
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (1, 2, 2)
    assert tok.encode("Hello world") == [15043, 3186]
    assert tok.encode("Hello world", bos=True, eos=True) == [1, 15043, 3186, 2]
    code = "def f(x):\n\treturn  x * 2  # 두 배\n"
    assert tok.decode(tok.encode(code)) == code
    assert tok.encode_batch(["Hello world", "a"], bos=True) == [[1, 15043, 3186], [1, *tok.encode("a")]]
    assert tok.piece_text(tok.encode("\n")[-1]) == "\n"


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer model not found"):
        Tokenizer(tmp_path / "nope.model")
    (tmp_path / "bad.model").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a SentencePiece model"):
        Tokenizer(tmp_path / "bad.model")


def test_train_small_tokenizer_round_trips_code(tmp_path):
    (tmp_path / "c.txt").write_text("def add(a, b):\n    return a + b\n" * 50 + "print(add(1, 2))\n" * 20)
    tok = Tokenizer(train_sentencepiece(tmp_path / "c.txt", tmp_path / "t", 300))
    assert tok.bos_id == 1 and tok.eos_id == 2
    text = "def mul(x, y):\n\treturn x * y  # ünïcode\n"
    assert tok.decode(tok.encode(text)) == text  # byte fallback: anything encodes


def test_tokenizer_without_eos_is_refused(tmp_path):
    import sentencepiece as spm

    (tmp_path / "c.txt").write_text("print(1)\n" * 100)
    spm.SentencePieceTrainer.train(
        input=str(tmp_path / "c.txt"),
        model_prefix=str(tmp_path / "noeos"),
        vocab_size=40,
        eos_id=-1,
        minloglevel=2,
        hard_vocab_limit=False,
    )
    with pytest.raises(ValueError, match="has no EOS piece"):
        Tokenizer(tmp_path / "noeos.model")
