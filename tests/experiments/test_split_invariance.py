"""DESIGN §3 through the real Trainer and DataModule: one optimizer step has the same update whether
its effective batch of 4 rows runs as 1 micro-batch, 4 accumulated ones or 2 × 2.

(tests/integration/test_distributed.py checks 2 ranks × 2 accumulated micro-batches under FSDP2.)
"""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from wmtp_lightning.data import WMTPDataModule
from wmtp_lightning.experiments import BaselineMTP, VerifiableCriticMTP


def one_step_update(kind: str, bundle, data, tokenizer, batch_size: int, accumulate: int) -> dict[str, torch.Tensor]:
    """Parameter change of one SGD step (lr 1: the change is minus the step's gradient)."""
    pl.seed_everything(0, verbose=False)
    sgd = lambda params: torch.optim.SGD(params, lr=1.0)  # noqa: E731
    if kind == "baseline":
        module = BaselineMTP(model=str(bundle), optimizer=sgd)
    else:
        module = VerifiableCriticMTP(model=str(bundle), stage=2, value_head=None, optimizer=sgd)
    dm = WMTPDataModule(
        str(data),
        str(tokenizer),
        sampling="curriculum" if kind == "critic" else "correct",
        correct_ratio=None,
        batch_size=batch_size,
        val_samples=2,
        val_incorrect_samples=2,
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=1,
        accumulate_grad_batches=accumulate,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    module.configure_model()
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    trainer.fit(module, dm)
    assert trainer.global_step == 1 and dm.train_sampler.consumed == 4
    return {n: p.detach() - before[n] for n, p in module.named_parameters()}


@pytest.mark.parametrize("kind", ["baseline", "critic"])
def test_one_step_update_is_the_same_for_every_split(kind, tiny_bundle, local_dataset, micro_tokenizer_path):
    joint = one_step_update(kind, tiny_bundle, local_dataset, micro_tokenizer_path, 4, 1)
    assert sum(float(d.abs().sum()) for d in joint.values()) > 0
    for batch_size, accumulate in ((1, 4), (2, 2)):
        split = one_step_update(kind, tiny_bundle, local_dataset, micro_tokenizer_path, batch_size, accumulate)
        for name, d in joint.items():
            torch.testing.assert_close(split[name], d, rtol=1e-4, atol=1e-7, msg=f"{name}: {batch_size}x{accumulate}")
