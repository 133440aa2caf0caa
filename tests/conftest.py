"""Shared fixtures: tiny models, the real LLaMA tokenizer from ../shared, a local processed dataset."""

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
