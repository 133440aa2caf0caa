"""`wmtp compare`: bad input refused before anything trains; a real comparison on tiny fixtures (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from wmtp_lightning.compare.command import main

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ["--overlay", "configs/local.yaml", "--overlay", "configs/local_rho1.yaml"]


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the command reads configs/<experiment>.yaml, as `wmtp fit --config configs/...` does


def compare(capsys, *args: str) -> tuple[int, str]:
    """(exit code, the command's last stderr line)."""
    code = main(list(args))
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def write_yaml(path: Path, data: dict) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_a_missing_overlay_is_one_line(capsys, tmp_path):
    code, line = compare(capsys, *LOCAL, "--overlay", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "out"))
    assert code == 1 and line == f"wmtp compare: overlay not found: {tmp_path / 'nope.yaml'}"
    assert not (tmp_path / "out").exists()
    code, line = compare(capsys, *LOCAL, "--eval", str(tmp_path / "ev.yaml"), "--out", str(tmp_path / "out"))
    assert code == 1 and line == f"wmtp compare: eval config not found: {tmp_path / 'ev.yaml'}"
    code, line = compare(capsys, *LOCAL, "--overlay", str(tmp_path), "--out", str(tmp_path / "out"))
    assert code == 1 and line == f"wmtp compare: overlay is not a file: {tmp_path}"
    broken = tmp_path / "broken.yaml"
    broken.write_text("trainer:\n  max_steps: 2\n model: [\n")
    code, line = compare(capsys, *LOCAL, "--overlay", str(broken), "--out", str(tmp_path / "out"))
    assert code == 1 and line.startswith(f"wmtp compare: {broken}: not valid YAML at line 3")


def test_an_unwritable_or_used_output_folder_is_refused_before_training(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should go")
    code, line = compare(capsys, *LOCAL, "--out", str(blocker / "out"))
    assert code == 1 and line.startswith(f"wmtp compare: output folder {blocker / 'out'} is not writable")
    used = tmp_path / "used"
    used.mkdir()
    (used / "old-report.md").write_text("an earlier comparison")
    code, line = compare(capsys, *LOCAL, "--out", str(used))
    assert code == 1 and "is not empty" in line
    assert [p.name for p in used.iterdir()] == ["old-report.md"]  # nothing trained, nothing lost


def test_an_uncontrolled_comparison_is_refused(capsys, tmp_path):
    # The reference makes this overlay Rho-1's alone, so Rho-1 would run without sequential heads.
    skew = write_yaml(tmp_path / "skew.yaml", {"model": {"init_args": {"reference": "ref", "sequential_heads": False}}})
    code, line = compare(capsys, *LOCAL, "--overlay", skew, "--out", str(tmp_path / "out"))
    assert code == 1
    assert line.startswith(
        "wmtp compare: not a controlled comparison: rho1 differs from baseline outside the allow-list in "
        "model.init_args.sequential_heads: True vs False"
    )
    assert not (tmp_path / "out").exists()
    budget = write_yaml(
        tmp_path / "budget.yaml", {"model": {"init_args": {"value_coef": 0.5}}, "trainer": {"max_steps": 7}}
    )
    code, line = compare(capsys, *LOCAL, "--overlay", budget, "--out", str(tmp_path / "out"))
    assert "verifiable differs from baseline outside the allow-list in trainer.max_steps: 24 vs 7" in line


def test_an_overlay_that_does_not_parse_names_the_key(capsys, tmp_path):
    bad = write_yaml(tmp_path / "bad.yaml", {"trainer": {"max_stps": 3}})
    code, line = compare(capsys, *LOCAL, "--overlay", bad, "--out", str(tmp_path / "out"))
    assert code == 1 and "max_stps" in line and line.count("\n") == 0


def test_a_failed_run_is_named_and_no_report_is_written(
    capsys, tmp_path, tiny_bundle, tiny_ref_bundle, micro_tokenizer_path
):
    # Real bundles and tokenizer (not storage/, which a clean checkout lacks): the missing dataset is what fails.
    models = {"model": {"init_args": {"model": str(tiny_bundle)}}}
    ref = write_yaml(tmp_path / "ref.yaml", {"model": {"init_args": {"reference": str(tiny_ref_bundle)}}})
    missing = write_yaml(
        tmp_path / "nodata.yaml",
        {
            **models,
            "data": {"init_args": {"data_dir": str(tmp_path / "no-data"), "tokenizer": str(micro_tokenizer_path)}},
        },
    )
    out = tmp_path / "out"
    code, line = compare(capsys, *LOCAL, "--overlay", missing, "--overlay", ref, "--out", str(out))
    assert code == 1
    assert (
        line
        == f"wmtp compare: run 'before' failed: {tmp_path / 'no-data'}: dataset directory not found (make it with scripts/setup_datasets.py)"
    )
    assert not (out / "report").exists() and not (out / "report.partial").exists()


def test_a_missing_model_bundle_is_one_line(capsys, tmp_path):
    gone = write_yaml(tmp_path / "gone.yaml", {"model": {"init_args": {"model": str(tmp_path / "no-model")}}})
    code, line = compare(capsys, *LOCAL, "--overlay", gone, "--out", str(tmp_path / "out"))
    assert code == 1
    assert line.startswith(f"wmtp compare: run 'before' failed: model bundle not found: {tmp_path / 'no-model'} (make")


# ----------------------------------------------------------------------------- real runs (slow)


def tiny_overlays(tmp_path, bundle, ref, dataset, tokenizer) -> list[str]:
    """The local overlay scaled down to the tiny fixtures; eval with few short samples."""
    fast = {
        # Validation reads correct lines, then incorrect ones: 2 batches of 2 hold both kinds (the AUC needs them).
        "trainer": {"max_steps": 2, "val_check_interval": 2, "limit_val_batches": 2, "log_every_n_steps": 1},
        "model": {"init_args": {"model": str(bundle)}},
        "data": {
            "init_args": {
                "data_dir": str(dataset),
                "tokenizer": str(tokenizer),
                "val_samples": 2,
                "val_incorrect_samples": 2,
                "batch_size": 2,
            }
        },
    }
    ev = yaml.safe_load((ROOT / "configs" / "eval" / "local.yaml").read_text())
    ev["trainer"]["enable_progress_bar"] = False
    ev["model"]["init_args"].update(n_samples=2, max_new_tokens=16, ks=[1, 2])
    return [
        *LOCAL,
        "--overlay",
        write_yaml(tmp_path / "tiny.yaml", fast),
        "--overlay",
        write_yaml(tmp_path / "tiny_rho1.yaml", {"model": {"init_args": {"reference": str(ref)}}}),
        "--eval",
        write_yaml(tmp_path / "local_eval.yaml", ev),
    ]


def yardstick_rows(md: str) -> dict[str, dict[str, str]]:
    """{experiment: {column: cell}} of the report's yardstick table."""
    block = md.split("### Yardstick")[1].split("###")[0]
    lines = [line for line in block.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return {
        cells[0]: dict(zip(header, cells))
        for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])
    }


