#!/usr/bin/env python
"""Data-index benchmark: a synthetic processed split of CodeContests size, loaded two ways.

Generates N processed records (default 3.7 M, the seed's train split) with log-normal line lengths,
then measures, each in a fresh process where memory matters:
  - this project's binary index: size on disk, load time, time to select 200 k stage-2 (curriculum)
    samples, time to read those lines by byte offset, and peak RSS of a whole
    `WMTPDataModule.setup("fit")` (index + selection + sampler + the step token-count plan; lines
    are read lazily);
  - the seed's `*_metadata.json` (one JSON object per line): size, `json.load` time and peak RSS,
    and the same selection done on the loaded Python lists.
The index is 15 bytes per line (offset u8, prompt_len u2, response_len u2, difficulty, is_correct,
rating u1). Targets (DESIGN §8): index <= 64 MB and loads < 1 s; selection < 1 s; set-up peak RSS
< 500 MB.

    python bench/data_index.py [--records 3700000] [--mean-bytes 1000] [--select 200000] [--dir /tmp/wmtp-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LLAMA = ROOT.parent / "shared" / "data" / "tokenizer" / "llama" / "tokenizer.model"


def generate(path: Path, n: int, mean_bytes: int, seed: int = 0) -> None:
    from wmtp_lightning.data.index import IndexWriter, save_index, write_seed_metadata

    rng = np.random.default_rng(seed)
    filler = "".join(rng.choice(list("abcdefghij klmnopqrstuvwxyz\n(){}[]=+-*/:;.,0123456789"), 1 << 16))
    # ~4 bytes per token: 7600 bytes keeps a line under the conversion's 2048-token filter
    lengths = np.clip(rng.lognormal(np.log(mean_bytes) - 0.5, 1.0, n), 50, 7_600).astype(int)
    difficulty = rng.choice(
        [0, 1, 2, 3, 7, 8, 9, 10, 11, 12, 13],
        n,
        p=[0.41, 0.001, 0.001, 0.01, 0.15, 0.14, 0.12, 0.08, 0.05, 0.02, 0.018],
    )
    correct = rng.random(n) < 0.475
    writer = IndexWriter()
    offset = 0
    with open(path, "wb") as f:
        for i in range(n):
            body = filler[: lengths[i] // 2]
            rec = {
                "instruction": body,
                "input": "",
                "output": filler[: lengths[i] - len(body)],
                "task_id": f"p{i}",
                "is_correct": bool(correct[i]),
                "metadata": {
                    "source": "code_contests/codeforces",
                    "difficulty": int(difficulty[i]),
                    "has_tests": True,
                    "cf_rating": 0,
                },
            }
            line = json.dumps(rec).encode() + b"\n"
            f.write(line)
            # token counts ~ bytes / 4 (the real ones come from the tokenizer; their values do not
            # change the index's size or any timing measured here)
            prompt = int(len(body) // 4) + 40
            writer.add(offset, prompt, int((lengths[i] - len(body)) // 4) + 1, int(difficulty[i]), bool(correct[i]), 0)
            offset += len(line)
    arr = writer.array()
    save_index(arr, path)
    write_seed_metadata(arr, path)


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). ru_maxrss would include the parent's peak: Linux
    carries it over fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_index(path: str, n_select: int) -> dict:
    from wmtp_lightning.data.dataset import IndexedJsonlDataset
    from wmtp_lightning.data.index import load_index
    from wmtp_lightning.data.samplers import select_curriculum

    t = time.perf_counter()
    index = load_index(path)
    _ = int(index["is_correct"].sum())  # touch a column: the data is really read
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    sel = select_curriculum(index, n_select, seed=0)
    select_s = time.perf_counter() - t
    ds = IndexedJsonlDataset(path, index)
    t = time.perf_counter()
    for line in np.sort(sel):
        ds.read(int(line))
    read_s = time.perf_counter() - t
    return {"load_s": load_s, "select_s": select_s, "read_selected_s": read_s, "peak_rss_mb": peak_rss_mb()}


def child_datamodule(folder: str, tokenizer: str, n_select: int) -> dict:
    from wmtp_lightning.data import WMTPDataModule

    imports_mb = peak_rss_mb()  # torch + Lightning alone, before any data is touched
    t = time.perf_counter()
    dm = WMTPDataModule(
        folder,
        tokenizer,
        sampling="curriculum",
        correct_ratio=None,
        n_samples=n_select,
        val_samples=0,
        val_incorrect_samples=0,
        validate="none",
        train_split="train",
        val_split="train",
    )
    dm.setup("fit")  # the synthetic token counts are not the tokenizer's, so no batch is collated
    peak = peak_rss_mb()
    return {
        "setup_s": time.perf_counter() - t,
        "peak_rss_mb": peak,
        "imports_rss_mb": imports_mb,
        "setup_increase_mb": peak - imports_mb,
    }


def child_seed(path: str, n_select: int) -> dict:
    t = time.perf_counter()
    with open(path) as f:
        meta = json.load(f)["metadata"]
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    rng = np.random.default_rng(0)
    bins = {"low": (1, 3), "medium": (4, 7), "high": (8, 11)}
    pools = {b: [i for i, m in enumerate(meta) if lo <= m["difficulty"] <= hi] for b, (lo, hi) in bins.items()}
    weights = {"low": 0.3, "medium": 0.6, "high": 0.1}
    sel = np.concatenate(
        [rng.choice(pools[b], int(n_select * w), replace=len(pools[b]) < n_select * w) for b, w in weights.items()]
    )
    select_s = time.perf_counter() - t
    return {"load_s": load_s, "select_s": select_s, "n": len(sel), "peak_rss_mb": peak_rss_mb()}


def run_child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=3_700_000)
    ap.add_argument("--mean-bytes", type=int, default=1000)
    ap.add_argument("--select", type=int, default=200_000)
    ap.add_argument("--dir", default="/tmp/wmtp-bench-data")
    ap.add_argument("--tokenizer", default=str(LLAMA))
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        kind, *rest = a.child
        fn = {"index": child_index, "seed": child_seed, "dm": child_datamodule}[kind]
        print(json.dumps(fn(*rest[:-1], int(rest[-1]))))
        return {}
    folder = Path(a.dir) / "processed"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.jsonl"
    t = time.perf_counter()
    generate(path, a.records, a.mean_bytes)
    gen_s = time.perf_counter() - t
    from wmtp_lightning.data.index import index_path, metadata_path

    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "records": a.records,
        "jsonl_gb": round(path.stat().st_size / 1e9, 2),
        "generate_s": round(gen_s, 1),
        "select": a.select,
        "index_mb": round(index_path(path).stat().st_size / 1e6, 1),
        "seed_metadata_mb": round(metadata_path(path).stat().st_size / 1e6, 1),
        "index": run_child("index", str(path), str(a.select)),
        "datamodule_setup": run_child("dm", str(Path(a.dir)), a.tokenizer, str(a.select)),
        "seed_json": run_child("seed", str(metadata_path(path)), str(a.select)),
    }
    print(json.dumps(result, indent=1))
    if not a.keep:
        for p in folder.iterdir():
            p.unlink()
    return result


if __name__ == "__main__":
    main()
