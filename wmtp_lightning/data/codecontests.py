"""Raw CodeContests (HF `deepmind/code_contests` schema) -> processed Alpaca JSONL + index.

Streams problem by problem: raw rows are read in small batches from parquet / arrow / jsonl
files (or the hub), every kept solution becomes one processed line that is written at once, and
the index row is recorded from the bytes just written and the collator's own tokenization
(`tokenize_example`: prompt and response token counts). No split is ever held in memory.

Every raw row is checked before use; a bad one stops the conversion with one line
(`file:line: field: expected ...`) and leaves no output that looks complete.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmtp_lightning.data.collate import tokenize_example
from wmtp_lightning.data.index import IndexWriter, index_path, metadata_path, save_index, write_seed_metadata
from wmtp_lightning.data.schema import LANGUAGES, MAX_DIFFICULTY, SOURCES, is_unicode
from wmtp_lightning.errors import BadInput, MissingInput
from wmtp_lightning.models.tokenizer import Tokenizer

SPLITS = ("train", "valid", "test")
RAW_REQUIRED = ("name", "description", "public_tests", "solutions", "incorrect_solutions", "difficulty")
TEST_GROUPS = ("public_tests", "private_tests", "generated_tests")
RAW_EXTS = (".parquet", ".arrow", ".jsonl", ".json")


@dataclass(frozen=True)
class ConvertConfig:
    """Args:
    languages: solution language codes to keep (3 = PYTHON3, 1 = PYTHON 2).
    max_tokens: drop a solution when BOS + prompt + solution + EOS exceeds this many tokens.
    max_examples: public test examples shown in the `input` field.
    """

    languages: tuple[int, ...] = (3,)
    max_tokens: int = 2048
    max_examples: int = 2


@dataclass
class SplitStats:
    split: str
    problems: int = 0
    kept: int = 0
    correct: int = 0
    incorrect: int = 0
    dropped: Counter = field(default_factory=Counter)
    difficulty: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "problems": self.problems,
            "kept": self.kept,
            "correct": self.correct,
            "incorrect": self.incorrect,
            "dropped": dict(self.dropped),
            "difficulty_hist": {str(k): v for k, v in sorted(self.difficulty.items())},
        }


def find_raw_files(src: Path, split: str) -> list[Path]:
    """Files of one split under `src`: `{split}.jsonl`, `{split}-00000-of-00039.parquet`, `data/...`."""
    files = [
        p
        for p in sorted(src.rglob(f"{split}*"))
        if p.suffix in RAW_EXTS and p.is_file() and (p.stem == split or p.stem[len(split)] in "-_.")
    ]
    return files


def _iter_file(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield (where, row) from one raw file, a few rows in memory at a time."""
    if path.suffix in (".jsonl", ".json"):
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                where = f"{path}:{lineno}"
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise BadInput(f"{where}: <line>: expected UTF-8 text ({err.reason} at byte {err.start})") from err
                if not line.strip():
                    continue
                try:
                    yield where, json.loads(line)
                except json.JSONDecodeError as err:
                    raise BadInput(
                        f"{where}: <line>: expected a JSON object ({err.msg} at column {err.colno})"
                    ) from err
        return
    import pyarrow as pa

    kind = "parquet" if path.suffix == ".parquet" else "Arrow IPC stream"
    row = 0
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            batches = pq.ParquetFile(path).iter_batches(batch_size=32)
            for batch in batches:
                for rec in batch.to_pylist():
                    row += 1
                    yield f"{path}:row {row}", rec
        else:  # .arrow: the IPC stream files `datasets` writes
            with pa.memory_map(str(path)) as source:
                for batch in pa.ipc.open_stream(source):
                    for rec in batch.to_pylist():
                        row += 1
                        yield f"{path}:row {row}", rec
    except (pa.ArrowException, OSError) as err:
        where = f"{path}:row {row + 1}" if row else str(path)
        raise BadInput(f"{where}: not a readable {kind} file ({err})") from err


