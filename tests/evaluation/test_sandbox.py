"""The sandbox against hostile programs: each is failed or timed out, and nothing escapes."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from wmtp_lightning.evaluation.sandbox import SandboxLimits, execute, parallel_map, run_stdio, run_tests

LIMITS = SandboxLimits(timeout_s=2.0, memory_mb=512, file_size_mb=4, output_limit=1000)


def sandbox_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("wmtp-sbx-*")}


def test_passing_program_and_cleanup():
    before = sandbox_dirs()
    r = run_tests("import math\nassert math.sqrt(16) == 4\nprint('done')\n", LIMITS)
    assert r.passed and r.result == "passed" and r.stdout == "done"
    assert sandbox_dirs() == before  # the working directory is removed afterwards


HOSTILE = {
    "infinite loop": ("while True:\n    pass\n", "timed out"),
    "long sleep": ("import time\ntime.sleep(60)\n", "timed out"),
    "memory bomb": ("x = bytearray(8 << 30)\n", "failed"),
    "memory creep": ("xs = []\nwhile True:\n    xs.append(bytearray(50 << 20))\n", "failed"),
    "fork bomb": ("import os\nwhile True:\n    os.fork()\n", "failed"),
    "huge output": ("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", "failed"),
    "early exit(0)": ("exit(0)\nassert False\n", "failed"),
    "sys.exit()": ("import sys\nsys.exit()\n", "failed"),
    "os._exit(0)": ("import os\nos._exit(0)\n", "failed"),
    "kill the parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", "failed"),
    "unbounded recursion": ("def f(n):\n    return f(n + 1)\nf(0)\n", "failed"),
    # Python 3.11 frames live on the heap: this ends on the memory limit or the clock, whichever first.
    "deep recursion limit": (
        "import sys\nsys.setrecursionlimit(10**7)\ndef f(n):\n    return f(n + 1)\nf(0)\n",
        "failed|timed out",
    ),
    "network": ("import socket\ns = socket.create_connection(('127.0.0.1', 22), timeout=1)\n", "failed"),
    "raw socket": ("import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', 22))\n", "failed"),
    "subprocess": ("import subprocess\nsubprocess.run(['sh', '-c', 'echo hi'])\n", "failed"),
    "syntax error": ("def f(:\n    pass\n", "failed"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_program_is_contained(name):
    code, expected = HOSTILE[name]
    start = time.monotonic()
    r = run_tests(code, LIMITS)
    assert r.status in expected.split("|"), (name, r)
    assert not r.passed
    assert time.monotonic() - start < LIMITS.timeout_s + 5  # within its limits
    assert len(r.stdout) <= LIMITS.output_limit + 20 and len(r.stderr) <= LIMITS.output_limit + 20


def test_files_outside_are_safe(tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    target = Path(tempfile.gettempdir()) / f"wmtp-escape-{os.getpid()}"
    for code in (
        f"open({str(target)!r}, 'w').write('x')\n",
        f"import _io\n_io.FileIO({str(target)!r}, 'w').write(b'x')\n",
        f"import os\nos.remove({str(victim)!r})\n",
        f"import shutil\nshutil.rmtree({str(tmp_path)!r})\n",
        f"import pathlib\npathlib.Path({str(victim)!r}).write_text('gone')\n",
    ):
        assert not run_tests(code, LIMITS).passed, code
    assert victim.read_text() == "precious" and not target.exists()
    ok = run_tests("open('scratch.txt', 'w').write('ok')\nassert open('scratch.txt').read() == 'ok'\n", LIMITS)
    assert ok.passed  # its own working directory is writable


def test_environment_secrets_do_not_leak(monkeypatch):
    monkeypatch.setenv("WMTP_TEST_SECRET", "hunter2")
    r = execute("import os\nprint(sorted(os.environ))\nprint(open('/proc/self/environ').read())\n", limits=LIMITS)
    assert r.passed and "hunter2" not in r.stdout and "WMTP_TEST_SECRET" not in r.stdout


def test_test_process_survives_and_machine_is_fine():
    run_tests("import os, signal\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)\n", LIMITS)
    run_tests("import os\nwhile True:\n    os.fork()\n", LIMITS)
    assert run_tests("assert 1 + 1 == 2\n", LIMITS).passed  # still able to run programs


def test_stdio_mode_allows_exit_after_output_and_compares_tokens():
    ok, res = run_stdio("n = int(input())\nprint(n * 2)\nexit(0)\n", [("2\n", "4\n"), ("5", "10")], LIMITS)
    assert ok and all(r.passed for r in res)
    ok, res = run_stdio("print(3)\n", [("1\n", "4\n")], LIMITS)
    assert not ok and res[0].result == "failed: wrong answer"
    ok, res = run_stdio("import os\nprint(4)\nos._exit(0)\n", [("1\n", "4\n")], LIMITS)
    assert not ok  # an abrupt os._exit is never a normal end


def test_parallel_workers_keep_order():
    progs = [f"assert {i} == {i if i % 3 else -1}\n" for i in range(8)]
    results = parallel_map(lambda p: run_tests(p, LIMITS).passed, progs, workers=3)
    assert results == [bool(i % 3) for i in range(8)]
