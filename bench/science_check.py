#!/usr/bin/env python
"""Science miniature: does the critic, trained with the shipped stage-1 settings, find the bug?

A faithful miniature of the whole VerifiableCriticMTP pipeline on a task where correctness needs
computation (`science_task`: n lines `a+b=c`, an incorrect solution has one sum off by 1 or 2; no
token occurs only in incorrect rows):

1. raw problems (deepmind/code_contests schema) -> own SentencePiece tokenizer ->
   `scripts/setup_datasets.py` -> processed splits + index + manifest (the task's rows, and the same
   problems as a judging base model's pre-training text, `science_task.judged`);
2. pre-training, the stand-in for the base model's: a tiny random bundle (6 trunk blocks, 2 heads)
   trained by `wmtp fit --config configs/baseline.yaml` (BaselineMTP) + an overlay (its own
   optimizer and length) on one of two corpora (`--base`): `judged` (every solution followed by its
   verdict, half of them with a running verdict on every line: a base model that has learned to
   judge sums, as real code models have read code next to asserts, test logs and reviews) or
   `correct` (correct solutions only: a base model that has only seen right answers). How well the
   base model judges held-out solutions is measured (`science_probe.verdict_accuracy`);
3. stage 1: `wmtp fit --config configs/verifiable_stage1.yaml` + an overlay that changes only scale
   (steps, batch, validation size), paths and the seed: frozen trunk, value clip 0.2 around the EMA
   anchor, Monte-Carlo targets, MSE, AdamW lr 1e-4 as shipped. Read: `val_all/value_auc` of every
   validation (held-out `valid` split) and the best one, whose value head stage 1 exports;
4. stage 2: `wmtp fit --config configs/verifiable.yaml` (+ overlay) from stage 1's export, once with
   `signal: delta` (the default) and once with `signal: cumulative`; read the weight diagnostics of
   its last validation (`val_all/...`, exact sums over all validation rows);
5. a probe (`science_probe`) on the `test` split: δ at the first wrong token of every incorrect row,
   the weights both signals give it and its continuation, and the best linear read-out of the
   frozen trunk (what any linear value head on it could reach).

The dataset and the pre-trained base are made once (`--data-seed`, default 0; reused from `--out` only
if made with the same settings); stages 1-2 and the probe run for every
seed. Prints a table and writes JSON (with the machine and the command).

    python bench/science_check.py [--base judged|correct] [--seeds 5] [--out DIR] [--json FILE]
        [--trunk 6] [--mark-rates 0,1] [--pretrain-steps 8000] [--data-seed 0] [--stage1-steps N] [--stage1-lr LR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from science_probe import probe, verdict_accuracy
from science_task import MARK_RATES, build_dataset

from wmtp_lightning.cli import main as wmtp
from wmtp_lightning.errors import ArgumentParser, BadInput, script_main
from wmtp_lightning.io import read_json, write_json
from wmtp_lightning.models.bundle import save_bundle
from wmtp_lightning.models.micro import from_scratch
from wmtp_lightning.models.tokenizer import Tokenizer
from wmtp_lightning.models.transformer import ModelArgs

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


@dataclass(frozen=True)
class Scale:
    """The miniature's scale (all a CPU allows); everything else is the shipped configs'."""

    base: str = "judged"  # the pre-training corpus: "judged" (code + verdicts) or "correct" (correct code only)
    mark_rates: tuple[float, ...] = MARK_RATES  # the judged corpus: chances that a text's lines carry running verdicts
    dim: int = 64
    n_heads: int = 4
    n_kv_heads: int = 2
    trunk: int = 6  # the trunk itself judges a whole solution (with 4 only head 1's block does: benchmarks.md)
    n_future_tokens: int = 2
    pretrain_steps: int = 8000
    pretrain_batch: int = 16
    pretrain_lr: float = 3e-3
    stage1_steps: int = 300
    stage1_lr: float | None = None  # None: the shipped optimizer (AdamW lr 1e-4); set = a departure, reported
    stage1_batch: int = 16
    stage1_val_every: int = 50
    stage2_steps: int = 60
    stage2_batch: int = 8
    val_correct: int = 256  # of the valid split's 320 correct + 320 incorrect rows
    val_incorrect: int = 256
    probe_train_rows: int = 2048


# What the overlays override in the shipped configs, reported with the results.
OVERRIDES = {
    "pretrain (configs/baseline.yaml)": "model (random bundle), sequential_heads off, optimizer AdamW lr 3e-3 wd 0.01, warm-up 50, "
    "max_steps, batch_size, val sizes, data paths, seed, CSV logger instead of MLflow",
    "stage 1 (configs/verifiable_stage1.yaml)": "model (pre-trained export), max_steps, val_check_interval, "
    "batch_size, val sizes, data paths, seed, CSV logger instead of MLflow",
    "stage 2 (configs/verifiable.yaml)": "model, value_head (stage 1's export), signal, max_steps, "
    "val_check_interval, batch_size, val sizes, warm-up 100 -> 10 (the run is 60 steps), data paths, seed, CSV logger instead of MLflow",
}


def write_overlay(path: Path, cfg: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def common_overlay(
    data: dict[str, Path], root: Path, seed: int, steps: int, batch: int, val_every: int, sc: Scale
) -> dict:
    """Scale, paths, seed; CPU; a CSV logger instead of MLflow (`history` reads it back)."""
    return {
        "seed_everything": seed,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_steps": steps,
            "val_check_interval": val_every,
            "log_every_n_steps": 10,
            "default_root_dir": str(root),
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(root)}},
            "enable_progress_bar": False,
            "enable_model_summary": False,
        },
        "data": {
            "init_args": {
                "data_dir": str(data["data"]),
                "tokenizer": str(data["tokenizer"]),
                "val_samples": sc.val_correct,
                "val_incorrect_samples": sc.val_incorrect,
                "batch_size": batch,
                "num_workers": 0,
            }
        },
    }


def fit(config: str, overlay: Path) -> Any:
    """`wmtp fit --config configs/<config> --config <overlay>` in this process; returns the CLI."""
    return wmtp(["fit", "--config", str(CONFIGS / config), "--config", str(overlay)])


def history(cli: Any) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(step, value), ...]} from the run's CSV log."""
    out: dict[str, list[tuple[int, float]]] = {}
    with open(Path(cli.trainer.logger.log_dir) / "metrics.csv", newline="") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if k != "step" and v not in ("", None):
                    out.setdefault(k, []).append((int(row["step"]), float(v)))
    return out


