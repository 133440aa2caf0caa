"""`wmtp compare`: run baseline, verifiable (stage 1 → 2) and Rho-1 under one budget, evaluate, report.

    wmtp compare --overlay configs/local.yaml --overlay configs/local_rho1.yaml [--out DIR] [--seed N]
    wmtp compare --overlay configs/vessl.yaml                  # what a researcher launches on VESSL

Before anything trains, the command checks its inputs (overlays and eval configs exist, the output
folder is new and writable) and the design: the three compared configs, resolved with the same
overlays, may differ only in their weighting (`design.check_controlled`). Then, in this process,
through `wmtp_lightning.cli.main` (the very code `wmtp fit|validate|test` runs):

1. the starting model: `wmtp validate` with the baseline config (its yardstick before training)
   and `wmtp test` with every eval config ("before" row);
2. baseline, verifiable stage 1 then stage 2 (`value_head: auto` finds stage 1's export in the
   same `default_root_dir`), Rho-1: `wmtp fit` with `configs/<name>.yaml` + the overlays, one seed,
   each in its own `default_root_dir` under `<out>/runs/`, then `wmtp test` on each export;
3. the report (`report.py`) from the runs' MLflow histories, written to `<out>/report/`.

A run that fails stops the command with one line naming it; the finished runs stay under
`<out>/runs/` and no report is written.

Several devices: Lightning starts the other ranks by re-running this command (`LOCAL_RANK` set);
they inherit the output folder through `WMTP_COMPARE_OUT`, run the same sequence and write no
report. Under `torchrun`, give `--out`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wmtp_lightning.compare.design import (
    COMPARED,
    STAGE1,
    DesignError,
    check_controlled,
    class_from_path,
    flatten,
    one_line,
    resolve_config,
    route_overlays,
)
from wmtp_lightning.compare.report import Eval, Run, tables, write_report

CONFIGS = Path("configs")
OUT_ENV = "WMTP_COMPARE_OUT"  # the output folder, for the ranks Lightning starts by re-running the command
TRAINED = ("baseline", STAGE1, "verifiable", "rho1")  # run order (stage 1 right before stage 2)


class CompareError(RuntimeError):
    """Bad input or a failed run: one line for the user."""


@dataclass
class Plan:
    """What the checks resolved: every run's configs, the eval configs, the seed and the folders."""

    overlays: dict[str, list[Path]]  # experiment -> overlays it gets
    evals: list[Path]
    seed: int
    start_model: str
    out: Path
    lead: bool  # this process writes the report (not a rank Lightning or torchrun started besides it)

    def configs(self, name: str) -> list[Path]:
        return [CONFIGS / f"{name}.yaml", *self.overlays[name]]

    def root(self, name: str) -> Path:
        """`default_root_dir` of a run: stage 1 shares stage 2's, so `value_head: auto` finds its export."""
        return self.out / "runs" / ("verifiable" if name == STAGE1 else name)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="wmtp compare",
        description="Run baseline, verifiable (stage 1 -> 2) and Rho-1 under one budget, evaluate each, write one report.",
    )
    ap.add_argument(
        "--overlay",
        action="append",
        default=[],
        type=Path,
        help="config overlay, repeatable (e.g. configs/local.yaml); one that sets an experiment's own "
        "option (configs/local_rho1.yaml) reaches only the experiments that have it",
    )
    ap.add_argument(
        "--eval",
        action="append",
        type=Path,
        help="eval config, repeatable (default: configs/eval/<first overlay's name>.yaml when it exists, "
        "e.g. configs/eval/local.yaml for configs/local.yaml; else configs/eval/humaneval.yaml and mbpp.yaml)",
    )
    ap.add_argument(
        "--out",
        type=Path,
        help="output folder, new or empty (default: <trainer.default_root_dir>/compare/<date-time>)",
    )
    ap.add_argument(
        "--seed", type=int, help="seed_everything of every run (default: the configs' own, which must agree)"
    )
    ap.add_argument("--debug", action="store_true", help="show tracebacks (also WMTP_DEBUG=1)")
    return ap.parse_args(argv)


# ----------------------------------------------------------------------------- checks before any run


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise CompareError(f"{what} {'is not a file' if path.exists() else 'not found'}: {path}")
    return path


