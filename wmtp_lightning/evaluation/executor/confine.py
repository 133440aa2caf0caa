"""Confinement of one sample, applied by trusted code between `fork` and the program's first line.

The worker already runs under bubblewrap as an unprivileged host uid, in its own user, mount,
PID, network, IPC, UTS and cgroup namespaces, with only `/usr`, the Python installation and this
folder visible (read-only). Per sample, on top of that:

  - `new_pid_namespace`: the sample's processes live in a PID namespace of their own, whose init
    is trusted code; when the init exits the kernel kills everything else in it (no daemon
    survives), and nothing outside the namespace (the judge, the worker, other samples, the host)
    can be seen, signalled or traced from inside.
  - `private_mounts`: a private mount and IPC namespace with a size- and inode-limited tmpfs as
    /tmp (also /dev/shm) and a /proc that lists only the sample's own processes.
  - `drop_privileges`: no capabilities in any set (bounding and ambient included), securebits
    locked so that uid 0 semantics never return, `no_new_privs`.
  - `set_limits`: address space, CPU seconds, processes + threads, open files, file size, no core.
  - `install_seccomp`: a deny list for what the above does not already forbid and that would
    reach the kernel's less-guarded corners: namespaces and mounts (nested user namespaces),
    ptrace and cross-process memory access, keyrings, BPF, perf, io_uring, userfaultfd, module
    and kexec calls, memfd/SysV shared memory (RAM outside the address-space limit), sockets
    other than IPv4/IPv6 (no Unix or netlink sockets; the network namespace is empty anyway).
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import signal
import struct

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x08000000, 0x10000000, 0x20000000, 0x40000000
NAMESPACE_FLAGS = (
    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
)
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_CAPBSET_DROP = 1, 4, 22, 24
PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 28, 38, 47, 4
# NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, each with its lock, and KEEP_CAPS locked off.
SECUREBITS_LOCKED_DOWN = 0b11101111
AF_INET, AF_INET6 = 2, 10

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _prctl(option: int, arg: int = 0) -> int:
    return _libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> int:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    return _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))


def new_pid_namespace() -> None:
    """The next child of the caller becomes PID 1 of a fresh namespace (the caller stays outside)."""
    _check(_libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")


def leave_pid_namespace() -> None:
    """Children of the caller are born in its own PID namespace again (threads need that)."""
    _check(_libc.setns(_prepared[2], CLONE_NEWPID), "setns(CLONE_NEWPID)")


def private_mounts(disk_mb: int, inodes: int) -> None:
    """A private mount + IPC namespace: a fresh limited tmpfs on /tmp and /dev/shm, a private /proc."""
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare(CLONE_NEWNS | CLONE_NEWIPC)")
    _check(_mount(None, "/", None, MS_REC | MS_PRIVATE), "mount --make-rprivate /")
    options = f"size={disk_mb}m,nr_inodes={inodes},mode=0700"
    _check(_mount("scratch", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options), "mount tmpfs /tmp")
    _check(_mount("/tmp", "/dev/shm", None, MS_BIND), "bind /tmp on /dev/shm")
    proc_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if _mount("proc", "/proc", "proc", proc_flags, "subset=pid") != 0:  # kernels before 5.8: no subset
        _check(_mount("proc", "/proc", "proc", proc_flags), "mount proc /proc")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_CAP_HEADER = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set
_NO_CAPS = (_CapData * 2)()


def drop_bounding_set() -> None:
    """Empty the capability bounding set (what any exec could regain); the effective and
    permitted sets are untouched, so the worker keeps what it needs until `drop_privileges`."""
    cap = 0
    while _prctl(PR_CAPBSET_DROP, cap) == 0:  # EINVAL past the kernel's last capability
        cap += 1


def drop_privileges() -> None:
    """No capabilities left in any set, root semantics locked off, no way to gain privileges.

    The bounding set was emptied once in the worker (`prepare`), before any sample was forked.
    """
    _check(_prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_DOWN), "prctl(PR_SET_SECUREBITS)")
    _check(_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL), "prctl(PR_CAP_AMBIENT_CLEAR_ALL)")
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "prctl(PR_SET_NO_NEW_PRIVS)")
    _check(_libc.capset(ctypes.byref(_CAP_HEADER), _NO_CAPS), "capset(0)")


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies (and at once if that already happened)."""
    parent = os.getppid()
    _check(_prctl(PR_SET_PDEATHSIG, signal.SIGKILL), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:
        os._exit(1)


def non_dumpable() -> None:
    """Nobody without CAP_SYS_PTRACE may trace this process or read its memory, fds or environ."""
    _check(_prctl(PR_SET_DUMPABLE, 0), "prctl(PR_SET_DUMPABLE, 0)")


def set_limits(cfg: dict, strict: bool = True) -> None:
    """The program's rlimits. `processes` counts every task (process or thread) of the sandbox uid
    in this worker's user namespace; unisolated (`strict` False) it would count all of the caller's
    processes, so it is left alone there, and limits the OS refuses are skipped."""
    cpu_s = int(cfg["cpu_s"])
    limits = {
        resource.RLIMIT_AS: (int(cfg["memory_mb"]) << 20,) * 2,
        resource.RLIMIT_NOFILE: (256, 256),
        resource.RLIMIT_FSIZE: (int(cfg["disk_mb"]) << 20,) * 2,
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_CPU: (cpu_s, cpu_s + 1),  # SIGXCPU first, SIGKILL a second later
    }
    if strict:
        limits[resource.RLIMIT_NPROC] = (int(cfg["processes"]),) * 2
    for which, value in limits.items():
        try:
            resource.setrlimit(which, value)
        except (ValueError, OSError):
            if strict:
                raise


def limit_memory(memory_mb: int, strict: bool = True) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    except (ValueError, OSError):
        if strict:
            raise


# Syscall numbers: x86_64 from arch/x86/entry/syscalls/syscall_64.tbl, aarch64 from the generic table.
_DENIED = {
    # name: (x86_64, aarch64)
    "unshare": (272, 97),
    "setns": (308, 268),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "memfd_create": (319, 279),
    "shmget": (29, 194),
    "msgget": (68, 186),
    "syslog": (103, 116),
    "name_to_handle_at": (303, 264),
    "open_by_handle_at": (304, 265),
    "fanotify_init": (300, 262),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "reboot": (169, 142),
    "acct": (163, 89),
    "quotactl": (179, 60),
    "vhangup": (153, 58),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "pidfd_getfd": (438, 438),
    "mount_setattr": (442, 442),
    "memfd_secret": (447, 447),
}
_X86_ONLY_DENIED = (172, 173)  # iopl, ioperm
_ARCH = {
    "x86_64": (0xC000003E, 0, 56, 41, 435),
    "aarch64": (0xC00000B7, 1, 220, 198, 435),
}  # audit, column, clone, socket, clone3
_X32_BIT = 0x40000000
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
EPERM, EACCES, ENOSYS = 1, 13, 38


def seccomp_supported() -> bool:
    return platform.machine() in _ARCH


def _filter() -> list[tuple[int, int, int, int]]:
    """The BPF program: (code, jt, jf, k) instructions over `struct seccomp_data`."""
    audit, column, clone, socket_nr, clone3 = _ARCH[platform.machine()]
    errno = lambda e: (_RET, 0, 0, SECCOMP_RET_ERRNO | e)  # noqa: E731
    prog = [
        (_LD_ABS, 0, 0, 4),  # arch
        (_JEQ, 1, 0, audit),
        (_RET, 0, 0, SECCOMP_RET_KILL_PROCESS),
        (_LD_ABS, 0, 0, 0),  # syscall number
    ]
    if column == 0:
        prog += [(_JGE, 0, 1, _X32_BIT), errno(EPERM)]
    denied = [nrs[column] for nrs in _DENIED.values()] + (list(_X86_ONLY_DENIED) if column == 0 else [])
    for nr in denied:
        prog += [(_JEQ, 0, 1, nr), errno(EPERM)]
    prog += [(_JEQ, 0, 1, clone3), errno(ENOSYS)]  # flags live in memory: glibc falls back to clone
    prog += [
        (_JEQ, 0, 5, socket_nr),
        (_LD_ABS, 0, 0, 16),  # args[0] (low half): the address family
        (_JEQ, 2, 0, AF_INET),
        (_JEQ, 1, 0, AF_INET6),
        errno(EACCES),
        (_RET, 0, 0, SECCOMP_RET_ALLOW),
    ]
    prog += [
        (_JEQ, 0, 3, clone),
        (_LD_ABS, 0, 0, 16),  # args[0]: clone flags
        (_JSET, 0, 1, NAMESPACE_FLAGS),
        errno(EPERM),
        (_RET, 0, 0, SECCOMP_RET_ALLOW),
    ]
    return prog


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_prepared: list = []


def prepare() -> None:
    """Once per worker, before it forks samples: build the seccomp program, keep a handle on the
    worker's own PID namespace, empty the bounding set."""
    if not _prepared:
        prog = _filter()
        buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in prog))
        _prepared[:] = [buf, _Program(len(prog), ctypes.addressof(buf)), os.open("/proc/self/ns/pid", os.O_RDONLY)]
        drop_bounding_set()


def install_seccomp() -> None:
    """Load the deny-list filter (needs no_new_privs); it holds for this process and its children."""
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "prctl(PR_SET_NO_NEW_PRIVS)")
    _check(_libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(2), ctypes.byref(_prepared[1]), 0, 0), "prctl(PR_SET_SECCOMP)")
