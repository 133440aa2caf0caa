#!/usr/bin/env python
"""Sample k solutions per problem with a model, verify each in the sandbox, write a processed dataset.

    python scripts/sample_and_verify.py --model storage/models_v2/smollm2-135m \\
        --benchmark mbpp --problems ../shared/data/eval/mbpp/mbpp.jsonl --task-ids 511-974 \\
        --k 4 --max-new-tokens 256 --extract-code --dst storage/datasets_v2/smollm2-mbpp
    python scripts/sample_and_verify.py --model BUNDLE --benchmark local --local-split all --dst DIR

The verifiable-reward loop behind VerifiableCriticMTP: the policy samples `--k` solutions per
problem (temperature / top-p through the project's batched, KV-cached `generate`, prompted with
the Alpaca template the training records use), every sample runs in the sandbox against the
problem's tests (MBPP / HumanEval asserts, or stdin/stdout tests for the local problems), and
the result is written as the project's processed dataset, through the same writer as
`setup_datasets.py`: `DST/processed/{train,valid,test}.jsonl` + index + seed metadata,
`stats.json` (per split, and per problem: samples, correct, pass rate, difficulty) and
`manifest.json` last. `is_correct` is the sandbox's verdict; `difficulty` is the problem's
empirical pass rate on CodeContests' levels 1 (EASY) .. 5 (HARDEST) (see `data/verified.py`).
Problems, not samples, are split (seeded): `--valid-fraction` / `--test-fraction` of them go to
valid / test, so no problem's samples are on both sides of a held-out measurement.

MBPP defaults to its train + validation task ids (511..974), never its test split (11..510).
`--extract-code` records and runs the first Markdown code block of a completion (chat-tuned
models put prose around it) instead of the raw text.

Inputs (model bundle, problems file, sandbox, a writable DST) are checked before any sampling.
Output is written into `DST/processed.tmp/` and moved into place when complete, the manifest last;
a bad input is one line on stderr and exit code 1 (`--debug` for tracebacks).
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wmtp_lightning.data.codecontests import SPLITS, ConvertConfig, convert_split
from wmtp_lightning.data.manifest import invalidate_manifest, write_manifest
from wmtp_lightning.data.verified import check_sampled, extract_code, sampled_records, sampled_row
from wmtp_lightning.errors import ArgumentParser, BadInput, MissingInput, UsageError, script_main, writable_dir
from wmtp_lightning.io import write_json

MBPP_TRAIN_VALID = "511-974"  # MBPP's validation (511..600) and train (601..974) task ids


def task_id_ranges(text: str) -> list[int]:
    """'511-600,601-974' or '11,12' -> the task ids (inclusive ranges)."""
    ids: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            ids += range(int(lo), int(hi or lo) + 1)
    except ValueError:
        raise UsageError(f"--task-ids: expected ranges like 511-974 or 601,602, got {text!r}") from None
    return ids


def load_problems(args: Any) -> list:
    from wmtp_lightning.evaluation.benchmarks import load_humaneval, load_local, load_mbpp

    if args.benchmark != "local" and args.problems is None:
        raise UsageError(f"--benchmark {args.benchmark} needs --problems FILE")
    if args.problems is not None and not Path(args.problems).is_file():
        raise MissingInput(f"{args.problems}: problems file not found")
    try:
        if args.benchmark == "mbpp":
            problems = load_mbpp(args.problems, task_ids=task_id_ranges(args.task_ids))
        elif args.benchmark == "humaneval":
            problems = load_humaneval(args.problems)
        else:
            problems = load_local(args.local_split)
    except ValueError as err:  # the loaders' `file:line: missing field(s) ...`
        raise BadInput(str(err)) from err
    problems = problems[: args.limit]
    if not problems:
        raise BadInput(f"{args.problems or 'local problems'}: no problems selected (check --task-ids / --limit)")
    return problems


def split_problems(n: int, valid_fraction: float, test_fraction: float, seed: int) -> list[str]:
    """The output split of each of n problems: a seeded shuffle, the first share to valid, the next to test."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_valid, n_test = round(n * valid_fraction), round(n * test_fraction)
    split = ["train"] * n
    for rank, i in enumerate(order):
        if rank < n_valid:
            split[i] = "valid"
        elif rank < n_valid + n_test:
            split[i] = "test"
    return split


