#!/usr/bin/env python
"""Self-speculative decoding speed-up, on a model that has learned something, with held-out prompts.

The local problem set is split by its own `split` field: the micro MTP model (all heads, uniform
MTP loss) trains on the `train` problems' solutions until its head-1 loss on the held-out
problems' solutions (`valid` + `test`, never trained on) reaches `--target-loss` (checked every
`--eval-every` steps, at most `--max-steps`). A model that does not reach it is refused: no
speed-up is reported and the script exits with status 1, because an untrained or degenerate model
repeats itself, its heads agree trivially, and its "speed-up" says nothing about trained heads.
The default bar, 3.3 nats/token, is where this set allows a micro model to get: uniform over its
1024 pieces is 6.93, 50 steps reach about 4.0, and the held-out loss levels off near 3.1 after
~150 steps while the model memorises its 52 training solutions (a 2-core CPU measurement).

Then it decodes the held-out problem statements with plain greedy decoding (head 1, KV cache, one
token per forward pass) and with self-speculative decoding (heads 2..H draft, head 1 verifies), in
interleaved rounds (each prompt: greedy then speculative, or the reverse, alternating), checks the
outputs are identical token for token, and reports acceptance, tokens per forward pass, tokens/s
and the speed-up per round (min / median / max). Target (DESIGN §8): >= 2x.

    python bench/speculative.py [--target-loss 3.3] [--max-steps 600] [--new-tokens 128] [--rounds 3]
    python bench/speculative.py --save DIR ...       # keep the trained model;  --load DIR re-measures it

A real model made MTP from a next-token one (`convert_checkpoint.py ... --n-future-tokens 4`: every
head a copy of the last block, so heads 2..4 still predict the *next* token) needs its extra heads
trained first: `--load BUNDLE --finetune-heads STEPS` trains heads 2..H only (trunk and head 1
frozen, so head 1's output, and with it the greedy text, stays the original model's) on the
training problems' solutions with the uniform MTP loss, then measures as above.

    python bench/speculative.py --load storage/models_v2/smollm2-135m-mtp4 --finetune-heads 200 --lr 3e-4
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
from rounds import device_sync, fmt, machine, per_round, report, spread

from wmtp_lightning.data.collate import MTPCollator
from wmtp_lightning.data.local_problems import load_local_problems
from wmtp_lightning.data.template import PROMPT_NO_INPUT, PROMPT_WITH_INPUT, build_prompt
from wmtp_lightning.evaluation.generation import SpeculativeStats, greedy_tokens, speculative_tokens
from wmtp_lightning.models.micro import from_scratch, micro_args
from wmtp_lightning.models.tokenizer import Tokenizer, train_sentencepiece
from wmtp_lightning.weighting import IGNORE_INDEX, mtp_targets, weighted_mtp_loss

HELD_OUT = ("valid", "test")


def items(held_out: bool) -> list[dict]:
    """Solutions of the training problems (or of the held-out ones) as collator items."""
    problems = [p for split in (HELD_OUT if held_out else ("train",)) for p in load_local_problems(split)]
    return [
        {
            "instruction": p["description"],
            "input": "",
            "output": code,
            "is_correct": True,
            "metadata": {"difficulty": p["difficulty"]},
            "line": i,
        }
        for i, (p, code) in enumerate((p, c) for p in problems for c in p["solutions"]["solution"])
    ]


def held_out_prompts() -> list[str]:
    return [build_prompt(p["description"], "") for split in HELD_OUT for p in load_local_problems(split)]


@torch.no_grad()
def held_out_loss(model, coll: MTPCollator, data: list[dict], device: str) -> list[float]:
    """Per-head mean CE over every held-out solution token (token-weighted, like training)."""
    model.eval()
    H = model.n_future_tokens
    num, den = torch.zeros(H), torch.zeros(H)
    for i in range(0, len(data), 8):
        b = coll(data[i : i + 8])
        labels = b["labels"].to(device)
        out = model(b["input_ids"].to(device), targets=labels)
        valid = mtp_targets(labels, H) != IGNORE_INDEX
        num += (out.ce * valid).sum((0, 1)).cpu()
        den += valid.sum((0, 1)).cpu()
    model.train()
    return (num / den).tolist()


def train_to_target(model, tok: Tokenizer, a: argparse.Namespace, heads_only: int = 0) -> dict:
    """AdamW with linear warm-up, then constant LR, until the held-out head-1 loss <= target.

    heads_only > 0: train the extra heads (2..H) for exactly that many steps, everything else frozen.
    """
    data, held = items(False), items(True)
    coll = MTPCollator(tok, max_length=1024)
    if heads_only:
        model.requires_grad_(False)
        model.extra_heads.requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    warmup = max(1, min(a.warmup, a.max_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    g = torch.Generator().manual_seed(a.seed)
    history = [(0, held_out_loss(model, coll, held, a.device))]
    model.train()
    t0 = time.monotonic()
    step = 0
    steps = heads_only or a.max_steps
    while (heads_only or history[-1][1][0] > a.target_loss) and step < steps:
        idx = torch.randint(0, len(data), (a.batch,), generator=g).tolist()
        b = coll([data[i] for i in idx])
        labels = b["labels"].to(a.device)
        out = model(b["input_ids"].to(a.device), targets=labels)
        loss, _ = weighted_mtp_loss(out.ce, mtp_targets(labels, model.n_future_tokens) != IGNORE_INDEX)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        step += 1
        if step % a.eval_every == 0 or step == steps:
            history.append((step, held_out_loss(model, coll, held, a.device)))
            print(
                f"step {step}: train loss {loss.item():.3f}, held-out loss per head {history[-1][1]}", file=sys.stderr
            )
    return {"steps": step, "seconds": round(time.monotonic() - t0, 1), "history": history}


def decode_rounds(model, tok: Tokenizer, prompts: list[list[int]], a: argparse.Namespace) -> dict:
    """Greedy and speculative decoding of every prompt, interleaved; outputs must be identical."""
    sync = device_sync(a.device)
    for p in prompts[:2]:  # warm-up
        greedy_tokens(model, p, 8, tok.eos_id)
        speculative_tokens(model, p, 8, tok.eos_id)
    greedy_s, spec_s = [0.0] * a.rounds, [0.0] * a.rounds
    stats = SpeculativeStats()
    outputs: list[list[int]] = []
    for r in range(a.rounds):
        for i, p in enumerate(prompts):
            for mode in ("greedy", "spec") if (r + i) % 2 == 0 else ("spec", "greedy"):
                sync()
                t = time.perf_counter()
                if mode == "greedy":
                    out = greedy_tokens(model, p, a.new_tokens, tok.eos_id)
                else:
                    spec = speculative_tokens(model, p, a.new_tokens, tok.eos_id, stats if r == 0 else None)
                sync()
                (greedy_s if mode == "greedy" else spec_s)[r] += time.perf_counter() - t
            if spec != out:
                raise AssertionError(f"prompt {i}: speculative output differs from greedy")
            if r == 0:
                outputs.append(out)
    n_tokens = sum(map(len, outputs))
    return {
        "prompts": len(prompts),
        "new_tokens": n_tokens,
        "identical_to_greedy": True,
        "distinct_token_share": round(len({t for o in outputs for t in o}) / max(1, n_tokens), 3),
        "acceptance_rate": round(stats.acceptance_rate, 3),
        "tokens_per_forward": round(stats.tokens_per_pass, 2),
        "greedy_tokens_per_s": spread([n_tokens / s for s in greedy_s], 1),
        "speculative_tokens_per_s": spread([n_tokens / s for s in spec_s], 1),
        "speedup": spread(per_round(greedy_s, spec_s), 2),
    }


def tokenizer_corpus() -> str:
    """Template + training problems only: the tokenizer never sees the held-out text either."""
    parts = [PROMPT_WITH_INPUT, PROMPT_NO_INPUT]
    for p in load_local_problems("train"):
        parts += [p["description"], *p["solutions"]["solution"], *p["incorrect_solutions"]["solution"]]
    return "\n".join(parts)


def run(a: argparse.Namespace) -> dict:
    from wmtp_lightning.models.bundle import bundle_tokenizer, load_bundle, save_bundle

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if a.load:
            model = load_bundle(a.load, device=a.device)
            tok = bundle_tokenizer(a.load, model.args)
            training = {"steps": 0, "loaded": a.load}
            if a.finetune_heads:
                training = {**train_to_target(model, tok, a, heads_only=a.finetune_heads), "loaded": a.load}
                training["trained"] = "extra heads only (trunk and head 1 frozen)"
        else:
            (Path(tmp) / "c.txt").write_text(tokenizer_corpus())
            tok_path = train_sentencepiece(Path(tmp) / "c.txt", Path(tmp) / "t", a.vocab)
            tok = Tokenizer(tok_path)
            model = from_scratch(micro_args(tok.vocab_size, a.heads, trunk_layers=a.trunk), a.seed).to(a.device)
            training = train_to_target(model, tok, a)
            if a.save:
                save_bundle(model, a.save, tokenizer=tok_path, source={"kind": "bench/speculative.py", **vars(a)})
    per_head = held_out_loss(model, MTPCollator(tok, max_length=1024), items(True), a.device)
    result = {
        "machine": machine(a.device),
        "model": f"{a.load or 'micro'}: dim {model.args.dim}, {model.args.n_trunk_layers} trunk + "
        f"{model.args.n_future_tokens} heads, vocab {tok.vocab_size}, {model.num_params() / 1e6:.1f} M params",
        "quality_bar": f"held-out head-1 loss <= {a.target_loss} nats/token "
        f"(uniform over the vocabulary: {math.log(tok.vocab_size):.2f})",
        "training": training,
        "held_out_loss_per_head": [round(x, 3) for x in per_head],
    }
    if not per_head[0] <= a.target_loss:
        result["refused"] = (
            f"held-out head-1 loss {per_head[0]:.3f} > target {a.target_loss}: the model is below the "
            "quality bar, so no speed-up is reported (train longer, or lower the bar knowingly)"
        )
        return result
    model.eval()
    prompts = [tok.encode(p, bos=True) for p in held_out_prompts()]
    result["decoding"] = decode_rounds(model, tok, prompts, a)
    return result


def markdown(r: dict) -> str:
    head = f"machine: {r['machine']}\nmodel: {r['model']}\nquality bar: {r['quality_bar']}\n"
    steps = r["training"]["steps"]
    loss = r["held_out_loss_per_head"]
    if "refused" in r:
        return head + f"REFUSED after {steps} steps (held-out loss per head {loss}): {r['refused']}"
    d = r["decoding"]
    return head + (
        "\n| train steps | held-out loss per head | prompts | new tokens | acceptance | tokens / forward | "
        "greedy tok/s | speculative tok/s | speed-up |\n|---|---|---|---|---|---|---|---|---|\n"
        f"| {steps} | {loss} | {d['prompts']} | {d['new_tokens']} | {d['acceptance_rate']} | "
        f"{d['tokens_per_forward']} | {fmt(d['greedy_tokens_per_s'])} | {fmt(d['speculative_tokens_per_s'])} | "
        f"**{fmt(d['speedup'])}** |"
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target-loss", type=float, default=3.3, help="held-out head-1 loss to train to (nats/token)")
    ap.add_argument("--max-steps", type=int, default=600)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=20, help="linear warm-up steps, then constant LR")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--trunk", type=int, default=16, help="trunk blocks (Meta's 7B_1T_4 has 29 for its 4 heads)")
    ap.add_argument("--vocab", type=int, default=1024, help="pieces of the tokenizer trained on the training split")
    ap.add_argument("--save", help="save the trained model as a bundle here (to re-measure with --load)")
    ap.add_argument("--load", help="skip training: measure this bundle (made with --save, or any MTP bundle)")
    ap.add_argument("--finetune-heads", type=int, default=0, help="with --load: first train heads 2..H for N steps")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the result here")
    a = ap.parse_args(argv)
    if a.max_steps < 0 or a.eval_every < 1 or a.finetune_heads < 0:
        ap.error("--max-steps and --finetune-heads must be >= 0 and --eval-every >= 1")
    if a.finetune_heads and not a.load:
        ap.error("--finetune-heads needs --load BUNDLE (an MTP bundle to fine-tune)")
    return a


def main(argv: list[str] | None = None) -> dict:
    a = parse(argv)
    result = run(a)
    return report(result, markdown(result), a.json)


if __name__ == "__main__":
    sys.exit(1 if "refused" in main() else 0)
