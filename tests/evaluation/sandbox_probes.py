"""Host-side probes for the sandbox tests: find a sample's processes from outside and read their state."""

from __future__ import annotations

import json
import os
from pathlib import Path

from wmtp_lightning.evaluation import sandbox


def host_pids_named(name: str) -> list[int]:
    """Host PIDs of the processes whose name (comm) is `name`."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/comm").read_text().strip() == name:
                pids.append(int(entry))
        except OSError:
            pass
    return pids


def name_self(name: str) -> str:
    """Program text that renames its process (prctl PR_SET_NAME), so the host can find it."""
    return f"import ctypes\nctypes.CDLL(None).prctl(15, {name.encode()!r}, 0, 0, 0)\n"


def host_status(pid: int) -> dict[str, str]:
    """/proc/<pid>/status as the host sees it."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, v in (line.split(":", 1) for line in lines if ":" in line)}


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def worker_of(pid: int) -> int:
    """The sandbox worker (host PID of its top process) that `pid` runs under."""
    workers = set(sandbox.workers_pids())
    while pid not in workers:
        pid = parent(pid)
        assert pid > 1, "not under a sandbox worker"
    return pid


def last_json(text: str) -> dict:
    """The report a probe program prints as its last line."""
    return json.loads(text.strip().splitlines()[-1])


def expected_uid() -> int:
    """Samples run as `nobody` when the scorer is root, else as the caller (in its own namespaces)."""
    return sandbox.SANDBOX_UID if os.geteuid() == 0 else os.getuid()
