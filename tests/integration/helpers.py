"""Launch subprocesses safely from tests: clean environment, own session, killed as a group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_DROP = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "NODE_RANK",
    "GROUP_RANK",
    "LOCAL_WORLD_SIZE",
    "PL_GLOBAL_SEED",
    "PL_TRAINER_GPUS",
    "OMP_NUM_THREADS",
    "PYTEST_CURRENT_TEST",
)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP and not k.startswith(("TORCHELASTIC", "LT_"))}
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: list[str], timeout: float, **env: str) -> subprocess.CompletedProcess:
    """Run `python args...` in its own session; the whole group is killed on timeout."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=clean_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"timed out after {timeout}s: {args}\n{out[-4000:]}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers (e.g. a spawned rank) die with the group
    if proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {args}\n{out[-6000:]}")
    return subprocess.CompletedProcess(args, proc.returncode, out, "")


def fit_args(configs: list[str], root, bundle, data, tokenizer, steps: int | None = None, *extra: str) -> list[str]:
    """`python -m wmtp_lightning.cli fit ...` arguments for a short run on test fixtures."""
    args = ["-m", "wmtp_lightning.cli", "fit"] + [x for c in configs for x in ("--config", c)]
    args += ["--model.init_args.model", str(bundle), "--data.init_args.data_dir", str(data)]
    args += ["--data.init_args.tokenizer", str(tokenizer), "--trainer.default_root_dir", str(root)]
    if steps is not None:
        args += ["--trainer.max_steps", str(steps), "--trainer.val_check_interval", str(steps)]
        args += ["--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false"]
    return [*args, *extra]