def initial_bundle(dst: Path, tokenizer: Path, sc: Scale, seed: int) -> Path:
    """A random tiny MTP bundle with the task's tokenizer (what pre-training starts from)."""
    args = ModelArgs(
        dim=sc.dim,
        n_layers=sc.trunk + sc.n_future_tokens,
        n_heads=sc.n_heads,
        n_kv_heads=sc.n_kv_heads,
        vocab_size=Tokenizer(tokenizer).vocab_size,
        multiple_of=32,
        max_seq_len=256,
        n_future_tokens=sc.n_future_tokens,
    )
    return save_bundle(
        from_scratch(args, seed), dst, tokenizer=tokenizer, source={"kind": "from_scratch", "seed": seed}
    )


NOT_PRETRAIN = ("stage1_steps", "stage1_lr", "stage1_batch", "stage1_val_every", "stage2_steps", "stage2_batch")
NOT_PRETRAIN += ("val_correct", "val_incorrect", "probe_train_rows")  # what pre-training does not depend on


def pretrain(data: dict[str, Path], work: Path, sc: Scale, seed: int) -> tuple[Path, float]:
    """BaselineMTP from a random bundle on the `sc.base` corpus; returns (its export, val/ce_head1).

    `judged`: every solution followed by its verdict, half of them with running verdicts
    (`science_task.judged`), a base model taught to judge sums; `correct`: correct solutions only,
    a base model that has only ever seen right answers.

    Reuses a finished earlier pre-training under `work` (its `pretrain.json` is written last) made
    with the same scale, and refuses one made with another.
    """
    done = work / "pretrain.json"
    export = work / "runs" / "baseline" / "export"
    made = {k: v for k, v in asdict(sc).items() if k not in NOT_PRETRAIN} | {"seed": seed}
    made["mark_rates"] = list(made["mark_rates"])
    if done.is_file():
        record = read_json(done)
        if record.get("scale") != made:
            raise BadInput(f"{done}: a base pre-trained with {record.get('scale')}, not {made}; use another --out")
        return export, record["val_ce_head1"]
    init = initial_bundle(work / "init", data["tokenizer"], sc, seed)
    steps = sc.pretrain_steps
    if sc.base not in ("judged", "correct"):
        raise ValueError(f"Scale.base: expected 'judged' or 'correct', got {sc.base!r}")
    corpus = {**data, "data": data["judged"]} if sc.base == "judged" else data
    cfg = common_overlay(corpus, work / "runs", seed, steps, sc.pretrain_batch, steps, sc)
    cfg["data"]["init_args"]["val_incorrect_samples"] = 0  # the yardstick: val/ce_head1 on correct rows
    cfg["model"] = {
        "init_args": {
            "model": str(init),
            "sequential_heads": False,
            "optimizer": {"class_path": "torch.optim.AdamW", "init_args": {"lr": sc.pretrain_lr, "weight_decay": 0.01}},
            "lr_scheduler": {"init_args": {"warmup_steps": 50}},
        }
    }
    cli = fit("baseline.yaml", write_overlay(work / "pretrain.yaml", cfg))
    ce = float(cli.trainer.callback_metrics["val/ce_head1"])
    print(f"[science] pretrain: val/ce_head1 {ce:.3f}", flush=True)
    write_json(done, {"val_ce_head1": ce, "scale": made})
    return export, ce


