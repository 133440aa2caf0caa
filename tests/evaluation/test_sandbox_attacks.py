"""Hostile programs against the sandbox: each attack is tried, and the property it targets is checked
from the host (a file untouched, a listener that saw nobody, a process that is gone) and from inside
(what the program could see). Add new attacks here."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import HUMANEVAL, ROOT, require
from tests.evaluation.sandbox_probes import expected_uid, host_pids_named, host_status, last_json, name_self
from wmtp_lightning.evaluation import sandbox
from wmtp_lightning.evaluation.memory_cgroup import MemoryCgroup
from wmtp_lightning.evaluation.sandbox import SandboxLimits, execute, parallel_map, run_tests

LIMITS = SandboxLimits(timeout_s=10.0, memory_mb=512, disk_mb=16, max_processes=32, output_limit_mb=8)


def probe(program: str) -> dict:
    """Run a program that prints a JSON report on its last line; the report."""
    r = execute(program, limits=LIMITS)
    assert r.status == "passed", (r.result, r.stderr[-2000:])
    return last_json(r.stdout)


TRY = """
import ctypes, errno, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
report = {}
def attempt(name, fn):
    try:
        out = fn()
        report[name] = "ok" if out in (None, 0) or out is True else f"ok: {out!r}"[:200]
    except BaseException as e:
        report[name] = f"{type(e).__name__}: {e}"[:200]
def c(call):  # a libc call that signals failure with -1 / errno
    def run():
        if call() != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return run
