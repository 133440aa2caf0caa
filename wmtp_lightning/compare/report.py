"""The comparison's report: markdown tables, the same numbers as JSON, and the plots, written atomically.

Every number comes from a run: the metric histories its MLflow run logged (read back with
`tracking.metric_history`), the wall time the command measured around it, and the trainer's own
step count and batch layout. A cell a run did not log is "—", never a made-up value.

Three tables, one row per run:
- **yardstick**: the final `val/ce_head{k}` and `val/acc_head{k}` (plain CE / argmax accuracy of head
  k on the correct validation rows, the same rows and the same formula for every experiment),
  `val_incorrect/ce_head1` (the incorrect validation rows) and pass@k per benchmark;
- **weight diagnostics**: the weighting's `train/*` figures as the mean over the run's logged steps,
  and the critic's final `val_all/value_auc`;
- **budget and provenance**: optimizer steps, effective batch, samples, seed, wall times, MLflow run ids.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

History = dict[str, list[tuple[int, float]]]

LABELS = {
    "before": "before (untrained)",
    "baseline": "baseline",
    "verifiable_stage1": "verifiable stage 1 (critic)",
    "verifiable": "verifiable",
    "rho1": "rho1",
}
DIAGNOSTICS = (  # (metric, how one run's history becomes one number)
    ("train/weight_mean_correct", "mean"),
    ("train/weight_mean_incorrect", "mean"),
    ("train/mass_share_incorrect", "mean"),
    ("train/loss_mass_share_incorrect", "mean"),
    ("train/weight_at_min_frac", "mean"),
    ("train/weight_at_max_frac", "mean"),
    ("train/mass_after_drop_share", "mean"),
    ("val_all/value_auc", "final"),
)
PASS_AT = re.compile(r"^test/pass_at_(\d+)$")


@dataclass
class Eval:
    """One evaluation (`wmtp test`) of a run's model on one benchmark."""

    benchmark: str
    run_id: str | None
    wall_s: float
    history: History


@dataclass
class Run:
    """One row of the report: a training run (or, for "before", the starting model's validation)."""

    name: str
    run_id: str | None
    wall_s: float
    history: History
    steps: int
    effective_batch: int
    seed: int
    evals: list[Eval] = field(default_factory=list)

    @property
    def label(self) -> str:
        return LABELS.get(self.name, self.name)

    @property
    def samples(self) -> int:
        """Training rows consumed: every optimizer step takes one effective batch."""
        return self.steps * self.effective_batch


def final(history: History, key: str) -> float | None:
    """The value at the last logged step (None when the run did not log `key`)."""
    points = history.get(key)
    return points[-1][1] if points else None


def run_mean(history: History, key: str) -> float | None:
    """Mean over the run's logged steps (None when the run did not log `key`)."""
    points = history.get(key)
    return sum(v for _, v in points) / len(points) if points else None


def pass_at_k(ev: Eval) -> dict[int, float]:
    """{k: pass@k} of one evaluation, from its logged `test/pass_at_{k}`."""
    out = {}
    for key in ev.history:
        m = PASS_AT.match(key)
        if m:
            out[int(m.group(1))] = final(ev.history, key)
    return dict(sorted(out.items()))


def heads(runs: Sequence[Run]) -> list[int]:
    """Prediction heads with a yardstick figure in any run (1..H)."""
    found = {int(k.removeprefix("val/ce_head")) for r in runs for k in r.history if k.startswith("val/ce_head")}
    return sorted(found)


def yardstick(run: Run, n_heads: Sequence[int]) -> dict[str, float | None]:
    keys = [f"val/ce_head{k}" for k in n_heads] + [f"val/acc_head{k}" for k in n_heads] + ["val_incorrect/ce_head1"]
    out = {k: final(run.history, k) for k in keys}
    for ev in run.evals:
        out |= {f"{ev.benchmark} pass@{k}": v for k, v in pass_at_k(ev).items()}
    return out