def fraction(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        x = -1.0
    if not 0.0 <= x < 1.0:
        raise UsageError(f"expected a fraction in [0, 1), got {text!r}")
    return x


def sample_all(model, tok, problems: Sequence, args: Any) -> tuple[list[list[str]], int]:
    """`args.k` completions per problem, in batches of `args.batch_size` problems; (texts, tokens)."""
    from wmtp_lightning.evaluation.generation import GenerationConfig, generate

    texts: list[list[str]] = []
    n_tokens = 0
    for start in range(0, len(problems), args.batch_size):
        batch = problems[start : start + args.batch_size]
        cfg = GenerationConfig(
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_p=args.top_p,
            stop=tuple(batch[0].stop("alpaca")),  # the Alpaca stops: the same for every problem
            n_samples=args.k,
            seed=args.seed + start,
        )
        for gens in generate(model, tok, [p.prompt("alpaca") for p in batch], cfg):
            texts.append([g.text for g in gens])
            n_tokens += sum(len(g.tokens) for g in gens)
        print(f"sampled {len(texts)}/{len(problems)} problems ({n_tokens} tokens)", flush=True)
    return texts, n_tokens


def name_of(problem: Any) -> str:
    return problem.task_id if "/" in problem.task_id else f"{problem.benchmark}/{problem.task_id}"


@script_main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="policy bundle (storage/models_v2/<name> or a run's export/)")
    ap.add_argument("--dst", required=True, help="dataset root; output goes to DST/processed")
    ap.add_argument("--benchmark", choices=["mbpp", "humaneval", "local"], default="mbpp")
    ap.add_argument("--problems", help="problems file: mbpp.jsonl / sanitized-mbpp.json / HumanEval.jsonl.gz")
    ap.add_argument("--task-ids", default=MBPP_TRAIN_VALID, help="MBPP task ids (default: train + validation)")
    ap.add_argument("--local-split", default="all", help="local problems: train, valid, test or all")
    ap.add_argument("--limit", type=int, help="only the first N problems")
    ap.add_argument("--k", type=int, default=4, help="samples per problem")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=4, help="problems per generation batch (k rows each)")
    ap.add_argument("--extract-code", action="store_true", help="keep the first ``` block of each completion")
    ap.add_argument("--valid-fraction", type=fraction, default=0.2, help="share of problems in valid")
    ap.add_argument("--test-fraction", type=fraction, default=0.0, help="share of problems in test")
    ap.add_argument("--max-tokens", type=int, default=2048, help="drop when BOS+prompt+solution+EOS exceeds")
    ap.add_argument("--timeout-s", type=float, default=10.0, help="sandbox limit per program")
    ap.add_argument("--workers", type=int, default=2, help="programs run in parallel")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed and problem split")
    args = ap.parse_args(argv)
    if args.k < 1 or args.batch_size < 1 or args.max_new_tokens < 1 or args.temperature <= 0:
        ap.error("--k, --batch-size and --max-new-tokens must be >= 1 and --temperature > 0")
    if args.valid_fraction + args.test_fraction >= 1:
        ap.error("--valid-fraction + --test-fraction must leave problems for train")

    import torch

    from wmtp_lightning.evaluation.sandbox import SandboxLimits, execute
    from wmtp_lightning.evaluation.scoring import judge_all
    from wmtp_lightning.models import bundle_tokenizer, load_bundle

    if not (Path(args.model) / "metadata.json").is_file():
        raise MissingInput(f"{args.model}: model bundle not found (no metadata.json)")
    problems = load_problems(args)
    limits = SandboxLimits(timeout_s=args.timeout_s)
    execute("pass", limits=limits)  # no sandbox here: one line now, not after the sampling
    out = writable_dir(Path(args.dst) / "processed")
    model = load_bundle(args.model).eval().requires_grad_(False)
    tok = bundle_tokenizer(args.model, model.args)

    t0 = time.perf_counter()
    with torch.no_grad():
        texts, n_tokens = sample_all(model, tok, problems, args)
    t_sample = time.perf_counter() - t0
    if args.extract_code:
        texts = [[extract_code(t) for t in ts] for ts in texts]
    t0 = time.perf_counter()
    rows = judge_all(problems, texts, limits, args.workers)
    t_verify = time.perf_counter() - t0
    verdicts: dict[str, list[bool]] = {}
    for r in rows:
        verdicts.setdefault(r["task_id"], []).append(r["passed"])

    assignment = split_problems(len(problems), args.valid_fraction, args.test_fraction, args.seed)
    sampled: dict[str, list[tuple[str, dict[str, Any]]]] = {s: [] for s in SPLITS}
    per_problem = []
    for p, ts, split in zip(problems, texts, assignment):
        row = sampled_row(name_of(p), p.instruction, p.input, f"sampled/{p.benchmark}", ts, verdicts[p.task_id])
        sampled[split].append((f"{name_of(p)} (sampled)", row))
        c = sum(row["passed"])
        per_problem.append(
            {"task_id": p.task_id, "split": split, "n": len(ts), "correct": c, "difficulty": row["difficulty"]}
        )

    stage = out.with_name("processed.tmp")
    shutil.rmtree(stage, ignore_errors=True)  # what a killed run left
    cfg = ConvertConfig(max_tokens=args.max_tokens)
    n_samples = sum(len(ts) for ts in texts)
    n_correct = sum(r["passed"] for r in rows)
    stats: dict[str, Any] = {}
    try:
        stage.mkdir()
        for split in SPLITS:
            s = convert_split(
                iter(sampled[split]), stage / f"{split}.jsonl", tok, cfg, split, None, sampled_records, check_sampled
            )
            stats[split] = s.as_dict()
        stats["sampling"] = {
            "problems": len(problems),
            "samples": n_samples,
            "correct": n_correct,
            "pass_rate": n_correct / n_samples,
            "generated_tokens": n_tokens,
            "sampling_s": round(t_sample, 1),
            "tokens_per_s": round(n_tokens / t_sample, 2),
            "verify_s": round(t_verify, 1),
            "per_problem": per_problem,
        }
        write_json(stage / "stats.json", stats)
        invalidate_manifest(out)  # from here until the manifest is written, the folder is incomplete
        for path in sorted(stage.iterdir()):
            path.replace(out / path.name)
        settings = ("benchmark", "problems", "task_ids", "k", "temperature", "top_p", "max_new_tokens", "seed")
        write_manifest(
            out,
            {
                "tokenizer": str(tok.path),
                "max_tokens": args.max_tokens,
                "sampled_by": {
                    "model": str(args.model),
                    "extract_code": args.extract_code,
                    **{k: getattr(args, k) for k in settings},
                },
            },
        )
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    summary = {k: v for k, v in stats["sampling"].items() if k != "per_problem"}
    summary |= {s: {"kept": stats[s]["kept"], "correct": stats[s]["correct"]} for s in SPLITS}
    print(json.dumps(summary, indent=1))
    return stats


if __name__ == "__main__":
    main()
