"""What a trained critic does on held-out rows of the addition task (see `science_task`).

Loads an exported policy bundle and a value head, runs every row of a processed split through
the real collator and the model's training forward, and measures:

- `auc`: ROC AUC of V_{T−1} (the value of the state that chooses EOS) against is_correct;
- the one-step TD error δ_j = V_j − V_{j−1} (γ = 1) at the first wrong token of every incorrect
  row (the first digit of the wrong sum that differs from the true one), and elsewhere;
- what the weights w = clamp(exp(x/β)) do to an incorrect row under both signals (`delta`, and
  `cumulative` x_j = Σ_{i≤j} δ_i): the weight at the wrong token and the mean weight after it;
- `sum_digit_acc`: argmax accuracy of head 1 on the digits of the sums of correct rows (does the
  policy model the task, beyond the random operands no model can predict).

It also fits the best linear read-out of the final state it can (`linear_probe_auc`): logistic
regression on the frozen `norm(h_trunk)` of training rows, scored on the split. A linear value
head on that state can do no better, whatever its learning rate or clip. The same read-out of head
1's output at that state (`linear_probe_auc_head1`, where the next token is predicted from) says
whether the base knows the outcome there but computes it only in head 1's block, after the trunk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from science_task import first_wrong_char  # bench/ is on sys.path (science_check puts it there)

from wmtp_lightning.data.collate import MTPCollator, tokenize_example
from wmtp_lightning.data.dataset import IndexedJsonlDataset
from wmtp_lightning.data.index import load_index
from wmtp_lightning.models.bundle import load_bundle
from wmtp_lightning.models.tokenizer import Tokenizer
from wmtp_lightning.models.value_head import ValueHead
from wmtp_lightning.weighting import binary_auc, critic_weights, final_values, td_errors


def token_of_char(tok: Tokenizer, row: dict[str, Any], char: int) -> int:
    """Index in the row's token ids of the response token that covers character `char` of the solution."""
    ids, n_prompt, _ = tokenize_example(tok, row["instruction"], row["input"], row["output"])
    pieces = [tok.piece_text(i) for i in ids[n_prompt:-1]]
    if "".join(pieces) != row["output"]:
        raise ValueError(f"{row['task_id']}: response pieces do not spell the solution")
    ends = np.cumsum([len(p) for p in pieces])
    return n_prompt + int(np.searchsorted(ends, char, side="right"))


def in_sum(tok: Tokenizer, ids: torch.Tensor, j: int, eq: int) -> bool:
    """Whether token j is a digit of a sum: a digit whose nearest non-digit token before it is '='."""
    if not tok.piece_text(int(ids[j])).isdigit():
        return False
    i = j - 1
    while i >= 0 and tok.piece_text(int(ids[i])).isdigit():
        i -= 1
    return i >= 0 and int(ids[i]) == eq


def split_rows(data_dir: Path, split: str) -> IndexedJsonlDataset:
    path = Path(data_dir) / "processed" / f"{split}.jsonl"
    return IndexedJsonlDataset(path, load_index(path))


def batches(ds: Any, tok: Tokenizer, batch_size: int = 64):
    """Yield collated batches over every row of `ds`, in file order."""
    collate = MTPCollator(tok, max_length=2048)
    for lo in range(0, len(ds), batch_size):
        yield collate([ds[i] for i in range(lo, min(lo + batch_size, len(ds)))])


@torch.no_grad()
def forward_split(model: Any, ds: IndexedJsonlDataset, tok: Tokenizer):
    """Yield (batch, MTPOutput of head 1) over every row of `ds`, in file order."""
    for batch in batches(ds, tok):
        yield batch, model(batch["input_ids"], targets=batch["labels"], n_future=1)


