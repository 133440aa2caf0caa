"""Which lines to train on, in which order, on which rank (DESIGN §5).

Selection functions are pure numpy over the index arrays and return an ordered array of line
numbers; they never touch the JSONL. Four strategies:

  - `select_correct`   baseline / Rho-1: correct solutions only.
  - `select_balanced`  critic stage 1: a `correct_ratio` mix of correct and incorrect.
  - `select_curriculum` critic stage 2: phases over training progress, each with its own mix of
    difficulty bins; the order of the result *is* the curriculum (position / n_samples = progress,
    and `n_samples` is what the run consumes, so phases follow training steps).
  - `select_all`       every line, shuffled.

Draws are without replacement while a pool has lines; when a pool runs out it is recycled (a new
pass in a fresh random order) and a warning gives the counts. An empty pool with non-zero weight
is reported and its share given to the other bins of the phase.

A line found bad at set-up is replaced by `replace_lines` with an unused line of the same pool
(`line_pools`), so the plan (size, ratio, phase mix) is what was asked for.

`SelectionSampler` gives rank r the lines `selection[r::world_size]` (cut to equal length so that
no rank waits for another at the end) and saves how many it has consumed, so a resumed run sees
exactly the remaining lines in the same order. Rank r's i-th line is `selection[r + i·W]`: with
`batch_size` B and `accumulate` A, optimizer step s covers the global positions [s·E, (s+1)·E),
E = B·A·W, and `step_micro_ids` says which micro-batch each of them lands in.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
from torch.utils.data import DistributedSampler

from wmtp_lightning.data.schema import DEFAULT_BINS, check_bins
from wmtp_lightning.errors import BadInput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase:
    """A stretch [start, end) of training progress and the bin mix drawn in it."""

    start: float
    end: float
    weights: dict[str, float] = field(default_factory=dict)


# The seed's schedule: easy first, hard last.
DEFAULT_SCHEDULE: tuple[Phase, ...] = (
    Phase(0.0, 0.3, {"low": 0.7, "medium": 0.3, "high": 0.0}),
    Phase(0.3, 0.7, {"low": 0.3, "medium": 0.6, "high": 0.1}),
    Phase(0.7, 1.0, {"low": 0.1, "medium": 0.5, "high": 0.4}),
)


def difficulty_values(index: np.ndarray, field_name: str = "difficulty") -> np.ndarray:
    """The per-line value bins are defined over: the enum, or the Codeforces rating."""
    if field_name == "difficulty":  # int16 keeps 3.7 M values at 7 MB (ratings reach 25500 at most)
        return index["difficulty"].astype(np.int16)
    if field_name == "cf_rating":
        return index["rating"].astype(np.int16) * 100
    raise BadInput(f"difficulty_field must be 'difficulty' or 'cf_rating', got {field_name!r}")


def largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` into integer parts proportional to `weights` (sums exactly to `total`)."""
    w = np.asarray(weights, dtype=np.float64)
    if total == 0 or w.sum() <= 0:
        return [0] * len(w)
    exact = w / w.sum() * total
    parts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - parts), kind="stable")
    parts[order[: total - parts.sum()]] += 1
    return parts.tolist()


def draw(pool: np.ndarray, k: int, rng: np.random.Generator, label: str) -> np.ndarray:
    """k lines from `pool` without replacement; recycles the pool (with a warning) if k > len(pool)."""
    if k <= 0:
        return pool[:0]
    if len(pool) == 0:
        raise BadInput(f"cannot draw {k} samples from {label}: it has no lines")
    if k > len(pool):
        log.warning(
            "%s: %d lines requested but only %d available; recycling them (%d passes)",
            label,
            k,
            len(pool),
            math.ceil(k / len(pool)),
        )
    passes = [rng.permutation(pool) for _ in range(math.ceil(k / len(pool)))]
    return np.concatenate(passes)[:k]


