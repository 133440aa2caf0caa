#!/usr/bin/env python
"""Science check: does the critic find the bug? (issue: VerifiableCriticMTP stage 1)

Synthetic task: random "code" tokens; an incorrect sample has one BUG token at a uniformly random
response position, a correct one has none. A tiny model (trunk trainable) is trained with the
real VerifiableCriticMTP stage-1 module and Lightning Trainer on the value loss only. If the
critic and the TD weights do what the method claims, then after training:

  - the TD error δ at the BUG token is strongly negative (the value collapses to 0 there),
  - δ elsewhere is near zero,
  - the final value V_{T-1} separates correct from incorrect (AUC > 0.95).

    python bench/science_check.py [--steps 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from wmtp_lightning.experiments import VerifiableCriticMTP
from wmtp_lightning.weighting import binary_auc, exp_weights, final_values, td_errors

VOCAB, BUG, EOS, PROMPT, RESPONSE = 48, 3, 2, 4, 12


class BugDataset(Dataset):
    """Rows [BOS, prompt..., response..., EOS]; labels -100 on BOS + prompt."""

    def __init__(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        L = 1 + PROMPT + RESPONSE + 1
        self.ids = torch.randint(8, VOCAB, (n, L), generator=g)
        self.ids[:, 0] = 1
        self.ids[:, -1] = EOS
        self.correct = torch.rand(n, generator=g) < 0.5
        self.bug_pos = torch.full((n,), -1)
        for i in range(n):
            if not self.correct[i]:
                p = 1 + PROMPT + int(torch.randint(0, RESPONSE, (1,), generator=g))
                self.ids[i, p] = BUG
                self.bug_pos[i] = p

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        labels = self.ids[i].clone()
        labels[: 1 + PROMPT] = -100
        return {
            "input_ids": self.ids[i],
            "labels": labels,
            "attention_mask": torch.ones_like(self.ids[i]),
            "is_correct": self.correct[i].float(),
            "bug_pos": self.bug_pos[i],
            "n_items": torch.tensor(1),
        }


def collate(items: list[dict]) -> dict:
    out = {k: torch.stack([it[k] for it in items]) for k in items[0] if k != "n_items"}
    out["n_items"] = torch.tensor(len(items))
    return out


def run(steps: int = 300, seed: int = 0, n_train: int = 2048, n_eval: int = 512) -> dict:
    pl.seed_everything(seed, verbose=False)
    module = VerifiableCriticMTP(
        preset="tiny",
        model_overrides={"vocab_size": VOCAB, "max_seq_len": 64},
        stage=1,
        freeze_policy=False,
        value_head=None,
        value_clip=None,
        optimizer=lambda p: torch.optim.AdamW(p, lr=3e-3),
    )
    train = DataLoader(BugDataset(n_train, seed), batch_size=64, shuffle=True, collate_fn=collate)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    t0 = time.monotonic()
    trainer.fit(module, train)
    train_s = time.monotonic() - t0
    ev = collate([BugDataset(n_eval, seed + 1)[i] for i in range(n_eval)])
    module.eval()
    with torch.no_grad():
        out = module.model(ev["input_ids"], targets=ev["labels"], n_future=0)
        values = module.value_head(out.h_normed)
    delta, mask = td_errors(values, ev["labels"], ev["is_correct"])
    w = exp_weights(delta, mask, beta=0.9)
    rows = torch.arange(n_eval)
    bug_rows = ev["bug_pos"] >= 0
    at_bug = delta[rows[bug_rows], ev["bug_pos"][bug_rows]]
    elsewhere_mask = mask.clone()
    elsewhere_mask[rows[bug_rows], ev["bug_pos"][bug_rows]] = False
    elsewhere = delta[elsewhere_mask]
    auc = binary_auc(final_values(values, ev["labels"]), ev["is_correct"])
    return {
        "steps": steps,
        "seed": seed,
        "train_seconds": round(train_s, 1),
        "td_at_bug_mean": at_bug.mean().item(),
        "td_elsewhere_mean": elsewhere.mean().item(),
        "td_elsewhere_abs_mean": elsewhere.abs().mean().item(),
        "weight_at_bug_mean": w[rows[bug_rows], ev["bug_pos"][bug_rows]].mean().item(),
        "weight_elsewhere_mean": w[elsewhere_mask].mean().item(),
        "final_value_auc": auc.item(),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    result = run(a.steps, a.seed)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