@torch.no_grad()
def final_states(model: Any, ds: IndexedJsonlDataset, tok: Tokenizer) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """At the state that chooses EOS: {"trunk": norm(h_trunk), "head1": norm(head 1's block output)},
    each (N, D), and (N,) is_correct. The value head reads the first; the second is the state head 1
    predicts the next token from (where a verdict would be written)."""
    feats: dict[str, list[torch.Tensor]] = {"trunk": [], "head1": []}
    labels = []
    for batch in batches(ds, tok):
        h, freqs, mask = model.trunk(batch["input_ids"])
        last = (batch["labels"] != -100).long().cumsum(1).argmax(1) - 1  # the state before EOS
        rows = torch.arange(len(last))
        feats["trunk"].append(model.norm(h)[rows, last])
        feats["head1"].append(model.norm(model.head_hidden(1, h, freqs, 0, None, mask))[rows, last])
        labels.append(batch["is_correct"])
    return {k: torch.cat(v) for k, v in feats.items()}, torch.cat(labels)


def linear_probe_auc(train_x: torch.Tensor, train_y: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    """AUC on (x, y) of an L2-regularised logistic regression fitted on (train_x, train_y) to convergence."""
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    a, b = (train_x - mu) / sd, (x - mu) / sd
    w = torch.zeros(a.shape[1], requires_grad=True)
    c = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, c], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(a @ w + c, train_y) + 1e-3 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return float(binary_auc((b @ w + c).detach(), y))


@torch.no_grad()
def probe(
    bundle: Path, value_head: Path, data_dir: Path, tokenizer: Path, split: str = "test", train_rows: int = 2048
) -> dict[str, Any]:
    """The critic's figures on `split` (see the module docstring); the linear probe learns on `train_rows` train rows."""
    tok = Tokenizer(tokenizer)
    model = load_bundle(bundle).eval()
    head = ValueHead.load(value_head, dim=model.args.dim)
    ds = split_rows(data_dir, split)
    finals, rewards = [], []
    at_wrong, before, after, correct_rows = [], [], [], []
    weights = {s: {"at_wrong": [], "after": []} for s in ("delta", "cumulative")}
    digit_hits, digit_n = 0, 0
    eq = tok.encode("=")[-1]
    for batch, out in forward_split(model, ds, tok):
        values = head(out.h_normed)
        labels, reward = batch["labels"], batch["is_correct"]
        finals.append(final_values(values, labels))
        rewards.append(reward)
        delta, mask = td_errors(values, labels, reward)
        terminal = (labels != -100).long().cumsum(1).argmax(1)
        inner = mask.clone()
        inner[torch.arange(len(labels)), terminal] = False  # δ_T = R − V_{T−1} is the reward itself
        cw = {s: critic_weights(values, labels, reward, 1, signal=s).token_weights for s in weights}
        ids = batch["input_ids"]
        for r in range(len(labels)):
            row = ds[int(batch["index"][r])]
            if reward[r]:
                correct_rows.append(delta[r][inner[r]])
                # sum digits: the digits after an '=' up to the newline; head 1 at j−1 predicts x_j
                digits = [j for j in range(1, ids.shape[1]) if inner[r, j] and in_sum(tok, ids[r], j, eq)]
                digit_hits += sum(bool(out.correct[r, j - 1, 0]) for j in digits)
                digit_n += len(digits)
                continue
            j = token_of_char(tok, row, first_wrong_char(row["output"]))
            at_wrong.append(float(delta[r, j]))
            pos = torch.arange(labels.shape[1])
            before.append(delta[r][inner[r] & (pos < j)])
            after.append(delta[r][inner[r] & (pos > j)])
            for s in weights:
                weights[s]["at_wrong"].append(float(cw[s][r, j]))
                weights[s]["after"].append(cw[s][r][mask[r] & (pos > j)])
    train = split_rows(data_dir, "train")
    train = torch.utils.data.Subset(train, range(min(train_rows, len(train))))
    (train_x, train_y), (x, y) = final_states(model, train, tok), final_states(model, ds, tok)
    with torch.enable_grad():
        probe_auc = {k: linear_probe_auc(train_x[k], train_y, x[k], y) for k in x}
    at_wrong_t = torch.tensor(at_wrong)
    elsewhere = torch.cat(before + after + correct_rows)
    return {
        "auc": float(binary_auc(torch.cat(finals), torch.cat(rewards))),
        "delta_at_first_wrong_mean": float(at_wrong_t.mean()),
        "delta_at_first_wrong_median": float(at_wrong_t.median()),
        "delta_at_first_wrong_frac_below_-0.1": float((at_wrong_t < -0.1).float().mean()),
        "delta_elsewhere_mean": float(elsewhere.mean()),
        "delta_elsewhere_abs_mean": float(elsewhere.abs().mean()),
        "delta_before_wrong_mean": float(torch.cat(before).mean()),
        "delta_after_wrong_mean": float(torch.cat(after).mean()),
        **{
            f"weight_{s}_{k}": float(torch.tensor(v).mean() if k == "at_wrong" else torch.cat(v).mean())
            for s, d in weights.items()
            for k, v in d.items()
        },
        "sum_digit_acc": digit_hits / max(digit_n, 1),
        "linear_probe_auc": probe_auc["trunk"],
        "linear_probe_auc_head1": probe_auc["head1"],
        "rows": len(ds),
    }


