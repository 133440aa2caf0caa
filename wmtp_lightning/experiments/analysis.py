"""Helpers for the analysis notebook: a run's hyperparameters, samples, and what the weighting did to them.

Everything is recomputed from an exported bundle (and its value head) with the recipes training
calls (`weighting.critic_weights`, `weighting.rho1_weights`) and the run's own hyperparameters,
read back from the `config.yaml` that `wmtp fit` wrote beside the export
(`<default_root_dir>/<experiment>/config.yaml`), so what the notebook shows is what the loss saw.
The samples are collated into one batch, as in training (whitening and Rho-1's top-k range over it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from wmtp_lightning.data.collate import MTPCollator
from wmtp_lightning.data.datamodule import processed_dir
from wmtp_lightning.data.dataset import IndexedJsonlDataset
from wmtp_lightning.data.index import load_index
from wmtp_lightning.errors import MissingInput
from wmtp_lightning.experiments.rho1 import reference_token_ce
from wmtp_lightning.models.bundle import bundle_tokenizer, load_bundle
from wmtp_lightning.models.tokenizer import Tokenizer
from wmtp_lightning.models.value_head import ValueHead
from wmtp_lightning.weighting import IGNORE_INDEX, ce_at_tokens, critic_weights, mtp_targets, rho1_weights

CRITIC_KEYS = ("beta", "min_weight", "max_weight", "gamma", "td_terminal", "whiten")
RHO1_KEYS = ("ratio", "score", "mode", "beta", "min_weight", "max_weight")


def run_hparams(config: str | Path) -> dict[str, Any]:
    """`model.init_args` of a run's resolved `config.yaml` (what `wmtp fit` saved), plus its class name."""
    path = Path(config)
    if not path.is_file():
        raise MissingInput(f"run config not found: {path} (wmtp fit writes <root>/<experiment>/config.yaml)")
    cfg = yaml.safe_load(path.read_text())
    model = cfg.get("model") or {}
    return {"class_path": model.get("class_path"), **(model.get("init_args") or {})}


def load_samples(data_dir: str | Path, split: str = "valid", n: int = 8, seed: int = 0) -> list[dict[str, Any]]:
    """`n` records of a processed split (half correct, half incorrect when possible), read by offset."""
    path = processed_dir(data_dir) / f"{split}.jsonl"
    index = load_index(path)
    rng = np.random.default_rng(seed)
    correct, incorrect = np.flatnonzero(index["is_correct"]), np.flatnonzero(index["is_correct"] == 0)
    lines = list(rng.permutation(correct)[: n // 2]) + list(rng.permutation(incorrect)[: n - n // 2])
    ds = IndexedJsonlDataset(path, index)
    return [ds[int(i)] for i in lines]


def _per_token(tok: Tokenizer, samples: list[dict[str, Any]], batch: dict, mask: torch.Tensor, **columns: Any):
    out = []
    for i, s in enumerate(samples):
        m = mask[i]
        row = {"task_id": s["task_id"], "is_correct": bool(s["is_correct"])}
        row["pieces"] = [tok.piece_text(int(t)) for t in batch["input_ids"][i][m]]
        for name, values in columns.items():
            row[name] = values[i][m].tolist()
        out.append(row)
    return out


@torch.no_grad()
def critic_token_weights(
    bundle: str | Path, value_head: str | Path, samples: list[dict[str, Any]], hparams: dict[str, Any]
) -> list[dict[str, Any]]:
    """Per response token: text piece, value V_{j-1} before it, TD error δ_j and weight w_j, per sample.

    hparams: the critic run's `model.init_args` (`run_hparams`); only the weighting keys are used.
    With `td_terminal: horizon` the weights differ per head; head 1's are shown.
    """
    model = load_bundle(bundle).eval()
    head = ValueHead.load(value_head, dim=model.args.dim).eval()
    tok = bundle_tokenizer(bundle, model.args)
    batch = MTPCollator(tok, max_length=model.args.max_seq_len, truncate=True)(samples)
    terms = model(batch["input_ids"], targets=batch["labels"], n_future=0)
    values = head(terms.h_normed)
    H = model.args.n_future_tokens
    kw = {k: hparams[k] for k in CRITIC_KEYS if k in hparams}
    if "whiten" in kw:
        kw["whiten_delta"] = kw.pop("whiten")
    cw = critic_weights(values, batch["labels"], batch["is_correct"], H, **kw)
    mask = batch["labels"] != IGNORE_INDEX
    if cw.token_weights is not None:
        w_tok, delta_tok = cw.token_weights, cw.delta
    else:  # horizon: head 1 at position j−1 predicts token j
        w_tok, delta_tok = ce_at_tokens(cw.weights[..., 0], 1), ce_at_tokens(cw.delta[..., 0], 1)
    v_prev = ce_at_tokens(values, 1)  # V_{j-1}: the value of the state that chose token j
    return _per_token(tok, samples, batch, mask, value=v_prev, td=delta_tok, weight=w_tok)


@torch.no_grad()
def rho1_selection(
    bundle: str | Path, reference: str | Path, samples: list[dict[str, Any]], hparams: dict[str, Any]
) -> list[dict[str, Any]]:
    """Per response token: excess loss and head-1 weight under Rho-1 (hard: 1 = kept), per sample.

    hparams: a Rho-1 run's `model.init_args` (`run_hparams`), or the keys `ratio`, `score`, `mode`, ...
    """
    model, ref = load_bundle(bundle).eval(), load_bundle(reference).eval()
    tok = bundle_tokenizer(bundle, model.args)
    batch = MTPCollator(tok, max_length=model.args.max_seq_len, truncate=True)(samples)
    labels = batch["labels"]
    H = model.args.n_future_tokens
    terms = model(batch["input_ids"], targets=labels)
    valid = mtp_targets(labels, H) != IGNORE_INDEX
    ce_ref = reference_token_ce(ref, batch["input_ids"], labels)
    rw = rho1_weights(terms.ce, valid, ce_ref, labels, **{k: hparams[k] for k in RHO1_KEYS if k in hparams})
    mask = labels != IGNORE_INDEX
    if rw.token_weights is not None:
        scores, w_tok = rw.scores, rw.token_weights
    else:  # per_head: head 1's view
        scores, w_tok = ce_at_tokens(rw.scores[..., 0], 1), ce_at_tokens(rw.weights[..., 0], 1)
    return _per_token(tok, samples, batch, mask, excess=scores, weight=w_tok)
