#!/usr/bin/env python
"""Self-speculative decoding speed-up on CPU with a micro model whose heads were trained to agree.

Trains the micro MTP model (all heads, uniform MTP loss) on the local problem set until its heads
agree on that data, then decodes prompts from it with plain greedy (head 1, KV cache, one token
per forward pass) and with self-speculative decoding (heads 2..H draft, head 1 verifies).
Outputs are checked identical; reported: acceptance rate, tokens per forward pass, tokens/s and
the speed-up. Target (DESIGN §8): >= 2x.

    python bench/speculative.py [--steps 400] [--new-tokens 128] [--prompts 8]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from wmtp_lightning.data.collate import MTPCollator
from wmtp_lightning.data.local_problems import load_local_problems
from wmtp_lightning.evaluation.generation import SpeculativeStats, greedy_tokens, speculative_tokens
from wmtp_lightning.models.micro import from_scratch, micro_args
from wmtp_lightning.models.tokenizer import Tokenizer, train_sentencepiece
from wmtp_lightning.weighting import IGNORE_INDEX, mtp_targets, weighted_mtp_loss


def items() -> list[dict]:
    return [
        {
            "instruction": p["description"],
            "input": "",
            "output": code,
            "is_correct": True,
            "metadata": {"difficulty": p["difficulty"]},
            "line": i,
        }
        for i, (p, code) in enumerate((p, c) for p in load_local_problems() for c in p["solutions"]["solution"])
    ]


def train(model, tok: Tokenizer, steps: int, batch: int, lr: float, seed: int) -> list[float]:
    data = items()
    coll = MTPCollator(tok, max_length=1024)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    g = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(data), (batch,), generator=g).tolist()
        b = coll([data[i] for i in idx])
        out = model(b["input_ids"], targets=b["labels"])
        valid = mtp_targets(b["labels"], model.n_future_tokens) != IGNORE_INDEX
        loss, _ = weighted_mtp_loss(out.ce, valid)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--trunk", type=int, default=16, help="trunk blocks (Meta's 7B_1T_4 has 29 for its 4 heads)")
    ap.add_argument("--save", help="save the trained model as a bundle here (to re-measure with --load)")
    ap.add_argument("--load", help="skip training: measure this bundle (made with --save)")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prompts", type=int, default=34)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    import tempfile
    from pathlib import Path

    from wmtp_lightning.data.local_problems import corpus_text
    from wmtp_lightning.models.bundle import bundle_tokenizer, load_bundle, save_bundle

    losses, train_s = [float("nan")], 0.0
    if a.load:
        model = load_bundle(a.load)
        tok = bundle_tokenizer(a.load, model.args)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "c.txt").write_text(corpus_text())
            tok_path = train_sentencepiece(Path(tmp) / "c.txt", Path(tmp) / "t", 1024)
            tok = Tokenizer(tok_path)
            model = from_scratch(micro_args(tok.vocab_size, a.heads, trunk_layers=a.trunk), a.seed)
            t0 = time.monotonic()
            losses = train(model, tok, a.steps, a.batch, a.lr, a.seed)
            train_s = time.monotonic() - t0
            if a.save:
                save_bundle(
                    model, a.save, tokenizer=tok_path, source={"kind": "bench/speculative.py", "steps": a.steps}
                )
    model.eval()
    # Prompts: problem statements it was trained on; it writes the (memorised) solution.
    from wmtp_lightning.data.template import build_prompt

    prompts = [tok.encode(build_prompt(p["description"], ""), bos=True) for p in load_local_problems()[: a.prompts]]
    for p in prompts[:2]:  # warm-up
        greedy_tokens(model, p, 8, tok.eos_id)
        speculative_tokens(model, p, 8, tok.eos_id)
    t = time.perf_counter()
    plain = [greedy_tokens(model, p, a.new_tokens, tok.eos_id) for p in prompts]
    plain_s = time.perf_counter() - t
    stats = SpeculativeStats()
    t = time.perf_counter()
    spec = [speculative_tokens(model, p, a.new_tokens, tok.eos_id, stats) for p in prompts]
    spec_s = time.perf_counter() - t
    assert spec == plain, "speculative output differs from greedy"
    n_tokens = sum(map(len, plain))
    result = {
        "machine": f"{platform.machine()} {platform.system()}, torch {torch.__version__}, {a.threads} threads",
        "model": f"micro: dim {model.args.dim}, {model.args.n_trunk_layers} trunk + {model.args.n_future_tokens} heads, "
        f"vocab {tok.vocab_size}, {model.num_params() / 1e6:.1f} M params",
        "train_steps": a.steps,
        "train_seconds": round(train_s, 1),
        "final_train_loss": round(losses[-1], 4),
        "prompts": len(prompts),
        "new_tokens": n_tokens,
        "identical_to_greedy": True,
        "acceptance_rate": round(stats.acceptance_rate, 3),
        "tokens_per_forward": round(stats.tokens_per_pass, 2),
        "greedy_tokens_per_s": round(n_tokens / plain_s, 1),
        "speculative_tokens_per_s": round(n_tokens / spec_s, 1),
        "speedup": round(plain_s / spec_s, 2),
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
