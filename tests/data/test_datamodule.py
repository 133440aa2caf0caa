"""The DataModule wiring: budget from the run, selection by index, the batch contract, reading by
offset, resume, the shared validation selection, dataset checks and bad lines."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from tests.conftest import load_script
from wmtp_lightning.data import WMTPDataModule
from wmtp_lightning.data.collate import IGNORE_INDEX, kept_lengths
from wmtp_lightning.data.dataset import IndexedJsonlDataset
from wmtp_lightning.data.index import INDEX_DTYPE, index_path, load_index
from wmtp_lightning.data.manifest import write_manifest
from wmtp_lightning.data.samplers import DEFAULT_SCHEDULE
from wmtp_lightning.data.schema import DEFAULT_BINS, bin_of
from wmtp_lightning.errors import UserError


@dataclass
class FakeTrainer:
    """The attributes of `lightning.Trainer` the DataModule reads."""

    max_steps: int = -1
    accumulate_grad_batches: int = 1
    world_size: int = 1
    global_rank: int = 0
    training: bool = True


def dm(root, tok, trainer: FakeTrainer | None = None, setup: bool = True, **kw) -> WMTPDataModule:
    defaults = {"sampling": "balanced", "val_samples": 8, "val_incorrect_samples": 4, "batch_size": 4}
    if trainer is None:
        defaults["n_samples"] = 40
    m = WMTPDataModule(str(root), str(tok), **{**defaults, **kw})
    m.trainer = trainer
    if setup:
        m.setup("fit")
    return m


@pytest.fixture
def ds_copy(tmp_path, local_dataset):
    root = tmp_path / "ds"
    shutil.copytree(local_dataset, root)
    return root


def test_batches_follow_the_selection(local_dataset, micro_tokenizer_path):
    m = dm(local_dataset, micro_tokenizer_path)
    batches = list(m.train_dataloader())
    lines = np.concatenate([b["index"].numpy() for b in batches])
    assert lines.tolist() == m.train_sampler.lines.tolist()
    assert sum(float(b["is_correct"].sum()) for b in batches) == 20  # balanced 50/50
    val = list(m.val_dataloader())
    assert sum(len(b["index"]) for b in val) == 12
    assert sum(float(b["is_correct"].sum()) for b in val) == 8  # val_samples correct + 4 incorrect


def test_reads_only_selected_lines(local_dataset, micro_tokenizer_path, monkeypatch):
    calls = []
    real = IndexedJsonlDataset.read
    monkeypatch.setattr(IndexedJsonlDataset, "read", lambda self, line: calls.append(line) or real(self, line))
    m = dm(local_dataset, micro_tokenizer_path, sampling="correct", n_samples=6, validate="none")
    next(iter(m.train_dataloader()))
    assert len(calls) == 4 and set(calls) <= set(m.train_sampler.lines.tolist())


# ---------------------------------------------------------------------- the budget
def test_n_samples_is_derived_from_the_run(local_dataset, micro_tokenizer_path):
    t = FakeTrainer(max_steps=5, accumulate_grad_batches=2, world_size=2, global_rank=1)
    m = dm(local_dataset, micro_tokenizer_path, t, batch_size=3)
    assert m.train_budget() == 5 * 3 * 2 * 2
    assert len(m.train_sampler.lines) == 5 * 3 * 2  # this rank's half
    explicit = dm(local_dataset, micro_tokenizer_path, t, batch_size=3, n_samples=60)
    assert explicit.train_budget() == 60  # agreeing is fine
    with pytest.raises(ValueError) as info:
        dm(local_dataset, micro_tokenizer_path, t, batch_size=3, n_samples=200)
    msg = str(info.value)
    assert "data.n_samples: 200 (set in the config) but the run consumes 60 = trainer.max_steps 5" in msg
    assert "data.batch_size 3 × trainer.accumulate_grad_batches 2 × world size 2" in msg
    with pytest.raises(ValueError, match=r"data.n_samples: needed when trainer.max_steps is -1"):
        dm(local_dataset, micro_tokenizer_path, FakeTrainer(max_steps=-1), n_samples=None)
    assert dm(local_dataset, micro_tokenizer_path, FakeTrainer(max_steps=-1), n_samples=12).train_budget() == 12


# ---------------------------------------------------------------------- the batch contract
def consume(m: WMTPDataModule) -> list[tuple[list[int], dict]]:
    """Every training micro-batch of a rank, through on_after_batch_transfer as the trainer does it,
    with the lines its sampler handed out for it (rows dropped by truncation included)."""
    out = []
    for batch in m.train_dataloader():
        c = m.train_sampler.consumed
        sampled = m.train_sampler.lines[c : c + int(batch["n_items"])].tolist()
        out.append((sampled, m.on_after_batch_transfer(batch, 0)))
    return out


@pytest.mark.parametrize("max_length", [2048, 380])
def test_batch_contract_with_accumulation_and_ranks(local_dataset, micro_tokenizer_path, max_length):
    """W=2 ranks, A=2 accumulated micro-batches of B=2: every micro-batch describes its whole step."""
    W, A, B, steps = 2, 2, 2, 6
    E = W * A * B
    kw = {"sampling": "all", "batch_size": B, "max_length": max_length, "truncate": max_length < 2048}
    ranks = [dm(local_dataset, micro_tokenizer_path, FakeTrainer(steps, A, W, r), **kw) for r in range(W)]
    index = load_index(local_dataset / "processed" / "train.jsonl")
    selection = np.stack([m.train_sampler.lines for m in ranks], 1).reshape(-1)  # global order: rank r = [r::W]
    micro = {r: consume(m) for r, m in enumerate(ranks)}
    assert all(len(v) == steps * A for v in micro.values())
    kinds = set()
    for s in range(steps):
        step = [micro[r][s * A + k] for r in range(W) for k in range(A)]
        first = step[0][1]
        for _, b in step:  # every micro-batch of every rank carries the same description of the step
            for key in ("step_prompt_len", "step_response_len", "step_micro"):
                assert b[key].dtype == torch.int64 and b[key].shape == (E,) and b[key].device == b["labels"].device
                assert torch.equal(b[key], first[key])
        assert first["step_micro"].tolist() == [0, 2, 0, 2, 1, 3, 1, 3]  # rank × A + micro index
        lines = selection[s * E : (s + 1) * E]
        learned = 0
        for r in range(W):
            for k in range(A):
                sampled, b = micro[r][s * A + k]
                at = (first["step_micro"] == r * A + k).numpy()
                assert lines[at].tolist() == sampled  # the step's positions of this micro-batch = its lines
                kept = [i for i, line in enumerate(sampled) if line in b["index"].tolist()]
                for i, line in enumerate(sampled):
                    p, resp = int(first["step_prompt_len"][at][i]), int(first["step_response_len"][at][i])
                    if i not in kept:  # dropped by truncation: counts 0/0
                        assert (p, resp) == (0, 0) and index["is_correct"][line]
                        kinds.add("dropped")
                        continue
                    row = b["index"].tolist().index(line)
                    labels = b["labels"][row]
                    assert int((labels != IGNORE_INDEX).sum()) == resp
                    assert int(labels.ne(IGNORE_INDEX).nonzero()[0]) == p  # prompt tokens precede the first label
                    full = int(index["prompt_len"][line]) + int(index["response_len"][line])
                    assert bool(b["truncated"][row]) == (full > max_length)
                    if full > max_length:
                        assert resp == max_length - p and not index["is_correct"][line]
                        kinds.add("cut")
                    learned += int((labels != IGNORE_INDEX).sum())
        assert learned == int(first["step_response_len"].sum())  # the step's token count, known beforehand
    if max_length < 2048:
        assert kinds == {"dropped", "cut"}  # both truncation rules were exercised


def test_validation_batches_carry_no_step_keys(local_dataset, micro_tokenizer_path):
    m = dm(local_dataset, micro_tokenizer_path, FakeTrainer(max_steps=2, training=False), batch_size=2)
    batch = m.on_after_batch_transfer(next(iter(m.val_dataloader())), 0)
    assert not {"step_prompt_len", "step_response_len", "step_micro"} & set(batch)
    assert "is_correct" in batch and m.train_sampler.consumed == 0


def test_index_from_another_tokenizer_stops_the_first_batch(ds_copy, micro_tokenizer_path, llama_tokenizer_path):
    processed = ds_copy / "processed"
    load_script("extract_metadata")["main"]([str(processed), "--tokenizer", str(llama_tokenizer_path)])
    m = dm(ds_copy, micro_tokenizer_path, sampling="correct", n_samples=4)
    with pytest.raises(
        ValueError, match=r"train.jsonl:\d+: \d+ learned tokens after \d+ prompt tokens, the index says"
    ):
        next(iter(m.train_dataloader()))


# ---------------------------------------------------------------------- resume
def test_state_dict_resumes_the_exact_rest(local_dataset, micro_tokenizer_path):
    kw = {"sampling": "curriculum", "correct_ratio": None, "batch_size": 4}
    a = dm(local_dataset, micro_tokenizer_path, FakeTrainer(max_steps=10), **kw)
    it = iter(a.train_dataloader())
    for _ in range(3):
        a.on_after_batch_transfer(next(it), 0)  # what the trainer does for each trained batch
    state = a.state_dict()
    rest = [b["index"].tolist() for b in it]

    b = dm(local_dataset, micro_tokenizer_path, FakeTrainer(max_steps=10), setup=False, **kw)
    b.load_state_dict(state)  # Lightning restores before setup()
    b.setup("fit")
    assert [x["index"].tolist() for x in b.train_dataloader()] == rest


# ---------------------------------------------------------------------- curriculum on the vessl budget
def synthetic_split(folder, n: int, seed: int = 0) -> np.ndarray:
    """An index of n lines over the three default bins (and difficulty 0, in none), beside a JSONL
    of n tiny lines that are never read (validate: none)."""
    rng = np.random.default_rng(seed)
    index = np.zeros(n, dtype=INDEX_DTYPE)
    index["offset"] = np.arange(n) * 3
    index["difficulty"] = rng.integers(0, 12, n)
    index["is_correct"] = rng.integers(0, 2, n)
    index["prompt_len"] = rng.integers(50, 400, n)
    index["response_len"] = rng.integers(20, 600, n)
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_bytes(b"{}\n" * n)
    np.save(index_path(folder / "train.jsonl"), index)
    return index


def run_steps(ranks: list[WMTPDataModule], steps: range, A: int, B: int, index: np.ndarray) -> list[list[int]]:
    """Consume the ranks' samplers step by step as the trainer does (A micro-batches of B lines per
    rank per optimizer step, each through on_after_batch_transfer); returns each step's lines."""
    its = [iter(m.train_sampler) for m in ranks]
    out = []
    for _ in steps:
        lines, described = [], None
        for m, it in zip(ranks, its):
            for _ in range(A):
                lines += [next(it) for _ in range(B)]
                batch = m.on_after_batch_transfer({"input_ids": torch.zeros(B, 1), "n_items": torch.tensor(B)}, 0)
                described = batch["step_response_len"]
        global_order = np.array(lines).reshape(len(ranks), -1).T.reshape(-1)  # rank r's i-th line at r + i·W
        _, want = kept_lengths(*(index[k][global_order] for k in ("prompt_len", "response_len", "is_correct")), 2048)
        assert described.tolist() == want.tolist()  # the step's description matches the lines it holds
        out.append(lines)
    return out


