#!/usr/bin/env python
"""Build the binary index and the seed's `*_metadata.json` for processed JSONL splits.

    python scripts/extract_metadata.py storage/datasets_v2/codecontests/processed \\
        --tokenizer storage/models_v2/micro-mtp/tokenizer/tokenizer.model

Scans each `{split}.jsonl` once (streaming), records byte offset, byte length, is_correct,
difficulty, cf_rating and token length per line, and refreshes `manifest.json`. The JSONL files
themselves are never modified. A line that is not valid JSON or lacks the indexed fields stops
the scan with `file:line: field: expected ...`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from wmtp_lightning.data.codecontests import write_manifest
from wmtp_lightning.data.collate import token_length
from wmtp_lightning.data.index import IndexWriter, save_index, write_seed_metadata
from wmtp_lightning.data.schema import record_problems
from wmtp_lightning.models.tokenizer import Tokenizer


def index_jsonl(path: Path, tok: Tokenizer) -> int:
    writer = IndexWriter()
    offset = 0
    with open(path, "rb") as f, tqdm(desc=path.name, unit="line") as bar:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip(b"\n")
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise SystemExit(f"{path}:{lineno}: <line>: expected valid JSON ({err})") from err
            problems = record_problems(rec)
            if problems:
                raise SystemExit(f"{path}:{lineno}: " + "; ".join(f"{k}: expected {v}" for k, v in problems))
            writer.add_record(
                offset, len(line), token_length(tok, rec["instruction"], rec["input"], rec["output"]), rec
            )
            offset += len(raw)
            bar.update(1)
    arr = writer.array()
    save_index(arr, path)
    write_seed_metadata(arr, path)
    return len(arr)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("processed", help="folder with {split}.jsonl files")
    ap.add_argument("--tokenizer", required=True, help="SentencePiece model for token lengths")
    args = ap.parse_args(argv)
    folder = Path(args.processed)
    files = sorted(p for p in folder.glob("*.jsonl"))
    if not files:
        raise SystemExit(f"{folder}: no *.jsonl files")
    tok = Tokenizer(args.tokenizer)
    for path in files:
        print(f"{path}: {index_jsonl(path, tok)} lines indexed")
    write_manifest(folder, {"tokenizer": str(args.tokenizer)})


if __name__ == "__main__":
    main()
