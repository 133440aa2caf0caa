"""Tokenizers: SentencePiece (the real LLaMA model) and Hugging Face tokenizer.json (a tiny byte-level
BPE and the real SmolLM2 one), checked against transformers' own tokenizer where it applies."""

from __future__ import annotations

import json
import shutil

import pytest
from transformers import AutoTokenizer

from wmtp_lightning.evaluation.benchmarks import load_humaneval
from wmtp_lightning.models.tokenizer import Tokenizer, train_sentencepiece

from ..conftest import HUMANEVAL, require

CODE = "def f(x):\n\treturn  x * 2  # 두 배\n\n\n    if x:\r\n        pass  # ünïcode\n"


def test_real_llama_tokenizer(llama_tokenizer_path):
    tok = Tokenizer(llama_tokenizer_path)
    assert tok.kind == "sentencepiece" and tok.vocab_size == 32000 and tok.files == [llama_tokenizer_path]
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.eos_ids, tok.add_bos) == (1, 2, 2, {2}, True)
    assert tok.encode("Hello world") == [15043, 3186]
    assert tok.encode("Hello world", bos=True, eos=True) == [1, 15043, 3186, 2]
    assert tok.decode(tok.encode(CODE)) == CODE
    assert tok.encode_batch(["Hello world", "a"], bos=True) == [[1, 15043, 3186], [1, *tok.encode("a")]]
    assert tok.piece_text(tok.encode("\n")[-1]) == "\n" and tok.id_to_piece(15043) == "▁Hello"
    assert tok.adds_prefix_space  # SentencePiece's dummy prefix: "a" alone encodes as "▁a"
    assert Tokenizer(llama_tokenizer_path.parent).path == llama_tokenizer_path  # a folder works too


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer model not found"):
        Tokenizer(tmp_path / "nope.model")
    with pytest.raises(FileNotFoundError, match=r"holds neither tokenizer\.json nor tokenizer\.model"):
        Tokenizer(tmp_path)
    (tmp_path / "bad.model").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a SentencePiece model"):
        Tokenizer(tmp_path / "bad.model")
    (tmp_path / "tokenizer.json").write_text('{"version": "1.0",')
    with pytest.raises(ValueError, match=r"tokenizer.json:1: invalid JSON"):
        Tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "Nope"}}')
    with pytest.raises(ValueError, match=r"not a Hugging Face tokenizer\.json"):
        Tokenizer(tmp_path)


def test_train_small_tokenizer_round_trips_code(tmp_path):
    (tmp_path / "c.txt").write_text("def add(a, b):\n    return a + b\n" * 50 + "print(add(1, 2))\n" * 20)
    tok = Tokenizer(train_sentencepiece(tmp_path / "c.txt", tmp_path / "t", 300))
    assert tok.bos_id == 1 and tok.eos_id == 2
    text = "def mul(x, y):\n\treturn x * y  # ünïcode\n"
    assert tok.decode(tok.encode(text)) == text  # byte fallback: anything encodes


def test_tokenizer_without_eos_is_refused(tmp_path, hf_tokenizer_dir):
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
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(hf_tokenizer_dir / "tokenizer.json", bare)  # no file names an EOS: refused, not guessed
    with pytest.raises(ValueError, match="has no EOS piece"):
        Tokenizer(bare)


def test_hf_tokenizer_matches_transformers(hf_tokenizer_dir):
    tok = Tokenizer(hf_tokenizer_dir)
    ref = AutoTokenizer.from_pretrained(hf_tokenizer_dir)
    assert tok.kind == "huggingface" and tok.path == hf_tokenizer_dir / "tokenizer.json"
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (ref.bos_token_id, ref.eos_token_id, ref.pad_token_id) == (1, 2, 2)
    assert tok.eos_ids == {2, 0}  # generation_config.json's list joins the tokenizer's EOS
    assert not tok.add_bos and not tok.adds_prefix_space and tok.vocab_size == len(ref) == 512
    assert [p.name for p in tok.files] == ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]
    texts = [CODE, "Hello world", "", "n = int(input())\nprint(sum(map(int, input().split())))"]
    for text in texts:
        assert tok.encode(text) == ref(text, add_special_tokens=False).input_ids
        assert tok.encode(text, bos=True) == ref(text).input_ids  # transformers adds no BOS here either
        assert tok.decode(tok.encode(text)) == text
    assert tok.encode_batch(texts, eos=True) == [[*ref(t).input_ids, 2] for t in texts]


def test_special_tokens_are_text_inside_text(hf_tokenizer_dir):
    tok = Tokenizer(hf_tokenizer_dir)
    text = 'print("<|im_end|>")'
    ids = tok.encode(text)
    assert tok.eos_id not in ids and tok.decode(ids) == text  # never the control token
    assert tok.decode([tok.bos_id, *ids, tok.eos_id, tok.pad_id]) == text  # control tokens give no text


def test_piece_text_of_byte_level_pieces(hf_tokenizer_dir):
    tok = Tokenizer(hf_tokenizer_dir)
    text = "def f(x):\n\treturn x  # ok\n"
    assert "".join(tok.piece_text(i) for i in tok.encode(text)) == text
    assert any(tok.id_to_piece(i).startswith("Ġ") for i in tok.encode(text))  # stored form differs
    assert "\ufffd" in "".join(tok.piece_text(i) for i in tok.encode("두"))  # a byte of a 3-byte character
    assert tok.piece_text(tok.eos_id) == "<|im_end|>"