def phase_mix(per_step: list[list[int]], index: np.ndarray, max_steps: int) -> list[dict[str, float]]:
    mixes = []
    for phase in DEFAULT_SCHEDULE:
        lines = [x for s, ls in enumerate(per_step) if phase.start <= s / max_steps < phase.end for x in ls]
        bins = [bin_of(int(d), DEFAULT_BINS) for d in index["difficulty"][lines]]
        mixes.append({b: bins.count(b) / len(bins) for b in DEFAULT_BINS})
    return mixes


def test_curriculum_follows_training_steps_on_the_vessl_budget(tmp_path, micro_tokenizer_path):
    """configs/vessl.yaml: 4 ranks × batch 2 × accumulate 4, 2000 steps. Each phase's realised bin mix,
    by global step fraction, is the schedule's, also after a resume from a mid-run state."""
    W, B, A, S = 4, 2, 4, 2000
    index = synthetic_split(tmp_path / "processed", 300_000)
    kw = {"sampling": "curriculum", "correct_ratio": None, "batch_size": B, "validate": "none", "val_split": "train"}

    def rank(r: int, setup: bool = True) -> WMTPDataModule:
        return dm(tmp_path, micro_tokenizer_path, FakeTrainer(S, A, W, r), setup, **kw)

    ranks = [rank(r) for r in range(W)]
    assert ranks[0].train_budget() == S * B * A * W == 64_000  # what the run consumes, not a nominal 200 k
    assert all(len(m.train_sampler.lines) == S * A * B for m in ranks)
    cut = 1234  # mid phase 2
    first = run_steps(ranks, range(cut), A, B, index)
    states = [m.state_dict() for m in ranks]
    rest = run_steps(ranks, range(cut, S), A, B, index)
    assert all(m.train_sampler.consumed == len(m.train_sampler.lines) for m in ranks)  # budget = selection
    for mix, phase in zip(phase_mix(first + rest, index, S), DEFAULT_SCHEDULE):
        total = sum(phase.weights.values())
        for b in DEFAULT_BINS:
            assert abs(mix[b] - phase.weights[b] / total) <= 0.01, (phase, mix)

    resumed = [rank(r, setup=False) for r in range(W)]
    for m, state in zip(resumed, states):
        m.load_state_dict(state)  # Lightning restores before setup()
        m.setup("fit")
    again = run_steps(resumed, range(cut, S), A, B, index)
    assert again == rest  # exactly the remaining lines, in order
    for mix, phase in zip(phase_mix(first + again, index, S), DEFAULT_SCHEDULE):
        total = sum(phase.weights.values())
        assert all(abs(mix[b] - phase.weights[b] / total) <= 0.01 for b in DEFAULT_BINS), (phase, mix)


