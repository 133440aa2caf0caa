"""sample_and_verify: sampled solutions become a processed dataset whose `is_correct` is the sandbox's
verdict (checked by running every recorded solution again), difficulty follows the pass rate, the
dataset validates; bad inputs are one line."""

from __future__ import annotations

import json
import re

import pytest

import wmtp_lightning.evaluation.generation as generation
from tests.conftest import load_script, run_script
from wmtp_lightning.data.local_problems import load_local_problems
from wmtp_lightning.data.validate import validate_dataset
from wmtp_lightning.data.verified import difficulty_of, extract_code
from wmtp_lightning.evaluation.benchmarks import load_local
from wmtp_lightning.evaluation.sandbox import SandboxLimits
from wmtp_lightning.evaluation.scoring import judge

N_PROBLEMS, K = 5, 4


def records(root) -> list[dict]:
    return [
        json.loads(line)
        for split in ("train", "valid", "test")
        for line in (root / "processed" / f"{split}.jsonl").read_text().splitlines()
    ]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_difficulty_of_pass_rate_in_fifths():
    assert [difficulty_of(c, 5) for c in range(6)] == [5, 4, 3, 2, 1, 1]
    assert [difficulty_of(c, 4) for c in range(5)] == [5, 4, 3, 2, 1]  # 1/4 -> [0.2, 0.4): 4; 3/4 -> [0.6, 0.8): 2
    assert difficulty_of(4, 5) == 1 and difficulty_of(3, 5) == 2  # 0.8 and 0.6 exactly: no float rounding
    with pytest.raises(ValueError):
        difficulty_of(3, 2)


def test_extract_code_takes_the_first_block():
    assert (
        extract_code("Here:\n```python\ndef f():\n    return 1\n```\ntext\n```\nx\n```") == "def f():\n    return 1\n"
    )
    assert extract_code("```\nprint(1)") == "print(1)"  # unclosed: to the end
    assert extract_code("def f(): pass") == "def f(): pass"


def test_real_model_samples_are_recorded_with_their_verdicts(tmp_path, tiny_bundle):
    """The tiny random bundle samples through the real generation; every record's is_correct equals a
    fresh sandbox run of its output, and the dataset validates."""
    dst = tmp_path / "ds"
    argv = ["--model", str(tiny_bundle), "--benchmark", "local", "--limit", "3", "--k", "2"]
    assert run_script("sample_and_verify", [*argv, "--max-new-tokens", "12", "--dst", str(dst)]) == 0
    recs = records(dst)
    assert len(recs) == 3 * 2
    problems = {f"local/{p.task_id.split('/', 1)[1]}": p for p in load_local("all")[:3]}
    for r in recs:
        name = r["task_id"].rsplit("_", 2)[0]
        assert judge(problems[name], r["output"], _limits())[0] == r["is_correct"]
    assert validate_dataset(dst / "processed") == []


def _limits() -> SandboxLimits:
    return SandboxLimits(timeout_s=10)