def _folder(tmp_path, hf_tokenizer_dir, **files):
    d = tmp_path / "tok"
    d.mkdir()
    shutil.copy(hf_tokenizer_dir / "tokenizer.json", d)
    for name, content in files.items():
        (d / f"{name}.json").write_text(json.dumps(content))
    return d


def test_special_ids_come_from_the_files_transformers_reads(tmp_path, hf_tokenizer_dir):
    as_added_token = {"content": "<|im_end|>", "lstrip": False, "normalized": False, "special": True}
    d = _folder(tmp_path, hf_tokenizer_dir, special_tokens_map={"eos_token": as_added_token})
    assert Tokenizer(d).eos_id == 2 and Tokenizer(d).pad_id == 2  # no pad token: EOS pads
    shutil.rmtree(d)
    d = _folder(tmp_path, hf_tokenizer_dir, config={"eos_token_id": 0, "pad_token_id": 1})
    assert (Tokenizer(d).eos_id, Tokenizer(d).eos_ids, Tokenizer(d).pad_id) == (0, {0}, 1)
    assert [p.name for p in Tokenizer(d).files] == ["tokenizer.json", "config.json"]
    (d / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 1]}))
    assert Tokenizer(d).eos_ids == {2, 1} and "config.json" not in [p.name for p in Tokenizer(d).files]
    shutil.rmtree(d)
    d = _folder(
        tmp_path, hf_tokenizer_dir, tokenizer_config={"eos_token": "<|im_end|>"}, special_tokens_map={"eos_token": "x"}
    )
    with pytest.raises(ValueError, match="eos_token differs between tokenizer files"):
        Tokenizer(d)
    shutil.rmtree(d)
    d = _folder(tmp_path, hf_tokenizer_dir, tokenizer_config={"eos_token": "<|eot|>"})
    with pytest.raises(ValueError, match=r"eos_token '<\|eot\|>' is not in the vocabulary"):
        Tokenizer(d)
    shutil.rmtree(d)
    d = _folder(tmp_path, hf_tokenizer_dir, generation_config={"eos_token_id": "2"})
    with pytest.raises(ValueError, match=r"generation_config\.json: eos_token_id: expected an int or a list"):
        Tokenizer(d)


def _with_bos_post_processor(d):
    """Llama 3's layout: the post-processor starts every sequence with BOS."""
    from tokenizers import Tokenizer as Backend
    from tokenizers import processors

    backend = Backend.from_file(str(d / "tokenizer.json"))
    backend.post_processor = processors.TemplateProcessing(
        single="<|im_start|> $A", pair="<|im_start|> $A <|im_start|> $B", special_tokens=[("<|im_start|>", 1)]
    )
    backend.save(str(d / "tokenizer.json"))


def test_bos_is_added_where_the_post_processor_adds_it(tmp_path, hf_tokenizer_dir):
    d = _folder(tmp_path, hf_tokenizer_dir, tokenizer_config={"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"})
    _with_bos_post_processor(d)
    tok, ref = Tokenizer(d), AutoTokenizer.from_pretrained(d)
    assert tok.add_bos and tok.bos_id == 1
    for text in ("def f(x):\n    return x\n", "a"):
        assert tok.encode(text, bos=True) == ref(text).input_ids == [1, *ref(text, add_special_tokens=False).input_ids]
        assert tok.encode(text) == ref(text, add_special_tokens=False).input_ids


@pytest.mark.parametrize("flag", [True, False])
def test_explicit_add_bos_token_wins(tmp_path, hf_tokenizer_dir, flag):
    """`add_bos_token` in tokenizer_config.json overrides the post-processor, as transformers 4.x's
    LlamaTokenizerFast and 5.x's LlamaTokenizer rebuild it from the flag (5.x's generic
    byte-level backend ignores the flag, so this is not compared with the installed transformers)."""
    config = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "add_bos_token": flag}
    d = _folder(tmp_path, hf_tokenizer_dir, tokenizer_config=config)
    if not flag:
        _with_bos_post_processor(d)
    tok = Tokenizer(d)
    assert tok.add_bos is flag
    assert tok.encode("a", bos=True) == [1] * flag + tok.encode("a")
    (d / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|im_end|>", "add_bos_token": True}))
    with pytest.raises(ValueError, match="add_bos_token is true but no bos_token"):
        Tokenizer(d)


def test_real_smollm2_tokenizer_matches_transformers(smollm2_tokenizer_dir):
    tok = Tokenizer(smollm2_tokenizer_dir)
    ref = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir)
    assert tok.vocab_size == 49152 and tok.kind == "huggingface" and not tok.adds_prefix_space
    # SmolLM2-Instruct: bos <|im_start|> (never prepended), eos = pad = <|im_end|>, the chat turn's end.
    assert (tok.bos_id, tok.add_bos, tok.eos_id, tok.pad_id, tok.eos_ids) == (1, False, 2, 2, {2})
    assert tok.id_to_piece(2) == "<|im_end|>" and tok.encode("def fib(n):\n") == [1604, 3987, 24, 94, 727, 198]
    for p in load_humaneval(require(HUMANEVAL))[:20]:
        for text in (p.prompt("alpaca"), p.prompt("raw"), p.reference):
            ids = tok.encode(text, bos=True)
            assert ids == ref(text).input_ids, p.task_id
            assert tok.decode(ids) == text == ref.decode(ids)