def iter_raw(src: str | Path, split: str, from_hub: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """Raw problems of `split` from local files under `src`, or from the hub (streaming) if asked."""
    if from_hub:
        import datasets

        hub_split = {"valid": "valid", "train": "train", "test": "test"}[split]
        for i, rec in enumerate(datasets.load_dataset(str(src), split=hub_split, streaming=True)):
            yield f"{src}[{hub_split}] row {i + 1}", rec
        return
    for path in raw_files(src, split):
        yield from _iter_file(path)


def raw_files(src: str | Path, split: str) -> list[Path]:
    """The raw files of `split`, or one line saying why there are none (checked before any work)."""
    src = Path(src)
    if not src.exists():
        raise MissingInput(f"{src}: raw folder not found")
    if not src.is_dir():
        raise BadInput(f"{src}: expected a folder of raw files, got a file")
    files = find_raw_files(src, split)
    if not files:
        raise MissingInput(f"{src}: no raw files for split {split!r} (expected {split}*.parquet|.arrow|.jsonl)")
    return files


def _is_text(x: Any) -> bool:
    return isinstance(x, str) and is_unicode(x)


def raw_problems(p: Any) -> list[tuple[str, str]]:
    """Every schema problem of one raw problem, as (field, problem)."""
    if not isinstance(p, dict):
        return [("<row>", f"expected a JSON object (the deepmind/code_contests schema), got {type(p).__name__}")]
    problems = [(k, "missing (deepmind/code_contests schema)") for k in RAW_REQUIRED if k not in p]
    for key in ("name", "description"):
        if key in p and (not _is_text(p[key]) or not p[key].strip()):
            problems.append((key, f"expected a non-empty UTF-8 string, got {type(p[key]).__name__}"))
    d = p.get("difficulty")
    if "difficulty" in p and (not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= MAX_DIFFICULTY):
        problems.append(("difficulty", f"expected an enum value 0..{MAX_DIFFICULTY}, got {d!r:.40}"))
    for key in ("source", "cf_rating"):
        v = p.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            problems.append((key, f"expected a non-negative int or null, got {v!r:.40}"))
    r = p.get("cf_rating")
    if isinstance(r, int) and not isinstance(r, bool) and (r > 25500 or r % 100):
        problems.append(("cf_rating", f"expected 0 or a multiple of 100 up to 25500, got {r}"))
    for key in ("solutions", "incorrect_solutions"):
        s = p.get(key)
        if key not in p:
            continue
        if (
            not isinstance(s, dict)
            or not isinstance(s.get("language"), list)
            or not isinstance(s.get("solution"), list)
            or len(s["language"]) != len(s["solution"])
        ):
            problems.append((key, "expected {'language': [...], 'solution': [...]} of equal length"))
        elif not all(isinstance(x, int) and not isinstance(x, bool) for x in s["language"]):
            problems.append((f"{key}.language", "expected a list of language codes (int)"))
        elif not all(isinstance(x, str) for x in s["solution"]):
            problems.append((f"{key}.solution", "expected a list of strings"))
    for key in TEST_GROUPS:
        t = p.get(key)
        if t is None:
            continue
        if (
            not isinstance(t, dict)
            or not all(isinstance(t.get(k, []), list) for k in ("input", "output"))
            or not all(_is_text(x) for k in ("input", "output") for x in t.get(k, []))
        ):
            problems.append((key, "expected {'input': [str, ...], 'output': [str, ...]} or null"))
    return problems


def _check_raw(where: str, p: Any) -> None:
    problems = raw_problems(p)
    if problems:
        field, what = problems[0]
        more = f" (and {len(problems) - 1} more problem(s) in this row)" if len(problems) > 1 else ""
        raise BadInput(f"{where}: {field}: {what}{more}")


def format_examples(public_tests: dict[str, list[str]] | None, max_examples: int) -> str:
    if not public_tests:
        return ""
    pairs = list(zip(public_tests.get("input", []), public_tests.get("output", [])))[:max_examples]
    return "\n\n".join(
        f"Example {i}\nInput:\n{inp.rstrip()}\nOutput:\n{out.rstrip()}" for i, (inp, out) in enumerate(pairs, 1)
    )


def _has_tests(p: dict[str, Any]) -> bool:
    return any((p.get(k) or {}).get("input") for k in ("public_tests", "private_tests", "generated_tests"))


def problem_records(p: dict[str, Any], cfg: ConvertConfig) -> Iterator[tuple[dict[str, Any] | None, str | None]]:
    """Yield (record, None) for each kept solution, or (None, reason) for each dropped one."""
    source = SOURCES.get(int(p.get("source", 0) or 0), "UNKNOWN_SOURCE").lower()
    meta = {
        "source": f"code_contests/{source}",
        "difficulty": int(p["difficulty"]),
        "has_tests": _has_tests(p),
        "cf_rating": int(p.get("cf_rating") or 0),
    }
    instruction = p["description"]
    examples = format_examples(p.get("public_tests"), cfg.max_examples)
    for key, correct in (("solutions", True), ("incorrect_solutions", False)):
        kind = "correct" if correct else "incorrect"
        for i, (lang, code) in enumerate(zip(p[key]["language"], p[key]["solution"])):
            if lang not in cfg.languages:
                yield None, f"language_{LANGUAGES.get(lang, lang)}"
            elif not code or not code.strip():
                yield None, "empty_solution"
            elif not _is_text(code):
                yield None, "invalid_unicode"
            else:
                yield (
                    {
                        "instruction": instruction,
                        "input": examples,
                        "output": code,
                        "task_id": f"{p['name']}_{kind}_{i}",
                        "is_correct": correct,
                        "metadata": dict(meta),
                    },
                    None,
                )


RecordsFn = Callable[[dict[str, Any], ConvertConfig], Iterator[tuple[dict[str, Any] | None, str | None]]]


def convert_split(
    raw: Iterator[tuple[str, dict[str, Any]]],
    out_jsonl: Path,
    tokenizer: Tokenizer,
    cfg: ConvertConfig,
    split: str,
    progress: Callable[[int], None] | None = None,
    records: RecordsFn = problem_records,
    check: Callable[[str, Any], None] = _check_raw,
) -> SplitStats:
    """Write one processed split and its index + seed metadata; returns the split's stats.

    `records` / `check` turn one raw problem into records and validate it first (default: the
    CodeContests schema); `scripts/sample_and_verify.py` passes its own for sampled solutions, so
    both share the writing, the token limit, the index and the stats.

    The JSONL is written under a temporary name and renamed when complete. On any failure the
    temporary is removed; a failure after the rename (writing the index) also removes the new
    JSONL and the split's old index and metadata, which no longer match it. (`setup_datasets`
    converts into a staging folder, so a failed run never touches the previous dataset.)
    """
    stats = SplitStats(split)
    index = IndexWriter()
    out_jsonl.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_jsonl.with_name(out_jsonl.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            offset = 0
            for where, problem in raw:
                check(where, problem)
                stats.problems += 1
                for rec, reason in records(problem, cfg):
                    if rec is None:
                        stats.dropped[reason] += 1
                        continue
                    ids, n_prompt, _ = tokenize_example(tokenizer, rec["instruction"], rec["input"], rec["output"])
                    if len(ids) > cfg.max_tokens:
                        stats.dropped["too_long"] += 1
                        continue
                    line = json.dumps(rec, ensure_ascii=False).encode("utf-8") + b"\n"
                    f.write(line)
                    index.add_record(offset, n_prompt, len(ids) - n_prompt, rec)
                    offset += len(line)
                    stats.kept += 1
                    stats.correct += rec["is_correct"]
                    stats.incorrect += not rec["is_correct"]
                    stats.difficulty[rec["metadata"]["difficulty"]] += 1
                if progress:
                    progress(1)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out_jsonl)
    try:
        arr = index.array()
        save_index(arr, out_jsonl)
        write_seed_metadata(arr, out_jsonl)
    except BaseException:
        for stale in (out_jsonl, index_path(out_jsonl), metadata_path(out_jsonl)):
            stale.unlink(missing_ok=True)
        raise
    return stats
