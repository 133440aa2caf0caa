"""The worker: a pristine template process that keeps one supervisor (and its candidate) ready.

    host --frames--> template T --fork--> supervisor S --unshare(PID), fork--> candidate C (PID 1)
                                          (judge, watcher)

T never reads a frame: its memory never holds a program, a test or an output, and every
process of a sample starts as a copy of it. T keeps one supervisor forked ahead; that spare S
forks its candidate C at once, as PID 1 of a new PID namespace, before anything of a sample
exists. Per sample the host sends three frames: a header (mode and limits only), the program
(and its stdin), and, in tests mode, the test code. The spare S reads the header and the
program and passes C only the program (C then makes its private mounts, drops every privilege
and runs it); S reads the tests after that, so no candidate's memory ever contains a test or
another sample's data. S then drops its own privileges and judges (judge.py), draining C's
output, feeding its stdin and enforcing the deadline and the output limit in one select loop,
and writes one result frame as soon as the verdict is final (cleanup comes after). When C exits
or is killed, the kernel kills everything else in its namespace: nothing the program started
outlives it. If S dies or hangs, T exits and the host replaces the worker (the frames are no
longer in step); only that sample is marked.

Unisolated mode (`--unsafe-no-isolation`) keeps the same processes and verdicts, minus the
namespaces, privilege drop and seccomp: programs run as the caller, in a temporary directory,
and a program that leaves its process group can outlive its run.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import select
import shutil
import signal
import site
import sys
import tempfile
import time
import traceback
from typing import NoReturn

from . import candidate, codec, confine, frames, judge

WARM_MODULES = (
    "bisect", "cmath", "collections", "copy", "datetime", "decimal", "fractions", "functools", "hashlib",
    "heapq", "itertools", "math", "operator", "random", "re", "statistics", "string", "typing",
)  # fmt: skip
MAX_REQUEST = 512 << 20
GRACE_S = 5.0  # past a sample's deadline, the template gives up on its supervisor
NO_MORE_REQUESTS = 3  # a supervisor's exit code when the host closed the pipe
DEBUG = bool(os.environ.get("WMTP_DEBUG"))


def main(argv: list[str]) -> None:
    """argv: [-c, "isolated" | "unisolated", site-packages folders...]."""
    isolated = argv[1] == "isolated"
    os.closerange(3, 1 << 16)  # nothing the launcher or bubblewrap left open (e.g. the bwrap binary)
    sys.path.extend(argv[2:])
    site.setquit()  # the builtins `site` would add (the worker starts without it): exit, quit, help, ...
    site.setcopyright()
    site.sethelper()
    for name in WARM_MODULES:  # every sample is forked with these already imported
        __import__(name)
    if isolated:
        confine.prepare()
    gc.freeze()  # the collector in forked children never walks (and so never copies) these objects
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    frames.send(1, codec.dumps({"ready": True}))  # the host waits for this
    _template(isolated)


def _template(isolated: bool) -> NoReturn:
    """Keep one supervisor forked ahead of the next request; reap the others.

    A supervisor reports on `ready` once it has read its whole request (the next one may start
    reading then), with its time limit. Past that limit plus a grace it is killed; a supervisor
    that fails makes the worker exit, and the host replaces it.
    """
    ready_r, ready_w = os.pipe()
    deadlines: dict[int, float] = {}
    done_early: set[int] = set()  # reaped before their report was read (this process was descheduled)
    spare = _fork_supervisor(isolated, ready_r, ready_w)
    while True:
        now = time.monotonic()
        wait = min([0.05, *(d - now for d in deadlines.values())])
        if select.select([ready_r], [], [], max(0.0, wait))[0]:
            fields = os.read(ready_r, 64).split()
            pid, timeout = int(fields[0]), float(fields[1])
            if pid in done_early:
                done_early.discard(pid)
            else:
                deadlines[pid] = time.monotonic() + timeout + GRACE_S
            spare = _fork_supervisor(isolated, ready_r, ready_w)
        while True:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if not pid:
                break
            if deadlines.pop(pid, None) is None:
                done_early.add(pid)
            code = os.waitstatus_to_exitcode(status)
            if pid == spare and code == NO_MORE_REQUESTS:
                while deadlines:  # the host hung up: let the running samples finish
                    deadlines.pop(os.waitpid(-1, 0)[0], None)
                os._exit(0)
            if code != 0:
                os._exit(1)
        if any(d < time.monotonic() for d in deadlines.values()):
            os._exit(1)  # a supervisor hangs: the worker goes, and its processes with it


def _fork_supervisor(isolated: bool, ready_r: int, ready_w: int) -> int:
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        code = 1
        try:
            code = _supervise(isolated, ready_w)
        except BaseException:
            if DEBUG:
                traceback.print_exc()
        os._exit(code)
    return pid


def _deadline_passed(signum: int, frame: object) -> None:
    raise TimeoutError("the sample's time is up")


def _supervise(isolated: bool, ready: int) -> int:
    # The candidate is forked first, before anything of a sample is read, so its memory is the
    # template's; it then waits for its own program (and nothing else) on `setup`.
    stdout, stderr, stdin, setup = os.pipe(), os.pipe(), os.pipe(), os.pipe()
    to_candidate, from_candidate = os.pipe(), os.pipe()
    if isolated:
        confine.new_pid_namespace()
    pid = os.fork()
    if pid == 0:
        fds = {0: stdin[0], 1: stdout[1], 2: stderr[1]}
        _sample(isolated, setup[0], fds, {candidate.REQUESTS: to_candidate[0], candidate.REPLIES: from_candidate[1]})
    if isolated:
        confine.leave_pid_namespace()  # this process's own children stay in its namespace
    for fd in (stdout[1], stderr[1], stdin[0], setup[0], to_candidate[0], from_candidate[1]):
        os.close(fd)
    header = frames.recv(0, 1 << 16)  # a spare supervisor waits here for the next sample
    if header is None:
        return NO_MORE_REQUESTS
    cfg = json.loads(header)
    start = time.monotonic()
    deadline = start + float(cfg["timeout_s"])
    tests_mode = cfg["mode"] == "tests"
    request = frames.recv(0, MAX_REQUEST)
    if request is None:
        raise EOFError("no program")
    payload = json.loads(request)
    del request
    scratch = "/tmp" if isolated else tempfile.mkdtemp(prefix="wmtp-sample-")
    frames.send(setup[1], codec.dumps({"cfg": cfg, "program": payload["program"], "scratch": scratch}))
    os.close(setup[1])
    tests = json.loads(frames.recv(0, MAX_REQUEST) or b'""') if tests_mode else ""
    os.write(ready, f"{os.getpid()} {cfg['timeout_s']}\n".encode())  # the next supervisor may read now
    os.close(ready)
    if isolated:  # from here on this process only judges and watches
        confine.non_dumpable()
        confine.drop_privileges()
        confine.install_seccomp()
    confine.limit_memory(int(cfg["judge_memory_mb"]), strict=isolated)
    watch = _Watch(cfg, pid, isolated, deadline, stdout[0], stderr[0], stdin[1], payload["stdin"])
    del payload

    def respond(state: str, reason: str) -> None:
        result = {
            "status": state,
            "reason": reason,
            "returncode": watch.returncode,
            "stdout": watch.text(watch.out),
            "stderr": watch.text(watch.err),
            "duration_s": time.monotonic() - start,
        }
        frames.send(1, codec.dumps(result))

    verdict, in_time = ("", ""), False
    if tests_mode:
        # Waiting for the program runs the watch loop; this alarm also ends test code that is
        # busy by itself past the deadline (e.g. comparing a huge answer).
        signal.signal(signal.SIGALRM, _deadline_passed)
        signal.setitimer(signal.ITIMER_REAL, max(0.01, deadline - time.monotonic() + 0.2))
        os.set_blocking(to_candidate[1], False)
        try:
            try:
                verdict = judge.run(tests, judge.Channel(to_candidate[1], from_candidate[0], watch.wait))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except TimeoutError:  # the alarm landed just outside the tests
            verdict = ("failed", "failed: timeout")
        in_time = time.monotonic() <= deadline
        watch.drain()  # all the program wrote before its last answer is now counted
        if verdict[0] != "gone" and in_time and not watch.output_exceeded:
            respond(*verdict)  # the verdict is final: answer now, clean up after
            watch.kill()
            watch.finish()
            return _cleanup(isolated, scratch)
        os.close(to_candidate[1])
        os.close(from_candidate[0])
    watch.finish()
    respond(*_outcome(tests_mode, verdict, in_time, watch))
    return _cleanup(isolated, scratch)


def _cleanup(isolated: bool, scratch: str) -> int:
    if not isolated:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _outcome(tests_mode: bool, verdict: tuple[str, str], in_time: bool, watch: _Watch) -> tuple[str, str]:
    """(status, reason): limits first, then the judge's verdict or the script's exit."""
    if watch.output_exceeded:
        return "output limit", "output limit"
    if tests_mode and verdict[0] == "passed" and in_time:
        return verdict
    rc = watch.returncode
    if watch.timed_out or (not in_time and tests_mode) or rc == -signal.SIGXCPU:
        return "timeout", "timeout"
    if tests_mode and verdict[0] != "gone":
        return verdict
    last = watch.last_error_line()
    if last.startswith("MemoryError"):
        return "memory", "memory"
    if rc is None:
        return "sandbox error", "sandbox error: the program's end was not observed"
    if rc < 0:
        return "failed", f"failed: killed by {signal.Signals(-rc).name}"
    if tests_mode:
        return "failed", f"failed: the program exited (code {rc}) before its tests finished"
    if rc == 0:
        return "passed", "passed"
    return "failed", f"failed: {last or f'exit code {rc}'}"


class _Watch:
    """The program's side of the sample, driven by one select loop in the supervisor.

    Drains stdout/stderr (keeping what the result shows), feeds stdin, reaps the program, and
    kills it at the deadline or past the output limit. `wait` runs the loop until a given fd is
    ready, so the judge's reads and writes never stall the rest.
    """

    def __init__(self, cfg: dict, pid: int, isolated: bool, deadline: float, out: int, err: int,
                 stdin: int, data: str) -> None:  # fmt: skip
        self.pid, self.isolated, self.deadline = pid, isolated, deadline
        self.limit = int(cfg["output_limit"])
        self.keep = {out: self.limit if cfg["mode"] == "script" else int(cfg["keep"]), err: int(cfg["keep"])}
        self.streams = {out: bytearray(), err: bytearray()}
        self.out, self.err = self.streams[out], self.streams[err]
        self.total = 0
        self.stdin_fd, self.stdin_data = stdin, memoryview(data.encode("utf-8", "surrogateescape"))
        os.set_blocking(stdin, False)
        try:
            self.pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.pidfd = None  # unisolated, not Linux: poll
        self.returncode: int | None = None
        self.exited = False
        self.output_exceeded = self.timed_out = False
        self.killed_at: float | None = None

    def kill(self) -> None:
        if self.killed_at is None:
            self.killed_at = time.monotonic()
            # Isolated: PID 1 of the namespace, which takes everything else with it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                (os.kill if self.isolated else os.killpg)(self.pid, signal.SIGKILL)

    def _step(self, want: int | None, write: bool) -> bool:
        """One select round; True when `want` is ready."""
        now = time.monotonic()
        if now >= self.deadline and self.killed_at is None:
            self.timed_out = True
            self.kill()
        readers = [*self.streams]
        if self.pidfd is not None and not self.exited:
            readers.append(self.pidfd)
        writers = [self.stdin_fd] if self.stdin_fd >= 0 else []
        if want is not None:
            (writers if write else readers).append(want)
        if self.killed_at is not None:
            timeout = 0.05
        elif self.pidfd is None and not self.exited:
            timeout = 0.01
        else:
            timeout = max(0.0, self.deadline - now)
        readable, writable, _ = select.select(readers, writers, [], timeout)
        if self.stdin_fd in writable:
            self._feed()
        for fd in readable:
            if fd in self.streams:
                self._read(fd)
        if not self.exited and (self.pidfd is None or self.pidfd in readable):
            self._reap()
        return want is not None and want in (writable if write else readable)

    def wait(self, fd: int, write: bool = False) -> None:
        """Run the loop until `fd` is ready (the program dying makes its pipes ready: EOF/EPIPE)."""
        while not self._step(fd, write):
            pass

    def finish(self) -> None:
        """Run until the program has ended and its output pipes are closed (or give up on them)."""
        while self.streams or not self.exited:
            if self.exited and not self.isolated:
                self.kill()  # unisolated: the program's process group goes with it
            if self.killed_at is not None and time.monotonic() - self.killed_at > 1.0:
                break  # unisolated leftovers may hold the pipes open: stop listening
            self._step(None, False)
        if not self.exited:
            self._reap(block=True)
        for fd in [*self.streams, self.stdin_fd, self.pidfd]:
            if fd is not None and fd >= 0:
                os.close(fd)
        self.streams.clear()

    def drain(self) -> None:
        """Read whatever the output pipes hold right now."""
        for fd in list(self.streams):
            os.set_blocking(fd, False)
            while fd in self.streams and self._read(fd):
                pass
            if fd in self.streams:
                os.set_blocking(fd, True)

    def _reap(self, block: bool = False) -> None:
        pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        if pid:
            self.exited = True
            self.returncode = os.waitstatus_to_exitcode(status)

    def _read(self, fd: int) -> bool:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return False
        if not chunk:
            del self.streams[fd]
            os.close(fd)
            return False
        self.total += len(chunk)
        if self.total > self.limit:
            self.output_exceeded = True
            self.kill()
        buf = self.streams[fd]
        room = self.keep[fd] - len(buf)
        if room > 0:
            buf += chunk[:room]
        return True

    def _feed(self) -> None:
        try:
            n = os.write(self.stdin_fd, self.stdin_data[: 1 << 16])
            self.stdin_data = self.stdin_data[n:]
            done = not self.stdin_data
        except BlockingIOError:
            done = False
        except BrokenPipeError:
            done = True
        if done:
            os.close(self.stdin_fd)
            self.stdin_fd = -1

    def last_error_line(self) -> str:
        lines = [ln for ln in self.text(self.err).splitlines() if ln.strip() and not ln.startswith(" ")]
        return lines[-1][:300] if lines else ""

    @staticmethod
    def text(buf: bytearray) -> str:
        return buf.decode("utf-8", "replace")


def _install_fds(targets: dict[int, int]) -> None:
    """dup2 each source onto its target without one move clobbering another's source."""
    moved = {t: fcntl.fcntl(src, fcntl.F_DUPFD, 100) for t, src in targets.items()}
    for target, src in moved.items():
        os.dup2(src, target)
    os.closerange(max(targets) + 1, 1 << 16)