def _pool(index: np.ndarray, correct: bool | None, values: np.ndarray, rng_lohi: tuple[int, int] | None) -> np.ndarray:
    mask = np.ones(len(index), dtype=bool)
    if correct is not None:
        mask &= index["is_correct"].astype(bool) == correct
    if rng_lohi is not None:
        mask &= (values >= rng_lohi[0]) & (values <= rng_lohi[1])
    return np.flatnonzero(mask).astype(np.int32)  # line numbers: 4 bytes each is enough for 2^31 lines


def select_correct(
    index: np.ndarray,
    n_samples: int,
    seed: int,
    difficulty_range: tuple[int, int] | None = None,
    difficulty_field: str = "difficulty",
) -> np.ndarray:
    """Baseline / Rho-1: `n_samples` correct solutions in a seeded random order."""
    rng = np.random.default_rng(seed)
    pool = _pool(index, True, difficulty_values(index, difficulty_field), difficulty_range)
    return draw(pool, n_samples, rng, "correct solutions")


def select_balanced(
    index: np.ndarray,
    n_samples: int,
    seed: int,
    correct_ratio: float = 0.5,
    difficulty_range: tuple[int, int] | None = None,
    difficulty_field: str = "difficulty",
) -> np.ndarray:
    """Stage 1: `correct_ratio` correct, the rest incorrect, shuffled together."""
    if not 0.0 <= correct_ratio <= 1.0:
        raise BadInput(f"correct_ratio must be in [0, 1], got {correct_ratio}")
    rng = np.random.default_rng(seed)
    values = difficulty_values(index, difficulty_field)
    n_correct, n_incorrect = largest_remainder(n_samples, [correct_ratio, 1 - correct_ratio])
    parts = [
        draw(_pool(index, True, values, difficulty_range), n_correct, rng, "correct solutions"),
        draw(_pool(index, False, values, difficulty_range), n_incorrect, rng, "incorrect solutions"),
    ]
    return rng.permutation(np.concatenate(parts))


def select_all(index: np.ndarray, n_samples: int, seed: int) -> np.ndarray:
    """Every line (correct or not, any difficulty) in a seeded random order, recycled past the end."""
    return draw(np.arange(len(index), dtype=np.int64), n_samples, np.random.default_rng(seed), "all lines")


def check_schedule(schedule: Sequence[Phase], bins: dict[str, tuple[int, int]]) -> None:
    if not schedule:
        raise BadInput("difficulty_schedule is empty")
    if abs(schedule[0].start) > 1e-9 or abs(schedule[-1].end - 1.0) > 1e-9:
        raise BadInput("difficulty_schedule must cover progress [0, 1]")
    for a, b in pairwise(schedule):
        if abs(a.end - b.start) > 1e-9:
            raise BadInput(f"difficulty_schedule phases must be contiguous: {a.end} != {b.start}")
    for p in schedule:
        if p.end <= p.start:
            raise BadInput(f"difficulty_schedule phase [{p.start}, {p.end}) is empty")
        unknown = set(p.weights) - set(bins)
        if unknown:
            raise BadInput(
                f"difficulty_schedule phase [{p.start}, {p.end}): unknown bin(s) {sorted(unknown)}; "
                f"bins are {sorted(bins)}"
            )
        if any(w < 0 for w in p.weights.values()) or sum(p.weights.values()) <= 0:
            raise BadInput(f"difficulty_schedule phase [{p.start}, {p.end}): weights must be >= 0 with a positive sum")


