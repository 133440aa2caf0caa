#!/usr/bin/env python
"""Convert raw CodeContests into processed Alpaca JSONL + binary index + seed metadata.

    python scripts/setup_datasets.py --src RAW_DIR --dst storage/datasets_v2/codecontests \\
        --tokenizer storage/models_v2/micro-mtp/tokenizer/tokenizer.model [--languages 3] [--max-tokens 2048]
    python scripts/setup_datasets.py --from-hub --src deepmind/code_contests --dst ...   # needs network

RAW_DIR holds `{train,valid,test}*.parquet|.arrow|.jsonl` in the Hugging Face schema. Writes
`DST/processed/{split}.jsonl`, `{split}.index.npy`, `{split}_metadata.json`, `stats.json` and
`manifest.json`, streaming (one problem in memory at a time), and prints per-split stats as JSON.

Inputs are checked before any work (raw files of every split, tokenizer, a writable DST). The
splits are converted into `DST/processed.tmp/` and moved into place only when all succeeded, the
manifest last: a failed or killed run leaves the previous dataset as it was, or (killed while
moving) a folder without a manifest, which `wmtp fit` and `validate_datasets` refuse. A bad input
is one line on stderr (`file:line: field: expected ...`) and exit code 1; `--debug` shows tracebacks.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from tqdm import tqdm

from wmtp_lightning.data.codecontests import SPLITS, ConvertConfig, convert_split, iter_raw, raw_files
from wmtp_lightning.data.manifest import invalidate_manifest, write_manifest
from wmtp_lightning.errors import ArgumentParser, BadInput, script_main, writable_dir
from wmtp_lightning.io import write_json
from wmtp_lightning.models.tokenizer import Tokenizer


def int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def load_tokenizer(path: str) -> Tokenizer:
    try:
        return Tokenizer(path)
    except ValueError as err:  # not a SentencePiece model: the tokenizer's own one-line message
        raise BadInput(str(err)) from err


@script_main
def main(argv: list[str] | None = None) -> dict:
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--src", required=True, help="raw folder, or a hub dataset id with --from-hub")
    ap.add_argument("--dst", required=True, help="dataset root; output goes to DST/processed")
    ap.add_argument("--tokenizer", required=True, help="SentencePiece model of the policy (token counts)")
    ap.add_argument("--languages", type=int_list, default=(3,), help="language codes, e.g. 3 or 1,3 (3=PYTHON3)")
    ap.add_argument("--max-tokens", type=positive_int, default=2048, help="drop when BOS+prompt+solution+EOS exceeds")
    ap.add_argument("--splits", default=",".join(SPLITS), help="comma-separated splits to convert")
    ap.add_argument("--from-hub", action="store_true", help="stream --src from the Hugging Face hub")
    args = ap.parse_args(argv)
    splits = args.splits.split(",")
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        ap.error(f"--splits: unknown split(s) {unknown}; choose from {list(SPLITS)}")
    if not args.from_hub:
        for split in splits:
            raw_files(args.src, split)
    tok = load_tokenizer(args.tokenizer)
    cfg = ConvertConfig(languages=args.languages, max_tokens=args.max_tokens)
    out = writable_dir(Path(args.dst) / "processed")
    stage = out.with_name("processed.tmp")
    shutil.rmtree(stage, ignore_errors=True)  # what a killed run left
    stats = {}
    try:
        stage.mkdir()
        for split in splits:
            with tqdm(desc=f"{split}: problems", unit="problem", disable=None) as bar:
                s = convert_split(
                    iter_raw(args.src, split, args.from_hub), stage / f"{split}.jsonl", tok, cfg, split, bar.update
                )
            stats[split] = s.as_dict()
        write_json(stage / "stats.json", stats)
        invalidate_manifest(out)  # from here until the manifest is written, the folder is incomplete
        for path in sorted(stage.iterdir()):
            path.replace(out / path.name)
        write_manifest(
            out, {"tokenizer": str(args.tokenizer), "max_tokens": args.max_tokens, "languages": list(args.languages)}
        )
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    print(json.dumps(stats, indent=1))
    return stats


if __name__ == "__main__":
    main()