def default_evals(overlays: list[Path]) -> list[Path]:
    if overlays and (CONFIGS / "eval" / overlays[0].name).is_file():
        return [CONFIGS / "eval" / overlays[0].name]
    return [CONFIGS / "eval" / "humaneval.yaml", CONFIGS / "eval" / "mbpp.yaml"]


def check_output(out: Path, fresh: bool) -> None:
    """`out` can be created and written to, and (for the process that owns it) holds nothing yet."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        if fresh and any(out.iterdir()):
            raise CompareError(
                f"output folder {out} is not empty: give a new --out (a comparison never overwrites another)"
            )
        with tempfile.NamedTemporaryFile(dir=out):
            pass
    except OSError as err:
        raise CompareError(f"output folder {out} is not writable ({err.strerror or err})") from None


def plan(args: argparse.Namespace) -> Plan:
    """Every check that needs no training, in the order a user would fix them."""
    for name in (*COMPARED, STAGE1):
        _existing(CONFIGS / f"{name}.yaml", "experiment config (run wmtp compare from the repository root)")
    overlays = [_existing(p, "overlay") for p in args.overlay]
    evals = [_existing(p, "eval config") for p in (args.eval or default_evals(overlays))]
    classes = {}
    for name in (*COMPARED, STAGE1):
        cfg = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text()) or {}
        classes[name] = class_from_path(((cfg.get("model") or {}).get("class_path")) or "")
    routed = route_overlays(overlays, classes)
    seed_args = [] if args.seed is None else ["--seed_everything", str(args.seed)]
    resolved = {name: resolve_config("fit", [CONFIGS / f"{name}.yaml", *routed[name]], seed_args) for name in COMPARED}
    resolve_config("fit", [CONFIGS / f"{STAGE1}.yaml", *routed[STAGE1]], seed_args)  # stage 1 must resolve too
    check_controlled({name: flatten(cfg) for name, cfg in resolved.items()})
    base = resolved[COMPARED[0]]
    seed = base.get("seed_everything")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise CompareError(f"seed_everything is {seed!r}: a comparison needs one integer seed (set it or give --seed)")
    start_model = (base.get("model", {}).get("init_args") or {}).get("model")
    if not start_model:
        raise CompareError("model.init_args.model is not set: the comparison starts every run from one model bundle")
    for cfg in evals:
        resolve_config("test", [cfg], ["--model.init_args.model", str(start_model)])
    inherited = os.environ.get(OUT_ENV)
    launched = any(k in os.environ for k in ("RANK", "LOCAL_RANK"))
    if inherited:
        out = Path(inherited)
    elif args.out is not None:
        out = args.out
    elif launched:
        raise CompareError("under torchrun give --out: every rank must write to the same folder")
    else:
        out = Path(base["trainer"]["default_root_dir"]) / "compare" / time.strftime("%Y%m%d-%H%M%S")
    lead = not inherited and os.environ.get("RANK", "0") == "0"
    check_output(out, fresh=lead)
    return Plan(routed, evals, seed, str(start_model), out.resolve(), lead)


# ----------------------------------------------------------------------------- the runs


def run_cli(label: str, subcommand: str, configs: list[Path], extra: list[str]) -> tuple[Any, float]:
    """`wmtp <subcommand> --config ... <extra>` in this process; (the CLI object, wall seconds)."""
    from wmtp_lightning.cli import main as wmtp

    args = [subcommand, *(x for c in configs for x in ("--config", str(c))), *extra]
    print(f"\n[compare] {label}: wmtp {shlex.join(args)}", flush=True)
    t0 = time.monotonic()
    try:
        cli = wmtp(args)
    except (Exception, SystemExit) as err:
        raise CompareError(f"run {label!r} failed: {_one_line(err)}") from err
    return cli, time.monotonic() - t0


def _one_line(err: BaseException) -> str:
    """The root cause in one line (as `wmtp` prints it); a bug keeps its exception type in front."""
    if isinstance(err, SystemExit):
        return f"the CLI exited with {err.code} (its message is above)"
    from wmtp_lightning.cli import one_line as root_message
    from wmtp_lightning.errors import UserError

    root = err
    while root.__cause__ is not None:
        root = root.__cause__
    message = one_line(root_message(err))
    return message if isinstance(root, UserError) else f"{type(root).__name__}: {message}"


def _history(label: str, trainer: Any, prefix: str = "") -> tuple[str, str, dict[str, list[tuple[int, float]]]]:
    """(tracking URI, run id, metric histories) of the MLflow run a CLI call just logged to."""
    from wmtp_lightning.tracking import metric_history, run_location

    where = run_location(trainer)
    if where is None:
        raise CompareError(f"run {label!r} has no MLflow logger: wmtp compare reads every number back from MLflow")
    uri, run_id = where
    return uri, run_id, metric_history(uri, run_id, prefix=prefix)


def _exported(label: str, trainer: Any) -> Path:
    """Where the run's model was exported (rank 0 writes it; every rank waits here until it is on disk)."""
    import torch.distributed as dist

    from wmtp_lightning.experiments.callbacks import ExportBundle

    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # the other ranks load the export for the evaluation next
    for cb in trainer.callbacks:
        if isinstance(cb, ExportBundle) and cb.dirpath is not None and (cb.exported or not trainer.is_global_zero):
            return Path(cb.dirpath)
    raise CompareError(f"run {label!r} exported no model (is the ExportBundle callback in trainer.callbacks?)")


