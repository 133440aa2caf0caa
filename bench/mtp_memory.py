#!/usr/bin/env python
"""Peak memory of one MTP training step: H = 1 vs H = 4 (plain and `sequential_heads`).

Each configuration runs in its own fresh process. On CUDA the figure is
`torch.cuda.max_memory_allocated`; on CPU it is the process's peak RSS (`ru_maxrss`), reported as
the whole peak and as the increase over the RSS just before the step (model and optimizer built).
Target (DESIGN §8): H = 4 with sequential heads <= 1.15 x H = 1.

    python bench/mtp_memory.py                       # CPU, vocab 32000, dim 256, 1 x 1024 tokens
    python bench/mtp_memory.py --device cuda --dim 1024 --seq 2048 --batch 2
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
from pathlib import Path

CONFIGS = [(1, False), (4, False), (4, True)]


def one(H: int, sequential: bool, a: argparse.Namespace) -> dict:
    import psutil
    import torch

    from wmtp_lightning.models import ModelArgs, Transformer
    from wmtp_lightning.weighting import weighted_mtp_loss

    torch.manual_seed(0)
    args = ModelArgs(
        dim=a.dim,
        n_layers=a.trunk + H,
        n_heads=a.dim // 64,
        vocab_size=a.vocab,
        multiple_of=64,
        max_seq_len=a.seq,
        n_future_tokens=H,
    )
    model = Transformer(args).to(a.device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(0, a.vocab, (a.batch, a.seq), device=a.device)
    y = x.clone()
    y[:, : a.seq // 4] = -100  # a prompt
    proc = psutil.Process()
    if a.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = proc.memory_info().rss
    out = model(x, targets=y, sequential_heads=sequential)
    valid = torch.stack(
        [torch.cat([y[:, k:], torch.full_like(y[:, :k], -100)], 1) != -100 for k in range(1, H + 1)], -1
    )
    loss, _ = weighted_mtp_loss(out.ce, valid)
    loss.backward()
    opt.step()
    if a.device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        hwm = [ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM:")]
        peak = int(hwm[0].split()[1]) * 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "H": H,
        "sequential_heads": sequential,
        "params": model.num_params(),
        "peak_mb": peak / 2**20,
        "step_increase_mb": (peak - before) / 2**20,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--trunk", type=int, default=2, help="trunk blocks")
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--one", nargs=2, metavar=("H", "SEQUENTIAL"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(one(int(a.one[0]), a.one[1] == "1", a)))
        return []
    base = [f"--{k}={v}" for k, v in vars(a).items() if k != "one"]
    rows = []
    for H, seq in CONFIGS:
        res = subprocess.run(
            [sys.executable, __file__, *base, "--one", str(H), str(int(seq))],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    ref = rows[0]
    for r in rows:
        r["peak_ratio_vs_H1"] = r["peak_mb"] / ref["peak_mb"]
        r["increase_ratio_vs_H1"] = r["step_increase_mb"] / ref["step_increase_mb"]
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} | device {a.device} | vocab {a.vocab} dim {a.dim} "
        f"trunk {a.trunk} | batch {a.batch} x {a.seq} tokens"
    )
    print("| H | sequential_heads | params | peak MB | step increase MB | peak / H=1 | increase / H=1 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['H']} | {r['sequential_heads']} | {r['params'] / 1e6:.1f} M | {r['peak_mb']:.0f} | "
            f"{r['step_increase_mb']:.0f} | {r['peak_ratio_vs_H1']:.2f} | {r['increase_ratio_vs_H1']:.2f} |"
        )
    print(json.dumps(rows))
    return rows


if __name__ == "__main__":
    main()
