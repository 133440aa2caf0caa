#!/usr/bin/env python
"""Convert raw CodeContests into processed Alpaca JSONL + binary index + seed metadata.

    python scripts/setup_datasets.py --src RAW_DIR --dst storage/datasets_v2/codecontests \\
        --tokenizer storage/models_v2/micro-mtp/tokenizer/tokenizer.model [--languages 3] [--max-tokens 2048]
    python scripts/setup_datasets.py --from-hub --src deepmind/code_contests --dst ...   # needs network

RAW_DIR holds `{train,valid,test}*.parquet|.arrow|.jsonl` in the Hugging Face schema. Writes
`DST/processed/{split}.jsonl`, `{split}.index.npy`, `{split}_metadata.json` and `manifest.json`,
streaming (one problem in memory at a time), and prints per-split stats as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from wmtp_lightning.data.codecontests import SPLITS, ConvertConfig, convert_split, iter_raw, write_manifest
from wmtp_lightning.io import write_json
from wmtp_lightning.models.tokenizer import Tokenizer


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", required=True, help="raw folder, or a hub dataset id with --from-hub")
    ap.add_argument("--dst", required=True, help="dataset root; output goes to DST/processed")
    ap.add_argument("--tokenizer", required=True, help="SentencePiece model used for the length filter")
    ap.add_argument("--languages", default="3", help="comma-separated language codes (3=PYTHON3, 1=PYTHON2)")
    ap.add_argument("--max-tokens", type=int, default=2048, help="drop when BOS+prompt+solution+EOS exceeds this")
    ap.add_argument("--splits", default=",".join(SPLITS), help="splits to convert")
    ap.add_argument("--from-hub", action="store_true", help="stream --src from the Hugging Face hub")
    args = ap.parse_args(argv)
    cfg = ConvertConfig(languages=tuple(int(x) for x in args.languages.split(",")), max_tokens=args.max_tokens)
    tok = Tokenizer(args.tokenizer)
    out = Path(args.dst) / "processed"
    stats = {}
    for split in args.splits.split(","):
        with tqdm(desc=f"{split}: problems", unit="problem") as bar:
            s = convert_split(
                iter_raw(args.src, split, args.from_hub), out / f"{split}.jsonl", tok, cfg, split, progress=bar.update
            )
        stats[split] = s.as_dict()
    write_json(out / "stats.json", stats)
    write_manifest(
        out, {"tokenizer": str(args.tokenizer), "max_tokens": args.max_tokens, "languages": list(cfg.languages)}
    )
    print(json.dumps(stats, indent=1))
    return stats


if __name__ == "__main__":
    main()
