"""The one write path every change to a vault goes through (DESIGN §1.3).

Read a file together with the SHA-256 of its bytes; write it back only if the
file still has that hash (compare-and-swap), under a per-device lock, through a
temporary file in the same folder that the watcher and sync tools ignore, with
fsync of the file and its folder before and after `os.replace`. Writing bytes
equal to what is on disk writes nothing, so sync tools see no churn.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from filelock import FileLock

from mirrorfs.errors import ConflictError

TEMP_PREFIX = ".mirrorfs-"
TEMP_SUFFIX = ".tmp"
# How often an append-only update re-reads and re-applies after losing a race.
APPEND_RETRIES = 20


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Snapshot:
    """The bytes of a file as read, and their hash (None when the file did not exist)."""

    path: Path
    data: bytes | None

    @property
    def sha(self) -> str | None:
        return None if self.data is None else sha256(self.data)

    @property
    def exists(self) -> bool:
        return self.data is not None


def read(path: str | os.PathLike) -> Snapshot:
    """Read a file for a later compare-and-swap write."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return Snapshot(path, f.read())
    except FileNotFoundError:
        return Snapshot(path, None)


class Store:
    """Writes files of one vault; locks live in this device's state folder."""

    def __init__(self, lock_dir: str | os.PathLike):
        self.lock_dir = Path(lock_dir)
        self.lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def lock(self, path: str | os.PathLike, timeout: float = 30) -> FileLock:
        """The same-machine lock of one file: every mirrorfs process takes it to write."""
        key = hashlib.sha1(str(Path(path).resolve()).encode("utf-8", "surrogateescape")).hexdigest()
        return FileLock(str(self.lock_dir / f"{key}.lock"), timeout=timeout)

    def write(self, path: str | os.PathLike, data: bytes, expected_sha: str | None) -> bool:
        """Replace *path* with *data* if it still hashes to *expected_sha*.

        *expected_sha* None means "the file must not exist yet". Returns False when
        nothing needed writing (the file already holds *data*); raises
        ConflictError, writing nothing, when the file changed since it was read.
        """
        path = Path(path)
        with self.lock(path):
            return _swap(path, data, expected_sha)

    def update(
        self,
        path: str | os.PathLike,
        change: Callable[[bytes | None], bytes],
        append_only: bool = False,
    ) -> Snapshot:
        """Read, apply *change* to the bytes, and compare-and-swap the result.

        For an append-only change (a new message) losing a race with another
        writer is harmless: re-read and re-apply. Any other change that lost a
        race raises ConflictError so a human's edit is never clobbered.
        """
        path = Path(path)
        attempts = APPEND_RETRIES if append_only else 1
        # Holding the lock from read to write serialises mirrorfs writers on this
        # machine; only an outside writer (an editor, a sync tool) can still race.
        with self.lock(path):
            for attempt in range(attempts):
                before = read(path)
                after = change(before.data)
                try:
                    _swap(path, after, before.sha)
                    return Snapshot(path, after)
                except ConflictError:
                    if attempt == attempts - 1:
                        raise
        raise AssertionError("unreachable")

    def create(self, path: str | os.PathLike, data: bytes) -> None:
        """Write a new file; ConflictError if something is already there."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock(path):
            if path.exists():
                raise ConflictError(path, f"{path} already exists; nothing was written")
            atomic_write(path, data)

    def delete(self, path: str | os.PathLike, expected_sha: str) -> None:
        """Remove *path* if it still hashes to *expected_sha*."""
        path = Path(path)
        with self.lock(path):
            if read(path).sha != expected_sha:
                raise ConflictError(path)
            os.unlink(path)
            fsync_dir(path.parent)

    def move(self, src: str | os.PathLike, dst: str | os.PathLike, expected_sha: str) -> None:
        """Move a file if it still hashes to *expected_sha*; never onto an existing file."""
        src, dst = Path(src), Path(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        with self.lock(src), self.lock(dst):
            if read(src).sha != expected_sha:
                raise ConflictError(src)
            if dst.exists():
                raise ConflictError(dst, f"{dst} already exists; nothing was moved")
            os.rename(src, dst)
            fsync_dir(dst.parent)
            fsync_dir(src.parent)


def _swap(path: Path, data: bytes, expected_sha: str | None) -> bool:
    """Compare-and-swap with the lock held."""
    current = read(path)
    if current.data == data:
        return False
    if current.sha != expected_sha:
        raise ConflictError(path)
    atomic_write(path, data)
    return True


def atomic_write(path: str | os.PathLike, data: bytes, sync: bool = True) -> None:
    """Write *data* to *path* atomically: temp file in the same folder, fsync, replace.

    Without *sync* a crash may leave the old file (never a torn one): right
    for derived state such as caches and logs, which is rebuilt when lost.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        try:
            # Keep the permissions the user gave the file ...
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            # ... and give a new one what a plain open() would (mkstemp uses 0600).
            mode = 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync:
        fsync_dir(path.parent)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename or unlink in *path* durable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