# ---------------------------------------------------------------------- validation selection
def test_validation_selection_is_shared_and_split_per_rank(local_dataset, micro_tokenizer_path):
    index = load_index(local_dataset / "processed" / "valid.jsonl")
    shares = {}
    for sampling in ("correct", "curriculum", "balanced"):
        for r in range(2):
            m = dm(local_dataset, micro_tokenizer_path, FakeTrainer(3, 1, 2, r), sampling=sampling, batch_size=2)
            shares.setdefault(r, set()).add(tuple(m.val_lines.tolist()))
    assert all(len(v) == 1 for v in shares.values())  # the same lines whatever the experiment
    r0, r1 = (np.array(next(iter(shares[r]))) for r in range(2))
    assert not set(r0) & set(r1)
    for lines in (r0, r1):  # equal per-rank shares of each kind: 8 correct / 2, 4 incorrect / 2
        assert index["is_correct"][lines].tolist().count(1) == 4 and index["is_correct"][lines].tolist().count(0) == 2


# ---------------------------------------------------------------------- dataset checks and bad lines
def corrupt_line(path, lineno: int) -> None:
    """Make line `lineno` (1-based) fail the schema while keeping its byte length."""
    index = load_index(path)
    data = bytearray(path.read_bytes())
    start, end = int(index["offset"][lineno - 1]), int(index["offset"][lineno])
    old = data[start : end - 1]
    new = old.replace(b'"is_correct": true', b'"is_correct": 1').replace(b'"is_correct": false', b'"is_correct": 0')
    data[start : end - 1] = new + b" " * (len(old) - len(new))
    path.write_bytes(bytes(data))


