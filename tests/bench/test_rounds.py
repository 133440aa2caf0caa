"""Interleaved rounds, spreads and the matmul peak shared by the comparison benches."""

from __future__ import annotations

import math

import torch


def test_rounds_rotate_the_order_and_time_every_call(bench):
    rounds = bench("rounds")
    calls: list[str] = []
    times = rounds.interleaved({n: (lambda n=n: calls.append(n)) for n in "abc"}, rounds=3, warmup=1)
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")  # warm-up, then rotated rounds
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(t >= 0 for v in times.values() for t in v)


def test_spread_and_per_round_ratios_by_hand(bench):
    rounds = bench("rounds")
    assert rounds.spread([3.0, 1.0, 2.0, 10.0]) == {"min": 1.0, "median": 2.5, "max": 10.0}
    assert rounds.per_round([2.0, 9.0], [1.0, 3.0]) == [2.0, 3.0]
    assert rounds.fmt({"min": 1, "median": 2, "max": 3}) == "2 (1–3)"


def test_matmul_peak_and_fused_adamw_on_this_machine(bench):
    rounds = bench("rounds")
    peak = rounds.matmul_peak("cpu", torch.float32, n=128, reps=2)
    assert math.isfinite(peak) and peak > 1e6
    assert rounds.fused_adamw_supported([torch.zeros(2, requires_grad=True)])  # torch >= 2.4 on CPU
    assert "torch" in rounds.machine("cpu")
