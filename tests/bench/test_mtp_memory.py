"""The memory bench: every configuration in its own process, ratios per round."""

from __future__ import annotations

import json
import math

import pytest


@pytest.mark.slow
def test_tiny_run_measures_the_step_increase(bench, tmp_path):
    mem = bench("mtp_memory")
    out = tmp_path / "memory.json"
    r = mem.main(["--vocab", "8192", "--dim", "64", "--seq", "256", "--rounds", "1", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(r))  # the file holds what was printed
    s = r["summary"]
    assert set(s) == {"H1", "H1_seq", "H4", "H4_seq"} and len(r["rows"]) == 4
    for row in s.values():
        for key in ("increase_mb", "peak_mb", "increase_over_H1", "increase_over_H1_seq"):
            assert all(math.isfinite(v) and v > 0 for v in row[key].values())
    # The plain path keeps every head's (T, V) softmax for backward; sequential heads keep none.
    assert s["H4"]["increase_mb"]["median"] > 2 * s["H4_seq"]["increase_mb"]["median"]
    assert "| 4 | yes |" in mem.markdown(r)
