"""The kernel guard: sets a grading kernel's limits and fences, then becomes the kernel.

Run as a script (`python -I -S guard.py MEMORY MODE WRITABLE KERNEL-COMMAND...`) between the
kernel manager (and `unshare`, when the kernel is isolated) and the kernel; standard library
only, and nothing else here runs at import. It
- limits the kernel's data memory to MEMORY bytes (0: no limit) and turns off core dumps;
- in MODE `network` or `files` (a new network namespace), brings up the loopback interface, so
  that programs talking to themselves over 127.0.0.1 (Horovod's launcher) still work;
- in MODE `files` (a new mount namespace too), makes every file system read-only except the
  folders WRITABLE names (the submission's temporary folder; the judge's own folder too),
  with a private /dev/shm.
Python rather than `prlimit`, `ip` and `mount`, so that it needs nothing else installed.
"""

import ctypes
import fcntl
import os
import resource
import socket
import struct
import sys

MODES = ("off", "network", "files")  # what the kernel's namespaces cut off (see sandbox.py)

# Bringing up 'lo': ioctl(socket, SIOCSIFFLAGS, struct ifreq {char name[16]; short flags; ...}).
SIOCSIFFLAGS = 0x8914  # <linux/sockios.h>: set an interface's flags
IFF_UP = 0x1  # <linux/if.h>: the interface is up
IFF_LOOPBACK = 0x8  # <linux/if.h>: it is a loopback interface
IFF_RUNNING = 0x40  # <linux/if.h>: its link is up
IFREQ = "16sh22x"  # struct ifreq: the name, the flags, padding to its 40 bytes

# Read-only mounts: mount(2) and mount_setattr(2) (Linux >= 5.12), called through libc.
MS_BIND = 4096  # <linux/mount.h>: bind mount: the same files seen at a second place
MS_REC = 16384  # <linux/mount.h>: ... with every mount below it
SYS_MOUNT_SETATTR = 442  # syscall number of mount_setattr, the same on every architecture
AT_FDCWD = -100  # <fcntl.h>: a path relative to the current folder (here: absolute anyway)
AT_RECURSIVE = 0x8000  # <fcntl.h>: apply to the whole mount tree under the path
MOUNT_ATTR_RDONLY = 0x1  # <linux/mount.h>: the read-only attribute
MOUNT_ATTR = "4Q"  # struct mount_attr: attr_set, attr_clr, propagation, userns_fd (u64 each)


def limit_memory(memory: int) -> None:
    """At most `memory` bytes of data memory (0: no limit), and no core files."""
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def bring_up_loopback() -> None:
    """Bring up 'lo' in this (new, empty) network namespace; without it, no 127.0.0.1."""
    flags = struct.pack(IFREQ, b"lo", IFF_UP | IFF_LOOPBACK | IFF_RUNNING)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            fcntl.ioctl(probe, SIOCSIFFLAGS, flags)
    except OSError:
        pass  # the kernel runs anyway, without 127.0.0.1


def _check(result: int, what: str) -> None:
    if result != 0:
        sys.exit(f"grader: cannot {what}: {os.strerror(ctypes.get_errno())}")


def _set_read_only(libc: ctypes.CDLL, path: str, read_only: bool) -> None:
    """Set or clear the read-only attribute of the mount tree at `path`."""
    attr_set, attr_clear = (MOUNT_ATTR_RDONLY, 0) if read_only else (0, MOUNT_ATTR_RDONLY)
    attr = struct.pack(MOUNT_ATTR, attr_set, attr_clear, 0, 0)
    result = libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), AT_RECURSIVE,
                          ctypes.create_string_buffer(attr), len(attr))
    _check(result, f"make {path} " + ("read-only" if read_only else "writable"))


def read_only_except(writable: str) -> None:
    """In this (new) mount namespace: everything read-only but the folders `writable` names
    (separated by os.pathsep); a private /dev/shm."""
    libc = ctypes.CDLL(None, use_errno=True)
    folders = [folder for folder in writable.split(os.pathsep) if folder]
    for folder in folders:  # its own mount first, so it can be writable below a read-only root
        _check(libc.mount(folder.encode(), folder.encode(), None, MS_BIND | MS_REC, None),
               f"bind {folder}")
    _set_read_only(libc, "/", True)
    for folder in folders:
        _set_read_only(libc, folder, False)
    if os.path.isdir("/dev/shm"):
        _check(libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", 0, None), "mount /dev/shm")


def main(argv: list[str]) -> None:
    memory, mode, writable, *command = argv
    if mode not in MODES or not command:
        sys.exit(f"grader: usage: guard.py MEMORY {{{','.join(MODES)}}} WRITABLE COMMAND...")
    limit_memory(int(memory))
    if mode != "off":
        bring_up_loopback()
    if mode == "files":
        read_only_except(writable)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
