"""Raw CodeContests -> processed JSONL + index: filters, ids, stats, input formats, errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wmtp_lightning.data.codecontests import (
    ConvertConfig,
    convert_split,
    find_raw_files,
    iter_raw,
    problem_records,
    raw_problems,
)
from wmtp_lightning.data.collate import tokenize_example
from wmtp_lightning.data.index import INDEX_DTYPE, load_index, metadata_path
from wmtp_lightning.data.schema import record_problems
from wmtp_lightning.models.tokenizer import Tokenizer


def raw_problem(name="p1", difficulty=7, n_public=3):
    return {
        "name": name,
        "description": "Print the sum.\n\nInput\nTwo ints.\n\nOutput\nTheir sum.",
        "difficulty": difficulty,
        "source": 2,
        "cf_rating": 1200,
        "public_tests": {
            "input": [f"{i} 1\n" for i in range(n_public)],
            "output": [f"{i + 1}\n" for i in range(n_public)],
        },
        "private_tests": {"input": ["5 5\n"], "output": ["10\n"]},
        "generated_tests": {"input": [], "output": []},
        "solutions": {
            "language": [3, 2, 1, 3, 4],
            "solution": [
                "print(sum(map(int, input().split())))",
                "int main(){}",
                "print sum(map(int, raw_input().split()))",
                "  ",
                "class A {}",
            ],
        },
        "incorrect_solutions": {"language": [3, 3], "solution": ["print(0)", "x = 1\n" * 4000]},
    }


def test_problem_records_filters_and_ids():
    recs = list(problem_records(raw_problem(), ConvertConfig(languages=(3,))))
    kept = [r for r, _ in recs if r is not None]
    reasons = [why for r, why in recs if r is None]
    assert [r["task_id"] for r in kept] == ["p1_correct_0", "p1_incorrect_0", "p1_incorrect_1"]
    assert sorted(reasons) == ["empty_solution", "language_CPP", "language_JAVA", "language_PYTHON"]
    assert kept[0]["is_correct"] is True and kept[1]["is_correct"] is False
    assert kept[0]["metadata"] == {
        "source": "code_contests/codeforces",
        "difficulty": 7,
        "has_tests": True,
        "cf_rating": 1200,
    }
    assert kept[0]["input"].count("Example") == 2  # at most 2 public examples
    assert all(record_problems(r) == [] for r in kept)
    py2 = [r for r, _ in problem_records(raw_problem(), ConvertConfig(languages=(1, 3))) if r is not None]
    assert "p1_correct_2" in {r["task_id"] for r in py2}


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "arrow"])
def test_convert_split_all_input_formats(tmp_path, micro_tokenizer_path, fmt):
    rows = [raw_problem("a", 2), raw_problem("b", 9, n_public=1)]
    raw = tmp_path / "raw"
    raw.mkdir()
    if fmt == "jsonl":
        (raw / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), raw / "train-00000-of-00001.parquet")
    else:
        table = pa.Table.from_pylist(rows)
        with pa.OSFile(str(raw / "train.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
    assert len(find_raw_files(raw, "train")) == 1 and find_raw_files(raw, "test") == []
    out = tmp_path / "processed" / "train.jsonl"
    stats = convert_split(
        iter_raw(raw, "train"), out, Tokenizer(micro_tokenizer_path), ConvertConfig(max_tokens=2048), "train"
    )
    assert (stats.problems, stats.kept, stats.correct, stats.incorrect) == (2, 4, 2, 2)
    assert stats.dropped["too_long"] == 2 and stats.dropped["empty_solution"] == 2
    assert dict(stats.difficulty) == {2: 2, 9: 2}
    index = load_index(out)
    assert index.dtype == INDEX_DTYPE and index.dtype.itemsize == 15 and len(index) == 4
    data = out.read_bytes()
    ends = [*index["offset"][1:].tolist(), len(data)]  # lines are contiguous; the last ends the file
    tok = Tokenizer(micro_tokenizer_path)
    for row, end, line in zip(index, ends, data.splitlines()):
        assert data[row["offset"] : end] == line + b"\n"
        rec = json.loads(line)
        assert bool(row["is_correct"]) == rec["is_correct"] and row["difficulty"] == rec["metadata"]["difficulty"]
        ids, n_prompt, _ = tokenize_example(tok, rec["instruction"], rec["input"], rec["output"])
        assert (row["prompt_len"], row["response_len"]) == (n_prompt, len(ids) - n_prompt)  # the collator's counts
        assert row["rating"] == 12
    seed = json.loads(metadata_path(out).read_text())
    assert seed["stats"] == {"total": 4, "correct": 2, "incorrect": 2, "difficulty_dist": {"2": 2, "9": 2}}
    assert seed["metadata"][0] == {"is_correct": True, "difficulty": 2}


def test_raw_errors_name_the_row(tmp_path, micro_tokenizer_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    bad = raw_problem()
    del bad["solutions"]
    (raw / "train.jsonl").write_text(json.dumps(raw_problem()) + "\n" + json.dumps(bad) + "\n")
    tok = Tokenizer(micro_tokenizer_path)
    out = tmp_path / "o.jsonl"
    with pytest.raises(ValueError, match=r"train.jsonl:2: solutions: missing \(deepmind/code_contests schema\)$"):
        convert_split(iter_raw(raw, "train"), out, tok, ConvertConfig(), "train")
    (raw / "train.jsonl").write_text(json.dumps({**raw_problem(), "difficulty": 99}) + "\n")
    with pytest.raises(ValueError, match=r"train.jsonl:1: difficulty: expected an enum value 0..28, got 99"):
        convert_split(iter_raw(raw, "train"), out, tok, ConvertConfig(), "train")
    (raw / "train.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match=r"train.jsonl:1: <line>: expected a JSON object"):
        convert_split(iter_raw(raw, "train"), out, tok, ConvertConfig(), "train")
    (raw / "train.jsonl").write_bytes(json.dumps(raw_problem()).encode() + b"\n\xff\xfe\n")
    with pytest.raises(ValueError, match=r"train.jsonl:2: <line>: expected UTF-8 text"):
        convert_split(iter_raw(raw, "train"), out, tok, ConvertConfig(), "train")
    with pytest.raises(FileNotFoundError, match="no raw files for split 'valid'"):
        list(iter_raw(raw, "valid"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # no output, no temporary left


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda p: [p], "<row>: expected a JSON object"),
        (lambda p: {**p, "name": 3}, "name: expected a non-empty UTF-8 string, got int"),
        (lambda p: {**p, "description": "\ud800"}, "description: expected a non-empty UTF-8 string"),
        (lambda p: {**p, "difficulty": True}, "difficulty: expected an enum value"),
        (lambda p: {**p, "cf_rating": 1250}, "cf_rating: expected 0 or a multiple of 100"),
        (lambda p: {**p, "source": "codeforces"}, "source: expected a non-negative int or null"),
        (lambda p: {**p, "solutions": {"language": [3], "solution": []}}, "solutions: expected {'language'"),
        (lambda p: {**p, "solutions": {"language": ["3"], "solution": ["x"]}}, "solutions.language: expected"),
        (
            lambda p: {**p, "incorrect_solutions": {"language": [3], "solution": [None]}},
            "incorrect_solutions.solution: expected a list",
        ),
        (lambda p: {**p, "public_tests": []}, "public_tests: expected {'input'"),
        (lambda p: {**p, "private_tests": {"input": [1], "output": ["2"]}}, "private_tests: expected {'input'"),
    ],
)
def test_raw_schema_problems(mutate, expected):
    field, what = raw_problems(mutate(raw_problem()))[0]
    assert f"{field}: {what}".startswith(expected)


def test_unwritable_solution_text_is_dropped_and_counted():
    p = raw_problem()
    p["solutions"] = {"language": [3, 3], "solution": ["print('\ud800')", "print(1)"]}
    reasons = [why for _, why in problem_records(p, ConvertConfig())]
    assert reasons.count("invalid_unicode") == 1


def test_corrupt_parquet_names_the_file(tmp_path, micro_tokenizer_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    pq.write_table(pa.Table.from_pylist([raw_problem()]), raw / "train-00000-of-00001.parquet")
    path = raw / "train-00000-of-00001.parquet"
    path.write_bytes(path.read_bytes()[:-20])  # truncated: the footer is gone
    with pytest.raises(ValueError, match=r"train-00000-of-00001.parquet: not a readable parquet file"):
        list(iter_raw(raw, "train"))


def test_index_mismatch_is_detected(tmp_path, local_dataset):
    src = local_dataset / "processed" / "valid.jsonl"
    copy = tmp_path / "valid.jsonl"
    copy.write_bytes(src.read_bytes() + b'{"extra": 1}\n')
    np.save(tmp_path / "valid.index.npy", load_index(src, mmap=False))
    with pytest.raises(ValueError, match=r"valid.index.npy: does not match .*valid.jsonl \(the file has more lines"):
        load_index(copy)
    copy.write_bytes(src.read_bytes()[:-300])
    with pytest.raises(ValueError, match=r"valid.jsonl: the last line has no newline \(truncated\?\)"):
        load_index(copy)
