"""The unbiased pass@k estimator against exact binomials."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import pytest

from wmtp_lightning.evaluation.passk import estimate_pass_at_k, pass_at_k


def exact(n: int, c: int, k: int) -> float:
    return float(1 - Fraction(comb(n - c, k), comb(n, k)))


def test_by_hand():
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)  # 1 − C(3,2)/C(5,2) = 1 − 3/10
    assert pass_at_k(5, 0, 3) == 0.0 and pass_at_k(5, 5, 1) == 1.0
    assert pass_at_k(5, 3, 3) == 1.0  # n − c < k: every draw of 3 contains a pass


@pytest.mark.parametrize(("n", "c", "k"), [(200, 13, 100), (1000, 500, 100), (1000, 1, 10), (5000, 17, 1000)])
def test_stable_for_large_n(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(exact(n, c, k), rel=1e-9, abs=1e-12)


def test_errors_and_skips():
    with pytest.raises(ValueError, match="k=10 needs at least k samples"):
        pass_at_k(5, 1, 10)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(5, 6, 1)
    values, skipped = estimate_pass_at_k([(10, 3), (4, 0)], [1, 5])
    assert values == {"pass@1": pytest.approx((0.3 + 0.0) / 2)}
    assert "the fewest is 4" in skipped["pass@5"]
