"""The DataModule wiring: selection by index, reading by offset, resume, and bad lines."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from wmtp_lightning.data import WMTPDataModule
from wmtp_lightning.data.dataset import IndexedJsonlDataset
from wmtp_lightning.data.index import load_index


def dm(root, tok, **kw) -> WMTPDataModule:
    defaults = {"sampling": "balanced", "n_samples": 40, "val_samples": 8, "batch_size": 4}
    m = WMTPDataModule(str(root), str(tok), **{**defaults, **kw})
    m.setup("fit")
    return m


def test_batches_follow_the_selection(local_dataset, micro_tokenizer_path):
    m = dm(local_dataset, micro_tokenizer_path)
    batches = list(m.train_dataloader())
    lines = np.concatenate([b["index"].numpy() for b in batches])
    assert lines.tolist() == m.train_sampler.lines.tolist()
    assert sum(float(b["is_correct"].sum()) for b in batches) == 20  # balanced 50/50
    val = list(m.val_dataloader())
    assert sum(len(b["index"]) for b in val) == 8


def test_reads_only_selected_lines(local_dataset, micro_tokenizer_path, monkeypatch):
    calls = []
    real = IndexedJsonlDataset.read
    monkeypatch.setattr(IndexedJsonlDataset, "read", lambda self, line: calls.append(line) or real(self, line))
    m = dm(local_dataset, micro_tokenizer_path, sampling="correct", n_samples=6, validate="none")
    next(iter(m.train_dataloader()))
    assert len(calls) == 4 and set(calls) <= set(m.train_sampler.lines.tolist())


def test_state_dict_resumes_the_exact_rest(local_dataset, micro_tokenizer_path):
    a = dm(local_dataset, micro_tokenizer_path, sampling="curriculum", correct_ratio=None)
    it = iter(a.train_dataloader())
    seen = [next(it)["index"] for _ in range(3)]
    for b in seen:
        a.train_sampler.advance(len(b))  # what on_after_batch_transfer does for each trained batch
    state = a.state_dict()
    rest = [b["index"].tolist() for b in it]

    b = WMTPDataModule(
        str(local_dataset),
        str(micro_tokenizer_path),
        sampling="curriculum",
        correct_ratio=None,
        n_samples=40,
        val_samples=8,
        batch_size=4,
    )
    b.load_state_dict(state)  # Lightning restores before setup()
    b.setup("fit")
    assert [x["index"].tolist() for x in b.train_dataloader()] == rest


def test_bad_line_refuses_or_is_skipped(tmp_path, local_dataset, micro_tokenizer_path):
    root = tmp_path / "ds"
    shutil.copytree(local_dataset, root)
    path = root / "processed" / "train.jsonl"
    index = load_index(path)
    data = bytearray(path.read_bytes())
    start = int(index["offset"][3])
    old = data[start : start + int(index["length"][3])]
    new = old.replace(b'"is_correct": true', b'"is_correct": 1').replace(b'"is_correct": false', b'"is_correct": 0')
    assert len(new) == len(old) - 3 or len(new) == len(old) - 4
    new = new + b" " * (len(old) - len(new))  # keep the byte length so the index still matches
    data[start : start + len(old)] = new
    path.write_bytes(bytes(data))
    n = len(index)  # select every line, so the bad one is among them
    with pytest.raises(ValueError, match=r"train.jsonl:4: is_correct: expected bool, got int"):
        dm(root, micro_tokenizer_path, sampling="all", n_samples=n)
    m = dm(root, micro_tokenizer_path, sampling="all", n_samples=n, skip_bad_lines=True)
    assert m.bad_lines == 1
    batches = list(m.train_dataloader())
    assert sum(len(b["index"]) for b in batches) == n - 1
    assert sum(int(b["n_items"]) for b in batches) == n  # the sampler still advances past the bad line


def test_missing_split_and_tokenizer(tmp_path, local_dataset, micro_tokenizer_path):
    with pytest.raises(FileNotFoundError, match="dataset directory not found"):
        dm(tmp_path / "nope", micro_tokenizer_path)
    root = tmp_path / "ds"
    shutil.copytree(local_dataset, root)
    (root / "processed" / "train.index.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"train.index.npy: index missing"):
        dm(root, micro_tokenizer_path)
    with pytest.raises(FileNotFoundError, match="tokenizer model not found"):
        WMTPDataModule(str(local_dataset), str(tmp_path / "t.model"))
