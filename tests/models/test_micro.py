"""Micro models: the from-scratch and from-bundle paths of prepare_local_small_model."""

from __future__ import annotations

import torch

from tests.conftest import load_script
from wmtp_lightning.models import ModelArgs, Transformer, load_bundle, read_metadata
from wmtp_lightning.models.micro import slice_model


def test_slice_keeps_structure():
    big = Transformer(ModelArgs.from_name("tiny", n_layers=6, n_future_tokens=3))  # 3 trunk blocks
    small = slice_model(big, trunk_layers=[0, 2], n_future_keep=2, dim=32)
    a = small.args
    assert (a.n_trunk_layers, a.n_future_tokens, a.dim, a.n_heads, a.kv_heads) == (2, 2, 32, 2, 1)
    assert torch.equal(small.layers[1].attention.wq.weight, big.layers[2].attention.wq.weight[:32, :32])
    assert torch.equal(
        small.extra_heads[0].feed_forward.w2.weight, big.extra_heads[0].feed_forward.w2.weight[:32, : a.hidden_dim]
    )
    assert small(torch.randint(0, 256, (1, 5)), return_all_heads=True).shape == (1, 5, 2, 256)


def test_prepare_script_from_scratch_and_from_bundle(tmp_path, tiny_bundle):
    main = load_script("prepare_local_small_model")["main"]
    out = main(["--from-scratch", "--dst", str(tmp_path / "m"), "--vocab-size", "400", "--target-device", "mps"])
    mtp, ref = (load_bundle(p) for p in out)
    assert mtp.args.n_future_tokens == 4 and ref.args.n_future_tokens == 1
    assert mtp.args.vocab_size == ref.args.vocab_size <= 400
    meta = read_metadata(out[0])
    assert meta["target_device"] == "mps" and meta["tokenizer_shared_with"] == ["micro-ref"]
    assert meta["files"]["tokenizer/tokenizer.model"] == read_metadata(out[1])["files"]["tokenizer/tokenizer.model"]
    assert (out[0] / "safetensors" / "model.safetensors").stat().st_size < 50e6

    sliced = main(
        ["--from-bundle", str(tiny_bundle), "--dst", str(tmp_path / "s"), "--heads", "2", "--trunk-layers", "1"]
    )
    s = load_bundle(sliced[0])
    assert (s.args.n_trunk_layers, s.args.n_future_tokens) == (1, 2)
    assert "structural" in read_metadata(sliced[0])["source"]["kind"]
