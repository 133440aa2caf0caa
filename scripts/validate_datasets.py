#!/usr/bin/env python
"""Validate a processed dataset: schema of every line, manifest sha256, index <-> JSONL, token limits.

    python scripts/validate_datasets.py storage/datasets_v2/codecontests [--max-tokens 2048]

Prints every problem on stdout as `file:line: field: what was expected` (or `path: what is wrong`),
at most one per line, then a summary on stderr, and exits 1 if there is any. It never crashes on
what it validates (corrupt or old-format `.npy`, a malformed manifest, truncated or binary files
are problems like any other); a bad command line is one line on stderr, exit code 2.
"""

from __future__ import annotations

import sys

from wmtp_lightning.data.manifest import processed_dir
from wmtp_lightning.data.validate import validate_dataset
from wmtp_lightning.errors import ArgumentParser, script_main


@script_main
def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("dir", help="dataset root (with processed/) or the processed folder")
    ap.add_argument("--max-tokens", type=int, default=2048)
    ap.add_argument("--splits", default="train,valid,test")
    ap.add_argument("--no-manifest", action="store_true", help="skip the sha256 manifest check")
    args = ap.parse_args(argv)
    folder = processed_dir(args.dir)
    problems = validate_dataset(folder, tuple(args.splits.split(",")), args.max_tokens, not args.no_manifest)
    for p in problems:
        print(p)
    print(f"{folder}: {'OK' if not problems else f'{len(problems)} problem(s)'}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