def test_verdicts_and_difficulty_come_from_execution(tmp_path, tiny_bundle, monkeypatch, capsys):
    """A scripted policy answers problem i with i correct and K - i plausibly wrong solutions (the
    local set's own), in shuffled order: is_correct must be each program's verdict, the difficulty
    that of the pass rate, the split by problem; a fresh sandbox run agrees with every record."""
    raw = {f"local/{r['name']}": r for r in load_local_problems("all")}
    problems = load_local("all")[:N_PROBLEMS]
    answers: dict[str, list[tuple[str, bool]]] = {}
    for i, p in enumerate(problems):
        row = raw[p.task_id]
        good, bad = row["solutions"]["solution"], row["incorrect_solutions"]["solution"]
        mix = [(good[j % len(good)], True) for j in range(i % (K + 1))]
        mix += [(bad[j % len(bad)], False) for j in range(K - len(mix))]
        answers[p.prompt("alpaca")] = mix[::-1] if i % 2 else mix

    def scripted(model, tok, prompts, cfg):
        assert cfg.n_samples == K and cfg.temperature > 0
        return [[generation.Generation(code, [1, 2], "eos") for code, _ in answers[p]] for p in prompts]

    monkeypatch.setattr(generation, "generate", scripted)
    dst = tmp_path / "ds"
    argv = ["--model", str(tiny_bundle), "--benchmark", "local", "--limit", str(N_PROBLEMS), "--k", str(K)]
    stats = run_script_stats(["--dst", str(dst), "--valid-fraction", "0.4", *argv])
    recs = records(dst)
    assert len(recs) == N_PROBLEMS * K
    by_problem = {p.task_id: p for p in problems}
    expected = {
        p.task_id: dict((code, ok) for code, ok in answers[p.prompt("alpaca")]) for p in problems
    }  # code -> label (the local set's labels are themselves checked in the sandbox by test_local_problems)
    splits = {}
    for r in recs:
        name = r["task_id"].rsplit("_", 2)[0]
        assert r["is_correct"] == expected[name][r["output"]], r["task_id"]
        assert judge(by_problem[name], r["output"], _limits())[0] == r["is_correct"]
        n_ok = sum(ok for _, ok in answers[by_problem[name].prompt("alpaca")])
        assert r["metadata"]["difficulty"] == difficulty_of(n_ok, K)
        assert r["metadata"]["source"] == "sampled/local" and r["metadata"]["has_tests"]
        splits.setdefault(name, set()).add(r["task_id"])
    assert {n_ok for n_ok in (s["correct"] for s in stats["sampling"]["per_problem"])} == set(range(N_PROBLEMS))
    in_valid = [p["task_id"] for p in stats["sampling"]["per_problem"] if p["split"] == "valid"]
    assert len(in_valid) == 2 and stats["valid"]["kept"] == 2 * K  # problems, not samples, are split
    assert validate_dataset(dst / "processed") == []
    manifest = json.loads((dst / "processed" / "manifest.json").read_text())
    assert manifest["sampled_by"]["k"] == K and manifest["tokenizer"].endswith("tokenizer.model")
    assert not (dst / "processed.tmp").exists()


def run_script_stats(argv):
    return load_script("sample_and_verify")["main"](argv)


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["--model", "{tmp}/nope"], r"nope: model bundle not found"),
        (["--benchmark", "mbpp"], r"--benchmark mbpp needs --problems FILE"),
        (["--benchmark", "mbpp", "--problems", "{tmp}/missing.jsonl"], r"missing.jsonl: problems file not found"),
        (["--benchmark", "mbpp", "--problems", "{tmp}/bad.jsonl"], r"bad.jsonl:2: invalid JSON"),
        (["--benchmark", "mbpp", "--problems", "{tmp}/fields.jsonl"], r"fields.jsonl:1: missing field\(s\)"),
        (["--benchmark", "mbpp", "--problems", "{tmp}/bad.jsonl", "--task-ids", "a-b"], r"--task-ids: expected"),
        (["--k", "0"], r"--k, --batch-size"),
        (["--valid-fraction", "0.6", "--test-fraction", "0.5"], r"must leave problems for train"),
        (["--benchmark", "local", "--limit", "0"], r"no problems selected"),
    ],
)
def test_bad_input_is_one_line(tmp_path, tiny_bundle, capsys, argv, pattern):
    (tmp_path / "bad.jsonl").write_text('{"task_id": 601, "text": "x", "code": "", "test_list": []}\n{oops\n')
    (tmp_path / "fields.jsonl").write_text('{"task_id": 601}\n')
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    full = ["--model", str(tiny_bundle), "--dst", str(tmp_path / "out"), *argv]
    if argv[:1] == ["--model"]:
        full = ["--dst", str(tmp_path / "out"), *argv]
    assert run_script("sample_and_verify", full) != 0
    assert re.search(pattern, one_error_line(capsys))
    assert not (tmp_path / "out" / "processed" / "manifest.json").exists()
