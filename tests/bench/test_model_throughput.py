"""The throughput bench: FLOP count by hand, and a tiny interleaved run of every variant."""

from __future__ import annotations

import math

import torch

from wmtp_lightning.models import ModelArgs


def test_flops_per_token_by_hand(bench):
    mt = bench("model_throughput")
    a = ModelArgs(dim=8, n_layers=3, n_heads=2, n_kv_heads=1, vocab_size=10, ffn_hidden_dim=16, n_future_tokens=3)
    # per block: q, o 8·8 each; k, v 8·4 each; SwiGLU 3·8·16; two norms 2·8 -> 64+64+32+32+384+16 = 592
    applied = 3 * 592 + 3 * 10 * 8  # blocks + the unembedding once per head
    assert mt.flops_per_token(a, seq=5) == 6 * applied + 12 * 3 * 8 * 5


def test_tiny_run_reports_ratios_and_the_same_model(bench):
    mt = bench("model_throughput")
    args = ModelArgs(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=64, ffn_hidden_dim=64, max_seq_len=16)
    r = mt.measure(args, seq=16, batch=2, rounds=2, warmup=1, device="cpu", dtype=torch.float32, peak=1e10)
    assert set(r["rows"]) == {"hf", "ours_h1", "ours_h4", "ours_h4_seq"}
    assert r["same_model"]["hf_initial_loss"] == r["same_model"]["ours_initial_loss"]  # HF's weights, same loss
    for key in ("ours_h1_over_hf_throughput", "ours_h4_over_h1_step_time", "ours_h4_seq_over_h1_step_time"):
        s = r[key]
        assert s["min"] <= s["median"] <= s["max"] and all(math.isfinite(v) and v > 0 for v in s.values())
    assert "fused=True" in r["optimizer"]
    md = mt.markdown({"machine": "m", "shape": "s", "matmul_peak_gflops": 10.0, "dtype": "float32", "runs": [r]})
    assert md.count("\n| 16 |") == 4