"""


def failed(report: dict, *names: str) -> None:
    for name in names:
        assert not report[name].startswith("ok"), (name, report[name])


def test_runs_as_an_unprivileged_host_uid_with_no_capabilities():
    program = (
        name_self("wmtp-whoami")
        + "import json, os, time\n"
        + "status = dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
        + "keys = ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp')\n"
        + "print(json.dumps({'uid': os.getresuid(), 'gid': os.getresgid(), 'groups': os.getgroups(),"
        + " **{k: status[k].strip() for k in keys}}), flush=True)\n"
        + "time.sleep(2)\n"
    )
    seen: dict = {}

    def watch_from_the_host():
        for _ in range(100):
            time.sleep(0.05)
            pids = host_pids_named("wmtp-whoami")
            if pids:
                seen.update(host_status(pids[0]))
                return

    watcher = threading.Thread(target=watch_from_the_host)
    watcher.start()
    report = probe(program)
    watcher.join()
    uid = expected_uid()
    assert report["uid"] == [uid] * 3 and report["gid"] == [uid] * 3 and uid != 0
    assert report["groups"] in ([], [uid])
    assert {report[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")} == {"0000000000000000"}
    assert report["NoNewPrivs"] == "1" and report["Seccomp"] == "2"
    # From the host: the real, effective, saved and filesystem uids are all `nobody`; no capabilities.
    assert seen, "the sample's process was not found from the host"
    assert seen["Uid"].split() == [str(uid)] * 4 and seen["Gid"].split() == [str(uid)] * 4
    assert seen["CapEff"] == seen["CapPrm"] == seen["CapBnd"] == "0000000000000000"


def test_no_way_back_to_privileges():
    mount = next((p for p in ("/usr/bin/mount", "/bin/mount") if Path(p).exists()), None)
    program = TRY + (
        "attempt('setuid 0', lambda: os.setuid(0))\n"
        "attempt('setgid 0', lambda: os.setgid(0))\n"
        "attempt('setgroups', lambda: os.setgroups([0]))\n"
        "attempt('new user namespace', c(lambda: libc.unshare(0x10000000)))\n"
        "attempt('new mount namespace', c(lambda: libc.unshare(0x00020000)))\n"
        "attempt('raise ambient CAP_SYS_ADMIN', c(lambda: libc.prctl(47, 2, 21, 0, 0)))\n"
        "attempt('clone a new user namespace', lambda: os.fork() if False else c(lambda: libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0))())\n"
        f"import subprocess\nattempt('setuid-root mount', lambda: subprocess.run([{mount!r}, '-t', 'tmpfs', 'x', '/usr'],"
        " capture_output=True).returncode == 0 or 'failed')\n"
        "attempt('write /usr', lambda: open('/usr/wmtp-pwned', 'w'))\n"
        "print(json.dumps(report))\n"
    )
    report = probe(program)
    failed(
        report,
        "setuid 0",
        "setgid 0",
        "setgroups",
        "new user namespace",
        "new mount namespace",
        "raise ambient CAP_SYS_ADMIN",
        "clone a new user namespace",
        "write /usr",
    )
    assert report["setuid-root mount"] == "ok: 'failed'"
    assert not Path("/usr/wmtp-pwned").exists()


def test_cannot_write_anywhere_on_the_host(tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    tmp_path.chmod(0o777)
    executor_file = Path(sandbox.EXECUTOR) / "server.py"
    venv_file = Path(os.__file__)
    stamps = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (executor_file, venv_file)}
    targets = [str(victim), str(tmp_path / "new.txt"), str(ROOT / "pwned.txt"), "/root/pwned", "/etc/pwned"]
    targets += ["/sandbox/wmtp_executor/server.py", str(venv_file), "/tmp/../usr/pwned", "/dev/pwned", "/proc/pwned"]
    program = TRY + (
        f"targets = {targets!r}\n"
        "import glob\n"
        "targets += [p + t for p in glob.glob('/proc/*/root') for t in targets]\n"
        "targets += [p + '/pwned' for p in glob.glob('/proc/*/cwd')]\n"
        "for t in targets:\n"
        "    attempt('write ' + t, lambda t=t: open(t, 'a').write('x'))\n"
        "    attempt('chmod ' + t, lambda t=t: os.chmod(t, 0o777))\n"
        "    attempt('remove ' + t, lambda t=t: os.remove(t))\n"
        "attempt('own scratch', lambda: open('/tmp/mine.txt', 'w').write('ok') and None)\n"
        "print(json.dumps(report))\n"
    )
    report = probe(program)
    allowed = {"write /proc/1/cwd/pwned", "write /proc/self/cwd/pwned", "write /proc/thread-self/cwd/pwned"}
    allowed |= {n.replace("write", "remove") for n in allowed}  # the sample's own scratch, under another name
    allowed |= {n.replace("write", "chmod") for n in allowed}
    succeeded = {k for k, v in report.items() if v.startswith("ok")} - {"own scratch"} - allowed
    assert succeeded == set(), {k: report[k] for k in succeeded}
    assert report["own scratch"] == "ok"
    assert victim.read_text() == "precious" and sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in stamps} == stamps
    assert not (ROOT / "pwned.txt").exists()


def test_cannot_mount_remount_or_change_root():
    program = TRY + (
        "attempt('remount / read-write', c(lambda: libc.mount(None, b'/', None, 32 | 4096, None)))\n"
        "attempt('remount /usr read-write', c(lambda: libc.mount(None, b'/usr', None, 32 | 4096, None)))\n"
        "attempt('mount tmpfs on /usr', c(lambda: libc.mount(b'x', b'/usr', b'tmpfs', 0, None)))\n"
        "attempt('unmount /proc', c(lambda: libc.umount2(b'/proc', 2)))\n"
        "attempt('chroot', c(lambda: libc.chroot(b'/tmp')))\n"
        "attempt('pivot_root', c(lambda: libc.syscall(155, b'/tmp', b'/tmp')))\n"
        "attempt('write /usr afterwards', lambda: open('/usr/pwned', 'w'))\n"
        "print(json.dumps(report))\n"
    )
    report = probe(program)
    failed(report, *report)


def test_no_network_of_any_kind(tmp_path):
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    tcp.setblocking(False)
    unix_path = tmp_path / "host.sock"
    tmp_path.chmod(0o777)
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(unix_path))
    unix_path.chmod(0o777)
    unix.listen()
    unix.setblocking(False)
    abstract_name = f"\0wmtp-{uuid.uuid4().hex}"
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(abstract_name)
    abstract.listen()
    abstract.setblocking(False)
    port = tcp.getsockname()[1]
    program = TRY + (
        "import socket, glob\n"
        f"attempt('tcp to the host', lambda: socket.create_connection(('127.0.0.1', {port}), timeout=1))\n"
        "attempt('tcp out', lambda: socket.create_connection(('1.1.1.1', 53), timeout=1))\n"
        f"attempt('unix socket file', lambda: socket.socket(socket.AF_UNIX).connect({str(unix_path)!r}))\n"
        f"attempt('abstract unix socket', lambda: socket.socket(socket.AF_UNIX).connect({abstract_name!r}))\n"
        "attempt('netlink', lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))\n"
        "for ns in glob.glob('/proc/*/ns/net'):\n"
        "    fd = os.open(ns, os.O_RDONLY)\n"
        "    attempt('setns ' + ns, c(lambda: libc.setns(fd, 0x40000000)))\n"
        "print(json.dumps(report))\n"
    )
    report = probe(program)
    failed(report, *report)
    for listener in (tcp, unix, abstract):
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected
        listener.close()


def test_nothing_of_the_host_is_visible_beyond_the_read_only_binds():
    """Walk the whole file tree the program sees: outside the bound system and Python folders
    there is nothing but the folders leading to them, a minimal /dev and the empty scratch."""
    binds = [dst for _, dst in sandbox.read_only_binds()]
    program = TRY + (
        f"binds = {binds!r}\n"
        "seen = []\n"
        "for top, dirs, files in os.walk('/'):\n"
        "    if top in ('/proc',) or top in binds:\n"
        "        dirs[:] = []\n"
        "        continue\n"
        "    seen += [os.path.join(top, f) for f in files]\n"
        "report['files'] = sorted(seen)\n"
        "for path in ('/etc/shadow', '/etc/passwd', '/proc/sys/kernel/hostname', '/proc/kcore', '/dev/mem', '/dev/vda', '/sys/kernel'):\n"
        "    attempt(path, lambda p=path: open(p, 'rb').read(64))\n"
        "print(json.dumps(report))\n"
    )
    report = probe(program)
    devices = {f"/dev/{d}" for d in ("null", "zero", "full", "random", "urandom", "stdin", "stdout", "stderr", "fd")}
    assert set(report.pop("files")) - set(binds) <= devices  # its own /tmp is empty; nothing else exists
    failed(report, *report)


def test_the_scorers_environment_does_not_leak(tmp_path):
    """The secret is in the scorer's own environment; the program looks everywhere it can and puts
    whatever it found into its failure message, which lands in the results file."""
    secret = f"wmtp-secret-{uuid.uuid4().hex}"
    completion = (
        "    import glob, os\n"
        "    found = [k + '=' + v for k, v in os.environ.items()]\n"
        "    for p in glob.glob('/proc/*/environ') + glob.glob('/proc/*/cmdline'):\n"
        "        try:\n"
        "            found.append(open(p, 'rb').read().decode('latin-1'))\n"
        "        except OSError as e:\n"
        "            found.append(str(e))\n"
        "    print(found)\n"
        "    raise ValueError('seen: ' + repr(found))\n"
    )
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/0", "completion": completion}) + "\n")
    env = {**os.environ, "WMTP_SECRET_TOKEN": secret}
    out = subprocess.run(
        [
            *(sys.executable, str(ROOT / "scripts" / "score_samples.py"), "--benchmark", "humaneval"),
            *("--problems", str(require(HUMANEVAL)), "--samples", str(samples), "--k", "1", "--workers", "1"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = (tmp_path / "s.jsonl_results.jsonl").read_text()
    assert "seen: " in results and "PATH=" in results  # the probe ran and reported what it saw
    assert secret not in results and secret not in out.stdout and secret not in out.stderr
    assert "WMTP_SECRET_TOKEN" not in results


def test_cannot_kill_the_worker_the_scorer_or_itself_out_of_its_verdict():
    workers = set(sandbox.workers_pids())
    program = TRY + (
        "import signal\n"
        "pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "report['visible pids'] = pids\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    for pid in range(1, 4 << 20):\n"
        "        try:\n"
        "            os.kill(pid, signal.SIGKILL)\n"
        "        except OSError:\n"
        "            pass\n"
        "    os.kill(-1, signal.SIGKILL)\n"
        "    os._exit(0)\n"
        "os.waitpid(child, 0)\n"
        "attempt('kill the parent', lambda: os.kill(os.getppid(), signal.SIGKILL))\n"
        "attempt('kill init (itself)', lambda: os.kill(1, signal.SIGKILL))\n"
        "print(json.dumps(report))\n"
    )
    report = probe(program)
    assert report["visible pids"] == [1]  # only itself: no worker, judge, scorer or other sample
    assert set(sandbox.workers_pids()) >= workers  # every worker still alive
    assert run_tests("def f():\n    return 1\n", "assert f() == 1\n", LIMITS).passed


def test_cannot_trace_or_read_other_processes():
    program = TRY + (
        "others = [pid for pid in range(1, 1 << 16) if pid != os.getpid() and os.path.exists(f'/proc/{pid}')]\n"
        "report['other pids'] = others\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    import time\n"
        "    time.sleep(5)\n"
        "    os._exit(0)\n"
        "attempt('ptrace attach own child', c(lambda: libc.ptrace(16, child, 0, 0)))\n"
        "class IOV(ctypes.Structure):\n"
        "    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]\n"
        "buf = ctypes.create_string_buffer(8)\n"
        "iov = IOV(ctypes.addressof(buf), 8)\n"
        "attempt('process_vm_readv', lambda: libc.process_vm_readv(child, ctypes.byref(iov), 1, ctypes.byref(iov), 1, 0) == 8 or 'failed')\n"
        "attempt('pidfd_getfd', c(lambda: libc.syscall(438, libc.syscall(434, child, 0), 0, 0)))\n"
        "os.kill(child, 9)\n"
        "print(json.dumps(report))\n"
    )
    report = probe(program)
    assert report["other pids"] == [], report["other pids"]  # nothing outside its own namespace exists for it
    failed(report, "ptrace attach own child", "pidfd_getfd")
    assert report["process_vm_readv"] == "ok: 'failed'"


@pytest.mark.parametrize("where", ["at load", "in a call", "as a script"])
def test_daemons_die_with_their_sample(where):
    marker = f"wmtpd{uuid.uuid4().hex[:8]}"
    daemon = (
        "import os, time, ctypes\n"
        "def spawn():\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        f"            ctypes.CDLL(None).prctl(15, {marker.encode()!r}, 0, 0, 0)\n"
        "            time.sleep(60)\n"
        "        os._exit(0)\n"
        "    for _ in range(200):  # the daemon is alive when the sample ends\n"
        "        names = [open(p).read().strip() for p in __import__('glob').glob('/proc/[0-9]*/comm')]\n"
        f"        if {marker!r} in names:\n"
        "            return\n"
        "        time.sleep(0.01)\n"
        "    raise RuntimeError('no daemon')\n"
    )
    if where == "as a script":
        assert execute(daemon + "spawn()\n", limits=LIMITS).passed
    else:
        program = daemon + ("spawn()\n" if where == "at load" else "") + "def f():\n    spawn()\n    return 1\n"
        assert run_tests(program, "assert f() == 1\n", LIMITS).passed
    deadline = time.monotonic() + 3
    while host_pids_named(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_pids_named(marker) == []


def test_disk_is_limited_per_sample():
    program = TRY + (
        "def fill(prefix, size):\n"
        "    n = 0\n"
        "    try:\n"
        "        for i in range(100_000):\n"
        "            with open(f'{prefix}{i}', 'wb') as f:\n"
        "                f.write(b'x' * size)\n"
        "            n += size\n"
        "    except OSError as e:\n"
        "        return n, e.errno\n"
        "    return n, 0\n"
        "report['big files'] = fill('/tmp/big', 4 << 20)\n"
        "import glob\n"
        "[os.remove(p) for p in glob.glob('/tmp/big*')]\n"
        "report['shm'] = fill('/dev/shm/s', 4 << 20)\n"
        "[os.remove(p) for p in glob.glob('/dev/shm/s*')]\n"
        "report['empty files'] = fill('/tmp/e', 0)\n"
        "print(json.dumps(report))\n"
    )
    report = probe(program)
    budget = LIMITS.disk_mb << 20
    assert report["big files"][0] <= budget and report["big files"][1] in (28, 27)  # ENOSPC / EFBIG
    assert report["shm"][0] <= budget and report["shm"][1] in (28, 27)  # /dev/shm is the same scratch
    assert report["empty files"][1] == 28 and report["empty files"][0] == 0  # inodes run out too


@pytest.mark.parametrize("bomb", ["processes", "threads"])
def test_process_and_thread_bombs_are_contained(bomb):
    marker = f"wmtpb{uuid.uuid4().hex[:8]}"
    spawn = {
        "processes": "        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n",
        "threads": "        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n",
    }[bomb]
    program = (
        name_self(marker)
        + "import json, os, threading, time\nn, err = 0, None\ntry:\n    for _ in range(10_000):\n"
        + spawn
        + "        n += 1\nexcept (OSError, RuntimeError) as e:\n    err = type(e).__name__\n"
        + "print(json.dumps({'spawned': n, 'stopped by': err}))\n"
    )
    start = time.monotonic()
    report = probe(program)
    assert report["spawned"] + 1 <= LIMITS.max_processes, report
    if bomb == "processes":  # threads may run out of address space first (each reserves a stack)
        assert report["spawned"] + 1 >= LIMITS.max_processes // 2, report
    assert report["stopped by"] in ("BlockingIOError", "RuntimeError", "OSError")
    assert time.monotonic() - start < LIMITS.timeout_s
    time.sleep(0.2)
    assert host_pids_named(marker) == []  # all of them went with the sample
    assert run_tests("def f():\n    return 1\n", "assert f() == 1\n", LIMITS).passed


def test_memory_of_all_its_processes_together_is_bounded():
    """Each process stays under the address-space limit; together they would take 1.4 GB."""
    if _no_memory_cgroup():
        pytest.skip("no memory cgroup here (needs root and a writable cgroup v1 memory or delegated v2 controller)")
    limits = SandboxLimits(timeout_s=20.0, memory_mb=256, max_processes=32)
    program = (
        "import os, time\n"
        "kids = []\n"
        "for _ in range(7):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        block = bytearray(200 << 20)\n"
        "        for i in range(0, len(block), 4096):\n"
        "            block[i] = 1\n"
        "        time.sleep(3)\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"
        "killed = sum(os.waitpid(pid, 0)[1] == 9 for pid in kids)\n"
        "print('killed', killed)\n"
    )
    r = execute(program, limits=limits)
    assert (r.status, r.result) == ("memory", "memory"), r  # the kernel ended some: the group's limit held
    assert run_tests("def f():\n    return 1\n", "assert f() == 1\n", LIMITS).passed


def _no_memory_cgroup() -> bool:
    group = MemoryCgroup.create()
    if group is None:
        return True
    group.remove()
    return False


def test_concurrent_samples_cannot_see_or_hurt_each_other():
    victim = (
        name_self("wmtp-sample-a")
        + "import time, os\nopen('/tmp/secret-a.txt', 'w').write('mine')\n"
        + "def f():\n    time.sleep(2.5)\n    return open('/tmp/secret-a.txt').read()\n"
    )
    attacker = TRY + (
        "import time, glob, signal\n"
        "time.sleep(0.8)\n"
        "report['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "report['names'] = [open(p).read().strip() for p in glob.glob('/proc/*/comm')]\n"
        "report['files'] = glob.glob('/tmp/*') + glob.glob('/proc/*/cwd/*') + glob.glob('/proc/*/root/tmp/*')\n"
        "if os.fork() == 0:\n"
        "    os.kill(-1, signal.SIGKILL)\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        "print(json.dumps(report))\n"
    )
    jobs = [("tests", victim), ("script", attacker)]
    a, b = parallel_map(
        lambda job: (
            run_tests(job[1], "assert f() == 'mine'\n", LIMITS) if job[0] == "tests" else execute(job[1], limits=LIMITS)
        ),
        jobs,
        workers=2,
    )
    assert a.passed, a.result
    report = last_json(b.stdout)
    assert report["pids"] == [1] and "wmtp-sample-a" not in report["names"]
    assert not any("secret-a" in f for f in report["files"])


def test_output_of_a_previous_sample_or_the_tests_never_reach_a_program():
    """The candidate's memory is a copy of a template that never held a test, an output or another
    program: scanning all of its own memory finds neither its own tests nor a previous sample's."""
    sandbox.shutdown()  # one worker: the two samples below run in the same one
    tests_marker, output_marker = f"T{uuid.uuid4().hex}", f"O{uuid.uuid4().hex}"
    program_marker, tests_marker2 = f"P{uuid.uuid4().hex}", f"T{uuid.uuid4().hex}"
    first = f"def f():\n    print({output_marker!r})\n    return 1\n"
    assert run_tests(first, f"assert f() == 1, {tests_marker!r}\n", LIMITS).passed
    scan = (
        "import re\n"
        "def f():\n"
        "    found = set()\n"
        "    mem = open('/proc/self/mem', 'rb', 0)\n"
        "    for line in open('/proc/self/maps'):\n"
        "        lo, hi = (int(x, 16) for x in line.split()[0].split('-'))\n"
        "        if line.split()[1][0] != 'r' or hi - lo > 1 << 30:\n"
        "            continue\n"
        "        try:\n"
        "            mem.seek(lo)\n"
        "            chunk = mem.read(hi - lo)\n"
        "        except (OSError, OverflowError, ValueError):\n"
        "            continue\n"
        "        found.update(m.decode() for m in re.findall(rb'[TOP][0-9a-f]{32}', chunk))\n"
        "    return sorted(found)\n"
        f"MINE = {program_marker!r}\n"
    )
    r = run_tests(scan, f"found = f()\nassert found == [{program_marker!r}], found  # {tests_marker2}\n", LIMITS)
    assert r.passed, r.result  # its own program text, and not even the tests it is being judged by
    sandbox.shutdown()


