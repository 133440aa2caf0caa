"""Helpers for analysis notebooks: metric histories, and token weights / Rho-1 selections on real samples.

Everything is recomputed from an exported bundle (and its value head) with the same pure functions
training uses, so what the notebook shows is what the loss saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmtp_lightning.data.collate import MTPCollator
from wmtp_lightning.data.datamodule import processed_dir
from wmtp_lightning.data.dataset import IndexedJsonlDataset
from wmtp_lightning.data.index import load_index
from wmtp_lightning.models.bundle import bundle_tokenizer, load_bundle
from wmtp_lightning.models.value_head import ValueHead
from wmtp_lightning.weighting import (
    ce_at_tokens,
    rho1_token_scores,
    shift_targets,
    td_errors,
    td_weights,
    token_ce,
    topk_mask,
)


def metric_history(tracking_uri: str, run_id: str, prefix: str = "train/") -> dict[str, list[tuple[int, float]]]:
    """{metric: [(step, value), ...]} for every metric of the run starting with `prefix`."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    return {
        k: [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, k), key=lambda m: m.step)]
        for k in sorted(run.data.metrics)
        if k.startswith(prefix)
    }


def load_samples(data_dir: str | Path, split: str = "valid", n: int = 8, seed: int = 0) -> list[dict[str, Any]]:
    """`n` records of a processed split (half correct, half incorrect when possible), read by offset."""
    path = processed_dir(data_dir) / f"{split}.jsonl"
    index = load_index(path)
    rng = np.random.default_rng(seed)
    correct, incorrect = np.flatnonzero(index["is_correct"]), np.flatnonzero(index["is_correct"] == 0)
    lines = list(rng.permutation(correct)[: n // 2]) + list(rng.permutation(incorrect)[: n - n // 2])
    ds = IndexedJsonlDataset(path, index)
    return [ds[int(i)] for i in lines]


def _rows(samples: list[dict[str, Any]], tok: Any) -> list[dict[str, torch.Tensor]]:
    coll = MTPCollator(tok, max_length=4096, truncate=True)
    return [coll([s]) for s in samples]


@torch.no_grad()
def critic_token_weights(
    bundle: str | Path,
    value_head: str | Path,
    samples: list[dict[str, Any]],
    beta: float = 0.9,
    min_weight: float = 0.1,
    max_weight: float = 5.0,
) -> list[dict[str, Any]]:
    """Per response token: text piece, value, TD error δ and weight w, for each sample."""
    model = load_bundle(bundle).eval()
    head = ValueHead.load(value_head, dim=model.args.dim).eval()
    tok = bundle_tokenizer(bundle, model.args)
    out = []
    for s, b in zip(samples, _rows(samples, tok)):
        terms = model(b["input_ids"], targets=b["labels"], n_future=0)
        values = head(terms.h_normed)
        delta, mask = td_errors(values, b["labels"], b["is_correct"])
        w = td_weights(delta, mask, beta, min_weight, max_weight)
        m = mask[0]
        out.append(
            {
                "task_id": s["task_id"],
                "is_correct": bool(s["is_correct"]),
                "pieces": [tok.piece_text(int(t)) for t in b["input_ids"][0][m]],
                "value": values[0][m].tolist(),
                "td": delta[0][m].tolist(),
                "weight": w[0][m].tolist(),
            }
        )
    return out


@torch.no_grad()
def rho1_selection(
    bundle: str | Path, reference: str | Path, samples: list[dict[str, Any]], ratio: float = 0.6
) -> list[dict[str, Any]]:
    """Per response token: excess loss and whether Rho-1 keeps it (top `ratio` across these samples)."""
    model, ref = load_bundle(bundle).eval(), load_bundle(reference).eval()
    tok = bundle_tokenizer(bundle, model.args)
    rows = _rows(samples, tok)
    scored = []
    for b in rows:
        tgt = shift_targets(b["labels"], 1)
        ce_pol = ce_at_tokens(token_ce(model(b["input_ids"]), tgt), 1)
        ce_ref = ce_at_tokens(token_ce(ref(b["input_ids"]), tgt), 1)
        scored.append(rho1_token_scores(ce_pol, ce_ref, b["labels"]))
    flat_scores = torch.cat([s[0][0][s[1][0]] for s in scored])
    keep = topk_mask(flat_scores, torch.ones_like(flat_scores, dtype=torch.bool), ratio)
    out, i = [], 0
    for s, b, (scores, mask) in zip(samples, rows, scored):
        m = mask[0]
        n = int(m.sum())
        out.append(
            {
                "task_id": s["task_id"],
                "is_correct": bool(s["is_correct"]),
                "pieces": [tok.piece_text(int(t)) for t in b["input_ids"][0][m]],
                "excess": scores[0][m].tolist(),
                "selected": keep[i : i + n].tolist(),
            }
        )
        i += n
    return out
