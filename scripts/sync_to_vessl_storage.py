#!/usr/bin/env python
"""Upload storage/models_v2 and storage/datasets_v2 to a VESSL volume, keeping the layout.

    python scripts/sync_to_vessl_storage.py --dest vessl:123456 [--folders models_v2,datasets_v2] [--dry-run]
    python scripts/sync_to_vessl_storage.py --dest /mnt/vessl-volume            # a mounted folder

A manifest (`.wmtp-manifest.json`: relative path, size, sha256) on the destination records what is
there; only new or changed files are uploaded, each verified after upload and recorded at once, so
an interrupted sync resumes where it stopped. `vessl:<id>` needs the optional SDK
(pip install 'wmtp_lightning[vessl]') and `vessl configure`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from wmtp_lightning.errors import ArgumentParser, script_main
from wmtp_lightning.ops.storage_sync import make_backend, sync


@script_main
def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--dest", required=True, help="vessl:<volume_id> or a destination folder")
    ap.add_argument("--storage", default="storage", help="local storage root")
    ap.add_argument("--folders", default="models_v2,datasets_v2", help="comma-separated folders under --storage")
    ap.add_argument("--dry-run", action="store_true", help="print the plan, upload nothing")
    a = ap.parse_args(argv)
    backend = make_backend(a.dest)
    folders = [f for f in a.folders.split(",") if f]
    with tqdm(unit="B", unit_scale=True, desc="upload", disable=a.dry_run) as bar:
        sync(Path(a.storage), backend, folders, dry_run=a.dry_run, progress=bar.update)
    return 0


if __name__ == "__main__":
    sys.exit(main())
