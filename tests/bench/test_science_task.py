"""The science miniature's task and probe helpers, by hand: verdicts, the judged text, sum digits."""

from __future__ import annotations

import random

import torch


def test_judged_text_is_the_solution_then_its_verdict_then_a_review(bench):
    task = bench("science_task")
    wrong = "3+4=7\n5+9=13\n"
    assert task.judge_text(wrong) == "3+4=7\n5+9=13\nwrong\n3+4=7 ok\n5+9=13 wrong\n"
    right = "0+0=0\n9+9=18\n"
    assert task.judge_text(right) == right + "ok\n0+0=0 ok\n9+9=18 ok\n"


def test_judged_problems_keep_every_solution_as_text_to_imitate(bench):
    task = bench("science_task")
    (row,) = task.make_problems("train", 1, seed=3)
    out = task.judged(row)
    n = task.lines_of(row)
    texts = out["solutions"]["solution"]
    assert out["incorrect_solutions"]["solution"] == [] and len(texts) == 4
    originals = row["solutions"]["solution"] + row["incorrect_solutions"]["solution"]
    for text, solution in zip(texts, originals):
        assert text.startswith(solution)  # a stage-1 row is the judged text cut before the verdict
        verdict = text[len(solution) :].split("\n")[0]
        assert verdict == ("ok" if task.is_correct(solution, n) else "wrong")
    assert [t[len(s) :].split("\n")[0] for t, s in zip(texts, originals)] == ["ok", "ok", "wrong", "wrong"]


def test_incorrect_solutions_differ_in_one_sum_and_the_first_wrong_char(bench):
    task = bench("science_task")
    rng = random.Random(0)
    for _ in range(50):
        bad = task.incorrect_solution(5, rng)
        assert not task.is_correct(bad, 5)
        i = task.first_wrong_char(bad)
        line_start = bad.rfind("\n", 0, i) + 1
        line = bad[line_start : bad.index("\n", line_start)]
        a, b, c = int(line[0]), int(line[2]), int(line[4:])
        assert c != a + b and 1 <= abs(c - a - b) <= 2  # i lies in the one wrong sum, off by 1 or 2
        truth = f"{a}+{b}={a + b}\n"
        assert bad[line_start:i] == truth[: i - line_start] and bad[i] != truth[i - line_start]


class Pieces:
    """A tokenizer stand-in: one character per id."""

    def __init__(self, text: str):
        self.text = text

    def piece_text(self, i: int) -> str:
        return self.text[i]


def test_in_sum_marks_the_digits_after_an_equals_sign_only(bench):
    probe = bench("science_probe")
    text = "3+4=7\n5+9=14\n"
    tok = Pieces(text)
    eq = text.index("=")  # the id of '=' in this stand-in is its first position
    ids = torch.tensor([text.index(c) for c in text])
    got = "".join(text[j] for j in range(len(text)) if probe.in_sum(tok, ids, j, eq))
    assert got == "714"