def _eval_extra(trainer: Any) -> list[str]:
    """Evaluate on the processes that trained: every rank joins `wmtp test`, problems are sharded (DDP)."""
    if trainer.world_size == 1:
        return []
    return [
        "--trainer.devices",
        str(trainer.num_devices),
        "--trainer.num_nodes",
        str(trainer.num_nodes),
        "--trainer.strategy",
        "ddp",
    ]


class Comparison:
    """The runs of one comparison, in order; `rows` collects what the report shows."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.rows: list[Run] = []
        self.lead = plan.lead
        self.critic: tuple[Path, Path] | None = None  # stage 2's run folder and export
        self.eval_extra: list[str] = []
        self.tracking_uris: set[str] = set()

    @property
    def seed_args(self) -> list[str]:
        return ["--seed_everything", str(self.plan.seed)]

    def evaluate(self, name: str, model: str | Path) -> list[Eval]:
        out = []
        for cfg in self.plan.evals:
            extra = ["--model.init_args.model", str(model), *self.seed_args, *self.eval_extra]
            extra += ["--trainer.default_root_dir", str(self.plan.root(name))]
            cli, wall = run_cli(f"{name} eval {cfg.stem}", "test", [cfg], extra)
            self.lead &= cli.trainer.is_global_zero
            if self.lead:
                uri, run_id, history = _history(f"{name} eval {cfg.stem}", cli.trainer, prefix="test/")
                self.tracking_uris.add(uri)
                out.append(Eval(cli.model.benchmark, run_id, wall, history))
        return out

    def record(self, name: str, cli: Any, wall: float, steps: int) -> Run | None:
        trainer = cli.trainer
        self.lead &= trainer.is_global_zero
        if not self.lead:
            return None
        uri, run_id, history = _history(name, trainer)
        self.tracking_uris.add(uri)
        batch = int(cli.datamodule.hparams.batch_size) * trainer.accumulate_grad_batches * trainer.world_size
        row = Run(name, run_id, wall, history, steps, batch, self.plan.seed)
        self.rows.append(row)
        return row

    def before(self) -> None:
        """The starting model: its yardstick (validation with the baseline config) and pass@k."""
        root = ["--trainer.default_root_dir", str(self.plan.root("before"))]
        cli, wall = run_cli("before", "validate", self.plan.configs("baseline"), [*self.seed_args, *root])
        self.eval_extra = _eval_extra(cli.trainer)
        row = self.record("before", cli, wall, steps=0)
        evals = self.evaluate("before", self.plan.start_model)
        if row is not None:
            row.evals = evals

    def train(self, name: str) -> None:
        root = ["--trainer.default_root_dir", str(self.plan.root(name))]
        cli, wall = run_cli(name, "fit", self.plan.configs(name), [*self.seed_args, *root])
        export = _exported(name, cli.trainer)
        if name == "verifiable":
            self.critic = (Path(cli.trainer.default_root_dir) / cli.model.run_label, export)
        row = self.record(name, cli, wall, steps=cli.trainer.global_step)
        if name == STAGE1:  # the critic alone: its policy is the starting model, nothing new to evaluate
            return
        evals = self.evaluate(name, export)
        if row is not None:
            row.evals = evals


# ----------------------------------------------------------------------------- plots


def critic_figures(run_dir: Path, export: Path, seed: int) -> dict[str, Any]:
    """Token weights of the trained critic over real validation solutions, recomputed with the run's config."""
    from wmtp_lightning.experiments.analysis import critic_token_weights, load_samples, run_hparams
    from wmtp_lightning.experiments.plots import token_heatmap, weight_histogram

    config = run_dir / "config.yaml"
    hparams = run_hparams(config)
    data = yaml.safe_load(config.read_text())["data"]["init_args"]
    samples = load_samples(data["data_dir"], data.get("val_split", "valid"), n=8, seed=seed)
    rows = critic_token_weights(export, export / "value_head" / "value_head.safetensors", samples, hparams)
    lo, hi = hparams.get("min_weight", 0.1), hparams.get("max_weight", 5.0)
    shown = next((r for r in rows if not r["is_correct"]), rows[0])  # a buggy solution shows the method at work
    verdict = "correct" if shown["is_correct"] else "incorrect"
    heatmap = token_heatmap(
        shown["pieces"][:400],
        shown["weight"][:400],
        title=f"verifiable: token weights over {shown['task_id']} ({verdict}, validation split)",
        vmin=lo,
        vmax=hi,
    )
    groups = {
        name: [w for r in rows if r["is_correct"] == want for w in r["weight"]]
        for name, want in (("correct", True), ("incorrect", False))
    }
    hist = weight_histogram(groups, title=f"verifiable: token weights on {len(rows)} validation solutions")
    return {"weights_heatmap.png": heatmap, "weights_hist.png": hist}


