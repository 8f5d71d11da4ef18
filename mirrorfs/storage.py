"""The one write path every change to a vault goes through (DESIGN §1.3).

Read a file together with the SHA-256 of its bytes; write it back only if the
file still has that hash (compare-and-swap), under a per-device lock, through a
temporary file in the same folder that the watcher and sync tools ignore.
Writing bytes equal to what is on disk writes nothing, so sync tools see no
churn. docs/format.md ("The write path") states the guarantee and its limits:

* On Linux the new file is swapped in with RENAME_EXCHANGE, and the file it
  displaced is then checked: if anyone (an editor saving in place or by
  temp + rename, a sync tool) changed the note since it was read, the swap is
  undone and the write fails with ConflictError (an append re-reads and
  re-applies instead). An editor still holding the old file open is waited
  for (a write lease) before its bytes are judged.
* Elsewhere the hash is checked again just before `os.replace`: the window in
  which a save can be lost shrinks to that one system call.
* A new file is created with RENAME_NOREPLACE (or a hard link): two creators
  of the same name never overwrite each other, whatever lock folder they use.

What mirrorfs refuses to read it refuses to write (`content_problem`): a NUL
byte, bytes that are not UTF-8, more than MAX_NOTE_BYTES.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from filelock import FileLock

from mirrorfs import atomic
from mirrorfs.errors import (
    ConflictError,
    InvalidValueError,
    StorageError,
    UnreadableNoteError,
    VaultMissingError,
)
from mirrorfs.layout import TRASH_DIR, trash_entry

TEMP_PREFIX = ".mirrorfs-"
TEMP_SUFFIX = ".tmp"
# How often an append-only update re-reads and re-applies after losing a race.
APPEND_RETRIES = 20
# The one size limit for notes, for reading and writing alike.
MAX_NOTE_BYTES = 10 * 1024 * 1024
# A temp file of ours older than this was left by a killed writer.
STALE_TEMP_SECONDS = 5 * 60

# What a person can do about each error a write can meet.
_ADVICE = {
    errno.ENOSPC: "no space left on the device; free some space and retry",
    errno.EDQUOT: "the disk quota is exceeded; free some space and retry",
    errno.EACCES: "permission denied; check the file's and its folder's permissions",
    errno.EPERM: "operation not permitted; check the file's and its folder's permissions",
    errno.EROFS: "the file system is read-only; remount it writable or use another vault",
    errno.ELOOP: "a symbolic link loop; fix or remove the link",
    errno.ENAMETOOLONG: "the file name is too long for this file system; choose a shorter title",
    errno.EIO: "an input/output error from the disk; check the device",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_problem(data: bytes, max_bytes: int = MAX_NOTE_BYTES) -> str | None:
    """Why *data* is not note text mirrorfs reads (and so never writes), or None."""
    if len(data) > max_bytes:
        return f"{len(data)} bytes is over the {max_bytes}-byte limit for notes"
    if b"\x00" in data:
        return "binary file (contains NUL bytes)"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (bad byte at offset {exc.start})"
    return None


def os_error(exc: OSError, path: str | os.PathLike, doing: str = "write") -> StorageError:
    """One line a person can act on, naming the file; nothing was changed."""
    advice = _ADVICE.get(exc.errno or 0, exc.strerror or str(exc))
    return StorageError(f"cannot {doing} {path}: {advice}; nothing was changed")


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


def open_regular(path: str | os.PathLike) -> int:
    """A read-only descriptor of a regular file; UnreadableNoteError for anything else.

    Opened non-blocking and checked on the descriptor: a FIFO named `x.md`
    must never hang a reader, even one swapped in after a stat. A non-blocking
    open fails at once while another process holds a lease on the file (the
    write path does, for an instant): wait that out.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    delay, deadline = 0.001, time.monotonic() + atomic.LEASE_WAIT
    while True:
        try:
            fd = os.open(path, flags)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a FIFO, socket or device)"
        raise UnreadableNoteError(str(path), what)
    return fd