def stage1(data: dict[str, Path], work: Path, model: Path, sc: Scale, seed: int) -> dict[str, Any]:
    """The shipped stage 1 (scale and paths only); AUC of every validation, the best, the export."""
    cfg = common_overlay(data, work, seed, sc.stage1_steps, sc.stage1_batch, sc.stage1_val_every, sc)
    cfg["model"] = {"init_args": {"model": str(model)}}
    if sc.stage1_lr is not None:
        opt = {"class_path": "torch.optim.AdamW", "init_args": {"lr": sc.stage1_lr, "weight_decay": 0.0}}
        cfg["model"]["init_args"]["optimizer"] = opt
    cli = fit("verifiable_stage1.yaml", write_overlay(work / "stage1.yaml", cfg))
    aucs = [v for _, v in history(cli)["val_all/value_auc"]]
    export = work / "verifiable_stage1" / "export"
    print(f"[science] seed {seed} stage 1: val_all/value_auc {[round(a, 3) for a in aucs]}", flush=True)
    return {
        "auc_per_validation": aucs,
        "auc_best": cli.model.best_auc,
        "auc_last": aucs[-1],
        "value_head": str(export / "value_head" / "value_head.safetensors"),
    }


DIAGNOSTICS = (
    "loss_mass_share_incorrect",
    "mass_share_incorrect",
    "weight_mean_correct",
    "weight_mean_incorrect",
    "mass_after_drop_share",
    "weight_mean_after_drop",
    "weight_at_min_frac",
    "weight_at_max_frac",
    "value_auc",
)


def stage2(data: dict[str, Path], work: Path, model: Path, value_head: str, sc: Scale, seed: int, signal: str) -> dict:
    """The shipped stage 2 from stage 1's head with `signal`; the diagnostics of its last validation."""
    root = work / f"stage2_{signal}"
    steps = sc.stage2_steps
    cfg = common_overlay(data, root, seed, steps, sc.stage2_batch, steps, sc)
    cfg["model"] = {
        "init_args": {
            "model": str(model),
            "value_head": value_head,
            "signal": signal,
            "lr_scheduler": {"init_args": {"warmup_steps": max(1, steps // 6)}},
        }
    }
    cli = fit("verifiable.yaml", write_overlay(work / f"stage2_{signal}.yaml", cfg))
    m = cli.trainer.callback_metrics
    out = {k: float(m[f"val_all/{k}"]) for k in DIAGNOSTICS if f"val_all/{k}" in m}
    print(f"[science] seed {seed} stage 2 ({signal}): {json.dumps({k: round(v, 3) for k, v in out.items()})}")
    return out


def run_seed(data: dict[str, Path], policy: Path, out: Path, sc: Scale, seed: int) -> dict[str, Any]:
    """Stage 1, the probe of its critic, stage 2 with both signals, for one seed."""
    variant = "" if sc.stage1_lr is None else f"_stage1-lr{sc.stage1_lr:g}-{sc.stage1_steps}"
    work = out / f"seed{seed}{variant}"
    t0 = time.monotonic()
    s1 = stage1(data, work, policy, sc, seed)
    found = probe(policy, Path(s1["value_head"]), data["data"], data["tokenizer"], train_rows=sc.probe_train_rows)
    s2 = {signal: stage2(data, work, policy, s1["value_head"], sc, seed, signal) for signal in ("delta", "cumulative")}
    return {"seed": seed, "stage1": s1, "probe": found, "stage2": s2, "seconds": time.monotonic() - t0}


def spread(xs: list[float]) -> dict[str, float]:
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs)}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """min / median / max over seeds of every reported figure."""
    pick = {
        "stage1_auc_best": lambda r: r["stage1"]["auc_best"],
        "stage1_auc_last": lambda r: r["stage1"]["auc_last"],
        "linear_probe_auc": lambda r: r["probe"]["linear_probe_auc"],
        "linear_probe_auc_head1": lambda r: r["probe"]["linear_probe_auc_head1"],
        "probe_auc_test": lambda r: r["probe"]["auc"],
        "sum_digit_acc": lambda r: r["probe"]["sum_digit_acc"],
        "delta_at_first_wrong_mean": lambda r: r["probe"]["delta_at_first_wrong_mean"],
        "delta_elsewhere_mean": lambda r: r["probe"]["delta_elsewhere_mean"],
        "delta_elsewhere_abs_mean": lambda r: r["probe"]["delta_elsewhere_abs_mean"],
    }
    out = {k: spread([f(r) for r in runs]) for k, f in pick.items()}
    for signal in ("delta", "cumulative"):
        for k in DIAGNOSTICS:
            vals = [r["stage2"][signal][k] for r in runs if k in r["stage2"][signal]]
            if vals:
                out[f"{signal}/{k}"] = spread(vals)
        for k in ("at_wrong", "after"):
            out[f"{signal}/probe_weight_{k}"] = spread([r["probe"][f"weight_{signal}_{k}"] for r in runs])
    return out


def table(summary: dict[str, Any]) -> str:
    lines = ["| figure | min | median | max |", "|---|---|---|---|"]
    for k, v in summary.items():
        lines.append(f"| {k} | {v['min']:.3f} | {v['median']:.3f} | {v['max']:.3f} |")
    return "\n".join(lines)


def machine() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, load average at start {load[0]:.2f}"
    )


