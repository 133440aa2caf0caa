#!/usr/bin/env python
"""Export MLflow runs (params, metric histories as CSV, config, plots, exported model) to a folder.

    python scripts/export_mlflow_artifacts.py --run-id RUN [--tracking-uri URI] --out exports/
    python scripts/export_mlflow_artifacts.py --experiment wmtp [--name RUN_NAME] [--tag key=value] --out exports/

The tracking URI defaults to MLFLOW_TRACKING_URI (environment or .env), then the local store
under storage/. Each run lands in `<out>/<run name>-<id8>/` (params.json, run.json,
metrics/*.csv, artifacts/{config.yaml,plots,model,...}, EXPORT_COMPLETE).
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from wmtp_lightning.errors import ArgumentParser, UsageError, script_main, writable_dir
from wmtp_lightning.tracking import client_for, export_run, find_runs, resolve_tracking_uri


@script_main
def main(argv: list[str] | None = None) -> list[Path]:
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--tracking-uri")
    ap.add_argument("--run-id")
    ap.add_argument("--experiment")
    ap.add_argument("--name", help="only runs with this run name")
    ap.add_argument("--tag", action="append", default=[], help="key=value filter (repeatable)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    bad = [t for t in a.tag if "=" not in t]
    if bad:
        raise UsageError(f"--tag expects key=value, got {bad[0]!r}")
    tags = dict(t.split("=", 1) for t in a.tag)
    out_dir = writable_dir(a.out)  # checked before anything is downloaded
    client = client_for(resolve_tracking_uri(a.tracking_uri))
    runs = find_runs(client, a.run_id, a.experiment, a.name, tags)
    out = [export_run(client, run, out_dir) for run in tqdm(runs, desc="export", unit="run")]
    for p in out:
        print(p)
    return out


if __name__ == "__main__":
    main()
