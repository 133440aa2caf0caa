#!/usr/bin/env python
"""Real pass@1 of a model bundle (e.g. SmolLM2-135M) on HumanEval and MBPP, through the project's path.

The evaluation module's own decoding settings (`EvalMTP.generation_config`: greedy, the template's
stop sequences, --max-new-tokens), its batched KV-cached `generate` (grouped by stop set as
`EvalMTP.complete` does), and its sandbox verdicts (`judge_all`) and pass@k estimator. Per
benchmark it records pass@1, the wall time of generation and of execution, and generation
tokens/s (generated tokens, end token included, over generation wall time). Per-problem rows
(task_id, completion, passed, result, tokens, finish reason) go to --out as JSON lines as each
batch finishes, so a long run that is stopped keeps what it measured.

    python bench/real_passk.py --model storage/models_v2/smollm2-135m \\
        [--benchmarks humaneval,mbpp] [--template raw] [--max-new-tokens 384] [--limit N] \\
        [--json summary.json] [--out rows.jsonl]

HumanEval: `../shared/data/eval/humaneval/HumanEval.jsonl.gz` (164 problems); MBPP: the
sanitized test split, `../shared/data/eval/mbpp/sanitized-mbpp.json` task ids 11..510 (257).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from wmtp_lightning.evaluation.benchmarks import load_benchmark
from wmtp_lightning.evaluation.generation import generate
from wmtp_lightning.evaluation.module import EvalMTP
from wmtp_lightning.evaluation.passk import pass_at_k_of_rows
from wmtp_lightning.evaluation.scoring import judge_all

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "eval"
FILES = {"humaneval": DATA / "humaneval" / "HumanEval.jsonl.gz", "mbpp": DATA / "mbpp" / "sanitized-mbpp.json"}


def run_benchmark(ev: EvalMTP, name: str, a: argparse.Namespace, out) -> dict:
    problems = load_benchmark(name, FILES[name])[: a.limit]
    rows, n_tokens, t_gen, t_exec = [], 0, 0.0, 0.0
    for start in range(0, len(problems), a.batch_size):
        batch = problems[start : start + a.batch_size]
        groups: dict[tuple[str, ...], list[int]] = {}
        cfgs = [ev.generation_config(p) for p in batch]
        for i, cfg in enumerate(cfgs):
            groups.setdefault(cfg.stop, []).append(i)
        gens = {}
        t = time.perf_counter()
        for idx in groups.values():
            for i, g in zip(
                idx, generate(ev.model, ev.tokenizer, [batch[i].prompt(a.template) for i in idx], cfgs[idx[0]])
            ):
                gens[i] = g[0]
        t_gen += time.perf_counter() - t
        t = time.perf_counter()
        judged = judge_all(batch, [[gens[i].text] for i in range(len(batch))], ev.limits, a.workers)
        t_exec += time.perf_counter() - t
        for i, r in enumerate(judged):
            g = gens[i]
            r |= {"benchmark": name, "tokens": len(g.tokens) + (g.finish_reason == "eos"), "finish": g.finish_reason}
            n_tokens += r["tokens"]
            rows.append(r)
            if out:
                out.write(json.dumps(r) + "\n")
        if out:
            out.flush()
        done = sum(r["passed"] for r in rows)
        print(f"{name}: {len(rows)}/{len(problems)} problems, {done} passed, {n_tokens / t_gen:.1f} tok/s", flush=True)
    metrics, _ = pass_at_k_of_rows(rows, [1])
    return {
        "problems": len(rows),
        "pass@1": metrics["pass@1"],
        "generation_s": round(t_gen, 1),
        "execution_s": round(t_exec, 1),
        "generated_tokens": n_tokens,
        "tokens_per_s": round(n_tokens / t_gen, 2),
        "finish_reasons": {k: sum(r["finish"] == k for r in rows) for k in ("eos", "stop", "length")},
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="storage/models_v2/smollm2-135m")
    ap.add_argument("--benchmarks", default="humaneval,mbpp")
    ap.add_argument("--template", choices=["alpaca", "raw"], default="raw")
    ap.add_argument("--max-new-tokens", type=int, default=384)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--limit", type=int, help="only the first N problems of each benchmark")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--out", help="write per-problem rows here (JSON lines, as they finish)")
    a = ap.parse_args(argv)
    ev = EvalMTP(a.model, template=a.template, max_new_tokens=a.max_new_tokens, workers=a.workers)
    ev.configure_model()
    result: dict = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "args": vars(a),
    }
    out = open(a.out, "w", encoding="utf-8") if a.out else None  # noqa: SIM115 (rows are appended per batch)
    try:
        with torch.no_grad():
            for name in a.benchmarks.split(","):
                result[name] = run_benchmark(ev, name, a, out)
                print(json.dumps({name: result[name]}), flush=True)
    finally:
        if out:
            out.close()
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
