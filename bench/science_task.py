"""The science check's synthetic task: addition facts, where correctness needs computation.

A problem asks for n true one-digit addition facts, one per line (`a+b=c`). A correct solution
is n lines with c = a + b; an incorrect one is a correct one with one c off by 1 or 2 (the kind
of slip a real program makes: an off-by-one). Every token of an incorrect solution (digits,
`+`, `=`, newline) also occurs in correct ones, so no single token gives a row away: telling
them apart means adding. The lines after the wrong one are right, like code written after a bug.

Problems are written in the raw `deepmind/code_contests` schema and converted by the project's
own pipeline (`scripts/setup_datasets.py`) with a SentencePiece tokenizer trained on them
(`models.tokenizer.train_sentencepiece`), so training reads them through the real
`WMTPDataModule`. Difficulty (CodeContests' enum) grows with n, so the default curriculum bins
(low 1–3, medium 4–7, high 8–11) are all populated.
"""

from __future__ import annotations

import json
import random
import re
import runpy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^(\d)\+(\d)=(\d+)$")
DIFFICULTY = {2: 1, 3: 3, 4: 5, 5: 7, 6: 9, 7: 11}  # lines per solution -> CodeContests difficulty
SPLIT_PROBLEMS = {"train": 1200, "valid": 160, "test": 160}


def description(n: int) -> str:
    return f"Write {n} lines a+b=c: a and b digits, c their sum."


def correct_solution(n: int, rng: random.Random) -> str:
    lines = []
    for _ in range(n):
        a, b = rng.randrange(10), rng.randrange(10)
        lines.append(f"{a}+{b}={a + b}")
    return "\n".join(lines) + "\n"


def incorrect_solution(n: int, rng: random.Random) -> str:
    """A correct solution with one sum off by 1 or 2 (staying within 0..18, the sums' own range)."""
    lines = correct_solution(n, rng).splitlines()
    i = rng.randrange(n)
    a, b, c = (int(x) for x in LINE.match(lines[i]).groups())
    wrong = rng.choice([c + k for k in (-2, -1, 1, 2) if 0 <= c + k <= 18])
    lines[i] = f"{a}+{b}={wrong}"
    return "\n".join(lines) + "\n"


def is_correct(solution: str, n: int) -> bool:
    """The task's rule: exactly n lines `a+b=c` (digits a, b) and every c equals a + b."""
    lines = solution.splitlines()
    if len(lines) != n or not solution.endswith("\n"):
        return False
    for line in lines:
        m = LINE.match(line)
        if m is None or int(m[1]) + int(m[2]) != int(m[3]):
            return False
    return True


def lines_of(problem: dict[str, Any]) -> int:
    return int(re.match(r"Write (\d+) ", problem["description"])[1])


def first_wrong_char(solution: str) -> int | None:
    """Index in `solution` of the first character where it departs from every correct solution.

    That is the first digit of the first wrong sum that differs from the true sum's digits (or
    the newline that ends the sum too early); None for a correct solution.
    """
    pos = 0
    for line in solution.splitlines(keepends=True):
        a, b, _ = LINE.match(line.rstrip("\n")).groups()
        truth = f"{a}+{b}={int(a) + int(b)}\n"
        if line != truth:
            return pos + next(i for i, (x, y) in enumerate(zip(line, truth)) if x != y)
        pos += len(line)
    return None


def make_problems(split: str, count: int, seed: int, correct: int = 2, incorrect: int = 2) -> list[dict[str, Any]]:
    """`count` raw problems (deepmind/code_contests schema), each with its own correct and incorrect solutions."""
    rng = random.Random(f"{seed}-{split}")
    no_tests = {"input": [], "output": []}
    rows = []
    for i in range(count):
        n = rng.choice(sorted(DIFFICULTY))
        rows.append(
            {
                "name": f"sums_{split}_{i:05d}",
                "description": description(n),
                "public_tests": no_tests,
                "private_tests": no_tests,
                "generated_tests": no_tests,
                "source": 2,
                "difficulty": DIFFICULTY[n],
                "solutions": {
                    "language": [3] * correct,
                    "solution": [correct_solution(n, rng) for _ in range(correct)],
                },
                "incorrect_solutions": {
                    "language": [3] * incorrect,
                    "solution": [incorrect_solution(n, rng) for _ in range(incorrect)],
                },
            }
        )
    return rows


VERDICT = {True: "ok", False: "wrong"}
MARK_RATES = (0.0, 1.0)  # per text, the chance that a line carries its running verdict


