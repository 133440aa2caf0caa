"""The GPU check's CPU dry run: every part produces its record; a failing part does not stop the rest."""

from __future__ import annotations

import json
import math

import pytest

from tests.integration.helpers import run


def finite_numbers(x) -> list[float]:
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return []
    if isinstance(x, (int, float)):
        return [float(x)]
    items = x.values() if isinstance(x, dict) else x
    return [v for item in items for v in finite_numbers(item)]


@pytest.mark.slow
def test_dry_run_produces_json_and_table(tmp_path):
    out = tmp_path / "gpu_check"
    res = run(["bench/gpu_check.py", "--dry-run", "--out", str(out), "--budget-s", "3000"], timeout=1500)
    assert res.returncode == 0, res.stdout[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    table = (out / "gpu_check.md").read_text()
    status = {name: p["status"] for name, p in report["parts"].items()}
    assert status == {
        "env": "ok",
        "throughput": "ok",
        "fit_fsdp": "needs a GPU",
        "fit_model_parallel": "ok",
        "memory": "ok",
        "speculative": "ok",
        "mtp_cost": "ok",
    }, {n: p.get("error", "")[:500] for n, p in report["parts"].items()}
    numbers = finite_numbers(report)
    assert len(numbers) > 50 and all(math.isfinite(v) for v in numbers)
    p = report["parts"]
    assert p["throughput"]["same_model"]["hf_initial_loss"] == pytest.approx(
        p["throughput"]["same_model"]["ours_initial_loss"], rel=1e-3
    )
    fit = p["fit_model_parallel"]
    assert fit["steps"] == 4 and fit["shape"]["n_future_tokens"] == 4 and "fused=True" in fit["optimizer"]
    assert p["speculative"]["decoding"]["identical_to_greedy"] is True
    assert "DRY RUN" in table and all(f"| {name} |" in table for name in status)
    assert not list(out.glob("*.tmp")) and not list((out / "parts").glob("*.tmp"))


@pytest.mark.slow
def test_a_failing_part_is_recorded_and_the_rest_still_runs(tmp_path):
    out = tmp_path / "gpu_check"
    args = ["bench/gpu_check.py", "--dry-run", "--out", str(out), "--only", "fit_model_parallel,env"]
    res = run([*args, "--tokenizer", str(tmp_path / "missing.model")], timeout=600)
    assert res.returncode == 0, res.stdout[-3000:]
    parts = json.loads((out / "gpu_check.json").read_text())["parts"]
    assert parts["fit_model_parallel"]["status"] == "error" and "missing.model" in parts["fit_model_parallel"]["error"]
    assert parts["env"]["status"] == "ok"
    assert "| fit_model_parallel | error |" in (out / "gpu_check.md").read_text()
