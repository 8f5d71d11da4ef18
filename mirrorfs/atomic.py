"""The file-system operations the write path is built from, at their strongest per platform.

On Linux, `renameat2(2)` gives two renames that plain `os.replace` cannot:
RENAME_EXCHANGE swaps two names atomically (so the write path can look at the
exact file it displaced and put it back), and RENAME_NOREPLACE creates a name
only if it is free (so two creators never overwrite each other, whatever
state folder or machine they use). Where the kernel, the C library or the
file system lacks them (macOS, vfat, some network and FUSE mounts), callers
get `Unsupported` and fall back to what the platform has: a hard link for an
exclusive create, and a re-check just before `os.replace` for a swap.

A write lease (`F_SETLEASE`) tells whether any other process still holds a
file open: a displaced file nobody holds open can no longer be written in
place by an editor, so what it contains is final.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import sys
import time

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_FDCWD = -100
# How long a displaced file may stay open elsewhere (an editor mid-save, a sync
# tool hashing it) before the write path decides by its bytes alone.
LEASE_WAIT = 2.0


class Unsupported(OSError):
    """This platform or file system has no such rename."""


def _load_renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _load_renameat2()


def _rename2(src: str | os.PathLike, dst: str | os.PathLike, flags: int) -> None:
    if _renameat2 is None:
        raise Unsupported(errno.ENOSYS, "renameat2 is not available")
    if _renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags) == 0:
        return
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        raise Unsupported(err, os.strerror(err), os.fspath(dst))
    raise OSError(err, os.strerror(err), os.fspath(dst))


def exchange(a: str | os.PathLike, b: str | os.PathLike) -> None:
    """Swap the files named *a* and *b* in one step (both must exist)."""
    _rename2(a, b, RENAME_EXCHANGE)


def rename_noreplace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Rename *src* to *dst* only if *dst* does not exist (FileExistsError otherwise)."""
    try:
        _rename2(src, dst, RENAME_NOREPLACE)
        return
    except Unsupported:
        pass
    # A hard link is exclusive too: it fails with EEXIST when the name is taken.
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise Unsupported(exc.errno, "no exclusive rename on this file system", os.fspath(dst)) from None
        raise
    os.unlink(src)


def wait_until_unshared(path: str | os.PathLike, timeout: float = LEASE_WAIT) -> bool:
    """Wait until no other process holds *path* open; True when that was seen.

    False when the platform has no leases or someone kept it open past
    *timeout*: the caller then goes by the bytes it can read now.
    """
    lease = getattr(fcntl, "F_SETLEASE", None)
    if lease is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    deadline = time.monotonic() + timeout
    delay = 0.001
    try:
        # A lease break is signalled to the lease holder, SIGIO by default, whose
        # default action ends the process: ask for SIGURG, which is ignored.
        setsig = getattr(fcntl, "F_SETSIG", None)
        if setsig is not None:
            fcntl.fcntl(fd, setsig, signal.SIGURG)
        while True:
            try:
                # A write lease is granted only while no other descriptor is open.
                fcntl.fcntl(fd, lease, fcntl.F_WRLCK)
                fcntl.fcntl(fd, lease, fcntl.F_UNLCK)
                return True
            except OSError as exc:
                if exc.errno != errno.EAGAIN or time.monotonic() >= deadline:
                    return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    finally:
        os.close(fd)