def judge_text(solution: str, rng: random.Random, rates: tuple[float, ...] = MARK_RATES) -> str:
    """`solution` as a judging base model's corpus writes it: lines that may carry a running verdict
    (`3+4=8 wrong`: every line so far right, `ok`, or not, `wrong`), then the verdict on the whole
    solution on its own line.

    Whether the lines carry one is drawn per text (each line with probability p, p drawn from
    `rates`): with the default `MARK_RATES` half the texts are the bare solution + its verdict (a
    stage-1 row is that text cut before the verdict), whose verdict needs every line checked at
    once; the other half check the running status line by line, which teaches the model to check a
    sum where it is written and to carry "still right so far" along the solution. (Other corpora
    tried at 2 trunk blocks: running verdicts on half the lines, the verdict alone, a line-by-line
    review after the solution; none taught the base to judge bare solutions in 3000-12000 steps,
    see docs/benchmarks.md.)
    """
    p = rng.choice(rates)
    out, ok = [], True
    for line in solution.splitlines():
        ok = ok and is_correct(line + "\n", 1)
        out.append(f"{line} {VERDICT[ok]}" if rng.random() < p else line)
    return "\n".join(out) + f"\n{VERDICT[ok]}\n"


def judged(row: dict[str, Any], rates: tuple[float, ...] = MARK_RATES) -> dict[str, Any]:
    """The problem as a *judging* base model's pre-training text sees it: every solution, correct or
    not, with verdicts (`judge_text`, marks drawn from the problem's name), all as plain text to
    imitate (`solutions`).

    The stand-in for what a real base model's corpus holds beside code: code followed by what was
    said about it (asserts, test logs, "this is wrong because"). Predicting the verdicts makes the
    trunk compute correctness; the stage-1 and stage-2 rows never contain a verdict, so no token
    gives a row away there.
    """
    rng = random.Random(f"judge-{row['name']}")
    texts = [judge_text(s, rng, rates) for s in row["solutions"]["solution"] + row["incorrect_solutions"]["solution"]]
    return {
        **row,
        "solutions": {"language": [3] * len(texts), "solution": texts},
        "incorrect_solutions": {"language": [], "solution": []},
    }


def write_raw(
    dst: Path, seed: int = 0, judge: bool = False, rates: tuple[float, ...] = MARK_RATES
) -> dict[str, list[dict[str, Any]]]:
    """Write `{train,valid,test}.jsonl` under `dst` (as `judged` texts with `judge`); returns the rows per split.

    The problems are the same with and without `judge` (same seed): only their text differs.
    """
    dst.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, count in SPLIT_PROBLEMS.items():
        rows = make_problems(split, count, seed)
        if judge:
            rows = [judged(r, rates) for r in rows]
        (dst / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        splits[split] = rows
    return splits


def corpus(rows: list[dict[str, Any]]) -> str:
    """The tokenizer's training text: every row as the model will see it (Alpaca prompt + solution)."""
    from wmtp_lightning.data.template import build_prompt

    return "".join(
        build_prompt(r["description"]) + s
        for r in rows
        for s in r["solutions"]["solution"] + r["incorrect_solutions"]["solution"]
    )


def build_dataset(
    root: Path, seed: int = 0, vocab_size: int = 512, rates: tuple[float, ...] = MARK_RATES
) -> dict[str, Path]:
    """Raw problems -> tokenizer -> processed datasets (the real conversion script). Returns the paths:
    `data` (the task: correct + incorrect solutions) and `judged` (the same problems as a judging base
    model's pre-training text, see `judged`), one tokenizer for both.

    Reuses a complete earlier build under `root` (the processed folders' manifests are written
    last, `build.json` after them) if it was made with the same seed, vocabulary size and
    running-verdict `rates`, and refuses any other (a stale corpus would pass for this one).
    """
    from wmtp_lightning.errors import BadInput
    from wmtp_lightning.io import read_json, write_json
    from wmtp_lightning.models.tokenizer import train_sentencepiece

    tok_prefix = root / "tokenizer" / "sums"
    paths = {"data": root / "data", "judged": root / "data_judged", "tokenizer": tok_prefix.with_suffix(".model")}
    stamp, want = root / "build.json", {"seed": seed, "vocab_size": vocab_size, "mark_rates": list(rates)}
    if (
        all((paths[k] / "processed" / "manifest.json").is_file() for k in ("data", "judged"))
        and paths["tokenizer"].is_file()
    ):
        have = read_json(stamp) if stamp.is_file() else "an unrecorded build"
        if have != want:
            raise BadInput(f"{root}: holds a dataset made with {have}, not {want}; use another folder")
        return paths
    splits = write_raw(root / "raw", seed)
    judged_splits = write_raw(root / "raw_judged", seed, judge=True, rates=rates)
    text = root / "tokenizer" / "corpus.txt"
    text.parent.mkdir(parents=True, exist_ok=True)
    text.write_text(corpus(splits["train"]) + corpus(judged_splits["train"]))
    train_sentencepiece(text, tok_prefix, vocab_size)
    setup = runpy.run_path(str(ROOT / "scripts" / "setup_datasets.py"), run_name="wmtp_script")["main"]
    for raw, key in (("raw", "data"), ("raw_judged", "judged")):
        setup(["--src", str(root / raw), "--dst", str(paths[key]), "--tokenizer", str(paths["tokenizer"])])
    write_json(stamp, want)
    return paths
