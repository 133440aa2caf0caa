#!/usr/bin/env python
"""The local demo (`make demo`): everything on CPU, nothing downloaded.

1. write the project's own small CodeContests-style problem set (raw HF schema)
2. make the micro models (own tokenizer, random init): micro-mtp (4 heads), micro-ref (1 head)
3. convert the problems with the real pipeline -> storage/datasets_local_small/processed
4. validate the processed dataset
5. `wmtp compare --overlay configs/local.yaml --overlay configs/local_rho1.yaml`: baseline,
   verifiable (critic stage 1 -> stage 2) and Rho-1 under one budget, each evaluated in the sandbox
   on the local problems, plus the untrained model; prints the comparison table and where the
   report (report.md, report.json) and its plots are

python scripts/run_local_demo.py [wmtp compare options, e.g. --out DIR or --overlay more.yaml]
"""

from __future__ import annotations

import argparse
import os
import runpy
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "storage" / "models_v2"
DATA = ROOT / "storage" / "datasets_local_small"


def script(name: str):
    return runpy.run_path(str(ROOT / "scripts" / f"{name}.py"), run_name="wmtp_script")["main"]


def banner(i: int, n: int, text: str) -> float:
    print(f"\n[{i}/{n}] {text}", flush=True)
    return time.monotonic()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _, compare_args = ap.parse_known_args(argv)
    os.chdir(ROOT)
    n = 5
    t0 = banner(1, n, "local problem set (raw deepmind/code_contests schema)")
    script("make_local_codecontests")(["--dst", str(DATA / "raw")])
    banner(2, n, "micro models with their own tokenizer")
    if not (MODELS / "micro-mtp" / "metadata.json").is_file():
        script("prepare_local_small_model")(["--from-scratch", "--dst", str(MODELS)])
    else:
        print(f"reusing {MODELS / 'micro-mtp'}")
    tokenizer = MODELS / "micro-mtp" / "tokenizer" / "tokenizer.model"
    banner(3, n, "convert to processed JSONL + index")
    script("setup_datasets")(["--src", str(DATA / "raw"), "--dst", str(DATA), "--tokenizer", str(tokenizer)])
    banner(4, n, "validate the processed dataset")
    if script("validate_datasets")([str(DATA)]) != 0:
        raise SystemExit("the processed dataset failed validation")

    from wmtp_lightning.compare.command import main as compare

    banner(5, n, "wmtp compare: baseline, verifiable (stage 1 -> 2), Rho-1 under one budget; evaluation; report")
    overlays = ["--overlay", "configs/local.yaml", "--overlay", "configs/local_rho1.yaml"]
    code = compare([*overlays, *compare_args])
    if code:
        raise SystemExit(code)
    print(f"\nDemo done in {time.monotonic() - t0:.0f} s (the table above; report and plots where it says).")


if __name__ == "__main__":
    main()