def select_curriculum(
    index: np.ndarray,
    n_samples: int,
    seed: int,
    schedule: Sequence[Phase] = DEFAULT_SCHEDULE,
    bins: dict[str, tuple[int, int]] | None = None,
    difficulty_field: str = "difficulty",
    correct_ratio: float | None = None,
) -> np.ndarray:
    """Stage 2: phase p fills positions [start·n, end·n) with its bin mix, shuffled within the phase.

    Lines are drawn without replacement across the whole run (a line seen in an easy phase is not
    drawn again later) until a bin runs out. `correct_ratio=None` keeps the natural mix.
    """
    bins = check_bins(bins or DEFAULT_BINS)
    check_schedule(schedule, bins)
    rng = np.random.default_rng(seed)
    values = difficulty_values(index, difficulty_field)
    bounds = [round(p.start * n_samples) for p in schedule] + [n_samples]
    labels = [None] if correct_ratio is None else [True, False]
    # One shuffled queue per (bin, label); phases consume from the front.
    queues: dict[tuple[str, Any], np.ndarray] = {}
    cursor: dict[tuple[str, Any], int] = {}
    for name, lohi in bins.items():
        for lab in labels:
            queues[(name, lab)] = rng.permutation(_pool(index, lab, values, lohi))
            cursor[(name, lab)] = 0
    out = []
    for p, lo, hi in zip(schedule, bounds, bounds[1:]):
        weights = {b: w for b, w in p.weights.items() if w > 0}
        empty = [b for b in weights if sum(len(queues[(b, lab)]) for lab in labels) == 0]
        if empty:
            log.warning(
                "curriculum phase [%.2f, %.2f): bin(s) %s have no lines; their weight goes to the others",
                p.start,
                p.end,
                empty,
            )
            weights = {b: w for b, w in weights.items() if b not in empty}
            if not weights:
                raise BadInput(f"curriculum phase [{p.start}, {p.end}): every bin with weight is empty")
        names = list(weights)
        phase = []
        for name, k in zip(names, largest_remainder(hi - lo, [weights[b] for b in names])):
            split = [k] if correct_ratio is None else largest_remainder(k, [correct_ratio, 1 - correct_ratio])
            for lab, kk in zip(labels, split):
                key = (name, lab)
                q, c = queues[key], cursor[key]
                if c + kk > len(q):
                    label = f"bin {name!r}" + ("" if lab is None else f" ({'correct' if lab else 'incorrect'})")
                    log.warning(
                        "curriculum: %s exhausted (%d lines, %d used, %d more wanted); recycling it",
                        label,
                        len(q),
                        c,
                        kk,
                    )
                    q = np.concatenate([q[c:], draw(q, kk - (len(q) - c), rng, label)])
                    queues[key], c = q, 0
                phase.append(q[c : c + kk])
                cursor[key] = c + kk
        out.append(rng.permutation(np.concatenate(phase)) if phase else np.zeros(0, dtype=np.int64))
    return np.concatenate(out).astype(np.int64)


def line_pools(
    index: np.ndarray,
    sampling: str,
    difficulty_range: tuple[int, int] | None = None,
    difficulty_field: str = "difficulty",
    bins: dict[str, tuple[int, int]] | None = None,
    split_correct: bool = True,
) -> np.ndarray:
    """The pool each line is drawn from under `sampling` (int per line; -1: never drawn).

    Pools are what a selection keeps in proportion: correct vs incorrect ("balanced", and
    "curriculum" unless it keeps the natural mix, `split_correct=False`), difficulty bins
    ("curriculum"). Replacing a line by another of its pool leaves the plan unchanged.
    """
    values = difficulty_values(index, difficulty_field)
    correct = index["is_correct"].astype(np.int64)
    pools = np.full(len(index), -1, dtype=np.int64)
    if sampling in ("correct", "balanced"):
        keep = np.ones(len(index), dtype=bool)
        if difficulty_range is not None:
            keep = (values >= difficulty_range[0]) & (values <= difficulty_range[1])
        if sampling == "correct":
            keep &= correct == 1
        pools[keep] = correct[keep]
    elif sampling == "curriculum":
        for b, (lo, hi) in enumerate(check_bins(bins or DEFAULT_BINS).values()):
            inside = (values >= lo) & (values <= hi)
            pools[inside] = 2 * b + correct[inside] if split_correct else b
    elif sampling == "all":
        pools[:] = 0
    else:
        raise BadInput(f"unknown sampling {sampling!r}")
    return pools


