#!/usr/bin/env python
"""Write the project's own small problem set in the raw deepmind/code_contests schema.

    python scripts/make_local_codecontests.py --dst storage/datasets_local_small/raw

The problems ship with the package (`wmtp_lightning/data/local_codecontests/*.jsonl`, loaded by
`wmtp_lightning/data/local_problems.py`); `setup_datasets.py` then converts this raw set exactly as
it converts the real dataset. The destination is checked writable first and each file is written
under a temporary name, then renamed; a bad destination is one line on stderr and exit code 1.
"""

from __future__ import annotations

from wmtp_lightning.data.local_problems import load_local_problems, write_raw_splits
from wmtp_lightning.errors import ArgumentParser, script_main, writable_dir


@script_main
def main(argv: list[str] | None = None) -> None:
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--dst", default="storage/datasets_local_small/raw", help="output folder")
    args = ap.parse_args(argv)
    paths = write_raw_splits(writable_dir(args.dst))
    print(f"wrote {len(load_local_problems())} problems: " + ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    main()
