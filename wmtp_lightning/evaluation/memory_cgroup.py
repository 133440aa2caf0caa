"""A memory cgroup per sandbox worker, so a program's processes together cannot exhaust the host.

The address-space rlimit bounds each of a program's processes; this bounds all of them (and its
tmpfs scratch) at once: past the limit the kernel's OOM killer ends the biggest process inside the
group (the program's), and the host reports the run as `memory`. It needs root and a writable
memory controller: cgroup v1 (`/sys/fs/cgroup/memory`) or a cgroup v2 hierarchy whose memory
controller is delegated to the scorer's group. Where neither exists, workers run without it and
each process's address-space limit remains the only memory bound.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from pathlib import Path

_names = itertools.count()


def _scorers_group() -> tuple[Path, int] | None:
    """(the scorer's own memory cgroup folder, cgroup version), if it can hold sub-groups."""
    if os.geteuid() != 0:
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            folder = Path("/sys/fs/cgroup/memory" + path)
            if (folder / "memory.limit_in_bytes").exists() and os.access(folder, os.W_OK):
                return folder, 1
        if hierarchy == "0":
            for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
                folder = Path(root + path)
                delegated = folder / "cgroup.subtree_control"
                with contextlib.suppress(OSError):
                    if "memory" in delegated.read_text().split() and os.access(folder, os.W_OK):
                        return folder, 2
    return None


class MemoryCgroup:
    """A sub-group of the scorer's memory cgroup, for one worker's processes."""

    def __init__(self, path: Path, version: int) -> None:
        self.path, self.version = path, version
        self.limit_mb: int | None = None

    @classmethod
    def create(cls) -> MemoryCgroup | None:
        """A new, empty group; None where memory cgroups are not available."""
        found = _scorers_group()
        if found is None:
            return None
        parent, version = found
        path = parent / f"wmtp-sandbox-{os.getpid()}-{next(_names)}"
        try:
            path.mkdir()
        except OSError:
            return None
        return cls(path, version)

    def set_limit(self, mb: int) -> None:
        if mb != self.limit_mb:
            name = "memory.limit_in_bytes" if self.version == 1 else "memory.max"
            (self.path / name).write_text(str(mb << 20))
            self.limit_mb = mb

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer has ended in this group so far."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            for line in (self.path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except OSError:
            pass
        return 0

    def remove(self) -> None:
        """Remove the group once its processes are gone (they may take a moment to be reaped)."""
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)
