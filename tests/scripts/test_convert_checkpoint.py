"""convert_checkpoint / prepare_local_small_model / prepare_smollm2 on damaged inputs: one line on stderr
naming the file, a non-zero exit, no traceback and no bundle."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tests.conftest import run_script

HF_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
    "rms_norm_eps": 1e-5,
    "max_position_embeddings": 128,
}
META_PARAMS = {"dim": 64, "n_layers": 2, "n_heads": 4, "vocab_size": 256, "n_future_tokens": 1}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def truncated(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def hf_folder(tmp: Path, weights: str) -> Path:
    src = tmp / "hf"
    src.mkdir()
    (src / "config.json").write_text(json.dumps(HF_CONFIG))
    if weights == "truncated safetensors":
        save_file({"model.embed_tokens.weight": torch.zeros(256, 64)}, src / "model.safetensors")
        truncated(src / "model.safetensors")
    elif weights == "safetensors header garbage":
        (src / "model.safetensors").write_bytes(b"\xff" * 64)
    elif weights == "garbage .bin":
        (src / "pytorch_model.bin").write_bytes(b"not a checkpoint" * 10)
    return src


def meta_folder(tmp: Path, weights: str) -> Path:
    src = tmp / "meta"
    src.mkdir()
    (src / "params.json").write_text(json.dumps(META_PARAMS))
    pth = src / "consolidated.00.pth"
    if weights == "garbage .pth":
        pth.write_bytes(b"garbage" * 100)
    elif weights == "truncated .pth":
        torch.save({"tok_embeddings.weight": torch.zeros(256, 64)}, pth)
        truncated(pth)
    elif weights == ".pth of a list":
        torch.save([torch.zeros(2)], pth)
    return src


CASES = [
    ("hf", "truncated safetensors", r"hf/model\.safetensors: not a readable safetensors file"),
    ("hf", "safetensors header garbage", r"hf/model\.safetensors: not a readable safetensors file"),
    ("hf", "garbage .bin", r"hf/pytorch_model\.bin: not a readable PyTorch checkpoint"),
    ("meta", "garbage .pth", r"meta/consolidated\.00\.pth: not a readable PyTorch checkpoint"),
    ("meta", "truncated .pth", r"meta/consolidated\.00\.pth: not a readable PyTorch checkpoint"),
    ("meta", ".pth of a list", r"meta/consolidated\.00\.pth: expected a state dict"),
]


@pytest.mark.parametrize(("fmt", "weights", "pattern"), CASES, ids=[c[1] for c in CASES])
def test_damaged_weights_are_one_line_naming_the_file(tmp_path, capsys, fmt, weights, pattern):
    src = (hf_folder if fmt == "hf" else meta_folder)(tmp_path, weights)
    argv = ["--format", fmt, "--src", str(src), "--dst", str(tmp_path / "out")]
    assert run_script("convert_checkpoint", argv) == 1
    assert re.search(pattern, one_error_line(capsys))
    assert not (tmp_path / "out" / "metadata.json").exists()


@pytest.mark.parametrize(
    ("fmt", "src", "pattern"),
    [
        ("hf", "missing", r"missing: Hugging Face model folder not found"),
        ("meta", "missing", r"missing: Meta checkpoint folder not found"),
        ("bundle", "missing", r"missing: bundle folder not found"),
        ("gguf", "missing.gguf", r"missing\.gguf: GGUF file not found"),
        ("gguf", "garbage.gguf", r"garbage\.gguf: not a readable GGUF file"),
        ("gguf", "folder", r"folder: expected a \.gguf file, got a folder"),
        ("bundle", "file.txt", r"file\.txt: expected a bundle folder, got a file"),
    ],
)
def test_missing_or_garbage_src_is_one_line(tmp_path, capsys, fmt, src, pattern):
    (tmp_path / "garbage.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 4)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("x")
    argv = ["--format", fmt, "--src", str(tmp_path / src), "--dst", str(tmp_path / "out")]
    assert run_script("convert_checkpoint", argv) == 1
    assert re.search(pattern, one_error_line(capsys))


def test_truncated_real_gguf_is_one_line(tmp_path, capsys, smollm2_gguf):
    """The real SmolLM2 file cut to its first 2 MB: header and tensor table start fine, the data is gone."""
    bad = tmp_path / "cut.gguf"
    with open(smollm2_gguf, "rb") as f:
        bad.write_bytes(f.read(2 << 20))
    assert run_script("prepare_smollm2", ["--gguf", str(bad), "--dst", str(tmp_path / "out")]) == 1
    assert re.search(r"cut\.gguf: not a readable GGUF file", one_error_line(capsys))
    assert not (tmp_path / "out").exists()


@pytest.fixture
def damaged_bundle(tmp_path, tiny_bundle) -> Path:
    import shutil

    dst = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, dst)
    truncated(next((dst / "safetensors").glob("*.safetensors")))
    return dst


def test_damaged_bundle_is_one_line(tmp_path, capsys, damaged_bundle):
    argv = ["--format", "bundle", "--src", str(damaged_bundle), "--dst", str(tmp_path / "out")]
    assert run_script("convert_checkpoint", argv) == 1
    assert re.search(r"bundle/safetensors/model\.safetensors: .*(corrupt|truncated)", one_error_line(capsys))
    argv = ["--from-bundle", str(damaged_bundle), "--dst", str(tmp_path / "micro")]
    assert run_script("prepare_local_small_model", argv) == 1
    assert re.search(r"bundle/safetensors/model\.safetensors: ", one_error_line(capsys))
    assert run_script("prepare_local_small_model", ["--from-bundle", str(tmp_path / "nope")]) == 1
    assert re.search(r"nope: bundle not found", one_error_line(capsys))
