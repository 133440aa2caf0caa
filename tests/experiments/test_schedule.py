"""The learning-rate schedule by hand, and that it follows the run's length."""

from __future__ import annotations

import math

import pytest
import torch

from wmtp_lightning.experiments.schedule import WarmupCosine, warmup_cosine


def test_warmup_cosine_by_hand():
    # warm-up 4 steps: 1/4, 2/4, 3/4, 4/4; then cosine over steps 4..9 (total 10) down to 0.1
    assert [warmup_cosine(s, 4, 10, 0.1) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert warmup_cosine(4, 4, 10, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(9, 4, 10, 0.1) == pytest.approx(0.1)  # the last step reaches min_ratio
    mid = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.4))  # step 6: progress (6 − 4) / 5
    assert warmup_cosine(6, 4, 10, 0.1) == pytest.approx(mid)
    assert warmup_cosine(50, 4, 10, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(0, 0, 1, 0.0) == 1.0


def test_scheduler_takes_the_runs_length():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    sched = WarmupCosine(opt, warmup_steps=2, min_ratio=0.5)
    with pytest.raises(RuntimeError, match="total_steps is unset"):
        sched.multiplier(3)
    sched.set_total_steps(6)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:2] == [1.0, 2.0] and lrs[-1] == pytest.approx(1.0)  # 2·min_ratio at the last step
    with pytest.raises(ValueError, match="min_ratio"):
        WarmupCosine(opt, min_ratio=1.5)
