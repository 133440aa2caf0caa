"""The LightningModules outside the CLI: freezing, value-head loading, reference isolation, NaN policy."""

from __future__ import annotations

from types import SimpleNamespace

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
    loss, _, _ = m.step(batch, "train")
    logits = m.model(batch["input_ids"], return_all_heads=True)
    ce = torch.nn.functional.cross_entropy(
        logits.flatten(0, 2), mtp_targets(batch["labels"], 3).flatten(), ignore_index=-100, reduction="none"
    ).view(logits.shape[:3])
    expected, _ = weighted_mtp_loss(ce, mtp_targets(batch["labels"], 3) != IGNORE_INDEX)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    seq = built(BaselineMTP(model=str(tiny_bundle), sequential_heads=True))
    torch.testing.assert_close(seq.step(batch, "train")[0], loss, atol=1e-6, rtol=1e-6)
    sums = m.train_sums.compute()
    assert {"train/loss", "train/loss_head1", "train/acc_head3", "train/ce_head2"} <= set(sums)
    torch.testing.assert_close(sums["train/loss"], loss.detach())


def test_stage1_trains_only_the_value_head_and_stage2_loads_it(tmp_path, tiny_bundle, batch):
    s1 = built(VerifiableCriticMTP(model=str(tiny_bundle), stage=1, value_head=None))
    assert [n for n, p in s1.named_parameters() if p.requires_grad] == [
        "value_head.proj.weight",
        "value_head.proj.bias",
    ]
    loss, _, _ = s1.step(batch, "train")
    sums = s1.train_sums.compute()
    assert "train/loss_head1" not in sums and loss.item() == pytest.approx(sums["train/value_loss"].item())
    torch.nn.init.normal_(s1.value_head.proj.weight)
    s1.value_head.save(tmp_path / "vh.safetensors")
    s2 = built(VerifiableCriticMTP(model=str(tiny_bundle), stage=2, value_head=str(tmp_path / "vh.safetensors")))
    assert torch.equal(s2.value_head.proj.weight, s1.value_head.proj.weight)
    loss, metrics, _ = s2.step(batch, "train")
    sums = s2.train_sums.compute()
    mtp = torch.stack([sums[f"train/loss_head{k}"] for k in (1, 2, 3)]).mean()
    torch.testing.assert_close(loss, mtp + 0.5 * sums["train/value_loss"])
    assert metrics["weight_min"] >= 0.1 - 1e-6 and metrics["weight_max"] <= 5.0 + 1e-6
    assert {"train/weight_mean_incorrect", "train/mass_share_incorrect", "train/weight_at_min_frac"} <= set(sums)
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
    monkeypatch.setattr(m, "step", lambda b, s: (nan, {}, Weights()))
    with pytest.raises(FloatingPointError, match="loss is nan at step 0"):
        m.training_step(batch, 0)
    skip = built(BaselineMTP(model=str(tiny_bundle), nan_policy="skip", max_nan_skips=1))
    inf = torch.tensor(float("inf"))
    monkeypatch.setattr(skip, "step", lambda b, s: (inf, {}, Weights()))
    monkeypatch.setattr(skip, "log", lambda *a, **k: None)
    assert skip.training_step(batch, 0) is None and skip.nan_skips == 1
    with pytest.raises(FloatingPointError, match="max_nan_skips=1"):
        skip.training_step(batch, 1)


# ----------------------------------------------------------------------------- split invariance


def with_step_counts(rows: dict[str, torch.Tensor], micro: list[int]) -> dict[str, torch.Tensor]:
    """`rows` (a collated batch) plus the step_* fields WMTPDataModule adds: these rows form the step."""
    labels = rows["labels"]
    resp = labels != IGNORE_INDEX
    first = torch.where(resp, torch.arange(labels.shape[1]), labels.shape[1]).min(1).values
    return {
        "step_prompt_len": first,
        "step_response_len": resp.sum(1),
        "step_micro": torch.tensor(micro),
    }


def step_gradient(module, batch, splits: list[list[int]]) -> dict[str, torch.Tensor]:
    """The gradient Lightning accumulates for one optimizer step when `batch`'s rows run as `splits`."""
    module.zero_grad()
    A = len(splits)
    module._trainer = SimpleNamespace(accumulate_grad_batches=A, world_size=1)
    micro = [i for i, rows in enumerate(splits) for _ in rows]
    order = [r for rows in splits for r in rows]
    step = with_step_counts({k: v[order] for k, v in batch.items() if k != "n_items"}, micro)
    for rows in splits:
        part = {k: v[rows] for k, v in batch.items() if k != "n_items"}
        L = int((part["attention_mask"].sum(1)).max())  # dynamic padding, as the collator would
        part = {k: (v[:, :L] if v.dim() == 2 else v) for k, v in part.items()}
        loss, _, _ = module.step({**part, **step}, "train")
        (loss / A).backward()  # Lightning divides each micro-batch loss by accumulate_grad_batches
    module._trainer = None
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


