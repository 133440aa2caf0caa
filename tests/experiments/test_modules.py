"""The LightningModules outside the CLI: freezing, value-head loading, reference isolation, NaN policy."""

from __future__ import annotations

import pytest
import torch

from wmtp_lightning.data.collate import MTPCollator
from wmtp_lightning.data.local_problems import load_local_problems
from wmtp_lightning.experiments import BaselineMTP, Rho1MTP, VerifiableCriticMTP, Weights
from wmtp_lightning.models import ModelArgs, Transformer, save_bundle
from wmtp_lightning.models.tokenizer import Tokenizer
from wmtp_lightning.models.value_head import ValueHead
from wmtp_lightning.weighting import IGNORE_INDEX, mtp_targets, weighted_mtp_loss


@pytest.fixture(scope="module")
def batch(micro_tokenizer_path):
    tok = Tokenizer(micro_tokenizer_path)
    p0, p1 = load_local_problems()[:2]
    items = [
        {
            "instruction": p["description"],
            "input": "",
            "output": code,
            "is_correct": ok,
            "task_id": p["name"],
            "metadata": {"difficulty": p["difficulty"]},
            "line": i,
        }
        for i, (p, code, ok) in enumerate(
            [(p0, p0["solutions"]["solution"][0], True), (p1, p1["incorrect_solutions"]["solution"][0], False)]
        )
    ]
    return MTPCollator(tok)(items)


def built(module):
    module.configure_model()
    return module


def test_baseline_loss_is_uniform_mtp_and_sequential_matches(tiny_bundle, batch):
    m = built(BaselineMTP(model=str(tiny_bundle)))
    loss, metrics, _ = m.step(batch, "train")
    logits = m.model(batch["input_ids"], return_all_heads=True)
    ce = torch.nn.functional.cross_entropy(
        logits.flatten(0, 2), mtp_targets(batch["labels"], 3).flatten(), ignore_index=-100, reduction="none"
    ).view(logits.shape[:3])
    expected, _ = weighted_mtp_loss(ce, mtp_targets(batch["labels"], 3) != IGNORE_INDEX)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    seq = built(BaselineMTP(model=str(tiny_bundle), sequential_heads=True))
    torch.testing.assert_close(seq.step(batch, "train")[0], loss, atol=1e-6, rtol=1e-6)
    assert {"loss_head1", "acc_head3", "ce_head2"} <= set(metrics)


def test_stage1_trains_only_the_value_head_and_stage2_loads_it(tmp_path, tiny_bundle, batch):
    s1 = built(VerifiableCriticMTP(model=str(tiny_bundle), stage=1, value_head=None))
    assert [n for n, p in s1.named_parameters() if p.requires_grad] == [
        "value_head.proj.weight",
        "value_head.proj.bias",
    ]
    loss, metrics, _ = s1.step(batch, "train")
    assert "mtp_loss" not in metrics and loss == metrics["value_loss"]
    torch.nn.init.normal_(s1.value_head.proj.weight)
    s1.value_head.save(tmp_path / "vh.safetensors")
    s2 = built(VerifiableCriticMTP(model=str(tiny_bundle), stage=2, value_head=str(tmp_path / "vh.safetensors")))
    assert torch.equal(s2.value_head.proj.weight, s1.value_head.proj.weight)
    loss, metrics, _ = s2.step(batch, "train")
    torch.testing.assert_close(loss, metrics["mtp_loss"] + 0.5 * metrics["value_loss"])
    assert metrics["weight_min"] >= 0.1 - 1e-6 and metrics["weight_max"] <= 5.0 + 1e-6
    with pytest.raises(ValueError, match="width 64, the model's trunk has dim 32"):
        ValueHead(64).save(tmp_path / "wide.safetensors")
        ValueHead.load(tmp_path / "wide.safetensors", dim=32)


def test_reference_is_isolated_and_vocab_checked(tmp_path, tiny_bundle, tiny_ref_bundle, batch):
    m = built(Rho1MTP(model=str(tiny_bundle), reference=str(tiny_ref_bundle), ratio=0.5))
    assert not any("ref" in n for n, _ in m.named_parameters()) and not any("ref" in k for k in m.state_dict())
    assert all(not p.requires_grad for p in m.ref_model.parameters()) and not m.ref_model.training
    _, metrics, _ = m.step(batch, "train")
    n_resp = int((batch["labels"] != IGNORE_INDEX).sum())
    assert metrics["selected_frac"] * n_resp == pytest.approx(-(-n_resp // 2))  # exactly ⌈0.5·N⌉
    other = save_bundle(Transformer(ModelArgs.from_name("tiny", n_future_tokens=1, n_layers=2)), tmp_path / "ref256")
    with pytest.raises(ValueError, match="vocab_size 256, the policy 512"):
        Rho1MTP(model=str(tiny_bundle), reference=str(other))


def test_nan_policy(tiny_bundle, batch, monkeypatch):
    m = built(BaselineMTP(model=str(tiny_bundle)))
    nan = torch.tensor(float("nan"))
    monkeypatch.setattr(m, "step", lambda b, s: (nan, {"loss": nan}, Weights()))
    with pytest.raises(FloatingPointError, match="loss is nan at step 0"):
        m.training_step(batch, 0)
    skip = built(BaselineMTP(model=str(tiny_bundle), nan_policy="skip", max_nan_skips=1))
    inf = torch.tensor(float("inf"))
    monkeypatch.setattr(skip, "step", lambda b, s: (inf, {"loss": inf}, Weights()))
    monkeypatch.setattr(skip, "log", lambda *a, **k: None)
    assert skip.training_step(batch, 0) is None and skip.nan_skips == 1
    with pytest.raises(FloatingPointError, match="max_nan_skips=1"):
        skip.training_step(batch, 1)