def _sample(isolated: bool, setup: int, fds: dict[int, int], channel: dict[int, int]) -> NoReturn:
    """The candidate process: wait for the program, confine itself, run it (never returns).

    Isolated, it is PID 1 of the sample's namespace: the kernel kills every process the program
    started when it ends. (As an init it ignores signals it sends itself with their default
    action, e.g. `os.kill(os.getpid(), SIGTERM)`; a program's own handlers still run.)
    """
    try:
        os.setsid()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if isolated:
            confine.die_with_parent()
        data = frames.recv(setup, MAX_REQUEST)
        if data is None:  # a spare that was never needed
            os._exit(0)
        message = json.loads(data)
        del data
        cfg, program, scratch = message["cfg"], message["program"], message["scratch"]
        if isolated:
            confine.private_mounts(int(cfg["disk_mb"]), int(cfg["inodes"]))
            confine.drop_privileges()
        _install_fds({**fds, **channel} if cfg["mode"] == "tests" else fds)
        os.chdir(scratch)
        os.environ.update({"HOME": scratch, "TMPDIR": scratch})
        confine.set_limits(cfg, strict=isolated)
        if isolated:
            confine.install_seccomp()
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    except BaseException:
        if DEBUG:
            traceback.print_exc()
        os._exit(126)
    del message
    if cfg["mode"] == "tests":
        candidate.serve(program)
    candidate.run_script(program)
