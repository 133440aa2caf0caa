#!/usr/bin/env python
"""Build the binary index and the seed's `*_metadata.json` for processed JSONL splits.

    python scripts/extract_metadata.py storage/datasets_v2/codecontests/processed \\
        --tokenizer storage/models_v2/micro-mtp/tokenizer/tokenizer.model

Scans each `{split}.jsonl` once (streaming) and records per line its byte offset, is_correct,
difficulty, cf_rating and its prompt / response token counts as the collator tokenizes it (so the
tokenizer must be the model's), then rewrites `manifest.json`. The JSONL files are never modified.
The manifest is removed first and written last, so an interrupted run leaves a folder that
`wmtp fit` refuses. A bad line stops the scan with one line, `file:line: field: expected ...`,
and exit code 1; `--debug` shows tracebacks.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from wmtp_lightning.data.collate import tokenize_example
from wmtp_lightning.data.index import IndexWriter, save_index, write_seed_metadata
from wmtp_lightning.data.manifest import invalidate_manifest, manifest_extras, write_manifest
from wmtp_lightning.data.schema import line_problem
from wmtp_lightning.errors import ArgumentParser, BadInput, MissingInput, script_main, writable_dir
from wmtp_lightning.models.tokenizer import Tokenizer


def index_jsonl(path: Path, tok: Tokenizer) -> int:
    """Index one split; returns its line count."""
    writer = IndexWriter()
    offset = 0
    with open(path, "rb") as f, tqdm(desc=path.name, unit="line", disable=None) as bar:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            if not raw.endswith(b"\n"):
                raise BadInput(f"{where}: <line>: expected a newline at its end (a truncated file?)")
            rec, problem = line_problem(raw)
            if problem:
                raise BadInput(f"{where}: {problem}")
            ids, n_prompt, _ = tokenize_example(tok, rec["instruction"], rec["input"], rec["output"])
            writer.add_record(offset, n_prompt, len(ids) - n_prompt, rec)
            offset += len(raw)
            bar.update(1)
    arr = writer.array()
    save_index(arr, path)
    write_seed_metadata(arr, path)
    return len(arr)


@script_main
def main(argv: list[str] | None = None) -> None:
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("processed", help="folder with {split}.jsonl files")
    ap.add_argument("--tokenizer", required=True, help="the model's SentencePiece model (token counts)")
    args = ap.parse_args(argv)
    folder = Path(args.processed)
    if not folder.is_dir():
        raise MissingInput(f"{folder}: folder not found")
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise MissingInput(f"{folder}: no *.jsonl files to index")
    try:
        tok = Tokenizer(args.tokenizer)
    except ValueError as err:  # not a SentencePiece model: the tokenizer's own one-line message
        raise BadInput(str(err)) from err
    writable_dir(folder)
    extras = manifest_extras(folder)
    invalidate_manifest(folder)
    for path in files:
        print(f"{path}: {index_jsonl(path, tok)} lines indexed")
    write_manifest(folder, {**extras, "tokenizer": str(args.tokenizer)})


if __name__ == "__main__":
    main()
