"""Raw CodeContests (HF `deepmind/code_contests` schema) -> processed Alpaca JSONL + index.

Streams problem by problem: raw rows are read in small batches from parquet / arrow / jsonl
files (or the hub), every kept solution becomes one processed line that is written at once, and
the index row is recorded from the bytes just written. No split is ever held in memory.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmtp_lightning.data.collate import token_length
from wmtp_lightning.data.index import IndexWriter, save_index, write_seed_metadata
from wmtp_lightning.data.schema import LANGUAGES, MAX_DIFFICULTY, SOURCES
from wmtp_lightning.io import sha256_file, write_json
from wmtp_lightning.models.tokenizer import Tokenizer

SPLITS = ("train", "valid", "test")
RAW_REQUIRED = ("name", "description", "public_tests", "solutions", "incorrect_solutions", "difficulty")
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


def _iter_file(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (where, row) from one raw file, a few rows in memory at a time."""
    if path.suffix in (".jsonl", ".json"):
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield f"{path}:{lineno}", json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{lineno}: invalid JSON ({err.msg})") from err
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        row = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=32):
            for rec in batch.to_pylist():
                row += 1
                yield f"{path}:row {row}", rec
    else:  # .arrow: the IPC stream files `datasets` writes
        import pyarrow as pa

        row = 0
        with pa.memory_map(str(path)) as source:
            reader = pa.ipc.open_stream(source)
            for batch in reader:
                for rec in batch.to_pylist():
                    row += 1
                    yield f"{path}:row {row}", rec


def iter_raw(src: str | Path, split: str, from_hub: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """Raw problems of `split` from local files under `src`, or from the hub (streaming) if asked."""
    if from_hub:
        import datasets

        hub_split = {"valid": "valid", "train": "train", "test": "test"}[split]
        for i, rec in enumerate(datasets.load_dataset(str(src), split=hub_split, streaming=True)):
            yield f"{src}[{hub_split}] row {i + 1}", rec
        return
    files = find_raw_files(Path(src), split)
    if not files:
        raise FileNotFoundError(f"{src}: no raw files for split {split!r} (expected {split}*.parquet|.arrow|.jsonl)")
    for path in files:
        yield from _iter_file(path)


def _check_raw(where: str, p: dict[str, Any]) -> None:
    missing = [k for k in RAW_REQUIRED if k not in p]
    if missing:
        raise ValueError(f"{where}: raw problem lacks field(s) {missing}; expected the deepmind/code_contests schema")
    for key in ("solutions", "incorrect_solutions"):
        s = p[key]
        if (
            not isinstance(s, dict)
            or not {"language", "solution"} <= set(s)
            or len(s["language"]) != len(s["solution"])
        ):
            raise ValueError(f"{where}: {key}: expected {{'language': [...], 'solution': [...]}} of equal length")
    if not isinstance(p["difficulty"], int) or not 0 <= p["difficulty"] <= MAX_DIFFICULTY:
        raise ValueError(f"{where}: difficulty: expected an enum value 0..{MAX_DIFFICULTY}, got {p['difficulty']!r}")


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


def convert_split(
    raw: Iterator[tuple[str, dict[str, Any]]],
    out_jsonl: Path,
    tokenizer: Tokenizer,
    cfg: ConvertConfig,
    split: str,
    progress: Callable[[int], None] | None = None,
) -> SplitStats:
    """Write one processed split and its index + seed metadata; returns the split's stats."""
    stats = SplitStats(split)
    index = IndexWriter()
    out_jsonl.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_jsonl.with_name(out_jsonl.name + ".tmp")
    with open(tmp, "wb") as f:
        offset = 0
        for where, problem in raw:
            _check_raw(where, problem)
            stats.problems += 1
            for rec, reason in problem_records(problem, cfg):
                if rec is None:
                    stats.dropped[reason] += 1
                    continue
                n_tokens = token_length(tokenizer, rec["instruction"], rec["input"], rec["output"])
                if n_tokens > cfg.max_tokens:
                    stats.dropped["too_long"] += 1
                    continue
                line = json.dumps(rec, ensure_ascii=False).encode("utf-8")
                f.write(line + b"\n")
                index.add_record(offset, len(line), n_tokens, rec)
                offset += len(line) + 1
                stats.kept += 1
                stats.correct += rec["is_correct"]
                stats.incorrect += not rec["is_correct"]
                stats.difficulty[rec["metadata"]["difficulty"]] += 1
            if progress:
                progress(1)
    tmp.replace(out_jsonl)
    arr = index.array()
    save_index(arr, out_jsonl)
    write_seed_metadata(arr, out_jsonl)
    return stats


def write_manifest(processed: Path, extra: dict[str, Any] | None = None) -> Path:
    """sha256 and size of every data file, checked by `validate_datasets`."""
    files = {
        p.name: {"sha256": sha256_file(p), "size": p.stat().st_size}
        for p in sorted(processed.iterdir())
        if p.is_file() and p.name != "manifest.json" and not p.name.endswith(".tmp")
    }
    path = processed / "manifest.json"
    write_json(path, {"format_version": 1, "files": files, **(extra or {})})
    return path
