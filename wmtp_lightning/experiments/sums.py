"""Exact metrics over an optimizer step or a validation epoch: sums, not means of means.

A mean of per-micro-batch means depends on how a batch is split (a short row weighs as much as a
long one); a ratio of sums does not. `RunningSums` adds numerators and denominators over the
micro-batches of an optimizer step (or the batches of a validation epoch), then reduces both over
ranks in one collective and reports num / den (or the plain sum when an entry has no denominator).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class RunningSums:
    def __init__(self) -> None:
        self._num: dict[str, torch.Tensor] = {}
        self._den: dict[str, torch.Tensor | None] = {}

    def __bool__(self) -> bool:
        return bool(self._num)

    def add(self, name: str, num: torch.Tensor, den: torch.Tensor | float | None = None) -> None:
        """Add to `name`: num / den is reported; den None reports the sum of num alone."""
        num = num.detach().double()
        if name in self._num:
            self._num[name] = self._num[name] + num
            if den is not None:
                self._den[name] = self._den[name] + torch.as_tensor(den, dtype=torch.float64, device=num.device)
        else:
            self._num[name] = num
            self._den[name] = None if den is None else torch.as_tensor(den, dtype=torch.float64, device=num.device)

    def compute(self, all_reduce_sum: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """{name: value} after summing over ranks with `all_reduce_sum` (one call); empty entries are left out."""
        if not self._num:
            return {}
        names = sorted(self._num)
        flat = torch.stack(
            [self._num[n] for n in names] + [self._den[n] if self._den[n] is not None else self._num[n] for n in names]
        )
        if all_reduce_sum is not None:
            flat = all_reduce_sum(flat)
        nums, dens = flat[: len(names)], flat[len(names) :]
        out = {}
        for i, n in enumerate(names):
            if self._den[n] is None:
                out[n] = nums[i].float()
            elif dens[i] > 0:
                out[n] = (nums[i] / dens[i]).float()
        return out

    def reset(self) -> None:
        self._num.clear()
        self._den.clear()
