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
    line_pools,
    replace_lines,
    select_all,
    select_balanced,
    select_correct,
    select_curriculum,
    step_micro_ids,
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


def test_select_all_recycles_past_the_end():
    idx = make_index(30)
    sel = select_all(idx, 70, seed=0)
    assert len(sel) == 70 and sorted(set(sel.tolist())) == list(range(30))
    assert sorted(sel[:30].tolist()) == list(range(30))  # a full pass before any line repeats


def test_line_pools_follow_the_plan():
    idx = make_index(200)
    correct = idx["is_correct"].astype(bool)
    pools = line_pools(idx, "correct", difficulty_range=(4, 7))
    inside = (idx["difficulty"] >= 4) & (idx["difficulty"] <= 7)
    assert (pools[correct & inside] == 1).all() and (pools[~(correct & inside)] == -1).all()
    pools = line_pools(idx, "balanced")
    assert (pools == correct).all()
    pools = line_pools(idx, "curriculum", split_correct=False)  # bins low 0, medium 1, high 2; 0 in no bin
    expected = [
        -1 if (b := bin_of(int(d), DEFAULT_BINS)) is None else list(DEFAULT_BINS).index(b) for d in idx["difficulty"]
    ]
    assert pools.tolist() == expected
    split = line_pools(idx, "curriculum")
    assert ((split == 2 * pools + correct) | (pools == -1)).all()


def test_replace_lines_keeps_positions_and_pools():
    idx = make_index(400)
    pools = line_pools(idx, "curriculum")
    sel = select_curriculum(idx, 100, seed=0, correct_ratio=0.5)
    bad = sel[[3, 50, 99]]
    out = replace_lines(sel, bad, pools, seed=0)
    assert len(out) == len(sel) and not set(bad.tolist()) & set(out.tolist())
    assert (out == sel).sum() == 97 and (pools[out] == pools[sel]).all()  # same pool at every position
    assert len(set(out.tolist())) == 100  # replacements were unused lines
    assert np.array_equal(out, replace_lines(sel, bad, pools, seed=0))  # deterministic
    tiny = make_index(6)
    tiny["is_correct"] = [1, 1, 0, 0, 0, 0]
    p = line_pools(tiny, "correct")
    with pytest.raises(ValueError, match="every line of pool 1 is bad"):
        replace_lines(np.array([0, 1]), np.array([0, 1]), p, seed=0)
    again = replace_lines(np.array([0, 1, 0]), np.array([0]), p, seed=0)  # pool exhausted: recycled
    assert again.tolist() == [1, 1, 1]


def test_step_micro_ids_by_hand():
    # W=2 ranks, A=2 micro-batches, B=2 rows: E=8 positions; j -> rank j%2, rank-local row j//2
    assert step_micro_ids(8, 2, 2, 2).tolist() == [0, 2, 0, 2, 1, 3, 1, 3]
    assert step_micro_ids(5, 2, 2, 2).tolist() == [0, 2, 0, 2, 1]  # a short last step
    assert step_micro_ids(4, 1, 4, 1).tolist() == [0, 1, 2, 3]
    # and it agrees with what SelectionSampler hands each rank
    W, A, B = 3, 2, 2
    sel = np.arange(5 * W * A * B)
    ids = step_micro_ids(W * A * B, W, A, B)
    for r in range(W):
        mine = SelectionSampler(sel, r, W).lines
        for s in range(5):
            step = sel[s * W * A * B : (s + 1) * W * A * B]
            for m in range(A):
                micro = mine[s * A * B + m * B : s * A * B + (m + 1) * B]
                assert step[ids == r * A + m].tolist() == micro.tolist()