def test_bad_line_refuses_or_is_replaced(ds_copy, micro_tokenizer_path):
    path = ds_copy / "processed" / "train.jsonl"
    corrupt_line(path, 4)
    write_manifest(ds_copy / "processed")  # the file is as its manifest says; the line itself is bad
    n = len(load_index(path))  # select every line, so the bad one is among them
    with pytest.raises(UserError, match=r"train.jsonl:4: is_correct: expected bool, got int; fix the data or set"):
        dm(ds_copy, micro_tokenizer_path, sampling="all", n_samples=n)
    m = dm(ds_copy, micro_tokenizer_path, sampling="all", n_samples=n, skip_bad_lines=True)
    assert m.bad_lines == 1
    assert 3 not in m.train_sampler.lines.tolist() and len(m.train_sampler.lines) == n  # replaced, not dropped
    batches = list(m.train_dataloader())
    assert sum(len(b["index"]) for b in batches) == n == sum(int(b["n_items"]) for b in batches)
    # balanced: the replacement comes from the bad line's own pool, so the ratio holds
    m = dm(ds_copy, micro_tokenizer_path, sampling="balanced", n_samples=n, skip_bad_lines=True)
    assert int(load_index(path)["is_correct"][m.train_sampler.lines].sum()) == n // 2
    # validate: none reads nothing at set-up; the bad line is an error when it is read
    m = dm(ds_copy, micro_tokenizer_path, sampling="all", n_samples=n, validate="none")
    with pytest.raises(ValueError, match=r"train.jsonl:4: is_correct: expected bool"):
        list(m.train_dataloader())
    with pytest.raises(ValueError, match="skip_bad_lines: needs validate"):
        dm(ds_copy, micro_tokenizer_path, validate="none", skip_bad_lines=True)


