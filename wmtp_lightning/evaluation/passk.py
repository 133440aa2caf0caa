"""pass@k with the unbiased estimator (Chen et al., 2021)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 − C(n−c, k) / C(n, k): the chance that at least one of k samples drawn from n passes.

    Computed as 1 − Π_{i=n−c+1}^{n} (1 − k/i), which never forms the huge binomials.
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"k={k} needs at least k samples per problem, got n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def estimate_pass_at_k(counts: Iterable[tuple[int, int]], ks: Sequence[int]) -> tuple[dict[str, float], dict[str, str]]:
    """Mean pass@k over problems given (n, c) per problem.

    A k that some problem has fewer than k samples for is not estimated (no fabricated number):
    it is returned in the second dict with the reason.
    """
    counts = list(counts)
    if not counts:
        raise ValueError("no problems to score")
    out: dict[str, float] = {}
    skipped: dict[str, str] = {}
    n_min = min(n for n, _ in counts)
    for k in ks:
        if k > n_min:
            skipped[f"pass@{k}"] = f"needs >= {k} samples for every problem; the fewest is {n_min}"
        else:
            out[f"pass@{k}"] = math.fsum(pass_at_k(n, c, k) for n, c in counts) / len(counts)
    return out, skipped
