"""The speculative bench refuses to report a speed-up for a model below its quality bar."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_untrained_model_is_refused_and_short_runs_do_not_crash(bench):
    spec = bench("speculative")
    # 3 steps (the old one-cycle schedule divided by zero below 11) of an untrained micro model
    r = spec.main(["--max-steps", "3", "--eval-every", "2", "--trunk", "1", "--vocab", "512", "--target-loss", "2.0"])
    assert r["training"]["steps"] == 3 and [s for s, _ in r["training"]["history"]] == [0, 2, 3]
    assert r["held_out_loss_per_head"][0] > 2.0
    assert "refused" in r and "decoding" not in r and "speedup" not in str(r)
    assert "REFUSED" in spec.markdown(r)


def test_prompts_and_training_data_do_not_overlap(bench):
    spec = bench("speculative")
    train = {it["instruction"] for it in spec.items(held_out=False)}
    held = {it["instruction"] for it in spec.items(held_out=True)}
    assert train and held and not train & held
    assert all(any(h in p for h in held) for p in spec.held_out_prompts())
    corpus = spec.tokenizer_corpus()
    assert not any(h in corpus for h in held)