def run(seeds: list[int], out: Path, sc: Scale = Scale(), data_seed: int = 0) -> dict[str, Any]:
    """The dataset and the pre-trained trunk once (seed `data_seed`), then stage 1 + 2 for every seed."""
    t0 = time.monotonic()
    mach = machine()
    data = build_dataset(out, seed=data_seed, rates=sc.mark_rates)
    reused = (out / sc.base / "pretrain" / "pretrain.json").is_file()
    policy, ce = pretrain(data, out / sc.base / "pretrain", sc, data_seed)
    judging = verdict_accuracy(policy, data["judged"], data["tokenizer"])  # does the base model check sums?
    print(f"[science] pretrain ({sc.base}): {json.dumps({k: round(v, 3) for k, v in judging.items()})}", flush=True)
    t1 = time.monotonic()
    runs = [run_seed(data, policy, out / sc.base, sc, s) for s in seeds]
    return {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": mach,
        "scale": asdict(sc),
        "overrides": OVERRIDES,
        "seeds": seeds,
        "pretrain": {"corpus": sc.base, "val_ce_head1": ce, **judging, "reused": reused, "seconds": t1 - t0},
        "summary": summarize(runs),
        "runs": runs,
        "seconds": time.monotonic() - t0,
    }


def mark_rates(text: str) -> tuple[float, ...]:
    """`--mark-rates 0,1` -> (0.0, 1.0): chances in [0, 1]."""
    try:
        rates = tuple(float(r) for r in text.split(","))
    except ValueError:
        rates = ()
    if not rates or not all(0.0 <= r <= 1.0 for r in rates):
        raise argparse.ArgumentTypeError(f"expected chances in [0, 1] separated by commas, got {text!r}")
    return rates


@script_main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (each: stage 1, the probe, stage 2 x 2)")
    ap.add_argument("--out", type=Path, default=Path("storage/bench/science"), help="work folder (reused dataset)")
    ap.add_argument(
        "--base", choices=["judged", "correct"], default=Scale.base, help="the base model's pre-training corpus"
    )
    ap.add_argument("--trunk", type=int, default=Scale.trunk, help="the base model's trunk blocks")
    ap.add_argument(
        "--mark-rates",
        type=mark_rates,
        default=Scale.mark_rates,
        help="judged corpus: chances a text's lines carry running verdicts, one drawn per text (default 0,1)",
    )
    ap.add_argument("--pretrain-steps", type=int, default=Scale.pretrain_steps)
    ap.add_argument("--stage1-steps", type=int, default=Scale.stage1_steps)
    ap.add_argument("--stage1-lr", type=float, help="depart from the shipped stage-1 lr (1e-4)")
    ap.add_argument("--data-seed", type=int, default=0, help="the problems and the base model's initialisation")
    ap.add_argument("--json", type=Path, help="write the results here (default: OUT/science_BASE.json)")
    a = ap.parse_args(argv)
    sc = Scale(
        base=a.base,
        mark_rates=a.mark_rates,
        trunk=a.trunk,
        pretrain_steps=a.pretrain_steps,
        stage1_steps=a.stage1_steps,
        stage1_lr=a.stage1_lr,
    )
    result = run(list(range(a.seeds)), a.out, sc, data_seed=a.data_seed)
    dst = a.json or a.out / f"science_{a.base}.json"
    write_json(dst, result)
    print(f"\n{result['machine']}\n{result['command']}  ({result['seconds']:.0f} s)\n")
    print(table(result["summary"]))
    print(f"\nwrote {dst}")
    return result


if __name__ == "__main__":
    main()
