"""EvalDataModule: each rank evaluates its own share of the problems, each problem exactly once."""

from __future__ import annotations

from types import SimpleNamespace

from torch.utils.data import DistributedSampler

from wmtp_lightning.evaluation.benchmarks import load_local
from wmtp_lightning.evaluation.datamodule import EvalDataModule


def test_ranks_split_the_problems_without_repeats_or_a_second_sharding():
    everything = [p.task_id for p in load_local("all")]
    seen = []
    for rank in range(3):
        dm = EvalDataModule(benchmark="local", split="all", batch_size=2)
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=3)
        dm.setup("test")
        loader = dm.test_dataloader()
        # Lightning replaces any sampler that is not a DistributedSampler with its own (which would
        # shard the rank's share again and pad it with repeats); this one it leaves alone.
        assert isinstance(loader.sampler, DistributedSampler)
        seen += [p.task_id for batch in loader for p in batch]
    assert sorted(seen) == sorted(everything) and len(seen) == len(everything)