def read_regular(path: str | os.PathLike, max_bytes: int = MAX_NOTE_BYTES) -> bytes:
    """A regular file's bytes; UnreadableNoteError for a FIFO, socket, device, folder or huge file."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise UnreadableNoteError(str(path), f"{size} bytes is over the {max_bytes}-byte limit for notes")
        chunks = []
        left = max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise UnreadableNoteError(str(path), f"over the {max_bytes}-byte limit for notes")
        return data
    finally:
        os.close(fd)


def read(path: str | os.PathLike, max_bytes: int = MAX_NOTE_BYTES) -> Snapshot:
    """Read a file for a later compare-and-swap write."""
    path = Path(path)
    try:
        return Snapshot(path, read_regular(path, max_bytes))
    except FileNotFoundError:
        return Snapshot(path, None)
    except IsADirectoryError:
        raise UnreadableNoteError(str(path), "is a folder, not a note") from None
    except PermissionError:
        raise UnreadableNoteError(str(path), "permission denied") from None
    except OSError as exc:
        raise os_error(exc, path, "read") from None


class Store:
    """Writes files of one vault; locks live in this device's state folder.

    *root* is the vault folder: a write never creates it or anything above it
    (a vanished or unmounted vault stays vanished). *on_write* is told the path
    before each write into *root* (the vault announces its instance's card). *before_swap*, when given,
    is called as `before_swap(stage, path)` at "synced" (the new bytes are
    durable in their temp file), "checked" (the last look found the note
    unchanged, the swap comes next) and, for a flat append, "looked" (the end
    of the file was read, the append comes next): a seam for fault-injection tests.
    """

    def __init__(self, lock_dir: str | os.PathLike, root: str | os.PathLike | None = None,
                 before_swap: Callable[[str, Path], None] | None = None,
                 on_write: Callable[[Path], None] | None = None):
        self.lock_dir = Path(lock_dir)
        self.lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root = None if root is None else Path(root)
        self._root_id = _identity(self.root) if self.root is not None else None
        self.before_swap = before_swap
        self.on_write = on_write

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
        _check_content(path, data)
        self._will_write(path)
        with self.lock(path):
            return self._swap(path, data, expected_sha)

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
        self._will_write(path)
        attempts = APPEND_RETRIES if append_only else 1
        # Holding the lock from read to write serialises mirrorfs writers on this
        # machine; only an outside writer (an editor, a sync tool) can still race.
        with self.lock(path):
            for attempt in range(attempts):
                before = read(path)
                after = change(before.data)
                _check_content(path, after)
                try:
                    self._swap(path, after, before.sha, current=before)
                    return Snapshot(path, after)
                except ConflictError:
                    if attempt == attempts - 1:
                        raise
        raise AssertionError("unreachable")

    def append(
        self,
        path: str | os.PathLike,
        block_for: Callable[[bytes, bytes, int], bytes | None],
        already_there: Callable[[bytes], bool],
        head_bytes: int = 64 * 1024,
        tail_bytes: int = 4096,
    ) -> bool:
        """Append bytes at the end of *path* without rewriting it (`O_APPEND`): the cost of
        an append does not grow with the file. True when appended; False when the caller
        must take the whole-file path (`update`) instead.

        *block_for(head, tail, size)* sees the file's first and last bytes and its size,
        and returns the exact bytes to append, or None to decline (the front matter
        needs a rewrite, the end of the file looks torn, ...). The append happens only
        while nobody holds the file open (no in-place save is mid-write) and only to
        the file *path* names before and after the write: if an editor's save replaced
        the file meanwhile, the append is made again to the new file unless
        *already_there(new bytes)*.
        """
        path = Path(path)
        self._will_write(path)
        with self.lock(path):
            for _ in range(APPEND_RETRIES):
                try:
                    fd = open_regular(path)
                except FileNotFoundError:
                    return False
                try:
                    st = os.fstat(fd)
                    head = os.pread(fd, head_bytes, 0)
                    tail = os.pread(fd, tail_bytes, max(0, st.st_size - tail_bytes))
                finally:
                    os.close(fd)
                block = block_for(head, tail, st.st_size)
                if block is None:
                    return False
                if st.st_size + len(block) > MAX_NOTE_BYTES:
                    return False  # the whole-file path says so, with what to do
                _check_content(path, block)
                self._hook("looked", path)
                atomic.wait_until_unshared(path)
                try:
                    wfd = os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
                except FileNotFoundError:
                    return False
                except OSError as exc:
                    raise os_error(exc, path) from None
                try:
                    now = os.fstat(wfd)
                    if (now.st_ino, now.st_dev, now.st_size) != (st.st_ino, st.st_dev, st.st_size):
                        continue  # changed since we looked: look again
                    try:
                        view = memoryview(block)
                        while view:
                            view = view[os.write(wfd, view):]
                        os.fsync(wfd)
                    except OSError as exc:
                        raise os_error(exc, path) from None
                finally:
                    os.close(wfd)
                try:
                    after = os.stat(path)
                except FileNotFoundError:
                    after = None
                if after is not None and (after.st_ino, after.st_dev) == (st.st_ino, st.st_dev):
                    return True
                # An editor's save replaced the file while we wrote into the old one.
                current = read(path)
                if current.data is None:
                    return False
                if already_there(current.data):
                    return True
            raise ConflictError(path, f"{path} kept changing while a message was appended; nothing was written")

    def create(self, path: str | os.PathLike, data: bytes) -> None:
        """Write a new file; ConflictError if something is already there (never overwritten)."""
        path = Path(path)
        _check_content(path, data)
        self._will_write(path)
        with self.lock(path):
            self._create(path, data)

    def _create(self, path: Path, data: bytes) -> None:
        self._make_parent(path)
        tmp = _durable_temp(path, data)
        try:
            try:
                atomic.rename_noreplace(tmp, path)
            except atomic.Unsupported:
                # No exclusive rename here: O_EXCL still never overwrites.
                _exclusive_copy(tmp, path)
        except FileExistsError:
            raise ConflictError(path, f"{path} already exists; nothing was written") from None
        except OSError as exc:
            raise os_error(exc, path) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        fsync_dir(path.parent)

    def delete(self, path: str | os.PathLike, expected_sha: str) -> None:
        """Remove *path* if it still hashes to *expected_sha*."""
        path = Path(path)
        self._will_write(path)
        with self.lock(path):
            aside = path.with_name(f"{TEMP_PREFIX}{os.urandom(6).hex()}{TEMP_SUFFIX}")
            try:
                os.rename(path, aside)  # take exactly the file we are about to judge
            except FileNotFoundError:
                raise ConflictError(path) from None
            except OSError as exc:
                raise os_error(exc, path, "delete") from None
            atomic.wait_until_unshared(aside)
            if read(aside).sha != expected_sha:
                self._put_back(aside, path)
                raise ConflictError(path)
            os.unlink(aside)
            fsync_dir(path.parent)

    def move(self, src: str | os.PathLike, dst: str | os.PathLike, expected_sha: str) -> None:
        """Move a file if it still hashes to *expected_sha*; never onto an existing file."""
        src, dst = Path(src), Path(dst)
        self._will_write(dst)
        self._make_parent(dst)
        with self.lock(src), self.lock(dst):
            if read(src).sha != expected_sha:
                raise ConflictError(src)
            try:
                atomic.rename_noreplace(src, dst)
            except FileExistsError:
                raise ConflictError(dst, f"{dst} already exists; nothing was moved") from None
            except atomic.Unsupported:
                if dst.exists():
                    raise ConflictError(dst, f"{dst} already exists; nothing was moved") from None
                os.rename(src, dst)
            except OSError as exc:
                raise os_error(exc, dst, "move") from None
            fsync_dir(dst.parent)
            fsync_dir(src.parent)

    def _will_write(self, path: Path) -> None:
        if self.on_write is None or self.root is None:
            return
        try:
            path.relative_to(self.root)
        except ValueError:
            return  # this device's own state (an ephemeral session): not presence
        self.on_write(path)

    # -- the swap ----------------------------------------------------------------

    def _swap(self, path: Path, data: bytes, expected_sha: str | None, current: Snapshot | None = None) -> bool:
        """Compare-and-swap with the lock held (*current*: what was just read under it)."""
        current = current if current is not None else read(path)
        if current.data == data:
            return False
        if current.sha != expected_sha:
            raise ConflictError(path)
        if expected_sha is None:
            self._create(path, data)
            return True
        self._make_parent(path)
        tmp = _durable_temp(path, data, mode_of=path)
        try:
            self._hook("synced", path)
            # A last look just before the swap: nobody holds the note open (an
            # editor mid-save in place) and it still holds what we read. Done
            # after the fsync, so the window left is a few system calls long.
            atomic.wait_until_unshared(path)
            if read(path).sha != expected_sha:
                raise ConflictError(path)
            self._hook("checked", path)
            try:
                self._exchange_checked(tmp, path, expected_sha, data)
            except atomic.Unsupported:
                os.replace(tmp, path)  # no atomic exchange here: the last look is all we have
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and not path.exists():
                raise ConflictError(path, f"{path} was removed since it was read; nothing was written") from None
            raise os_error(exc, path) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        fsync_dir(path.parent)
        return True

    def _hook(self, stage: str, path: Path) -> None:
        if self.before_swap is not None:
            self.before_swap(stage, path)

    def _exchange_checked(self, tmp: Path, path: Path, expected_sha: str, ours: bytes) -> None:
        """Swap *tmp* in, then judge the file it displaced; undo when that was not what we read."""
        atomic.exchange(tmp, path)
        # *tmp* now names the displaced file. Judge it at once (the swap is
        # undone fast if it lost a race) and again once nobody holds it open:
        # then no in-place save can still land in it, so its bytes are final.
        if _sha_of(tmp) == expected_sha:
            atomic.wait_until_unshared(tmp)
            if _sha_of(tmp) == expected_sha:
                return
        # Someone saved between our last look and our swap: put their file back.
        atomic.exchange(tmp, path)
        try:
            back = read_regular(tmp)
        except (OSError, UnreadableNoteError):
            back = None
        if back != ours:
            # A newer save replaced ours in the meantime. It is the latest
            # version: keep it in place, and the older displaced one in the trash.
            atomic.exchange(tmp, path)
            self._keep_in_trash(tmp, path)
        raise ConflictError(path)

    def _put_back(self, aside: Path, path: Path) -> None:
        try:
            atomic.rename_noreplace(aside, path)
        except FileExistsError:
            self._keep_in_trash(aside, path)  # a new file took the name: keep both
        except atomic.Unsupported:
            os.rename(aside, path)

    def _keep_in_trash(self, tmp: Path, path: Path) -> None:
        """Never drop a version someone saved: park it in the vault's trash."""
        if self.root is None:
            target = path.with_name(f"{path.stem}.displaced-{int(time.time())}{path.suffix}")
        else:
            try:
                rel = path.relative_to(self.root)
            except ValueError:
                rel = Path(path.name)
            target = self.root / TRASH_DIR / trash_entry(reason="displaced") / rel
            target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.rename(tmp, target)

    def root_present(self) -> bool:
        """False when the vault folder is gone, or another folder stands in its place
        (the empty mount point an unmounted drive leaves behind)."""
        return self.root is None or _identity(self.root) in (self._root_id, None) and self.root.is_dir()

    def adopt_root(self) -> None:
        """Take the folder now at *root* as the vault (a restored copy, a remounted drive)."""
        self._root_id = _identity(self.root) if self.root is not None else None

    def _make_parent(self, path: Path) -> None:
        """Create the folders a note needs, but never the vault folder itself or above it."""
        parent = path.parent
        if self.root is not None and not self.root_present():
            raise VaultMissingError(
                f"the vault folder {self.root} is gone (moved, deleted or unmounted); nothing was written")
        if parent.is_dir():
            return
        if self.root is not None:
            try:
                parent.relative_to(self.root)
            except ValueError:
                raise InvalidValueError(f"{path} is outside the vault {self.root}") from None
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(exc, parent, "create the folder") from None


def _sha_of(path: Path) -> str | None:
    try:
        return sha256(read_regular(path))
    except (OSError, UnreadableNoteError):
        return None


def _identity(folder: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _check_content(path: Path, data: bytes) -> None:
    problem = content_problem(data)
    if problem is not None:
        raise InvalidValueError(f"{path}: not written, the result would be {problem}; nothing was changed")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _durable_temp(path: Path, data: bytes, mode_of: Path | None = None, sync: bool = True) -> Path:
    """The new bytes in a temp file beside *path*, fsynced, with the mode the note should have."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise os_error(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        try:
            # Keep the permissions the user gave the file ...
            mode = os.stat(mode_of).st_mode & 0o7777 if mode_of is not None else None
        except FileNotFoundError:
            mode = None
        # ... and give a new one what a plain open() would (mkstemp uses 0600).
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_UMASK)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise os_error(exc, path) from None
        raise
    return Path(tmp)


def _exclusive_copy(src: Path, dst: Path) -> None:
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, os.stat(src).st_mode & 0o777)
    with os.fdopen(fd, "wb") as f, open(src, "rb") as s:
        f.write(s.read())
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path: str | os.PathLike, data: bytes, sync: bool = True) -> None:
    """Write *data* to *path* atomically: temp file in the same folder, fsync, replace.

    For this device's own files (state, caches, logs), not for notes: it does
    no compare-and-swap. Without *sync* a crash may leave the old file (never
    a torn one): right for derived state, which is rebuilt when lost.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _durable_temp(path, data, mode_of=path, sync=sync)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise os_error(exc, path) from None
    if sync:
        fsync_dir(path.parent)


def stale_temp_files(root: str | os.PathLike, older_than: float = STALE_TEMP_SECONDS,
                     now: float | None = None) -> list[Path]:
    """mirrorfs temp files under *root* left by killed writers (older than *older_than* seconds)."""
    now = time.time() if now is None else now
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in (".git",)]
        for name in files:
            if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                full = Path(folder) / name
                try:
                    if now - full.lstat().st_mtime > older_than:
                        found.append(full)
                except FileNotFoundError:
                    continue
    return sorted(found)


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
