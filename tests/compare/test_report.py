"""The report writer on hand-made metric histories: a golden table, the JSON's numbers, atomic writes."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest

from wmtp_lightning.compare.report import Eval, Run, tables, write_report


def he(run_id: str, p1: float, wall: float = 20.0) -> Eval:
    return Eval("humaneval", run_id, wall, {"test/pass_at_1": [(0, p1)], "test/n_problems": [(0, 164.0)]})


def fake_runs() -> list[Run]:
    """Five rows as `wmtp compare` collects them, two heads, metric histories as MLflow returns them."""
    val = lambda ce1, ce2, acc1, acc2: {  # noqa: E731
        "val/ce_head1": [(50, ce1 + 0.5), (100, ce1)],  # the report takes the last step's value
        "val/ce_head2": [(50, ce2 + 0.5), (100, ce2)],
        "val/acc_head1": [(50, acc1 - 0.1), (100, acc1)],
        "val/acc_head2": [(50, acc2 - 0.1), (100, acc2)],
    }
    before = Run("before", "r0", 30.4, {**val(3.0, 3.5, 0.2, 0.1)}, 0, 32, 7, [he("e0", 0.05)])
    baseline = Run(
        "baseline",
        "r1",
        600.0,
        {
            **val(2.0, 2.6, 0.4, 0.3),
            "val_incorrect/ce_head1": [(100, 2.2)],
            "train/loss": [(10, 2.9), (20, 2.7)],
            "train/weight_mean_correct": [(10, 1.0), (20, 1.0)],
            "train/mass_share_incorrect": [(10, 0.0), (20, 0.0)],
        },
        100,
        32,
        7,
        [he("e1", 0.125)],
    )
    stage1 = Run("verifiable_stage1", "r2", 100.6, {"val_all/value_auc": [(50, 0.6), (100, 0.8)]}, 100, 32, 7)
    verifiable = Run(
        "verifiable",
        "r3",
        700.0,
        {
            **val(1.9, 2.5, 0.45, 0.35),
            "val_incorrect/ce_head1": [(100, 2.4)],
            "train/weight_mean_correct": [(10, 1.2), (20, 1.0)],
            "train/weight_mean_incorrect": [(10, 0.8), (20, 0.6)],
            "train/mass_share_incorrect": [(10, 0.4), (20, 0.3)],
            "train/loss_mass_share_incorrect": [(10, 0.5), (20, 0.25)],
            "train/weight_at_min_frac": [(10, 0.01), (20, 0.03)],
            "train/weight_at_max_frac": [(10, 0.0), (20, 0.002)],
            "train/mass_after_drop_share": [(10, 0.6), (20, 0.4)],
            "val_all/value_auc": [(50, 0.7), (100, 0.85)],
        },
        100,
        32,
        7,
        [he("e3", 0.25)],
    )
    rho1 = Run(
        "rho1",
        "r4",
        650.0,
        {**val(1.95, 2.55, 0.42, 0.33), "train/weight_mean_correct": [(10, 0.6), (20, 0.6)]},
        100,
        32,
        7,
        [he("e4", 0.0)],
    )
    return [before, baseline, stage1, verifiable, rho1]


# Checked by hand: finals are the step-100 values; diagnostics are means of the two logged steps
# (verifiable: (1.2+1.0)/2 = 1.1, (0.8+0.6)/2 = 0.7, (0.4+0.3)/2 = 0.35, (0.5+0.25)/2 = 0.375,
# (0.01+0.03)/2 = 0.02, (0+0.002)/2 = 0.001, (0.6+0.4)/2 = 0.5; value AUC final 0.85, stage 1 0.8);
# samples = steps x effective batch = 3200; "—" where a run logged nothing.
GOLDEN = """\
### Yardstick (final values; pass@k of the exported model)

| experiment | val/ce_head1 | val/ce_head2 | val/acc_head1 | val/acc_head2 | val_incorrect/ce_head1 | humaneval pass@1 |
|---|---|---|---|---|---|---|
| before (untrained) | 3.0000 | 3.5000 | 0.2000 | 0.1000 | — | 0.0500 |
| baseline | 2.0000 | 2.6000 | 0.4000 | 0.3000 | 2.2000 | 0.1250 |
| verifiable | 1.9000 | 2.5000 | 0.4500 | 0.3500 | 2.4000 | 0.2500 |
| rho1 | 1.9500 | 2.5500 | 0.4200 | 0.3300 | — | 0.0000 |

### Weight diagnostics (train/*: mean over the logged steps; value AUC: final)

| experiment | train/weight_mean_correct | train/weight_mean_incorrect | train/mass_share_incorrect | train/loss_mass_share_incorrect | train/weight_at_min_frac | train/weight_at_max_frac | train/mass_after_drop_share | val_all/value_auc |
|---|---|---|---|---|---|---|---|---|
| baseline | 1.0000 | — | 0.0000 | — | — | — | — | — |
| verifiable stage 1 (critic) | — | — | — | — | — | — | — | 0.8000 |
| verifiable | 1.1000 | 0.7000 | 0.3500 | 0.3750 | 0.0200 | 0.0010 | 0.5000 | 0.8500 |
| rho1 | 0.6000 | — | — | — | — | — | — | — |

### Budget and provenance

| experiment | steps | effective batch | samples | seed | train/val wall | eval wall | MLflow run | eval runs |
|---|---|---|---|---|---|---|---|---|
| before (untrained) | 0 | 32 | 0 | 7 | 30 s | 20 s | r0 | humaneval: e0 |
| baseline | 100 | 32 | 3200 | 7 | 600 s | 20 s | r1 | humaneval: e1 |
| verifiable stage 1 (critic) | 100 | 32 | 3200 | 7 | 101 s | — | r2 | — |
| verifiable | 100 | 32 | 3200 | 7 | 700 s | 20 s | r3 | humaneval: e3 |
| rho1 | 100 | 32 | 3200 | 7 | 650 s | 20 s | r4 | humaneval: e4 |
"""


def test_tables_golden():
    assert tables(fake_runs()) == GOLDEN


def test_report_json_holds_the_table_numbers(tmp_path):
    runs = fake_runs()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    folder = write_report(
        tmp_path / "report", runs, {"command": "wmtp compare", "tracking_uri": "x", "runs_dir": "r"}, {"a.png": fig}
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no .partial left behind
    assert (folder / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (folder / "report.md").read_text()
    assert GOLDEN in md and "![a](a.png)" in md
    data = json.loads((folder / "report.json").read_text())
    v = data["runs"]["verifiable"]
    assert v["yardstick"]["val/ce_head1"] == 1.9 and v["yardstick"]["humaneval pass@1"] == 0.25
    assert v["diagnostics"]["train/weight_mean_incorrect"] == pytest.approx(0.7)
    assert v["eval"]["humaneval"] == {"mlflow_run_id": "e3", "wall_s": 20.0, "pass@1": 0.25}
    assert (v["steps"], v["effective_batch"], v["samples"], v["seed"]) == (100, 32, 3200, 7)
    assert "val_incorrect/ce_head1" not in data["runs"]["rho1"]["yardstick"]  # not logged: absent, not 0
    assert data["runs"]["before"]["diagnostics"] == {} and data["plots"] == ["a.png"]


def test_a_report_that_fails_midway_is_not_left_looking_complete(tmp_path):
    class Broken:
        def savefig(self, *args, **kwargs):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_report(
            tmp_path / "report",
            fake_runs(),
            {"command": "c", "tracking_uri": "x", "runs_dir": "r"},
            {"a.png": Broken()},
        )
    assert not (tmp_path / "report").exists()
