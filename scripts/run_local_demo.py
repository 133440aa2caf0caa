#!/usr/bin/env python
"""The local demo (`make demo`): everything on CPU in a few minutes, nothing downloaded.

1. write the project's own small CodeContests-style problem set (raw HF schema)
2. make the micro models (own tokenizer, random init): micro-mtp (4 heads), micro-ref (1 head)
3. convert the problems with the real pipeline -> storage/datasets_local_small/processed
4. validate the processed dataset
5. VerifiableCriticMTP stage 1 (value head) -> stage 2 (TD-weighted MTP), a few dozen steps
6. evaluate the trained model on a handful of MBPP-style local problems in the sandbox
7. print where the MLflow run, the checkpoints and the exported model are

python scripts/run_local_demo.py [--steps 24] [--skip-eval]
"""

from __future__ import annotations

import argparse
import runpy
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "storage" / "models_v2"
DATA = ROOT / "storage" / "datasets_local_small"
RUNS = ROOT / "storage" / "runs" / "local"


def script(name: str):
    return runpy.run_path(str(ROOT / "scripts" / f"{name}.py"), run_name="wmtp_script")["main"]


def banner(i: int, n: int, text: str) -> float:
    print(f"\n[{i}/{n}] {text}", flush=True)
    return time.monotonic()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=24, help="training steps per stage")
    ap.add_argument("--skip-eval", action="store_true")
    args = ap.parse_args(argv)
    import os

    os.chdir(ROOT)
    n = 6 if args.skip_eval else 7
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

    from wmtp_lightning.cli import main as wmtp

    steps = ["--trainer.max_steps", str(args.steps), "--trainer.val_check_interval", str(max(args.steps // 2, 1))]
    banner(5, n, "VerifiableCriticMTP stage 1: value head")
    wmtp(["fit", "--config", "configs/verifiable_stage1.yaml", "--config", "configs/local.yaml", *steps])
    banner(6, n, "VerifiableCriticMTP stage 2: TD-weighted MTP (+ value loss)")
    cli = wmtp(["fit", "--config", "configs/verifiable.yaml", "--config", "configs/local.yaml", *steps])
    run_id = cli.trainer.logger.run_id
    export = RUNS / "verifiable_stage2" / "export"
    if not args.skip_eval:
        banner(7, n, "evaluation: pass@k on local problems in the sandbox")
        wmtp(["test", "--config", "configs/eval/local.yaml", "--model.init_args.model", str(export)])
    from wmtp_lightning.tracking import resolve_tracking_uri

    uri = resolve_tracking_uri()
    print(f"\nDone in {time.monotonic() - t0:.0f} s.")
    print(f"  MLflow run:       {run_id}  (store: {uri}; browse with `mlflow ui --backend-store-uri {uri}`)")
    print(f"  checkpoints:      {RUNS / 'verifiable_stage2' / 'checkpoints'}")
    print(f"  exported model:   {export}  (value head in {export / 'value_head'})")


if __name__ == "__main__":
    main()
