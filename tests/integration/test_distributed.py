"""2-process CPU training (gloo): DDP and FSDP2 through Lightning's ModelParallelStrategy."""

from __future__ import annotations

import json

import mlflow
import pytest

from tests.integration.helpers import run
from wmtp_lightning.models import load_bundle

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("strategy", ["ddp", "fsdp2", "fsdp2+sequential"])
def test_two_process_training(tmp_path, strategy, tiny_bundle, local_dataset, micro_tokenizer_path):
    db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name, _, mode = strategy.partition("+")
    args = [
        "tests/integration/dist_train.py",
        name,
        str(tmp_path / "out"),
        str(tiny_bundle),
        str(local_dataset),
        str(micro_tokenizer_path),
        *([mode] if mode else []),
    ]
    run(args, timeout=300, MLFLOW_TRACKING_URI=db)
    ranks = [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    assert not set(ranks[0]["lines"]) & set(ranks[1]["lines"])  # disjoint data
    assert len(ranks[0]["lines"]) == len(ranks[1]["lines"]) == 24
    for r in ranks:
        assert r["losses"][-1] < r["losses"][0] - 0.5, r["losses"]  # it learns
    runs = mlflow.MlflowClient(db).search_runs([mlflow.MlflowClient(db).get_experiment_by_name("dist").experiment_id])
    assert len(runs) == 1  # rank 0 alone logs
    assert "train/loss" in runs[0].data.metrics
    model = load_bundle(tmp_path / "out" / "export")  # exported (gathered from shards) by rank 0
    assert model.args.n_future_tokens == 3


def test_one_step_update_is_the_same_on_two_ranks(tmp_path, tiny_bundle, local_dataset, micro_tokenizer_path):
    """DESIGN §3: 2 ranks × 2 accumulated micro-batches (FSDP2) = 1 process × 1 micro-batch of the same 4 rows."""
    import torch

    from tests.experiments.test_split_invariance import one_step_update

    args = ["tests/integration/dist_train.py", "step", str(tmp_path / "out"), str(tiny_bundle)]
    run([*args, str(local_dataset), str(micro_tokenizer_path)], timeout=300)
    sharded = torch.load(tmp_path / "out" / "update.pt")
    joint = one_step_update("baseline", tiny_bundle, local_dataset, micro_tokenizer_path, 4, 1)
    assert sum(float(d.abs().sum()) for d in joint.values()) > 0
    for name, d in joint.items():
        torch.testing.assert_close(sharded[name.removeprefix("model.")], d, rtol=1e-4, atol=1e-7, msg=name)
