"""The science miniature's task and probe helpers, by hand: verdicts, the judged text, sum digits,
and what the bench refuses to reuse."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch


class Draws:
    """An rng stand-in: `choice` picks the given mark rate, `random` replays the given draws."""

    def __init__(self, rate: float, draws: list[float]):
        self.rate, self.draws = rate, iter(draws)

    def choice(self, options):
        assert self.rate in options
        return self.rate

    def random(self) -> float:
        return next(self.draws)


def test_judged_text_marks_drawn_lines_with_the_running_verdict_then_the_whole_one(bench):
    task = bench("science_task")
    wrong = "3+4=7\n5+9=13\n1+1=2\n"
    # every line drawn: ok until the wrong sum, wrong from it on, even on a right line
    assert task.judge_text(wrong, Draws(1.0, [0.0] * 3)) == "3+4=7 ok\n5+9=13 wrong\n1+1=2 wrong\nwrong\n"
    # the wrong line not drawn (a draw of 1.0 never is): the next mark must still say wrong
    assert task.judge_text(wrong, Draws(1.0, [1.0, 1.0, 0.1])) == "3+4=7\n5+9=13\n1+1=2 wrong\nwrong\n"
    right = "0+0=0\n9+9=18\n"
    assert task.judge_text(right, Draws(0.0, [0.0, 0.0])) == right + "ok\n"  # rate 0: the bare solution
    assert task.judge_text(right, Draws(1.0, [0.0, 0.0])) == "0+0=0 ok\n9+9=18 ok\nok\n"


def test_judged_problems_keep_every_solution_as_text_to_imitate(bench):
    task = bench("science_task")
    rows = task.make_problems("train", 40, seed=3)
    bare = 0
    for row in rows:
        out = task.judged(row)
        assert out == task.judged(row)  # the marks are drawn from the problem's name: reproducible
        n = task.lines_of(row)
        texts = out["solutions"]["solution"]
        assert out["incorrect_solutions"]["solution"] == [] and len(texts) == 4
        originals = row["solutions"]["solution"] + row["incorrect_solutions"]["solution"]
        for text, solution in zip(texts, originals):
            *lines, verdict = text.splitlines()
            assert verdict == ("ok" if task.is_correct(solution, n) else "wrong")
            unmarked = [line.split(" ")[0] for line in lines]
            assert "\n".join(unmarked) + "\n" == solution  # the marks are all that was added
            for i, line in enumerate(lines):
                if " " in line:
                    assert line.split(" ")[1] == (
                        "ok" if task.is_correct("".join(x + "\n" for x in unmarked[: i + 1]), i + 1) else "wrong"
                    )
            bare += text == solution + verdict + "\n"  # a stage-1 row, then its verdict
        assert [t.splitlines()[-1] for t in texts] == ["ok", "ok", "wrong", "wrong"]
    assert 50 < bare < 110  # about half of the 160 texts carry no running verdict


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


def complete_build(root, stamp=None):
    """The files whose presence makes `build_dataset` reuse a folder, empty."""
    for key in ("data", "data_judged"):
        (root / key / "processed").mkdir(parents=True)
        (root / key / "processed" / "manifest.json").write_text("{}")
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "sums.model").write_bytes(b"")
    if stamp is not None:
        (root / "build.json").write_text(stamp)


def test_a_dataset_built_with_other_running_verdicts_is_refused_not_reused(bench, tmp_path):
    task = bench("science_task")
    complete_build(tmp_path / "old")  # made before builds were recorded
    with pytest.raises(ValueError, match="an unrecorded build"):
        task.build_dataset(tmp_path / "old")
    complete_build(tmp_path / "other", '{"seed": 0, "vocab_size": 512, "mark_rates": [0.0, 0.5]}\n')
    with pytest.raises(ValueError, match=r"0\.5"):
        task.build_dataset(tmp_path / "other")
    complete_build(tmp_path / "same", '{"seed": 0, "vocab_size": 512, "mark_rates": [0.0, 1.0]}\n')
    assert task.build_dataset(tmp_path / "same")["judged"] == tmp_path / "same" / "data_judged"


def test_a_base_pre_trained_at_another_scale_is_refused_not_reused(bench, tmp_path):
    check = bench("science_check")
    sc = check.Scale()
    made = {k: v for k, v in dataclasses.asdict(sc).items() if k not in check.NOT_PRETRAIN}
    record = {"val_ce_head1": 0.7, "scale": {**made, "mark_rates": list(sc.mark_rates), "seed": 0}}
    (tmp_path / "pretrain.json").write_text(json.dumps(record))
    assert check.pretrain({}, tmp_path, sc, 0)[1] == 0.7
    assert check.pretrain({}, tmp_path, dataclasses.replace(sc, stage1_steps=5), 0)[1] == 0.7  # not pre-training's
    for other in (dataclasses.replace(sc, trunk=2), dataclasses.replace(sc, pretrain_steps=10)):
        with pytest.raises(ValueError, match="use another --out"):
            check.pretrain({}, tmp_path, other, 0)
    with pytest.raises(ValueError, match="use another --out"):
        check.pretrain({}, tmp_path, sc, 1)  # another seed


def test_bad_input_to_the_science_bench_is_one_line(bench, tmp_path, capsys):
    check = bench("science_check")
    with pytest.raises(SystemExit) as exit_:
        check.main(["--mark-rates", "0,2"])
    assert exit_.value.code == 2 and "expected chances in [0, 1]" in capsys.readouterr().err
    complete_build(tmp_path, '{"seed": 0, "vocab_size": 512, "mark_rates": [0.0, 0.5]}\n')
    with pytest.raises(SystemExit) as exit_:
        check.main(["--out", str(tmp_path), "--seeds", "1"])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and err.count("\n") == 1 and "use another folder" in err, err
