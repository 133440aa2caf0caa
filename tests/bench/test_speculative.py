"""The speculative bench refuses to report a speed-up for a model below its quality bar."""

from __future__ import annotations

import pytest
import torch


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


def test_finetune_heads_trains_the_extra_heads_only(bench, tiny_bundle):
    """An NTP -> MTP model's heads 2..H are trained for exactly N steps; trunk and head 1 stay
    bit-identical, so the greedy text (head 1's) is still the original model's."""
    from wmtp_lightning.models.bundle import bundle_tokenizer, load_bundle

    spec = bench("speculative")
    a = spec.parse(["--load", str(tiny_bundle), "--finetune-heads", "3", "--eval-every", "2", "--lr", "1e-2"])
    model = load_bundle(tiny_bundle)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = spec.train_to_target(model, bundle_tokenizer(tiny_bundle, model.args), a, heads_only=a.finetune_heads)
    assert r["steps"] == 3 and [s for s, _ in r["history"]] == [0, 2, 3]
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("extra_heads.") for k in changed)
    assert {k.split(".")[1] for k in changed} == {str(i) for i in range(len(model.extra_heads))}


def test_finetune_heads_needs_a_bundle(bench, capsys):
    spec = bench("speculative")
    with pytest.raises(SystemExit):
        spec.parse(["--finetune-heads", "5"])
    assert "--finetune-heads needs --load" in capsys.readouterr().err