def diagnostics(run: Run) -> dict[str, float | None]:
    return {key: (run_mean if how == "mean" else final)(run.history, key) for key, how in DIAGNOSTICS}


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def tables(runs: Sequence[Run]) -> str:
    """The three tables (markdown), rows in the order of `runs`."""
    n_heads = heads(runs)
    scored = [r for r in runs if any(k.startswith("val/") for k in r.history) or r.evals]
    columns: list[str] = []
    for r in scored:
        columns += [k for k in yardstick(r, n_heads) if k not in columns]
    yard = markdown_table(
        ["experiment", *columns], [[r.label, *(yardstick(r, n_heads).get(c) for c in columns)] for r in scored]
    )
    trained = [r for r in runs if r.steps > 0]
    diag = markdown_table(
        ["experiment", *(k for k, _ in DIAGNOSTICS)], [[r.label, *diagnostics(r).values()] for r in trained]
    )
    budget = markdown_table(
        [
            "experiment",
            "steps",
            "effective batch",
            "samples",
            "seed",
            "train/val wall",
            "eval wall",
            "MLflow run",
            "eval runs",
        ],
        [
            [
                r.label,
                r.steps,
                r.effective_batch,
                r.samples,
                r.seed,
                f"{r.wall_s:.0f} s",
                f"{sum(e.wall_s for e in r.evals):.0f} s" if r.evals else None,
                r.run_id,
                ", ".join(f"{e.benchmark}: {e.run_id}" for e in r.evals) or None,
            ]
            for r in runs
        ],
    )
    return (
        "### Yardstick (final values; pass@k of the exported model)\n\n"
        f"{yard}\n\n"
        "### Weight diagnostics (train/*: mean over the logged steps; value AUC: final)\n\n"
        f"{diag}\n\n"
        "### Budget and provenance\n\n"
        f"{budget}\n"
    )


def report_json(runs: Sequence[Run], meta: dict[str, Any], plots: Sequence[str]) -> dict[str, Any]:
    """The numbers of the tables (unrounded), per run, plus the command's settings."""
    n_heads = heads(runs)
    return {
        **meta,
        "runs": {
            r.name: {
                "label": r.label,
                "mlflow_run_id": r.run_id,
                "wall_s": r.wall_s,
                "steps": r.steps,
                "effective_batch": r.effective_batch,
                "samples": r.samples,
                "seed": r.seed,
                "yardstick": {k: v for k, v in yardstick(r, n_heads).items() if v is not None},
                "diagnostics": {k: v for k, v in diagnostics(r).items() if v is not None} if r.steps else {},
                "eval": {
                    e.benchmark: {
                        "mlflow_run_id": e.run_id,
                        "wall_s": e.wall_s,
                        **{f"pass@{k}": v for k, v in pass_at_k(e).items()},
                    }
                    for e in r.evals
                },
            }
            for r in runs
        },
        "plots": list(plots),
    }


def render_markdown(runs: Sequence[Run], meta: dict[str, Any], plots: Sequence[str]) -> str:
    lines = [
        "# WMTP comparison",
        "",
        f"Command: `{meta['command']}`  ",
        f"MLflow: `{meta['tracking_uri']}`  ",
        f"Runs: `{meta['runs_dir']}`",
        "",
        "Baseline, verifiable (critic stage 1, then stage 2) and Rho-1 ran with the same configs apart from "
        "their weighting (checked against the allow-list before training), the same seed and the same budget. "
        "The yardstick is the plain next-token CE `val/ce_head1` on the same correct validation rows for "
        "every run; `train/loss` is each run's own weighted objective and is not comparable across runs.",
        "",
        tables(runs),
    ]
    if plots:
        lines += ["### Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def write_report(folder: Path, runs: Sequence[Run], meta: dict[str, Any], figures: dict[str, Any]) -> Path:
    """Write report.md, report.json and the figures (PNG) into `folder`, complete or not at all.

    Everything goes to `<folder>.partial` first, renamed to `folder` at the end: a report folder
    that exists is whole.
    """
    import matplotlib.pyplot as plt

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, fig in figures.items():
        fig.savefig(partial / name, dpi=110)
        plt.close(fig)
    plots = sorted(figures)
    (partial / "report.md").write_text(render_markdown(runs, meta, plots), encoding="utf-8")
    (partial / "report.json").write_text(json.dumps(report_json(runs, meta, plots), indent=1), encoding="utf-8")
    partial.rename(folder)
    return folder
