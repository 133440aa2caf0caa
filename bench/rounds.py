"""Shared by the comparison benches: interleaved A/B rounds, min/median/max, the matmul peak.

A comparison on a shared machine is only as good as its ordering: if A runs for a minute and
then B does, a burst of foreign load lands on one of them. Here every round runs each variant
once, in an order rotated by the round, so load hits all variants alike; ratios are taken within
a round and summarised as min / median / max over rounds.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence

import torch

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def interleaved(
    variants: dict[str, Callable[[], object]],
    rounds: int,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
    clock: str = "wall",
) -> dict[str, list[float]]:
    """Seconds per call of each variant: `warmup` untimed calls each, then `rounds` rotated rounds.

    clock "wall" (what a user waits for) or "cpu" (this process's CPU time: with one thread it
    is not inflated by foreign processes taking the cores, so ratios survive a loaded machine).
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {clock!r}")
    now = CLOCKS[clock]
    sync = sync or (lambda: None)
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            sync()
            t = now()
            variants[name]()
            sync()
            times[name].append(now() - t)
    return times


def per_round(num: Sequence[float], den: Sequence[float]) -> list[float]:
    """Ratios num[i] / den[i] of the same round."""
    return [a / b for a, b in zip(num, den, strict=True)]


def spread(values: Sequence[float], digits: int = 3) -> dict[str, float]:
    """{"min", "median", "max"} of `values`."""
    return {
        "min": round(min(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
    }


def fmt(s: dict[str, float]) -> str:
    """'median (min–max)' of a `spread` ('n/a' for none)."""
    return f"{s['median']} ({s['min']}–{s['max']})" if s else "n/a"


def device_sync(device: str | torch.device) -> Callable[[], None]:
    """Blocks until queued kernels finish (CUDA); a no-op on CPU."""
    if torch.device(device).type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def matmul_peak(device: str, dtype: torch.dtype, n: int | None = None, reps: int = 10) -> float:
    """Best FLOP/s of an n×n×n matmul loop: the ceiling MFU is measured against on this machine.

    n defaults to 2048 on CPU and 8192 on GPU (large enough to saturate either).
    """
    n = n or (8192 if torch.device(device).type == "cuda" else 2048)
    sync = device_sync(device)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    best = float("inf")
    torch.mm(a, b, out=out)  # warm-up: kernel selection, page faults
    for _ in range(reps):
        sync()
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def machine(device: str) -> str:
    """One line: CPU/GPU, threads, torch version, load average (foreign load shows here)."""
    dev = torch.cuda.get_device_name() if torch.device(device).type == "cuda" else platform.processor() or "cpu"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.machine()} {dev}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, load average {load}"
    )


def fused_adamw_supported(params: list[torch.Tensor]) -> bool:
    """Whether `torch.optim.AdamW(fused=True)` accepts these parameters (their device has the kernel)."""
    try:
        torch.optim.AdamW(params, fused=True)
    except (RuntimeError, ValueError):
        return False
    return True


def report(result: dict, table: str, json_path: str | None) -> dict:
    """Print a bench's markdown table and its JSON; also write the JSON to `json_path` (atomically)."""
    import json

    from wmtp_lightning.io import write_json

    print(table)
    print(json.dumps(result))
    if json_path:
        write_json(json_path, result)
    return result
