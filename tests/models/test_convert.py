"""Converters: pure key maps, the q/k permutation, and logits parity with the source formats."""

from __future__ import annotations

import json

import pytest
import torch

from wmtp_lightning.models import ModelArgs, Transformer, load_bundle
from wmtp_lightning.models.convert import (
    convert_hf,
    convert_meta,
    hf_config_to_args,
    hf_key_map,
    meta_key_map,
    meta_params_to_args,
    permute_qk,
    unpermute_qk,
)

transformers = pytest.importorskip("transformers", reason="HF parity needs the dev extra (pip install -e '.[dev]')")


def test_hf_key_map_is_total_on_llama_names():
    assert hf_key_map("model.embed_tokens.weight") == "tok_embeddings.weight"
    assert hf_key_map("model.layers.3.self_attn.k_proj.weight") == "layers.3.attention.wk.weight"
    assert hf_key_map("model.layers.0.mlp.gate_proj.weight") == "layers.0.feed_forward.w1.weight"
    assert hf_key_map("model.layers.0.mlp.down_proj.weight") == "layers.0.feed_forward.w2.weight"
    assert hf_key_map("model.layers.0.mlp.up_proj.weight") == "layers.0.feed_forward.w3.weight"
    assert hf_key_map("model.layers.7.post_attention_layernorm.weight") == "layers.7.ffn_norm.weight"
    assert hf_key_map("lm_head.weight") == "output.weight"
    assert hf_key_map("model.layers.0.self_attn.rotary_emb.inv_freq") is None
    with pytest.raises(KeyError, match="unexpected Hugging Face key"):
        hf_key_map("model.layers.0.self_attn.q_norm.weight")
    assert meta_key_map("rope.freqs") is None and meta_key_map("norm.weight") == "norm.weight"


def test_permutation_round_trip_and_layout():
    w = torch.arange(2 * 8 * 3, dtype=torch.float32).view(16, 3)  # 2 heads, head dim 8
    assert torch.equal(unpermute_qk(permute_qk(w, 2), 2), w)
    # Meta interleaves pairs (0,1),(2,3)...; HF puts the first halves first: row 1 (pair 0, imag) -> row 4.
    assert torch.equal(permute_qk(w, 2)[4], w[1])


def test_config_errors_name_the_key():
    base = {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 256,
        "intermediate_size": 176,
    }
    assert hf_config_to_args(base, "c.json").ffn_hidden_dim == 176
    with pytest.raises(ValueError, match=r"c.json: missing required key\(s\) \['intermediate_size'\]"):
        hf_config_to_args({k: v for k, v in base.items() if k != "intermediate_size"}, "c.json")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['sliding_window'\]"):
        hf_config_to_args({**base, "sliding_window": 4096}, "c.json")
    with pytest.raises(ValueError, match="rope scaling"):
        hf_config_to_args({**base, "rope_scaling": {"type": "linear", "factor": 2.0}}, "c.json")
    with pytest.raises(ValueError, match=r"params\.json: vocab_size is -1"):
        meta_params_to_args({"dim": 64, "n_layers": 2, "n_heads": 4, "vocab_size": -1}, None, "params.json")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['moe'\]"):
        meta_params_to_args({"dim": 64, "n_layers": 2, "n_heads": 4, "moe": True}, 10, "params.json")


def _hf_model(tie: bool = False):
    cfg = transformers.LlamaConfig(
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=176,
        vocab_size=256,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        max_position_embeddings=128,
        tie_word_embeddings=tie,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg).eval()


def _hf_logits(model, x):
    with torch.no_grad():
        return model(x).logits.float()


@pytest.mark.parametrize("layout", ["single", "sharded", "bin"])
def test_hf_conversion_reproduces_logits(tmp_path, layout):
    hf = _hf_model()
    src = tmp_path / "hf"
    if layout == "bin":
        src.mkdir()
        (src / "config.json").write_text(hf.config.to_json_string())
        sd = hf.state_dict()
        names = sorted(sd)
        half = len(names) // 2
        shards = {"pytorch_model-00001-of-00002.bin": names[:half], "pytorch_model-00002-of-00002.bin": names[half:]}
        for fname, keys in shards.items():
            torch.save({k: sd[k].clone() for k in keys}, src / fname)
        weight_map = {k: f for f, keys in shards.items() for k in keys}
        (src / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    else:
        hf.save_pretrained(src, max_shard_size="100KB" if layout == "sharded" else "10GB")
        assert (src / "model.safetensors.index.json").is_file() == (layout == "sharded")
    out = convert_hf(src, tmp_path / "bundle")
    ours = load_bundle(out).eval()
    assert ours.args.n_future_tokens == 1 and ours.args.kv_heads == 2
    x = torch.randint(0, 256, (2, 13))
    torch.testing.assert_close(ours(x), _hf_logits(hf, x), atol=1e-4, rtol=1e-4)


def test_hf_tied_embeddings(tmp_path):
    hf = _hf_model(tie=True)
    hf.save_pretrained(tmp_path / "hf")
    ours = load_bundle(convert_hf(tmp_path / "hf", tmp_path / "b")).eval()
    x = torch.randint(0, 256, (1, 7))
    torch.testing.assert_close(ours(x), _hf_logits(hf, x), atol=1e-4, rtol=1e-4)


def test_meta_conversion_reproduces_logits_and_drops_rope_table(tmp_path):
    args = ModelArgs.from_name("tiny")
    model = Transformer(args).eval()
    src = tmp_path / "7B_1T_4"
    src.mkdir()
    sd = {**model.state_dict(), "rope.freqs": torch.randn(8)}
    torch.save(sd, src / "consolidated.00.pth")
    params = {
        "dim": 64,
        "n_layers": 5,
        "n_heads": 4,
        "n_kv_heads": 2,
        "multiple_of": 16,
        "norm_eps": 1e-5,
        "vocab_size": -1,
        "n_future_tokens": 3,
        "max_seq_len": 128,
    }
    (src / "params.json").write_text(json.dumps(params))
    out = convert_meta(src, tmp_path / "bundle", dtype="float32")
    ours = load_bundle(out).eval()
    assert ours.args.vocab_size == 256 and ours.args.n_future_tokens == 3
    x = torch.randint(0, 256, (2, 9))
    torch.testing.assert_close(ours(x, return_all_heads=True), model(x, return_all_heads=True), atol=0, rtol=0)


def test_meta_shape_mismatch_is_reported(tmp_path):
    model = Transformer(ModelArgs.from_name("tiny"))
    src = tmp_path / "m"
    src.mkdir()
    torch.save(model.state_dict(), src / "consolidated.pth")
    (src / "params.json").write_text(
        json.dumps({"dim": 64, "n_layers": 5, "n_heads": 4, "multiple_of": 16, "vocab_size": 256, "n_future_tokens": 3})
    )
    with pytest.raises(ValueError, match=r"layers.0.attention.wk.weight: got \(32, 64\), expected \(64, 64\)"):
        convert_meta(src, tmp_path / "out")