FORGERIES = {
    "exit(0) at load": "import sys\nsys.exit(0)\n",
    "os._exit(0) at load": "import os\nos._exit(0)\n",
    "os._exit(0) in the call": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "SystemExit(0) in the call": "def add(a, b):\n    raise SystemExit(0)\n",
    "KeyboardInterrupt in the call": "def add(a, b):\n    raise KeyboardInterrupt\n",
    "exception named passed": "def add(a, b):\n    raise Exception('passed')\n",
    "walk frames and objects for the tests": (
        "import gc, sys\n"
        "def add(a, b):\n"
        "    seen = [o for o in gc.get_objects() if isinstance(o, str) and 'assert add' in o]\n"
        "    f = sys._getframe()\n"
        "    while f:\n"
        "        seen += [v for v in f.f_locals.values() if isinstance(v, str) and 'assert add' in v]\n"
        "        f = f.f_back\n"
        "    if seen:\n"
        "        return eval(seen[0].split('==')[1].split()[0])\n"
        "    raise SystemExit(0)\n"
    ),
    "fake result frames on every fd": (
        "import json, os, struct\n"
        "msg = json.dumps({'status': 'passed', 'reason': 'passed', 'returncode': 0, 'stdout': '', 'stderr': '', 'duration_s': 0}).encode()\n"
        "for fd in range(1024):\n"
        "    for frame in (struct.pack('>I', len(msg)) + msg, struct.pack('>I', 8) + b'[\"ret\",3, {}]'):\n"
        "        try:\n"
        "            os.write(fd, frame)\n"
        "        except OSError:\n"
        "            pass\n"
        "os._exit(0)\n"
    ),
    "replace traceback and builtins": (
        "import sys, builtins, types\n"
        "sys.modules['traceback'] = types.ModuleType('traceback')\n"
        "builtins.AssertionError = type('AssertionError', (Exception,), {})\n"
        "def add(a, b):\n    return 0\n"
    ),
    "object equal to everything": "class A:\n    def __eq__(self, o):\n        return True\ndef add(a, b):\n    return A()\n",
    "int subclass equal to everything": (
        "class I(int):\n    def __eq__(self, o):\n        return True\n    __hash__ = int.__hash__\n"
        "def add(a, b):\n    return I(0)\n"
    ),
    "kill everything it can see": (
        "import os, signal\n"
        "def add(a, b):\n"
        "    for pid in range(1, 1 << 16):\n"
        "        if pid != os.getpid():\n"
        "            try:\n"
        "                os.kill(pid, signal.SIGKILL)\n"
        "            except OSError:\n"
        "                pass\n"
        "    return 0\n"
    ),
    "a recursive answer": "def add(a, b):\n    x = []\n    x.append(x)\n    return x\n",
    "a module as the answer": "import sys\ndef add(a, b):\n    return sys\n",
    "garbage on the reply channel": (
        "import os\ndef add(a, b):\n    os.write(4, b'\\x00\\x00\\x00\\x05hello')\n    return 0\n"
    ),
    "huge answer": "def add(a, b):\n    return list(range(5_000_000))\n",
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_verdicts_cannot_be_forged(name):
    tests = "assert add(1, 2) == 3\nassert add(2, 2) == 4\n"
    r = run_tests(FORGERIES[name], tests, LIMITS)
    assert not r.passed and r.status in ("failed", "timeout", "memory"), (name, r.result)
    assert r.result != "passed"
    assert run_tests("def add(a, b):\n    return a + b\n", tests, LIMITS).passed  # the worker is fine


def test_forged_reasons_read_as_failures():
    tests = "assert add(1, 2) == 3\n"
    assert run_tests(FORGERIES["object equal to everything"], tests, LIMITS).result.startswith(
        "failed: Unserializable: unserializable return value"
    )
    assert run_tests(FORGERIES["exception named passed"], tests, LIMITS).result == "failed: Exception: passed"
    assert run_tests(FORGERIES["os._exit(0) at load"], tests, LIMITS).result == (
        "failed: the program exited (code 0) before its tests finished"
    )
    assert run_tests(FORGERIES["SystemExit(0) in the call"], tests, LIMITS).result == "failed: SystemExit: 0"
