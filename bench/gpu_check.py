#!/usr/bin/env python
"""GPU check for a first GPU machine: one script, <= 8 minutes on one H100/H200/A100-class GPU.

Parts (each in its own process with its own time limit, so a crash, an out-of-memory error or a
hang in one is recorded with its error and the others still run):

  env                 device, versions, the bf16 matmul peak (an 8192³ loop) that MFU is measured against
  throughput          (b) tokens/s and MFU of ours vs Hugging Face `LlamaForCausalLM` (SDPA), same
                      1B-class shape (TinyLlama's: dim 2048, 22 blocks, 32/4 heads, FFN 5632, vocab
                      32000), seq 2048, bf16, the same fused AdamW, interleaved rounds
  fit_fsdp            (a) `wmtp fit` in process (`wmtp_lightning.cli.main`) with configs/baseline.yaml
                      and an overlay: the 1B-class shape as 18 trunk + 4 heads (H = 4), seq 2048,
                      bf16-mixed, sequential heads, random init, synthetic data written and converted
                      by the project's pipeline; Lightning's FSDPStrategy on 1 device
  fit_model_parallel  (a) the same with Lightning's ModelParallelStrategy (FSDP2 `fully_shard`)
  memory              (c) CUDA peak of a training step, H = 4 sequential vs H = 1 (bench/mtp_memory.py)
  speculative         (d) self-speculative decoding speed-up on the GPU, identical output, on a
                      model trained to the quality bar (bench/speculative.py)
  mtp_cost            step time of H = 4 (plain, sequential) vs H = 1, same trunk

Writes OUT/gpu_check.json and OUT/gpu_check.md (each to a temporary name, renamed when complete;
a part's result is kept in OUT/parts/<part>.json). Nothing is downloaded: the tokenizer is
--tokenizer, else the LLaMA tokenizer in the shared data folder if present, else one trained here.

`--dry-run` runs the same parts on CPU with tiny shapes in float32 (FSDPStrategy is reported as
"needs a GPU"; the speculative quality bar is off, labelled so): `make test-slow` runs it.

    python bench/gpu_check.py --out storage/gpu_check            # on the GPU machine
    python bench/gpu_check.py --dry-run --out /tmp/gpu_check     # CPU, tiny shapes
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
# Part name -> time limit in seconds on a GPU (in the order they run; the important ones first).
PARTS = {
    "env": 60,
    "throughput": 120,
    "fit_fsdp": 120,
    "fit_model_parallel": 120,
    "memory": 90,
    "speculative": 120,
    "mtp_cost": 100,
}
SHAPE_1B = {"dim": 2048, "n_layers": 22, "n_heads": 32, "n_kv_heads": 4, "ffn_hidden_dim": 5632, "vocab_size": 32000}
SHAPE_TINY = {"dim": 64, "n_layers": 6, "n_heads": 4, "n_kv_heads": 2, "ffn_hidden_dim": 128, "vocab_size": 512}


def settings(dry: bool) -> dict[str, Any]:
    """Everything that differs between the GPU run and the CPU dry run."""
    if dry:
        return {
            "device": "cpu",
            "dtype": "float32",
            "precision": "32-true",
            "shape": SHAPE_TINY,
            "seq": 256,
            "batch": 2,
            "fit_steps": 4,
            "rounds": 2,
            "memory_rounds": 1,
        }
    return {
        "device": "cuda",
        "dtype": "bfloat16",
        "precision": "bf16-mixed",
        "shape": SHAPE_1B,
        "seq": 2048,
        "batch": 2,
        "fit_steps": 8,
        "rounds": 5,
        "memory_rounds": 1,
    }


# ----------------------------------------------------------------------------- parts (run in a child)


def part_env(s: dict, out: Path, a: argparse.Namespace) -> dict:
    import platform

    import torch
    from rounds import matmul_peak

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name() if s["device"] == "cuda" else platform.processor() or "cpu",
        "cpus": os.cpu_count(),
    }
    try:
        import lightning
        import transformers

        info["lightning"], info["transformers"] = lightning.__version__, transformers.__version__
    except ImportError as err:
        info["import_error"] = str(err)
    if s["device"] == "cuda":
        props = torch.cuda.get_device_properties(0)
        info["gpu_memory_gb"] = round(props.total_memory / 2**30, 1)
        info["sm_count"] = props.multi_processor_count
    dtype = getattr(torch, s["dtype"])
    info["matmul_peak_tflops"] = round(
        matmul_peak(s["device"], dtype, 8192 if s["device"] == "cuda" else 1024) / 1e12, 3
    )
    return info


def model_args(s: dict, n_future: int = 1):
    from wmtp_lightning.models import ModelArgs

    return ModelArgs(**s["shape"], max_seq_len=s["seq"], n_future_tokens=n_future)


def part_throughput(s: dict, out: Path, a: argparse.Namespace, variants=("hf", "ours_h1")) -> dict:
    import torch
    from model_throughput import measure
    from rounds import matmul_peak

    dtype = getattr(torch, s["dtype"])
    peak = matmul_peak(s["device"], dtype, 8192 if s["device"] == "cuda" else 1024)
    r = measure(model_args(s), s["seq"], s["batch"], s["rounds"], 2, s["device"], dtype, peak, variants=variants)
    r["matmul_peak_tflops"] = round(peak / 1e12, 3)
    return r


def part_mtp_cost(s: dict, out: Path, a: argparse.Namespace) -> dict:
    return part_throughput(s, out, a, variants=("ours_h1", "ours_h4", "ours_h4_seq"))


def part_memory(s: dict, out: Path, a: argparse.Namespace) -> dict:
    import mtp_memory

    sh = s["shape"]
    argv = [
        f"--device={s['device']}",
        f"--dtype={s['dtype']}",
        f"--vocab={sh['vocab_size']}",
        f"--dim={sh['dim']}",
        f"--trunk={sh['n_layers'] - 1}",
        f"--heads={sh['n_heads']}",
        f"--kv-heads={sh['n_kv_heads']}",
        f"--ffn={sh['ffn_hidden_dim']}",
        f"--seq={s['seq']}",
        f"--batch={s['batch']}",
        f"--rounds={s['memory_rounds']}",
    ]
    r = mtp_memory.main(argv)
    return {"shape": r["shape"], "summary": r["summary"]}


def part_speculative(s: dict, out: Path, a: argparse.Namespace) -> dict:
    import speculative

    argv = [f"--device={s['device']}"]
    if a.dry_run:  # tiny and untrained: exercises the code path only, so the quality bar is off
        argv += ["--target-loss=1e9", "--max-steps=0", "--trunk=1", "--new-tokens=16", "--rounds=1", "--vocab=512"]
    r = speculative.run(speculative.parse(argv))
    if a.dry_run:
        r["note"] = "dry run: untrained model, quality bar disabled; the speed-up means nothing"
    if "refused" in r:
        r["status"] = "refused"
    return r


def part_fit_fsdp(s: dict, out: Path, a: argparse.Namespace) -> dict:
    if s["device"] != "cuda":
        return {"status": "needs a GPU", "why": "Lightning's FSDPStrategy (FSDP1) refuses a CPU accelerator"}
    return fit(s, out, a, "fsdp")


def part_fit_model_parallel(s: dict, out: Path, a: argparse.Namespace) -> dict:
    return fit(s, out, a, "model_parallel")


def find_tokenizer(a: argparse.Namespace, work: Path) -> tuple[Path, str]:
    """--tokenizer, else the shared LLaMA tokenizer, else a small one trained on the synthetic corpus."""
    if a.tokenizer:
        return Path(a.tokenizer), "given"
    shared = Path(os.environ.get("WMTP_SHARED_DATA", ROOT.parent / "shared" / "data"))
    llama = shared / "tokenizer" / "llama" / "tokenizer.model"
    if llama.is_file() and not a.dry_run:
        return llama, "shared LLaMA tokenizer"
    from wmtp_lightning.models.tokenizer import train_sentencepiece

    path = work / "tokenizer" / "tokenizer.model"
    if not path.is_file():
        (work / "tokenizer").mkdir(parents=True, exist_ok=True)
        corpus = work / "tokenizer" / "corpus.txt"
        corpus.write_text("\n".join(solution(i, 400) for i in range(40)))
        train_sentencepiece(corpus, work / "tokenizer" / "tokenizer", 512)
    return path, "trained on the synthetic corpus (no LLaMA tokenizer found)"


def solution(seed: int, lines: int) -> str:
    """A deterministic, valid Python program of `lines` lines (synthetic training text)."""
    body = [f"v0 = {seed}"]
    for i in range(1, lines):
        body.append(f"v{i} = (v{i - 1} * {(7 * i + seed) % 97 + 2} + {i}) % {1_000_003 + seed}")
    body.append(f"print(v{lines - 1})")
    return "\n".join(body) + "\n"


def make_dataset(work: Path, tokenizer: Path, seq: int, problems: int) -> Path:
    """Synthetic CodeContests-style problems whose rows fill ~`seq` tokens, converted by the real pipeline."""
    from wmtp_lightning.data.codecontests import ConvertConfig, convert_split
    from wmtp_lightning.data.collate import tokenize_example
    from wmtp_lightning.data.manifest import write_manifest
    from wmtp_lightning.models.tokenizer import Tokenizer

    root = work / f"data_{seq}"
    if (root / "processed" / "manifest.json").is_file():
        return root
    tok = Tokenizer(tokenizer)
    description = "Compute the recurrence below and print its last value."

    def fits(lines: int) -> bool:
        return len(tokenize_example(tok, description, "", solution(0, lines))[0]) <= seq - 16

    if not fits(2):
        raise ValueError(f"seq {seq} is too short for a synthetic row with {tokenizer}")
    lo, hi = 2, 4 * seq  # lines of code: the largest count whose row still fits in seq tokens
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)

    def raw(i: int) -> dict:
        sols = [solution(i, lo), solution(i + 1000, lo)]
        return {
            "name": f"synthetic_{i}",
            "description": description,
            "public_tests": {"input": [], "output": []},
            "private_tests": {"input": [], "output": []},
            "generated_tests": {"input": [], "output": []},
            "source": 2,
            "difficulty": 1,
            "solutions": {"language": [3, 3], "solution": sols},
            "incorrect_solutions": {"language": [], "solution": []},
            "cf_rating": 800,
        }

    tmp = root.with_name(root.name + ".tmp")
    for split, n in (("train", problems), ("valid", 2)):
        rows = ((f"synthetic {split} {i}", raw(i + (0 if split == "train" else 10_000))) for i in range(n))
        convert_split(rows, tmp / "processed" / f"{split}.jsonl", tok, ConvertConfig(max_tokens=seq), split)
    write_manifest(tmp / "processed")
    tmp.replace(root)
    return root


def fit(s: dict, out: Path, a: argparse.Namespace, strategy: str) -> dict:
    """`wmtp fit --config configs/baseline.yaml --config <overlay>` in this process."""
    import statistics

    import yaml

    from wmtp_lightning.cli import main as wmtp_main

    work = out / "work"
    tokenizer, tok_source = find_tokenizer(a, work)
    from wmtp_lightning.models.tokenizer import Tokenizer

    vocab = Tokenizer(tokenizer).vocab_size
    data = make_dataset(work, tokenizer, s["seq"], problems=s["fit_steps"] * s["batch"])
    shape = {**s["shape"], "vocab_size": vocab, "max_seq_len": s["seq"], "n_future_tokens": 4}
    if strategy == "fsdp":
        strat = {
            "class_path": "lightning.pytorch.strategies.FSDPStrategy",
            "init_args": {
                "sharding_strategy": "FULL_SHARD",
                "auto_wrap_policy": ["wmtp_lightning.models.transformer.TransformerBlock"],
                "activation_checkpointing_policy": ["wmtp_lightning.models.transformer.TransformerBlock"],
            },
        }
    else:
        strat = {
            "class_path": "lightning.pytorch.strategies.ModelParallelStrategy",
            "init_args": {"data_parallel_size": 1, "tensor_parallel_size": 1},
        }
    overlay = {
        "trainer": {
            "accelerator": "gpu" if s["device"] == "cuda" else "cpu",
            "devices": 1,
            "precision": s["precision"],
            "strategy": strat,
            "max_steps": s["fit_steps"],
            "limit_val_batches": 0,
            "num_sanity_val_steps": 0,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(out / f"fit_{strategy}"),
            "callbacks": [{"class_path": "step_timer.StepTimer"}],
        },
        "model": {"init_args": {"model": None, "preset": "7B_1T_4", "model_overrides": shape}},
        "data": {
            "init_args": {
                "data_dir": str(data),
                "tokenizer": str(tokenizer),
                "n_samples": s["fit_steps"] * s["batch"],
                "val_samples": 2,
                "batch_size": s["batch"],
                "max_length": s["seq"],
                "pad_to_multiple_of": s["seq"],
                "num_workers": 0,
            }
        },
    }
    cfg = out / f"fit_{strategy}.yaml"
    cfg.write_text(yaml.safe_dump(overlay, sort_keys=False))
    cli = wmtp_main(["fit", "--config", str(ROOT / "configs" / "baseline.yaml"), "--config", str(cfg)])
    timer = next(cb for cb in cli.trainer.callbacks if type(cb).__name__ == "StepTimer")
    opt = cli.trainer.optimizers[0]
    if len(timer.seconds) != s["fit_steps"]:
        raise RuntimeError(f"{len(timer.seconds)} steps timed, expected {s['fit_steps']}")
    timed = timer.seconds[2:] or timer.seconds  # the first two include compilation / allocation
    tok_s = [t / sec for t, sec in zip(timer.tokens[2:] or timer.tokens, timed)]
    if not all(map(math.isfinite, timer.losses)):
        raise FloatingPointError(f"non-finite training loss: {timer.losses}")
    return {
        "strategy": strategy,
        "config": [str(ROOT / "configs" / "baseline.yaml"), str(cfg)],
        "tokenizer": f"{tokenizer} ({tok_source}, {vocab} pieces)",
        "params_m": round(cli.model.model.num_params() / 1e6, 1),
        "shape": shape,
        "optimizer": f"{type(opt).__name__}(fused={opt.defaults.get('fused')})",
        "steps": len(timer.seconds),
        "tokens_per_step": timer.tokens[0],
        "losses": [round(x, 4) for x in timer.losses],
        "step_s_median": round(statistics.median(timed), 4),
        "tokens_per_s_median": round(statistics.median(tok_s), 1),
        "peak_cuda_mb": None if timer.peak_cuda_mb is None else round(timer.peak_cuda_mb, 1),
    }


# ----------------------------------------------------------------------------- driver


def run_part(name: str, a: argparse.Namespace, limit: float) -> dict:
    """Run one part in a child process; its result, or what went wrong, as a dict with a status."""
    result_file = a.out / "parts" / f"{name}.json"
    result_file.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--part", name, "--out", str(a.out)]
    cmd += ["--dry-run"] * a.dry_run + (["--tokenizer", a.tokenizer] if a.tokenizer else [])
    t0 = time.monotonic()
    log = a.out / "parts" / f"{name}.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            return {"status": "error", "error": f"timed out after {limit:.0f} s", "seconds": round(limit, 1)}
    seconds = round(time.monotonic() - t0, 1)
    if result_file.is_file():
        return {**json.loads(result_file.read_text()), "seconds": seconds}
    tail = log.read_text(errors="replace").strip().splitlines()[-15:]
    return {"status": "error", "error": f"exit code {proc.returncode}: " + "\n".join(tail), "seconds": seconds}


def child(a: argparse.Namespace) -> None:
    """`--part NAME`: run it here and write parts/NAME.json (status ok, or the error and traceback)."""
    s = settings(a.dry_run)
    try:
        result = {"status": "ok", **globals()[f"part_{a.part}"](s, a.out, a)}
    except Exception as err:  # recorded, never fatal: the driver goes on with the next part
        result = {"status": "error", "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
    write_atomic(a.out / "parts" / f"{a.part}.json", json.dumps(result, indent=1, default=str))


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def markdown(report: dict) -> str:
    p = report["parts"]
    lines = [
        f"# GPU check{' (DRY RUN: CPU, tiny shapes — no GPU figure)' if report['dry_run'] else ''}",
        "",
        f"{report['started']}, {report['elapsed_s']} s; settings: {json.dumps(report['settings'])}",
        "",
        "| part | status | seconds | result |",
        "|---|---|---|---|",
    ]
    for name in PARTS:
        r = p.get(name, {"status": "not run"})
        lines.append(f"| {name} | {r['status']} | {r.get('seconds', '')} | {summary(name, r)} |")
    return "\n".join(lines) + "\n"


def summary(name: str, r: dict) -> str:
    """One cell of key figures (or the error's first line)."""
    if r["status"] == "error":
        return r["error"].splitlines()[0][:200] if r["error"] else "error"
    if r["status"] not in ("ok", "refused"):
        return r.get("why", "")
    try:
        if name == "env":
            return f"{r['device']}, torch {r['torch']}, matmul peak {r['matmul_peak_tflops']} TFLOP/s"
        if name in ("throughput", "mtp_cost"):
            rows = r["rows"]
            cells = [
                f"{k}: {rows[k]['tokens_per_s']['median']} tok/s, MFU {rows[k]['mfu_pct']['median']} %" for k in rows
            ]
            for key in ("ours_h1_over_hf_throughput", "ours_h4_over_h1_step_time", "ours_h4_seq_over_h1_step_time"):
                if key in r:
                    cells.append(f"{key} {r[key]['median']} ({r[key]['min']}–{r[key]['max']})")
            return "; ".join(cells)
        if name.startswith("fit_"):
            return (
                f"{r['params_m']} M params, {r['steps']} steps, {r['tokens_per_s_median']} tok/s, "
                f"loss {r['losses'][0]} → {r['losses'][-1]}, {r['optimizer']}, peak CUDA {r['peak_cuda_mb'] or 'n/a'} MB"
            )
        if name == "memory":
            h4 = r["summary"]["H4_seq"]
            return (
                f"H=4 seq step increase / H=1: {h4['increase_over_H1']['median']} "
                f"(/ H=1 seq {h4['increase_over_H1_seq']['median']}); peak / H=1 {h4['peak_over_H1']['median']}"
            )
        if name == "speculative":
            if "refused" in r:
                return "REFUSED: " + r["refused"]
            d = r["decoding"]
            return (
                f"speed-up {d['speedup']['median']} ({d['speedup']['min']}–{d['speedup']['max']}), "
                f"acceptance {d['acceptance_rate']}, identical {d['identical_to_greedy']}"
                + (f"; {r['note']}" if "note" in r else "")
            )
    except (KeyError, TypeError) as err:
        return f"(result incomplete: {err})"
    return ""


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "storage" / "gpu_check")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes, float32")
    ap.add_argument("--budget-s", type=float, default=480, help="stop starting parts past this (default 8 min)")
    ap.add_argument("--only", help="comma-separated parts to run (default: all)")
    ap.add_argument("--tokenizer", help="SentencePiece model for the fit parts")
    ap.add_argument("--part", choices=list(PARTS), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.out = a.out.resolve()
    (a.out / "parts").mkdir(parents=True, exist_ok=True)
    if a.part:
        child(a)
        return {}
    names = list(PARTS) if not a.only else [n.strip() for n in a.only.split(",")]
    unknown = sorted(set(names) - set(PARTS))
    if unknown:
        ap.error(f"--only: unknown part(s) {unknown}; expected some of {list(PARTS)}")
    t0 = time.monotonic()
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "dry_run": a.dry_run,
        "settings": settings(a.dry_run),
        "budget_s": a.budget_s,
        "parts": {},
    }
    for name in names:
        left = a.budget_s - (time.monotonic() - t0)
        limit = PARTS[name] * (3 if a.dry_run else 1)  # a loaded 2-core CPU is slower than a GPU
        if left < min(limit, 30):
            report["parts"][name] = {"status": "skipped", "why": f"time budget: {left:.0f} s left"}
            continue
        report["parts"][name] = run_part(name, a, min(limit, left))
        print(
            f"[gpu_check] {name}: {report['parts'][name]['status']} ({report['parts'][name]['seconds']} s)", flush=True
        )
    report["elapsed_s"] = round(time.monotonic() - t0, 1)
    write_atomic(a.out / "gpu_check.json", json.dumps(report, indent=1, default=str))
    md = markdown(report)
    write_atomic(a.out / "gpu_check.md", md)
    print(md)
    return report


if __name__ == "__main__":
    main()
