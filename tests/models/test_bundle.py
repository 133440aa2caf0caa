"""Bundles: round trips, integrity checks and the errors a user meets."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from wmtp_lightning.io import write_safetensors_streaming
from wmtp_lightning.models import ModelArgs, Transformer, bundle_tokenizer, load_bundle, read_metadata, save_bundle
from wmtp_lightning.models.bundle import METADATA, PARAMS, WEIGHTS, tokenizer_path


@pytest.fixture
def model() -> Transformer:
    return Transformer(ModelArgs.from_name("tiny"))


def test_round_trip_is_bit_exact(tmp_path, model):
    out = save_bundle(model, tmp_path / "b")
    loaded = load_bundle(out)
    assert loaded.args == model.args
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    meta = read_metadata(out)
    assert meta["status"] == "ready" and set(meta["files"]) == {WEIGHTS, PARAMS}
    x = torch.randint(0, 256, (1, 5))
    assert torch.equal(loaded(x), model(x))


def test_dtype_cast_on_save_and_load(tmp_path, model):
    out = save_bundle(model, tmp_path / "b", dtype="bfloat16")
    assert read_metadata(out)["dtype"] == "bfloat16"
    assert load_bundle(out).output.weight.dtype == torch.bfloat16
    assert load_bundle(out, dtype="float32").output.weight.dtype == torch.float32


def test_streaming_writer_matches_reference_reader(tmp_path):
    tensors = {"a": torch.randn(3, 5), "b": torch.arange(7, dtype=torch.int64), "c": torch.randn(2, 2).bfloat16()}
    specs = [(k, v.shape, v.dtype) for k, v in tensors.items()]
    write_safetensors_streaming(tmp_path / "x.safetensors", specs, iter(tensors.items()))
    back = load_file(tmp_path / "x.safetensors")
    for k, v in tensors.items():
        assert torch.equal(back[k], v)
    with pytest.raises(ValueError, match="does not match spec"):
        write_safetensors_streaming(tmp_path / "y.safetensors", specs, iter([("a", torch.zeros(1))] * 3))


def test_sha256_mismatch_names_the_file(tmp_path, model):
    out = save_bundle(model, tmp_path / "b")
    params = json.loads((out / PARAMS).read_text())
    (out / PARAMS).write_text(json.dumps(params, indent=4))
    with pytest.raises(ValueError, match=r"params\.json: sha256 .* does not match"):
        load_bundle(out)


def test_truncated_weights_are_reported(tmp_path, model):
    out = save_bundle(model, tmp_path / "b")
    data = (out / WEIGHTS).read_bytes()
    (out / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="sha256"):
        load_bundle(out)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_bundle(out, verify=False)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda sd: sd.pop("norm.weight"), r"missing key\(s\) \['norm.weight'\]"),
        (lambda sd: sd.__setitem__("extra.weight", torch.zeros(1)), r"unexpected key\(s\) \['extra.weight'\]"),
        (lambda sd: sd.__setitem__("norm.weight", torch.zeros(3)), r"norm.weight: got \(3,\), expected \(64,\)"),
    ],
)
def test_state_dict_problems_are_named(tmp_path, model, edit, message):
    out = save_bundle(model, tmp_path / "b")
    sd = load_file(out / WEIGHTS)
    edit(sd)
    save_file(sd, out / WEIGHTS)
    with pytest.raises(ValueError, match=message):
        load_bundle(out, verify=False)


def test_params_problems_are_named(tmp_path, model):
    out = save_bundle(model, tmp_path / "b")
    shutil.copy(out / PARAMS, tmp_path / "p.json")
    (out / PARAMS).write_text(json.dumps({**json.loads((tmp_path / "p.json").read_text()), "n_expert": 8}))
    with pytest.raises(ValueError, match=r"params.json: unknown key\(s\) \['n_expert'\]"):
        load_bundle(out, verify=False)


def test_incomplete_or_missing_bundle(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="model bundle not found"):
        load_bundle(tmp_path / "nope")
    out = save_bundle(model, tmp_path / "b")
    meta = json.loads((out / METADATA).read_text())
    (out / METADATA).write_text(json.dumps({**meta, "status": "writing"}))
    with pytest.raises(ValueError, match="status 'writing'"):
        load_bundle(out)
    (out / METADATA).unlink()
    with pytest.raises(FileNotFoundError, match="incomplete"):
        load_bundle(out)


def test_tokenizer_vocab_must_fit_the_model(tmp_path, llama_tokenizer_path):
    small = Transformer(ModelArgs.from_name("tiny"))
    with pytest.raises(ValueError, match="tokenizer vocab size 32000 > model vocab_size 256"):
        save_bundle(small, tmp_path / "b", tokenizer=llama_tokenizer_path)
    with torch.device("meta"):
        big = Transformer(ModelArgs.from_name("tiny", vocab_size=32000))
    big = big.to_empty(device="cpu")
    out = save_bundle(big, tmp_path / "c", tokenizer=llama_tokenizer_path)
    assert bundle_tokenizer(out).vocab_size == 32000
    with pytest.raises(ValueError, match="tokenizer vocab size 32000 > model vocab_size 256"):
        bundle_tokenizer(out, ModelArgs.from_name("tiny"))
    padded = ModelArgs.from_name("tiny", vocab_size=32064)  # embedding rows padded past the tokenizer: fine
    assert bundle_tokenizer(out, padded).vocab_size == 32000


def test_bundles_carry_either_tokenizer_and_no_stale_one(tmp_path, llama_tokenizer_path, hf_tokenizer_dir):
    model = Transformer(ModelArgs.from_name("tiny", vocab_size=32000))
    out = save_bundle(model, tmp_path / "b", tokenizer=llama_tokenizer_path)
    assert tokenizer_path(out) == out / "tokenizer" / "tokenizer.model"
    out = save_bundle(model, tmp_path / "b", tokenizer=hf_tokenizer_dir)  # a folder: file + companions
    names = ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]
    assert sorted(p.name for p in (out / "tokenizer").iterdir()) == sorted(names)  # tokenizer.model is gone
    assert {f for f in read_metadata(out)["files"] if f.startswith("tokenizer/")} == {f"tokenizer/{n}" for n in names}
    tok = bundle_tokenizer(out)
    assert tok.path == tokenizer_path(out) == out / "tokenizer" / "tokenizer.json"
    assert (tok.eos_id, tok.eos_ids, tok.pad_id) == (2, {2, 0}, 2)  # the companions came along
    save_bundle(model, tmp_path / "c", tokenizer=tok.path)  # a bundle's tokenizer file copies its companions too
    assert bundle_tokenizer(tmp_path / "c").eos_ids == {2, 0}
    (out / "tokenizer" / "generation_config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"generation_config.json: sha256 .* does not match"):
        read_metadata(out)
    assert tokenizer_path(save_bundle(model, tmp_path / "d")) is None
    with pytest.raises(FileNotFoundError, match="bundle has no tokenizer"):
        bundle_tokenizer(tmp_path / "d")