def figures(rows: list[Run], critic: tuple[Path, Path] | None, seed: int) -> dict[str, Any]:
    from wmtp_lightning.experiments.plots import metric_curves

    curves = {r.label: r.history for r in rows if r.name in COMPARED}
    out = {"loss_curves.png": metric_curves(curves, title="train/loss (own objective) and val/ce_head1 (yardstick)")}
    if critic is not None:
        out |= critic_figures(*critic, seed)
    return out


# ----------------------------------------------------------------------------- the command


def compare(args: argparse.Namespace, argv: list[str]) -> Path | None:
    """Run the comparison; the report folder (None on a rank that writes none)."""
    t0 = time.monotonic()
    p = plan(args)
    for name in TRAINED:
        where = ", ".join(str(o) for o in p.overlays[name]) or "no overlay"
        print(f"[compare] {name}: configs/{name}.yaml + {where}")
    print(
        f"[compare] design checked: the compared configs differ only in their weighting; seed {p.seed}; output {p.out}"
    )
    previous = os.environ.get(OUT_ENV)
    os.environ[OUT_ENV] = str(p.out)  # ranks started by Lightning re-run this command and join the same folder
    try:
        run = Comparison(p)
        run.before()
        for name in TRAINED:
            run.train(name)
    finally:
        if previous is None:
            os.environ.pop(OUT_ENV, None)
    if not run.lead:
        return None
    meta = {
        "command": shlex.join(["wmtp", "compare", *argv]),
        "tracking_uri": ", ".join(sorted(run.tracking_uris)),
        "runs_dir": str(p.out / "runs"),
        "seed": p.seed,
        "overlays": {name: [str(o) for o in p.overlays[name]] for name in TRAINED},
        "eval_configs": [str(e) for e in p.evals],
        "start_model": p.start_model,
        "wall_s": time.monotonic() - t0,
    }
    try:
        folder = write_report(p.out / "report", run.rows, meta, figures(run.rows, run.critic, p.seed))
    except Exception as err:
        raise CompareError(f"the runs finished (in {p.out / 'runs'}) but the report failed: {_one_line(err)}") from err
    print("\n" + tables(run.rows))
    print(f"[compare] done in {meta['wall_s']:.0f} s")
    print(f"[compare] report: {folder / 'report.md'}  (numbers: {folder / 'report.json'})")
    print(f"[compare] plots:  {', '.join(str(folder / f) for f in sorted(os.listdir(folder)) if f.endswith('.png'))}")
    print(f"[compare] runs:   {p.out / 'runs'}  (MLflow: {meta['tracking_uri']})")
    return folder


def main(argv: list[str]) -> int:
    """`wmtp compare <argv>`: 0 when the report is written, 1 with one line on stderr otherwise."""
    args = parse_args(argv)
    debug = args.debug or os.environ.get("WMTP_DEBUG") == "1"
    try:
        compare(args, argv)
    except (CompareError, DesignError) as err:
        if debug:
            traceback.print_exc()
        print(f"wmtp compare: {err}", file=sys.stderr)
        return 1
    return 0