def test_too_long_lines_are_refused_at_setup(local_dataset, micro_tokenizer_path):
    with pytest.raises(UserError, match=r"train.jsonl:\d+: \d+ tokens > data.max_length 300 \(\d+ selected line"):
        dm(local_dataset, micro_tokenizer_path, sampling="all", n_samples=104, max_length=300)
    with pytest.raises(UserError, match=r"every line of rank 0's micro-batch \d+ is dropped by truncation"):
        dm(local_dataset, micro_tokenizer_path, sampling="correct", n_samples=52, max_length=300, truncate=True)


def test_manifest_mismatch_is_refused(ds_copy, micro_tokenizer_path):
    processed = ds_copy / "processed"
    valid = processed / "valid.jsonl"
    data = bytearray(valid.read_bytes())
    at = data.index(b'"instruction": "') + 20  # inside the text: the line stays valid
    data[at : at + 2] = b"XY" if data[at : at + 2] != b"XY" else b"ZW"  # same size, other content
    valid.write_bytes(bytes(data))
    dm(ds_copy, micro_tokenizer_path, validate="none")  # no check at all
    m = dm(ds_copy, micro_tokenizer_path, setup=False)
    m.setup("validate")  # the fast check (sizes) cannot see a same-size change ...
    with pytest.raises(UserError, match=r"valid.jsonl: sha256 differs from manifest.json"):
        dm(ds_copy, micro_tokenizer_path, validate="full")  # ... the full one does
    with open(processed / "train.jsonl", "ab") as f:
        f.write(b"\n")
    with pytest.raises(UserError, match=r"train.jsonl: \d+ bytes, manifest.json says \d+"):
        dm(ds_copy, micro_tokenizer_path)
    manifest = json.loads((processed / "manifest.json").read_text())
    manifest["files"]["train.jsonl"]["size"] += 1  # edited to match: the manifest's own checksum catches it
    (processed / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"manifest.json: files_sha256: does not match the file list"):
        dm(ds_copy, micro_tokenizer_path)
    (processed / "manifest.json").unlink()
    with pytest.raises(UserError, match=r"manifest.json: missing; the dataset is incomplete") as info:
        dm(ds_copy, micro_tokenizer_path)
    assert "\n" not in str(info.value)


def test_missing_split_and_tokenizer(tmp_path, ds_copy, micro_tokenizer_path):
    with pytest.raises(FileNotFoundError, match="dataset directory not found"):
        dm(tmp_path / "nope", micro_tokenizer_path)
    (ds_copy / "processed" / "train.index.npy").unlink()
    with pytest.raises(UserError, match=r"train.index.npy: missing \(listed in manifest.json\)"):
        dm(ds_copy, micro_tokenizer_path)
    with pytest.raises(FileNotFoundError, match=r"train.index.npy: index missing; rebuild it with"):
        dm(ds_copy, micro_tokenizer_path, validate="none")
    with pytest.raises(FileNotFoundError, match="tokenizer model not found"):
        WMTPDataModule(str(ds_copy), str(tmp_path / "t.model"))


def test_truncated_index_is_one_line_with_the_rebuild_command(ds_copy, micro_tokenizer_path):
    path = ds_copy / "processed" / "train.index.npy"
    path.write_bytes(path.read_bytes()[:-100])
    for validate in ("selected", "none"):  # the manifest sees the size; without it, the index check does
        with pytest.raises(UserError) as info:
            dm(ds_copy, micro_tokenizer_path, validate=validate)
        msg = str(info.value)
        assert "\n" not in msg and str(path) in msg and "mmap" not in msg
    assert "(truncated or corrupt); rebuild it with `python scripts/extract_metadata.py" in msg
