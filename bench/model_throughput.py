#!/usr/bin/env python
"""Training-step throughput of this project's transformer vs Hugging Face `LlamaForCausalLM`, same shape.

Both models get the same config (n_future_tokens = 1 here, so the architectures are identical), the
same batch, and a forward + backward + AdamW step each; after warm-up the median of the timed steps
is compared. Target (DESIGN §8): ours >= HF (ratio >= 1).

    python bench/model_throughput.py                     # CPU: dim 512, 8 layers, vocab 32000, 2 x 512 tokens
    python bench/model_throughput.py --device cuda --dim 2048 --layers 16 --seq 2048 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch


def step_times(model, x, y, steps: int, warmup: int, device: str, ours: bool) -> list[float]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for i in range(warmup + steps):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        if ours:
            logits = model(x)
        else:
            logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return times


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args(argv)
    import transformers

    from wmtp_lightning.models import ModelArgs, Transformer

    dtype = getattr(torch, a.dtype)
    cfg = transformers.LlamaConfig(
        hidden_size=a.dim,
        num_hidden_layers=a.layers,
        num_attention_heads=a.heads,
        num_key_value_heads=a.heads,
        intermediate_size=ModelArgs(dim=a.dim).hidden_dim,
        vocab_size=a.vocab,
        max_position_embeddings=a.seq,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(cfg).to(a.device, dtype).train()
    ours = Transformer(
        ModelArgs(
            dim=a.dim,
            n_layers=a.layers,
            n_heads=a.heads,
            vocab_size=a.vocab,
            ffn_hidden_dim=cfg.intermediate_size,
            max_seq_len=a.seq,
            n_future_tokens=1,
        )
    )
    ours = ours.to(a.device, dtype).train()
    assert sum(p.numel() for p in hf.parameters()) == ours.num_params(), "shapes differ"
    x = torch.randint(0, a.vocab, (a.batch, a.seq), device=a.device)
    y = torch.randint(0, a.vocab, (a.batch, a.seq), device=a.device)
    results = {}
    for name, model, is_ours in (("hf_llama", hf, False), ("wmtp", ours, True), ("hf_llama_again", hf, False)):
        t = statistics.median(step_times(model, x, y, a.steps, a.warmup, a.device, is_ours))
        results[name] = {"step_s": round(t, 4), "tokens_per_s": round(a.batch * a.seq / t, 1)}
    hf_s = min(results["hf_llama"]["step_s"], results["hf_llama_again"]["step_s"])
    out = {
        "machine": f"{platform.machine()}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{torch.get_num_threads()} threads, device {a.device}",
        "shape": f"dim {a.dim}, {a.layers} layers, {a.heads} heads, vocab {a.vocab}, {a.batch} x {a.seq} tokens, "
        f"{a.dtype}",
        "params_m": round(ours.num_params() / 1e6, 1),
        **results,
        "ratio_wmtp_over_hf_throughput": round(hf_s / results["wmtp"]["step_s"], 3),
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
