"""pass@k as a torchmetrics Metric, so problems can be shared across ranks and the result synced."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from wmtp_lightning.evaluation.passk import estimate_pass_at_k


class PassAtK(Metric):
    """Accumulates (n samples, c correct) per problem; `compute` returns {"pass@k": value}.

    A k larger than some problem's n is left out (see `estimate_pass_at_k`).
    """

    full_state_update = False

    def __init__(self, ks: Sequence[int] = (1,), **kwargs):
        super().__init__(**kwargs)
        self.ks = tuple(ks)
        self.add_state("n", default=[], dist_reduce_fx="cat")
        self.add_state("c", default=[], dist_reduce_fx="cat")

    def update(self, n: torch.Tensor, c: torch.Tensor) -> None:
        self.n.append(n.reshape(-1).long())
        self.c.append(c.reshape(-1).long())

    def compute(self) -> dict[str, torch.Tensor]:
        n, c = dim_zero_cat(self.n).tolist(), dim_zero_cat(self.c).tolist()
        if not n:
            return {}
        values, _ = estimate_pass_at_k(list(zip(n, c)), self.ks)
        return {k: torch.tensor(v) for k, v in values.items()} | {"n_problems": torch.tensor(float(len(n)))}
