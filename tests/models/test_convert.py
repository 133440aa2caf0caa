"""Converters: pure key maps, the q/k permutation, configs as transformers 4.x/5.x write them, Llama 3
RoPE scaling, NTP -> MTP heads, and logits parity with the source formats (tiny random models here,
the real SmolLM2 from its GGUF in the slow tests)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import pytest
import torch
import transformers

from wmtp_lightning.evaluation.benchmarks import load_humaneval
from wmtp_lightning.models import ModelArgs, Transformer, bundle_tokenizer, load_bundle, read_metadata
from wmtp_lightning.models.convert import (
    convert_bundle,
    convert_hf,
    convert_meta,
    hf_config_to_args,
    hf_key_map,
    meta_key_map,
    meta_params_to_args,
    ntp_to_mtp,
    permute_qk,
    unpermute_qk,
)
from wmtp_lightning.models.transformer import llama3_scale_freqs, precompute_freqs_cis

from ..conftest import HUMANEVAL, load_script, require

SCALING_FIELDS = ("rope_scaling_factor", "rope_low_freq_factor", "rope_high_freq_factor", "rope_original_max_seq_len")


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


BASE = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "vocab_size": 256,
    "intermediate_size": 176,
}
LLAMA3 = {"factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32}


def test_config_errors_name_the_key():
    assert hf_config_to_args(BASE, "c.json").ffn_hidden_dim == 176
    with pytest.raises(ValueError, match=r"c.json: missing required key\(s\) \['intermediate_size'\]"):
        hf_config_to_args({k: v for k, v in BASE.items() if k != "intermediate_size"}, "c.json")
    with pytest.raises(ValueError, match=r"params\.json: vocab_size is -1"):
        meta_params_to_args({"dim": 64, "n_layers": 2, "n_heads": 4, "vocab_size": -1}, None, "params.json")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['moe'\]"):
        meta_params_to_args({"dim": 64, "n_layers": 2, "n_heads": 4, "moe": True}, 10, "params.json")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"sliding_window": 4096}, r"c.json: key\(s\) \['sliding_window'\] not understood"),
        ({"rope_scaling": {"type": "linear", "factor": 2.0}}, "rope scaling type 'linear' is not implemented"),
        ({"rope_parameters": {"rope_type": "yarn", "factor": 4.0}}, "rope scaling type 'yarn' is not implemented"),
        ({"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}, "rope scaling type 'dynamic' is not implemented"),
        ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, r"llama3 rope scaling lacks \['high_freq_factor'"),
        ({"rope_scaling": {"rope_type": "llama3", **LLAMA3, "beta": 1}}, r"rope scaling key\(s\) \['beta'\]"),
        ({"rope_scaling": {"type": "llama3", "rope_type": "default"}}, "names two types"),
        ({"rope_theta": 1e4, "rope_parameters": {"rope_theta": 5e5}}, "rope_theta 10000.0 != rope_parameters"),
        ({"attention_bias": True}, "attention_bias=true is not implemented"),
        ({"mlp_bias": True}, "mlp_bias=true is not implemented"),
        ({"hidden_act": "gelu"}, "hidden_act 'gelu' is not implemented"),
        ({"attention_dropout": 0.1}, "attention_dropout 0.1 is not implemented"),
        ({"head_dim": 32}, "head_dim 32 != hidden_size / num_attention_heads = 16 is not implemented"),
        ({"model_type": "mistral"}, "model_type 'mistral', expected 'llama'"),
        ({"is_encoder_decoder": True}, "is_encoder_decoder=True is not implemented"),
        ({"quantization_config": {"quant_method": "gptq"}}, "quantization_config: quantized weights"),
    ],
)
def test_configs_that_change_the_math_are_refused_by_name(extra, message):
    with pytest.raises(ValueError, match=message):
        hf_config_to_args({**BASE, **extra}, "c.json")


def test_configs_as_transformers_writes_them():
    """transformers 5.x's own diff and full dicts, a 4.x TinyLlama-style file, and 4.x / 5.x Llama 3.2 RoPE."""
    cfg = transformers.LlamaConfig(**BASE, num_key_value_heads=2, rope_theta=1e5, tie_word_embeddings=True, head_dim=16)
    for d in (cfg.to_diff_dict(), cfg.to_dict()):
        a = hf_config_to_args(d, "v5.json")
        assert (a.dim, a.kv_heads, a.rope_theta, a.use_scaled_rope) == (64, 2, 1e5, False)
    v4 = {
        **BASE,
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "bos_token_id": 1,
        "eos_token_id": [2, 3],
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "max_position_embeddings": 2048,
        "model_type": "llama",
        "num_key_value_heads": 4,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.35.0",
        "use_cache": True,
    }
    a = hf_config_to_args(v4, "v4.json")
    assert (a.norm_eps, a.max_seq_len, a.rope_theta, a.use_scaled_rope) == (1e-5, 2048, 1e4, False)
    llama32_v4 = {**v4, "rope_theta": 5e5, "rope_scaling": {"rope_type": "llama3", **LLAMA3}}
    llama32_v5 = {**BASE, "rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5, **LLAMA3}}
    older = {**v4, "rope_theta": 5e5, "rope_scaling": {"type": "llama3", **LLAMA3}}
    for d in (llama32_v4, llama32_v5, older):
        a = hf_config_to_args(d, "c.json")
        assert a.rope_theta == 5e5 and a.llama3_rope_scaling == (32.0, 1.0, 4.0, 32)
    no_original = {**BASE, "max_position_embeddings": 512, "rope_scaling": {"rope_type": "llama3", **LLAMA3}}
    del no_original["rope_scaling"]["original_max_position_embeddings"]
    assert hf_config_to_args(no_original, "c.json").llama3_rope_scaling[3] == 512  # transformers' fallback


def test_llama3_frequency_scaling_by_hand():
    # L = 100, low = 1, high = 4, factor 8: wavelengths < 25 kept, > 100 divided by 8, in between blended.
    f = torch.tensor([1.0, 2 * math.pi / 50, 2 * math.pi / 200])
    out = llama3_scale_freqs(f, 8.0, 1.0, 4.0, 100)
    smooth = (100 / 50 - 1) / (4 - 1)  # 1/3
    expected = torch.tensor([1.0, (1 - smooth) * f[1] / 8 + smooth * f[1], f[2] / 8])
    torch.testing.assert_close(out, expected)
    meta = ModelArgs.from_dict({"dim": 64, "n_layers": 2, "n_heads": 4, "vocab_size": 8, "use_scaled_rope": True})
    assert meta.llama3_rope_scaling == (8.0, 1.0, 4.0, 8192)  # Meta's reference constants
    plain = precompute_freqs_cis(16, 4, 5e5)
    assert not torch.equal(precompute_freqs_cis(16, 4, 5e5, meta.llama3_rope_scaling), plain)
    with pytest.raises(ValueError, match="need use_scaled_rope"):
        ModelArgs(dim=64, n_layers=2, n_heads=4, rope_scaling_factor=8.0)
    with pytest.raises(ValueError, match="0 < low_freq_factor < high_freq_factor"):
        ModelArgs(dim=64, n_layers=2, n_heads=4, use_scaled_rope=True, rope_low_freq_factor=4.0)


def _hf_model(tie: bool = False, vocab_size: int = 256, **overrides):
    cfg = transformers.LlamaConfig(
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=176,
        vocab_size=vocab_size,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        max_position_embeddings=128,
        tie_word_embeddings=tie,
        **overrides,
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


def test_hf_tied_embeddings_are_copied_and_untied(tmp_path):
    hf = _hf_model(tie=True)
    hf.save_pretrained(tmp_path / "hf")
    ours = load_bundle(convert_hf(tmp_path / "hf", tmp_path / "b")).eval()
    x = torch.randint(0, 256, (1, 7))
    torch.testing.assert_close(ours(x), _hf_logits(hf, x), atol=1e-4, rtol=1e-4)
    assert torch.equal(ours.output.weight, ours.tok_embeddings.weight)
    assert ours.output.weight.data_ptr() != ours.tok_embeddings.weight.data_ptr()
    # From here on the two are separate parameters: a step moves each by its own gradient.
    ours.train()
    opt = torch.optim.SGD(ours.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(ours(x)[0], torch.randint(0, 256, (7,))).backward()
    opt.step()
    assert not torch.equal(ours.output.weight, ours.tok_embeddings.weight)


def test_llama3_rope_scaling_matches_transformers(tmp_path):
    """A random Llama-3-shaped model (GQA, θ 5e5, rope_type llama3): logits within 1e-4 of transformers'."""
    rope = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}
    hf = _hf_model(rope_parameters={**rope, "rope_theta": 500000.0, "original_max_position_embeddings": 16})
    hf.config.max_position_embeddings = 256
    hf.save_pretrained(tmp_path / "hf")
    ours = load_bundle(convert_hf(tmp_path / "hf", tmp_path / "b")).eval()
    assert ours.args.llama3_rope_scaling == (32.0, 1.0, 4.0, 16)
    x = torch.randint(0, 256, (2, 120))
    want = _hf_logits(hf, x)
    torch.testing.assert_close(ours(x), want, atol=1e-4, rtol=1e-4)
    with torch.device("meta"):
        plain = Transformer(replace(ours.args, use_scaled_rope=False, **dict.fromkeys(SCALING_FIELDS)))
    plain.load_state_dict(ours.state_dict(), assign=True)
    assert (plain(x) - want).abs().max() > 1e-3  # 10x the tolerance: without the scaling this test fails


def test_ntp_to_mtp_key_map():
    args = ModelArgs(dim=64, n_layers=3, n_heads=4, vocab_size=8)
    keys = ["tok_embeddings.weight", "layers.0.attention.wq.weight", "layers.2.attention.wq.weight", "norm.weight"]
    mtp, pairs = ntp_to_mtp(args, keys, 3)
    assert (mtp.n_layers, mtp.n_future_tokens, mtp.n_trunk_layers) == (5, 3, 2)
    assert pairs == [(k, k) for k in keys] + [
        ("extra_heads.0.attention.wq.weight", "layers.2.attention.wq.weight"),
        ("extra_heads.1.attention.wq.weight", "layers.2.attention.wq.weight"),
    ]
    with pytest.raises(ValueError, match="already has n_future_tokens=3"):
        ntp_to_mtp(mtp, keys, 4)


def test_ntp_to_mtp_head_one_is_the_source_model_exactly(tmp_path, hf_tokenizer_dir):
    hf = _hf_model(vocab_size=512)
    hf.save_pretrained(tmp_path / "hf")
    ntp = load_bundle(convert_hf(tmp_path / "hf", tmp_path / "ntp", tokenizer=hf_tokenizer_dir)).eval()
    out = convert_hf(tmp_path / "hf", tmp_path / "mtp", tokenizer=hf_tokenizer_dir, n_future_tokens=4)
    mtp = load_bundle(out).eval()
    assert (mtp.args.n_layers, mtp.args.n_future_tokens, mtp.args.n_trunk_layers) == (6, 4, 2)
    assert "ntp_to_mtp" in read_metadata(out)["source"] and bundle_tokenizer(out).eos_ids == {2, 0}
    x = torch.randint(0, 512, (2, 11))
    assert torch.equal(mtp(x), ntp(x))  # head 1: bit for bit
    torch.testing.assert_close(mtp(x), _hf_logits(hf, x), atol=1e-4, rtol=1e-4)
    heads = mtp(x, return_all_heads=True)  # every head starts as the last block
    assert all(torch.equal(heads[:, :, k], heads[:, :, 0]) for k in range(4))
    again = load_bundle(convert_bundle(tmp_path / "ntp", tmp_path / "mtp2", n_future_tokens=4)).eval()
    assert torch.equal(again(x, return_all_heads=True), heads)
    with pytest.raises(ValueError, match="the destination is the source bundle"):
        convert_bundle(tmp_path / "ntp", tmp_path / "ntp", n_future_tokens=4)


def test_convert_script_errors_are_one_line(tmp_path, capsys):
    main = load_script("convert_checkpoint")["main"]
    src = tmp_path / "hf"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({**BASE, "sliding_window": 4096}))
    with pytest.raises(SystemExit) as exit_:
        main(["--format", "hf", "--src", str(src), "--dst", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and len(err.strip().splitlines()) == 1
    assert re.match(r"^error: .*config.json: key\(s\) \['sliding_window'\] not understood", err)
    with pytest.raises(ValueError, match="sliding_window"):
        main(["--format", "hf", "--src", str(src), "--dst", str(tmp_path / "out"), "--debug"])
    assert not (tmp_path / "out").exists()


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


@pytest.mark.slow
def test_smollm2_from_gguf_matches_transformers(smollm2_bundle, smollm2_hf):
    """The real model: the bundle made from the GGUF reproduces transformers' logits on HumanEval prompts."""
    meta = read_metadata(smollm2_bundle)
    assert meta["source"]["format"] == "gguf" and "tokenizer/tokenizer.json" in meta["files"]
    ours = load_bundle(smollm2_bundle).eval()
    tok = bundle_tokenizer(smollm2_bundle)
    assert (ours.args.n_layers, ours.args.dim, ours.args.kv_heads, ours.args.rope_theta) == (30, 576, 3, 1e5)
    assert (tok.eos_id, tok.eos_ids, tok.add_bos) == (2, {2}, False)
    worst = 0.0
    for p in load_humaneval(require(HUMANEVAL))[:3]:
        x = torch.tensor([tok.encode(p.prompt("alpaca"), bos=True)])
        with torch.no_grad():
            want, got = _hf_logits(smollm2_hf, x), ours(x)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
        worst = max(worst, float((got - want).abs().max()))
    print(f"SmolLM2 bundle vs transformers: max |logit difference| {worst:.2e}")


@pytest.mark.slow
def test_smollm2_ntp_to_mtp_head_one_is_exact(tmp_path, smollm2_bundle):
    main = load_script("convert_checkpoint")["main"]
    dst = tmp_path / "smollm2-mtp4"
    main(["--format", "bundle", "--src", str(smollm2_bundle), "--dst", str(dst), "--n-future-tokens", "4"])
    ntp, mtp = load_bundle(smollm2_bundle).eval(), load_bundle(dst).eval()
    assert (mtp.args.n_trunk_layers, mtp.args.n_future_tokens) == (29, 4)
    assert bundle_tokenizer(dst).path.name == "tokenizer.json"
    x = torch.tensor([bundle_tokenizer(dst).encode("def fibonacci(n):\n    ", bos=True)])
    with torch.no_grad():
        assert torch.equal(mtp(x), ntp(x))