@pytest.fixture(scope="module")
def uneven_batch(micro_tokenizer_path):
    """Four rows of very different response lengths (the case a mean of means gets wrong)."""
    tok = Tokenizer(micro_tokenizer_path)
    probs = load_local_problems()
    codes = [(probs[0], "print(1)\n", True)]
    codes += [(p, p["solutions"]["solution"][0], True) for p in probs[1:3]]
    codes += [(probs[3], probs[3]["incorrect_solutions"]["solution"][0], False)]
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
        for i, (p, code, ok) in enumerate(codes)
    ]
    return MTPCollator(tok)(items)


@pytest.mark.parametrize("experiment", ["baseline", "critic"])
def test_step_gradient_does_not_depend_on_the_split(tiny_bundle, uneven_batch, experiment, tmp_path):
    """DESIGN §3: 1 micro-batch of 4 rows, 4 accumulated micro-batches of 1, or 2 of 2 give one gradient."""
    if experiment == "baseline":
        m = built(BaselineMTP(model=str(tiny_bundle)))
    else:
        head = ValueHead(64)  # the tiny preset's width
        torch.nn.init.normal_(head.proj.weight, std=0.5)
        head.save(tmp_path / "vh.safetensors")
        m = built(VerifiableCriticMTP(model=str(tiny_bundle), stage=2, value_head=str(tmp_path / "vh.safetensors")))
    joint = step_gradient(m, uneven_batch, [[0, 1, 2, 3]])
    for splits in ([[0], [1], [2], [3]], [[0, 3], [1, 2]]):
        split = step_gradient(m, uneven_batch, splits)
        for name, g in joint.items():
            torch.testing.assert_close(split[name], g, rtol=1e-4, atol=1e-7, msg=f"{name} with {splits}")
    assert any(g.abs().sum() > 0 for g in joint.values())


def test_mean_of_micro_batch_means_would_differ(tiny_bundle, uneven_batch):
    """The check above can fail: without the step counts the same split gives another gradient."""
    m = built(BaselineMTP(model=str(tiny_bundle)))
    joint = step_gradient(m, uneven_batch, [[0, 1, 2, 3]])
    m.zero_grad()
    for r in range(4):  # each micro-batch normalised by its own tokens (no step_* fields)
        part = {k: v[[r]] for k, v in uneven_batch.items() if k != "n_items"}
        (m.step(part, "val")[0] / 4).backward()
    g = dict(m.named_parameters())["model.output.weight"].grad
    assert not torch.allclose(g, joint["model.output.weight"], rtol=1e-2)


def test_rho1_normalises_by_the_steps_kept_count(tiny_bundle, tiny_ref_bundle, uneven_batch):
    """Rho-1 selects within each micro-batch and divides by Σ⌈ratio·N_m⌉ over the step's micro-batches."""
    m = built(Rho1MTP(model=str(tiny_bundle), reference=str(tiny_ref_bundle), ratio=0.5))
    n = (uneven_batch["labels"] != IGNORE_INDEX).sum(1).tolist()
    splits = [[0, 1], [2, 3]]
    m._trainer = SimpleNamespace(accumulate_grad_batches=2, world_size=1)
    micro = [0, 0, 1, 1]
    step = with_step_counts({k: v for k, v in uneven_batch.items() if k != "n_items"}, micro)
    part = {k: v[splits[0]] for k, v in uneven_batch.items() if k != "n_items"}
    w = m.token_weights(
        part,
        m(part),
        mtp_targets(part["labels"], 3) != IGNORE_INDEX,
        "train",
        m.step_norm({**part, **step}, mtp_targets(part["labels"], 3) != IGNORE_INDEX, "train"),
    )
    m._trainer = None
    kept = -(-(n[0] + n[1]) // 2) + -(-(n[2] + n[3]) // 2)
    assert w.denominators.tolist() == [kept] * 3
    assert w.token_weights.sum().item() == -(-(n[0] + n[1]) // 2)  # this micro-batch keeps ⌈0.5·N_0⌉
