#!/usr/bin/env python
"""Memory of one MTP training step: H = 4 heads (plain and `sequential_heads`) vs H = 1, same trunk.

Headline: the step's own increase, i.e. the peak during one training step (forward, loss,
backward, AdamW) minus the memory just before it. The step measured is the second one: after
the first, gradients and AdamW's moments exist as they do for the rest of a run, so "before"
holds the model and the optimizer state, and the increase is what the step itself needs
(activations, logits or their chunks, gradients). Each measurement runs in a fresh process;
configurations alternate in rotated rounds; min / median / max over rounds.

On CUDA: `memory_allocated` before, `max_memory_allocated` after `reset_peak_memory_stats`. On
CPU: resident memory before, and the kernel's high-water mark (VmHWM, reset through
/proc/self/clear_refs just before the step) after; glibc is told to return every freed block of
64 KiB or more to the system (MALLOC_MMAP_THRESHOLD_), so the RSS follows live memory rather
than the allocator's cache. The whole-process peak (which includes ~0.4 GB of imported
libraries on CPU) is reported beside it.

Target (DESIGN §8): H = 4 with sequential heads <= 1.15 x H = 1.

    python bench/mtp_memory.py                        # CPU, vocab 32000, dim 256, 2 trunk blocks, 1 x 1024 tokens
    python bench/mtp_memory.py --device cuda --dtype bfloat16 --dim 2048 --trunk 21 --heads 32 --kv-heads 4 \\
        --ffn 5632 --seq 2048 --batch 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from rounds import fmt, per_round, report, spread

CONFIGS = [(1, False), (1, True), (4, False), (4, True)]
ROOT = Path(__file__).resolve().parents[1]


def one(H: int, sequential: bool, a: argparse.Namespace) -> dict:
    """Measure one configuration in this process (a fresh one: see `main`)."""
    import gc

    import torch

    from wmtp_lightning.models import ModelArgs, Transformer
    from wmtp_lightning.weighting import IGNORE_INDEX, mtp_targets, weighted_mtp_loss

    cuda = torch.device(a.device).type == "cuda"
    torch.manual_seed(0)
    args = ModelArgs(
        dim=a.dim,
        n_layers=a.trunk + H,
        n_heads=a.heads or a.dim // 64,
        n_kv_heads=a.kv_heads,
        vocab_size=a.vocab,
        multiple_of=64,
        ffn_hidden_dim=a.ffn,
        max_seq_len=a.seq,
        n_future_tokens=H,
    )
    with torch.device(a.device):
        model = Transformer(args).to(getattr(torch, a.dtype))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    x = torch.randint(0, a.vocab, (a.batch, a.seq), device=a.device)
    y = x.clone()
    y[:, : a.seq // 4] = IGNORE_INDEX  # a prompt
    valid = mtp_targets(y, H) != IGNORE_INDEX

    def step() -> None:
        out = model(x, targets=y, sequential_heads=sequential)
        weighted_mtp_loss(out.ce, valid)[0].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # gradients and optimizer state come into being
    gc.collect()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _status_kb("VmRSS") * 1024
    step()
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = _status_kb("VmHWM") * 1024
    return {
        "H": H,
        "sequential_heads": sequential,
        "params": model.num_params(),
        "before_mb": before / 2**20,
        "peak_mb": peak / 2**20,
        "increase_mb": (peak - before) / 2**20,
    }


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} (the CPU measurement needs Linux)")


def run_one(H: int, sequential: bool, argv: list[str]) -> dict:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    res = subprocess.run(
        [sys.executable, __file__, *argv, "--one", str(H), str(int(sequential))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    if res.returncode:
        raise RuntimeError(f"H={H} sequential={sequential} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def summarise(rows: list[dict]) -> dict:
    """Per-configuration spreads and the per-round ratios against both H = 1 rows."""
    by = {(H, s): [r for r in rows if (r["H"], r["sequential_heads"]) == (H, s)] for H, s in CONFIGS}
    out = {}
    for (H, s), rs in by.items():
        key = f"H{H}{'_seq' if s else ''}"
        out[key] = {
            "params_m": round(rs[0]["params"] / 1e6, 2),
            "increase_mb": spread([r["increase_mb"] for r in rs], 1),
            "peak_mb": spread([r["peak_mb"] for r in rs], 1),
            "before_mb": spread([r["before_mb"] for r in rs], 1),
        }
        for ref in ((1, False), (1, True)):
            ref_key = f"H1{'_seq' if ref[1] else ''}"
            inc = per_round([r["increase_mb"] for r in rs], [r["increase_mb"] for r in by[ref]])
            pk = per_round([r["peak_mb"] for r in rs], [r["peak_mb"] for r in by[ref]])
            out[key][f"increase_over_{ref_key}"] = spread(inc)
            out[key][f"peak_over_{ref_key}"] = spread(pk)
    return out


def markdown(result: dict) -> str:
    s = result["summary"]
    lines = [
        f"machine: {result['machine']} | {result['shape']} | {result['rounds']} rounds",
        "",
        "| H | sequential_heads | params | step increase MB | increase / H=1 | increase / H=1 seq | "
        "process peak MB | peak / H=1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for H, seq in CONFIGS:
        r = s[f"H{H}{'_seq' if seq else ''}"]
        lines.append(
            f"| {H} | {'yes' if seq else 'no'} | {r['params_m']} M | {fmt(r['increase_mb'])} | "
            f"{fmt(r['increase_over_H1'])} | {fmt(r['increase_over_H1_seq'])} | {fmt(r['peak_mb'])} | "
            f"{fmt(r['peak_over_H1'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--trunk", type=int, default=2, help="trunk blocks")
    ap.add_argument("--heads", type=int, default=None, help="attention heads (default dim / 64)")
    ap.add_argument("--kv-heads", type=int, default=None)
    ap.add_argument("--ffn", type=int, default=None, help="FFN width (default: Meta's rule)")
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="also write the result here")
    ap.add_argument("--one", nargs=2, metavar=("H", "SEQUENTIAL"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(one(int(a.one[0]), a.one[1] == "1", a)))
        return {}
    from rounds import machine

    child = [f"--{k.replace('_', '-')}={v}" for k, v in vars(a).items() if k not in ("one", "rounds", "json") and v]
    rows = []
    for r in range(a.rounds):
        for H, seq in CONFIGS[r % len(CONFIGS) :] + CONFIGS[: r % len(CONFIGS)]:
            rows.append(run_one(H, seq, child))
    result = {
        "machine": machine(a.device),
        "shape": f"{a.dtype}, vocab {a.vocab}, dim {a.dim}, {a.trunk} trunk blocks, batch {a.batch} x {a.seq} "
        "tokens (first quarter prompt)",
        "rounds": a.rounds,
        "rows": rows,
        "summary": summarise(rows),
    }
    return report(result, markdown(result), a.json)


if __name__ == "__main__":
    main()
