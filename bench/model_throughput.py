#!/usr/bin/env python
"""Training-step throughput of this project's transformer vs Hugging Face `LlamaForCausalLM`, same shape.

Each side runs its own training step: ours `model(x, targets=x)` -> per-prediction CE -> the
project's `weighted_mtp_loss` (what `MTPModule` does), HF `model(input_ids=x, labels=x).loss`
(its own shifted cross entropy), both with SDPA attention, then backward and the *same* AdamW
(fused where the device has the kernel, on both). Ours starts from HF's weights (q/k rows
un-permuted as the checkpoint converter does), and the two initial losses are checked equal, so
both compute the same model. Variants run in interleaved rounds (`rounds.py`); reported per
sequence length: step time and tokens/s (min / median / max), the per-round throughput ratio
ours / HF, MFU against the matmul peak this script measures first, and the cost of MTP itself:
H = 4 heads (plain and `sequential_heads`) vs H = 1, same trunk.

MFU counts model FLOPs per token as 6 × (parameters applied per token, the unembedding once per
head, the input embedding not at all) + 12 × blocks × dim × seq for attention (PaLM's convention,
no causal discount; recomputation is not counted).

Target (issue 13): ours >= 1.1 x HF at seq 512 and 1024.

    python bench/model_throughput.py                      # CPU: dim 512, 8 layers, vocab 32000, 2 x {512, 1024}
    python bench/model_throughput.py --device cuda --dtype bfloat16 --dim 2048 --layers 22 --heads 32 \\
        --kv-heads 4 --ffn 5632 --seq 2048
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import torch
from rounds import device_sync, fmt, fused_adamw_supported, interleaved, machine, matmul_peak, per_round, report, spread

from wmtp_lightning.models import ModelArgs, Transformer


def hf_twin(args: ModelArgs, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """HF `LlamaForCausalLM` with the shape of `args` (n_future_tokens must be 1), SDPA attention."""
    import transformers

    cfg = transformers.LlamaConfig(
        hidden_size=args.dim,
        num_hidden_layers=args.n_layers,
        num_attention_heads=args.n_heads,
        num_key_value_heads=args.kv_heads,
        intermediate_size=args.hidden_dim,
        vocab_size=args.vocab_size,
        max_position_embeddings=args.max_seq_len,
        rms_norm_eps=args.norm_eps,
        rope_theta=args.rope_theta,
        tie_word_embeddings=False,
        attn_implementation="sdpa",
    )
    with torch.device(device):
        return transformers.LlamaForCausalLM(cfg).to(dtype).train()


def ours_from_hf(hf: torch.nn.Module, args: ModelArgs) -> Transformer:
    """Our H = 1 transformer carrying HF's weights (the checkpoint converter's key map and q/k order)."""
    from wmtp_lightning.models.convert import hf_key_map, unpermute_qk

    p = next(hf.parameters())
    with torch.device("meta"):
        ours = Transformer(args)
    sd = {}
    for key, t in hf.state_dict().items():
        dst = hf_key_map(key)
        if dst is None:
            continue
        if dst.endswith("attention.wq.weight"):
            t = unpermute_qk(t, args.n_heads)
        elif dst.endswith("attention.wk.weight"):
            t = unpermute_qk(t, args.kv_heads)
        sd[dst] = t.clone()
    ours.load_state_dict(sd, assign=True)
    return ours.to(p.device, p.dtype).train()


def mtp_model(args: ModelArgs, H: int, device: str, dtype: torch.dtype) -> Transformer:
    """The same trunk (n_layers − 1 blocks) with H prediction-head blocks."""
    torch.manual_seed(0)
    with torch.device(device):
        return Transformer(replace(args, n_layers=args.n_layers - 1 + H, n_future_tokens=H)).to(dtype).train()


def flops_per_token(args: ModelArgs, seq: int) -> float:
    """Model FLOPs per trained token (forward + backward), PaLM convention (see the module docstring)."""
    d, hid, hd = args.dim, args.hidden_dim, args.head_dim
    block = d * args.n_heads * hd * 2 + d * args.kv_heads * hd * 2 + 3 * d * hid + 2 * d
    applied = args.n_layers * block + args.n_future_tokens * args.vocab_size * d
    return 6 * applied + 12 * args.n_layers * d * seq


def params(args: ModelArgs) -> int:
    with torch.device("meta"):
        return Transformer(args).num_params()


def make_optimizer(model: torch.nn.Module, fused: bool) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0, fused=fused)


def ours_loss(model: Transformer, x: torch.Tensor, sequential: bool) -> torch.Tensor:
    from wmtp_lightning.weighting import IGNORE_INDEX, mtp_targets, weighted_mtp_loss

    out = model(x, targets=x, sequential_heads=sequential)
    return weighted_mtp_loss(out.ce, mtp_targets(x, out.ce.shape[-1]) != IGNORE_INDEX)[0]


def train_step(model: torch.nn.Module, loss_fn, opt: torch.optim.Optimizer):
    def step() -> None:
        loss_fn(model).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def measure(
    args: ModelArgs,
    seq: int,
    batch: int,
    rounds: int,
    warmup: int,
    device: str,
    dtype: torch.dtype,
    peak: float,
    mtp_heads: int = 4,
    profile: bool = False,
    clock: str = "wall",
    variants: tuple[str, ...] = ("hf", "ours_h1", "ours_h4", "ours_h4_seq"),
) -> dict:
    """Step times of the chosen variants at one sequence length, with ratios and MFU."""
    args = replace(args, max_seq_len=max(args.max_seq_len, seq), n_future_tokens=1)
    torch.manual_seed(0)
    x = torch.randint(0, args.vocab_size, (batch, seq), device=device)
    models: dict[str, torch.nn.Module] = {}
    losses: dict[str, object] = {}
    flops: dict[str, float] = {}
    if "hf" in variants or "ours_h1" in variants:
        torch.manual_seed(0)
        hf = hf_twin(args, device, dtype)
        if "hf" in variants:
            models["hf"], losses["hf"], flops["hf"] = hf, (lambda m: m(input_ids=x, labels=x).loss), 0.0
        if "ours_h1" in variants:
            models["ours_h1"], losses["ours_h1"] = ours_from_hf(hf, args), (lambda m: ours_loss(m, x, False))
        if "hf" not in variants:
            del hf
    for name, sequential in (("ours_h4", False), ("ours_h4_seq", True)):
        if name in variants:
            models[name] = mtp_model(args, mtp_heads, device, dtype)
            losses[name] = lambda m, s=sequential: ours_loss(m, x, s)
    same_model = None
    if "hf" in models and "ours_h1" in models:
        with torch.no_grad():
            a, b = float(losses["hf"](models["hf"])), float(losses["ours_h1"](models["ours_h1"]))
        same_model = {"hf_initial_loss": round(a, 5), "ours_initial_loss": round(b, 5)}
        tol = 1e-3 if dtype == torch.float32 else 3e-2
        if abs(a - b) > tol * max(1.0, abs(a)):
            raise AssertionError(f"ours and HF disagree on the same weights: loss {b} vs {a}")
    fused = fused_adamw_supported([torch.zeros(1, device=device, dtype=dtype, requires_grad=True)])
    steps = {n: train_step(m, losses[n], make_optimizer(m, fused)) for n, m in models.items()}
    times = interleaved(steps, rounds, warmup, device_sync(device), clock)
    if profile:
        for name in ("hf", "ours_h1"):
            if name in steps:
                print(f"--- torch.profiler, one {name} step at seq {seq}: ops by self time")
                print(profile_table(steps[name], device))
    tokens = batch * seq
    rows = {}
    for name, t in times.items():
        a = (
            args
            if name in ("hf", "ours_h1")
            else replace(args, n_layers=args.n_layers - 1 + mtp_heads, n_future_tokens=mtp_heads)
        )
        per_tok = flops_per_token(a, seq)
        rows[name] = {
            "step_s": spread(t, 4),
            "tokens_per_s": spread([tokens / s for s in t], 1),
            "mfu_pct": spread([100 * per_tok * tokens / s / peak for s in t], 1),
        }
    out = {
        "seq": seq,
        "batch": batch,
        "rounds": rounds,
        "clock": clock,
        "optimizer": f"AdamW(lr=1e-4, fused={fused})",
        "rows": rows,
    }
    if same_model:
        out["same_model"] = same_model
    if "hf" in times and "ours_h1" in times:
        out["ours_h1_over_hf_throughput"] = spread(per_round(times["hf"], times["ours_h1"]))
    for name in ("ours_h4", "ours_h4_seq"):
        if name in times and "ours_h1" in times:
            out[f"{name}_over_h1_step_time"] = spread(per_round(times[name], times["ours_h1"]))
    del models, steps
    return out


def profile_table(step, device: str, rows: int = 18) -> str:
    """Where one step's time goes: torch.profiler's table of ops by self time."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.device(device).type == "cuda" else [])
    with profile(activities=acts) as prof:
        step()
        device_sync(device)()
    key = "self_cuda_time_total" if torch.device(device).type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=48)


