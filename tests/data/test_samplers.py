"""Selection strategies, curriculum composition, rank sharding and exact resume."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from wmtp_lightning.data.index import INDEX_DTYPE
from wmtp_lightning.data.samplers import (
    DEFAULT_SCHEDULE,
    Phase,
    SelectionSampler,
    largest_remainder,
    select_balanced,
    select_correct,
    select_curriculum,
)
from wmtp_lightning.data.schema import DEFAULT_BINS, bin_of


def make_index(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    idx = np.zeros(n, dtype=INDEX_DTYPE)
    idx["difficulty"] = rng.integers(0, 12, n)
    idx["is_correct"] = rng.integers(0, 2, n)
    idx["rating"] = rng.integers(8, 30, n)
    return idx


def test_largest_remainder_is_exact():
    assert largest_remainder(10, [0.7, 0.3, 0.0]) == [7, 3, 0]
    assert sum(largest_remainder(7, [1, 1, 1])) == 7
    assert largest_remainder(0, [1, 2]) == [0, 0]


def test_correct_only_and_range():
    idx = make_index()
    sel = select_correct(idx, 500, seed=1, difficulty_range=(4, 7))
    assert len(sel) == len(set(sel.tolist())) == 500
    assert idx["is_correct"][sel].all() and ((idx["difficulty"][sel] >= 4) & (idx["difficulty"][sel] <= 7)).all()
    assert np.array_equal(sel, select_correct(idx, 500, seed=1, difficulty_range=(4, 7)))
    assert not np.array_equal(sel, select_correct(idx, 500, seed=2, difficulty_range=(4, 7)))
    by_rating = select_correct(idx, 50, seed=0, difficulty_range=(1000, 1500), difficulty_field="cf_rating")
    assert ((idx["rating"][by_rating] >= 10) & (idx["rating"][by_rating] <= 15)).all()


def test_balanced_ratio_is_exact():
    idx = make_index()
    sel = select_balanced(idx, 1001, seed=0, correct_ratio=0.5)
    assert idx["is_correct"][sel].sum() == 501 and len(set(sel.tolist())) == 1001
    sel = select_balanced(idx, 100, seed=0, correct_ratio=0.2)
    assert idx["is_correct"][sel].sum() == 20


def test_curriculum_phases_have_the_scheduled_mix():
    idx = make_index()
    n = 1000
    sel = select_curriculum(idx, n, seed=0)
    assert len(sel) == n and len(set(sel.tolist())) == n  # without replacement while bins last
    bins = np.array([bin_of(int(d), DEFAULT_BINS) for d in idx["difficulty"][sel]])
    for phase in DEFAULT_SCHEDULE:
        part = bins[round(phase.start * n) : round(phase.end * n)]
        m = len(part)
        expected = dict(zip(phase.weights, largest_remainder(m, list(phase.weights.values()))))
        assert {b: int((part == b).sum()) for b in DEFAULT_BINS} == expected
    sel_cr = select_curriculum(idx, 400, seed=0, correct_ratio=0.5)
    assert idx["is_correct"][sel_cr].sum() == 200


def test_exhausted_and_empty_bins_are_reported(caplog):
    idx = make_index(300)
    idx["difficulty"][idx["difficulty"] >= 8] = 1  # "high" is now empty
    caplog.set_level(logging.WARNING)
    sel = select_curriculum(idx, 2000, seed=0)
    assert len(sel) == 2000
    text = caplog.text
    assert "['high'] have no lines" in text
    assert "exhausted" in text and "recycling" in text
    with pytest.raises(ValueError, match="every bin with weight is empty"):
        select_curriculum(idx, 10, seed=0, schedule=[Phase(0, 1, {"high": 1.0})])


def test_schedule_validation():
    idx = make_index(100)
    with pytest.raises(ValueError, match="cover progress"):
        select_curriculum(idx, 10, seed=0, schedule=[Phase(0, 0.5, {"low": 1})])
    with pytest.raises(ValueError, match="unknown bin"):
        select_curriculum(idx, 10, seed=0, schedule=[Phase(0, 1, {"easy": 1})])
    with pytest.raises(ValueError, match="overlap"):
        select_curriculum(idx, 10, seed=0, bins={"a": (1, 5), "b": (5, 9)})


def test_ranks_are_disjoint_equal_and_resume_exactly():
    sel = np.random.default_rng(0).permutation(103)
    samplers = [SelectionSampler(sel, r, 4) for r in range(4)]
    shares = [list(s) for s in samplers]
    assert all(len(s) == 103 // 4 for s in shares)
    assert len(set().union(*map(set, shares))) == sum(map(len, shares))
    assert shares[1] == sel[1::4][: 103 // 4].tolist()

    s = SelectionSampler(sel, 0, 1)
    full = list(s)
    s.advance(37)
    state = s.state_dict()
    resumed = SelectionSampler(sel, 0, 1)
    resumed.load_state_dict(state)
    assert list(resumed) == full[37:] and len(resumed) == 103 - 37
    with pytest.raises(ValueError, match="differs from the checkpoint"):
        SelectionSampler(sel[::-1].copy(), 0, 1).load_state_dict(state)
    resumed.advance(103 - 37)
    assert list(resumed) == full and resumed.epoch == 1  # next pass starts over


def test_draw_more_than_pool_recycles():
    idx = make_index(40)
    sel = select_correct(idx, 100, seed=0)
    n_correct = int(idx["is_correct"].sum())
    assert len(sel) == 100 and len(set(sel.tolist())) == n_correct
    assert math.ceil(100 / n_correct) >= 2


def test_lightning_never_wraps_the_sampler():
    """SelectionSampler shards by rank itself; Lightning must not shard it again in a DistributedSampler."""
    from lightning.pytorch.trainer.connectors.data_connector import _DataConnector
    from torch.utils.data import DataLoader, DistributedSampler

    s = SelectionSampler(np.arange(10), rank=1, world_size=2)
    assert isinstance(s, DistributedSampler)
    assert s.lines.tolist() == [1, 3, 5, 7, 9]
    s.set_epoch(5)  # what Lightning calls each epoch: the sampler's own position is untouched
    assert list(s) == [1, 3, 5, 7, 9] and s.epoch == 0

    class Trainer:  # the two flags Lightning reads to decide whether to wrap a sampler
        class _accelerator_connector:
            use_distributed_sampler = True
            is_distributed = True

    assert not _DataConnector(Trainer())._requires_distributed_sampler(DataLoader(range(10), sampler=s))
