"""`wmtp test` end to end on the local problems, and the eval configs parse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import MBPP, require
from tests.experiments.test_configs import parse
from wmtp_lightning.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _mlflow(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_eval_configs_parse():
    import yaml

    for name in ("humaneval", "mbpp", "local"):
        extra = ("--data.init_args.problems", str(require(MBPP))) if name == "mbpp" else ()
        cfg = yaml.safe_load(parse(f"eval/{name}.yaml", extra=extra))
        assert cfg["data"]["class_path"] == "wmtp_lightning.evaluation.EvalDataModule"
        assert cfg["model"]["class_path"] == "wmtp_lightning.evaluation.EvalMTP"


def local_eval(sub: str, tmp_path, bundle, *extra: str):
    """`wmtp <sub> --config configs/eval/local.yaml` on a test bundle, in process."""
    return main(
        [
            sub,
            "--config",
            str(ROOT / "configs" / "eval" / "local.yaml"),
            "--model.init_args.model",
            str(bundle),
            "--trainer.default_root_dir",
            str(tmp_path),
            "--trainer.enable_progress_bar",
            "false",
            *extra,
        ]
    )


@pytest.mark.parametrize("decoding", ["sample", "greedy", "speculative"])
def test_wmtp_test_on_local_problems(tmp_path, tiny_bundle, decoding):
    one = ["--model.init_args.n_samples", "1", "--model.init_args.ks", "[1]"]
    cli = local_eval(
        "test",
        tmp_path,
        tiny_bundle,
        "--model.init_args.max_new_tokens",
        "24",
        "--model.init_args.decoding",
        decoding,
        *(one if decoding != "sample" else []),
    )
    folder = tmp_path / "eval" / "local"
    rows = [json.loads(x) for x in (folder / "results.jsonl").read_text().splitlines()]
    summary = json.loads((folder / "pass_at_k.json").read_text())
    n = 4 if decoding == "sample" else 1
    assert len(rows) == 4 * n and {r["task_id"] for r in rows} == {
        f"local/{p}" for p in ("palindrome_check", "gcd_lcm", "max_subarray", "power_mod")
    }
    assert all(set(r) == {"task_id", "completion", "passed", "result"} for r in rows)
    assert summary["pass@1"] == sum(r["passed"] for r in rows) / len(rows)  # computed, not made up
    assert cli.trainer.callback_metrics["test/n_problems"] == 4
    if decoding == "speculative":
        assert "test/spec_tokens_per_pass" in cli.trainer.callback_metrics


def test_eval_input_errors(tmp_path, tiny_bundle):
    with pytest.raises(ValueError, match="one completion per problem: set n_samples=1"):
        main(
            [
                "test",
                "--config",
                str(ROOT / "configs" / "eval" / "local.yaml"),
                "--model.init_args.model",
                str(tiny_bundle),
                "--model.init_args.decoding",
                "speculative",
            ]
        )
    with pytest.raises((FileNotFoundError, ValueError), match="problems file not found"):  # jsonargparse wraps it
        main(
            [
                "test",
                "--config",
                str(ROOT / "configs" / "eval" / "mbpp.yaml"),
                "--model.init_args.model",
                str(tiny_bundle),
                "--data.init_args.problems",
                str(tmp_path / "none.jsonl"),
            ]
        )


def test_wmtp_predict_writes_samples_that_score(tmp_path, tiny_bundle, capsys):
    from tests.conftest import load_script

    local_eval(
        "predict",
        tmp_path,
        tiny_bundle,
        "--model.init_args.max_new_tokens",
        "16",
        "--model.init_args.n_samples",
        "2",
        "--model.init_args.ks",
        "[1,2]",
    )
    samples = tmp_path / "predict" / "local_samples.rank0.jsonl"
    rows = [json.loads(x) for x in samples.read_text().splitlines()]
    assert len(rows) == 8 and all(set(r) == {"task_id", "completion"} for r in rows)
    summary = load_script("score_samples")["main"](
        ["--benchmark", "local", "--samples", str(samples), "--k", "1,2", "--workers", "2", "--timeout", "3"]
    )
    assert summary["n_samples"] == 8 and 0.0 <= summary["pass@2"] <= 1.0