@torch.no_grad()
def verdict_accuracy(bundle: Path, data_dir: Path, tokenizer: Path, split: str = "valid") -> dict[str, float]:
    """How well a *judging* base model (pre-trained on `science_task.judged` text) judges held-out sums.

    At every verdict of `split` of the judged dataset, whether head 1 gives the right verdict a
    higher logit than the other one (`ok` vs `wrong`, in the same spelling): the verdict the model
    would write if it writes one. Two figures, each as balanced accuracy (the mean of the accuracies
    on `ok` and on `wrong`, so that always preferring `ok` scores 0.5): `solution`, the verdict after
    a bare solution (no running verdicts: a stage-1 row, then its verdict), the premise of a critic
    that reads that state; `line`, the running verdicts inside the other texts. The verdict after
    a text with running verdicts is left out: it can be copied from the last one.
    """
    tok = Tokenizer(tokenizer)
    model = load_bundle(bundle).eval()
    words = {"ok": True, "wrong": False}
    pieces = {tok.piece_text(i): i for i in range(tok.vocab_size)}
    verdict, other = {}, {}
    for piece, i in pieces.items():
        word = piece.strip()
        if word in words:
            swapped = piece.replace(word, "wrong" if word == "ok" else "ok")
            if swapped not in pieces:
                raise ValueError(f"{tokenizer}: piece {piece!r} has no counterpart {swapped!r}")
            verdict[i], other[i] = words[word], pieces[swapped]
    if set(verdict.values()) != {True, False}:
        raise ValueError(f"{tokenizer}: 'ok' and 'wrong' must each be one piece to find the verdicts")
    hits = {(kind, v): [0, 0] for kind in ("solution", "line") for v in (True, False)}
    for batch in batches(split_rows(data_dir, split), tok):
        ids = batch["input_ids"]
        logits = model(ids)  # (B, T, V), head 1
        for r in range(len(ids)):
            pos = [j for j in range(ids.shape[1]) if int(ids[r, j]) in verdict and batch["labels"][r, j] != -100]
            for j in pos if len(pos) == 1 else pos[:-1]:  # skip a verdict that could copy the last running one
                t = int(ids[r, j])
                h = hits[("solution" if len(pos) == 1 else "line", verdict[t])]
                h[0] += bool(logits[r, j - 1, t] > logits[r, j - 1, other[t]])
                h[1] += 1
    result = {}
    for kind in ("solution", "line"):
        accs = [hits[(kind, v)][0] / hits[(kind, v)][1] for v in (True, False) if hits[(kind, v)][1]]
        result[f"verdict_balanced_acc_{kind}"] = sum(accs) / len(accs) if accs else float("nan")
    return result
