#!/usr/bin/env python
"""Score a samples file in the sandbox and print pass@k (compatible with human-eval's format).

    python scripts/score_samples.py --benchmark humaneval --problems HumanEval.jsonl.gz --samples s.jsonl \\
        [--k 1,10,100] [--workers 4] [--timeout 10]
    python scripts/score_samples.py --benchmark mbpp --problems mbpp.jsonl --samples s.jsonl

Samples are JSON lines with `task_id` and `completion` (HumanEval: the code after the prompt;
MBPP: the whole solution). Writes `SAMPLES_results.jsonl` (each sample plus `passed` and `result`)
and prints the pass@k figures as one JSON object on the last line. A k larger than the number of
samples of some problem is not estimated; it is listed under "skipped" with the reason.
"""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from wmtp_lightning.evaluation.benchmarks import load_benchmark
from wmtp_lightning.evaluation.sandbox import SandboxLimits
from wmtp_lightning.evaluation.scoring import read_samples, score


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", required=True, choices=["humaneval", "mbpp", "local"])
    ap.add_argument("--problems", help="problems file (HumanEval.jsonl.gz, mbpp.jsonl, sanitized-mbpp.json)")
    ap.add_argument("--samples", required=True)
    ap.add_argument("--k", default="1,10,100")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per program")
    ap.add_argument("--memory-mb", type=int, default=2048)
    ap.add_argument("--all-mbpp", action="store_true", help="MBPP: every task, not only the test split 11..510")
    a = ap.parse_args(argv)
    try:
        kw = {"task_ids": None} if a.all_mbpp else {}
        problems = {p.task_id: p for p in load_benchmark(a.benchmark, a.problems, **kw)}
        samples = read_samples(a.samples, problems)
        ks = [int(k) for k in a.k.split(",") if k.strip()]
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from err
    limits = SandboxLimits(timeout_s=a.timeout, memory_mb=a.memory_mb)
    with tqdm(total=len(samples), desc="executing", unit="sample", file=sys.stderr) as bar:
        results, metrics, skipped = score(problems, samples, ks, a.workers, limits, progress=bar.update)
    out_path = f"{a.samples}_results.jsonl"
    with open(out_path, "w", encoding="utf-8") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    summary = {
        **metrics,
        "n_samples": len(results),
        "n_problems": len({r["task_id"] for r in results}),
        **({"skipped": skipped} if skipped else {}),
    }
    print(f"wrote {out_path}", file=sys.stderr)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