def replace_lines(selection: np.ndarray, bad: np.ndarray, pools: np.ndarray, seed: int) -> np.ndarray:
    """`selection` with every occurrence of a `bad` line replaced by a good line of the same pool.

    Replacements come, in a seeded random order, from the pool's lines that are neither bad nor
    already selected; a pool with none left (smaller than its share, so already recycled) gives
    any of its good lines again. Positions keep their place, so the size, the ratios and the phase
    mix of the plan are unchanged. The caller checks the new lines (they may be bad too) and
    repeats until none is.
    """
    out = np.array(selection, dtype=np.int64)
    is_bad = np.zeros(len(pools), dtype=bool)
    is_bad[np.asarray(bad, dtype=np.int64)] = True
    positions = np.flatnonzero(is_bad[out])
    used = np.zeros(len(pools), dtype=bool)
    used[out] = True
    rng = np.random.default_rng([seed, len(positions)])
    for pool in np.unique(pools[out[positions]]).tolist():
        where = positions[pools[out[positions]] == pool]
        good = (pools == pool) & ~is_bad
        fresh = rng.permutation(np.flatnonzero(good & ~used))
        if len(fresh) < len(where):
            spare = np.flatnonzero(good)
            if len(spare) == 0:
                raise BadInput(f"every line of pool {pool} is bad: nothing left to replace {len(where)} line(s)")
            fresh = np.concatenate([fresh, draw(spare, len(where) - len(fresh), rng, f"pool {pool}")])
        out[where] = fresh[: len(where)]
    return out


def step_micro_ids(n: int, world_size: int, accumulate: int, batch_size: int) -> np.ndarray:
    """Micro-batch id (`rank × accumulate + micro index`) of the first n global positions of a step.

    Position j of a step goes to rank j mod W as that rank's (j // W)-th line of the step, which
    falls in its micro-batch (j // W) // B.
    """
    j = np.arange(n, dtype=np.int64)
    return (j % world_size) * accumulate + (j // world_size) // batch_size


def fingerprint(selection: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(selection, dtype=np.int64).tobytes()).hexdigest()[:16]


class SelectionSampler(DistributedSampler):
    """Yields this rank's share of an ordered selection, resumable at any sample.

    Rank r gets `selection[r::world_size]`, cut to the same length on every rank (so no rank runs
    a step the others do not: under FSDP every forward is a collective). `advance(n)` is called
    by the data module when a batch of n items reaches the training step (not when it was
    prefetched), so the saved position is exact whatever the number of loader workers.

    It is a `DistributedSampler` by type because it already shards by rank: Lightning leaves
    such samplers alone instead of wrapping them in a second, distributed one, whatever
    `trainer.use_distributed_sampler` says. (`DistributedSampler.__init__` is not called: it
    would ask the process group for the rank and needs a dataset; this class holds its own state.)
    """

    def __init__(self, selection: np.ndarray, rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise BadInput(f"rank {rank} out of range for world_size {world_size}")
        per_rank = len(selection) // world_size  # equal share: no rank waits at the end
        self.lines = np.asarray(selection[rank::world_size][:per_rank], dtype=np.int64)
        self.fingerprint = fingerprint(selection)
        self.rank, self.world_size = rank, world_size
        self.consumed = 0
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.lines) - self.consumed if self.consumed < len(self.lines) else len(self.lines)

    def __iter__(self) -> Iterator[int]:
        if self.consumed >= len(self.lines):  # the previous pass ended: start the next one
            self.epoch += 1
            self.consumed = 0
        yield from self.lines[self.consumed :].tolist()

    def advance(self, n: int) -> None:
        self.consumed += n

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this every epoch; passes over the selection are counted in `__iter__`."""

    def state_dict(self) -> dict[str, Any]:
        return {
            "consumed": self.consumed,
            "epoch": self.epoch,
            "fingerprint": self.fingerprint,
            "rank": self.rank,
            "world_size": self.world_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["fingerprint"] != self.fingerprint or state["world_size"] != self.world_size:
            raise BadInput(
                "the data selection differs from the checkpoint's (fingerprint "
                f"{state['fingerprint']} / world_size {state['world_size']} vs {self.fingerprint} / "
                f"{self.world_size}): seed, n_samples, sampling options, dataset or device count changed"
            )
        self.consumed, self.epoch = int(state["consumed"]), int(state["epoch"])