@pytest.mark.slow
def test_compare_runs_the_three_and_reports_what_they_logged(
    capsys, tmp_path, tiny_bundle, tiny_ref_bundle, local_dataset, micro_tokenizer_path
):
    import mlflow

    out = tmp_path / "cmp"
    args = tiny_overlays(tmp_path, tiny_bundle, tiny_ref_bundle, local_dataset, micro_tokenizer_path)
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = out / "report"
    assert f"report: {report / 'report.md'}" in printed and "### Yardstick" in printed
    assert sorted(p.name for p in out.iterdir()) == ["report", "runs"]  # no .partial
    for png in ("loss_curves.png", "weights_heatmap.png", "weights_hist.png"):
        data = (report / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, png
    data = json.loads((report / "report.json").read_text())
    runs = data["runs"]
    assert list(runs) == ["before", "baseline", "verifiable_stage1", "verifiable", "rho1"]
    client = mlflow.MlflowClient(data["tracking_uri"])
    rows = yardstick_rows((report / "report.md").read_text())
    for name in ("before", "baseline", "verifiable", "rho1"):
        r = runs[name]
        assert client.get_run(r["mlflow_run_id"]).info.status == "FINISHED"
        wanted = [f"val/{m}_head{k}" for m in ("ce", "acc") for k in (1, 2, 3)] + ["local pass@1", "local pass@2"]
        assert set(wanted) <= set(r["yardstick"]), name
        for key in wanted[:6]:  # each number is the run's own last logged value in MLflow
            history = sorted(client.get_metric_history(r["mlflow_run_id"], key), key=lambda m: m.step)
            assert r["yardstick"][key] == history[-1].value, (name, key)
            assert rows[r["label"]][key] == f"{history[-1].value:.4f}"
        # pass@k: the eval run's metric and the results file `wmtp test` wrote
        ev = r["eval"]["local"]
        on_disk = json.loads((out / "runs" / name / "eval" / "local" / "pass_at_k.json").read_text())
        assert ev["pass@1"] == pytest.approx(on_disk["pass@1"]) and ev["pass@2"] == pytest.approx(on_disk["pass@2"])
        assert client.get_metric_history(ev["mlflow_run_id"], "test/pass_at_1")[-1].value == pytest.approx(ev["pass@1"])
        assert rows[r["label"]]["local pass@1"] == f"{ev['pass@1']:.4f}"
        assert r["seed"] == 0 and r["wall_s"] > 0
    for name in ("baseline", "verifiable_stage1", "verifiable", "rho1"):
        assert (runs[name]["steps"], runs[name]["effective_batch"], runs[name]["samples"]) == (2, 2, 4), name
    assert runs["before"]["steps"] == 0
    # the weighting's own diagnostics, from the runs that have them
    assert 0.0 <= runs["verifiable_stage1"]["diagnostics"]["val_all/value_auc"] <= 1.0
    assert {"train/weight_mean_correct", "train/mass_share_incorrect", "train/weight_at_min_frac"} <= set(
        runs["verifiable"]["diagnostics"]
    )
    assert runs["baseline"]["diagnostics"]["train/weight_mean_correct"] == pytest.approx(1.0)
    for name in ("baseline", "verifiable_stage1", "verifiable", "rho1"):  # means / finals of what MLflow holds
        for key, value in runs[name]["diagnostics"].items():
            logged = [
                m.value
                for m in sorted(client.get_metric_history(runs[name]["mlflow_run_id"], key), key=lambda m: m.step)
            ]
            assert value == pytest.approx(logged[-1] if key.startswith("val") else sum(logged) / len(logged)), (
                name,
                key,
            )
    # stage 2 started from stage 1's export in the same root
    assert (
        out / "runs" / "verifiable" / "verifiable_stage1" / "export" / "value_head" / "value_head.safetensors"
    ).is_file()


@pytest.mark.slow
def test_a_failed_run_keeps_the_finished_ones(
    capsys, tmp_path, tiny_bundle, tiny_ref_bundle, local_dataset, micro_tokenizer_path
):
    args = tiny_overlays(tmp_path, tiny_bundle, tiny_ref_bundle, local_dataset, micro_tokenizer_path)
    broken = write_yaml(
        tmp_path / "critic.yaml", {"model": {"init_args": {"value_head": str(tmp_path / "none.safetensors")}}}
    )
    out = tmp_path / "cmp"
    code, line = compare(capsys, *args, "--overlay", broken, "--out", str(out))
    assert code == 1
    assert line.startswith("wmtp compare: run 'verifiable_stage1' failed: stage-1 value head not found")
    assert (out / "runs" / "baseline" / "baseline" / "export" / "metadata.json").is_file()
    assert (out / "runs" / "baseline" / "eval" / "local" / "pass_at_k.json").is_file()
    assert not (out / "report").exists() and not (out / "report.partial").exists()


@pytest.mark.slow
def test_compare_on_two_ranks(tmp_path, tiny_bundle, tiny_ref_bundle, local_dataset, micro_tokenizer_path):
    """DDP on 2 CPU processes: Lightning re-runs the command for rank 1, which joins every run; one report."""
    from tests.integration.helpers import run
    from wmtp_lightning.evaluation.benchmarks import load_local

    args = tiny_overlays(tmp_path, tiny_bundle, tiny_ref_bundle, local_dataset, micro_tokenizer_path)
    ddp = write_yaml(tmp_path / "ddp.yaml", {"trainer": {"accelerator": "cpu", "devices": 2, "strategy": "ddp"}})
    out = tmp_path / "cmp"
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run(
        ["-m", "wmtp_lightning.cli", "compare", *args, "--overlay", ddp, "--out", str(out)],
        timeout=1200,
        MLFLOW_TRACKING_URI=store,
    )
    assert proc.stdout.count("[compare] report:") == 1  # rank 1 ran the same sequence and wrote nothing
    assert sorted(p.name for p in out.iterdir()) == ["report", "runs"]
    data = json.loads((out / "report" / "report.json").read_text())
    for name in ("baseline", "verifiable_stage1", "verifiable", "rho1"):
        r = data["runs"][name]
        assert (r["steps"], r["effective_batch"], r["samples"]) == (2, 4, 8), name  # batch 2 x 2 ranks
    n_problems = len(load_local("test"))  # the ranks judged disjoint shares; the merged result has them all
    for name in ("before", "baseline", "verifiable", "rho1"):
        r = data["runs"][name]
        assert {"val/ce_head1", "local pass@1"} <= set(r["yardstick"]), name
        summary = json.loads((out / "runs" / name / "eval" / "local" / "pass_at_k.json").read_text())
        assert summary["pass@1"] == pytest.approx(r["eval"]["local"]["pass@1"]) and summary["n_problems"] == n_problems