def markdown(result: dict) -> str:
    lines = [
        f"machine: {result['machine']}",
        f"shape: {result['shape']}; matmul peak {result['matmul_peak_gflops']} GFLOP/s ({result['dtype']}); "
        f"clock: {result['runs'][0]['clock']}",
        "",
        "| seq | variant | step s | tokens/s | MFU % | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        for name, row in r["rows"].items():
            ratio = {
                "ours_h1": ("ours/HF throughput", r.get("ours_h1_over_hf_throughput")),
                "ours_h4": ("step / H=1", r.get("ours_h4_over_h1_step_time")),
                "ours_h4_seq": ("step / H=1", r.get("ours_h4_seq_over_h1_step_time")),
            }.get(name, ("", None))
            cell = f"{ratio[0]} {fmt(ratio[1])}" if ratio[1] else ""
            lines.append(
                f"| {r['seq']} | {name} | {fmt(row['step_s'])} | {fmt(row['tokens_per_s'])} | {fmt(row['mfu_pct'])} | {cell} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8, help="blocks of the H = 1 model (trunk + head 1)")
    ap.add_argument("--heads", type=int, default=8, help="attention heads")
    ap.add_argument("--kv-heads", type=int, default=None, help="key/value heads (GQA); default: --heads")
    ap.add_argument("--ffn", type=int, default=None, help="FFN width (default: Meta's rule for --dim)")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seq", default="512,1024", help="comma-separated sequence lengths")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--mtp-heads", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "cpu"],
        help="wall time, or process CPU time (with --threads 1: robust to foreign load)",
    )
    ap.add_argument("--profile", action="store_true", help="print a torch.profiler table of one HF and one ours step")
    ap.add_argument("--json", help="also write the result here")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    import transformers

    dtype = getattr(torch, a.dtype)
    seqs = [int(s) for s in a.seq.split(",")]
    args = ModelArgs(
        dim=a.dim,
        n_layers=a.layers,
        n_heads=a.heads,
        n_kv_heads=a.kv_heads,
        vocab_size=a.vocab,
        ffn_hidden_dim=a.ffn or ModelArgs(dim=a.dim).hidden_dim,
        max_seq_len=max(seqs),
    )
    peak = matmul_peak(a.device, dtype)
    result = {
        "machine": f"{machine(a.device)}, transformers {transformers.__version__}",
        "shape": f"dim {a.dim}, {a.layers} blocks, {a.heads}/{args.kv_heads} heads, ffn {args.hidden_dim}, "
        f"vocab {a.vocab}, batch {a.batch}; H=4 rows: {a.layers - 1} trunk + {a.mtp_heads} heads",
        "dtype": a.dtype,
        "params_m": round(params(args) / 1e6, 1),
        "matmul_peak_gflops": round(peak / 1e9, 1),
        "runs": [],
    }
    for seq in seqs:
        run = measure(args, seq, a.batch, a.rounds, a.warmup, a.device, dtype, peak, a.mtp_heads, a.profile, a.clock)
        print(f"seq {seq}: ours/HF throughput {fmt(run.get('ours_h1_over_hf_throughput', {}))}", file=sys.stderr)
        result["runs"].append(run)
    return report(result, markdown(result), a.json)


if __name__ == "__main__":
    main()
