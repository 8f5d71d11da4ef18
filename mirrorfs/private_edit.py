"""Edit a note with its secrets in plaintext, without the plaintext reaching a disk.

:func:`edit_note` decrypts a note into a private folder (0700, in RAM under
/dev/shm where the system has it, never inside the vault), lets a callback (an
editor) change it, seals what changed and writes the note back through the
write path only if nobody changed it meanwhile (compare-and-swap).

The folder goes away however the edit ends: normally, on an error, and on
SIGTERM, SIGHUP or SIGINT (caught while the folder exists; the edit then
raises EditInterruptedError and writes nothing). A SIGKILL cannot be caught:
each folder is locked (flock) by its process before it gets its final name,
and the kernel drops the lock when the process dies however it dies, so
:func:`sweep`, which the next edit and `mirrorfs doctor` run, removes every
unlocked folder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:  # Windows: no flock, so sweep() cannot tell a live folder and leaves them all
    fcntl = None

from mirrorfs.errors import CryptoError, EditInterruptedError, InvalidValueError
from mirrorfs.sealing import read_text
from mirrorfs.secret_blocks import seal_text, unseal_text
from mirrorfs.sections import with_path

EDIT_PREFIX = "mirrorfs-edit-"
# A folder is made under this name, locked, then renamed: a folder named EDIT_PREFIX… is
# always locked while its edit runs. One killed before its rename is empty and removed
# once older than _MAKING_SECONDS (younger, it may be being made right now).
_MAKING_PREFIX = ".mirrorfs-edit-making-"
_MAKING_SECONDS = 60
CAUGHT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name))


def ram_dir() -> Path | None:
    """/dev/shm when this system has a writable one (a RAM file system), else None."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def _base(base: str | os.PathLike | None) -> Path:
    return Path(base) if base is not None else (ram_dir() or Path(tempfile.gettempdir()))


class _Signals:
    """While a private folder exists: turn SIGTERM/SIGHUP/SIGINT into EditInterruptedError.

    During the clean-up itself a signal is only noted (so it cannot interrupt
    the removal) and raised once the folder is gone. Handlers can be set only in
    the main thread; elsewhere the clean-up still runs on every exception.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.cleaning = False
        self._previous: dict[int, object] = {}

    def catch(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in CAUGHT_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.received is None:
            self.received = signum
        if not self.cleaning:
            raise self.error()

    def error(self) -> EditInterruptedError:
        name = signal.Signals(self.received).name
        return EditInterruptedError(f"interrupted by {name}: the decrypted copy was removed and nothing was written")

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            if handler is not None:
                signal.signal(signum, handler)
        self._previous.clear()


def _hold(folder: Path) -> int | None:
    """Lock *folder* for as long as this process lives (the kernel drops the lock on any exit)."""
    if fcntl is None:
        return None
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def private_folder(base: str | os.PathLike | None = None) -> Iterator[Path]:
    """A fresh 0700 folder (in RAM where possible, or in *base*), removed on exit and on a caught signal."""
    signals = _Signals()
    signals.catch()
    made: list[Path] = []  # the folder under each name it may have (a signal may fall between two steps)
    fd: int | None = None
    try:
        making = Path(tempfile.mkdtemp(prefix=_MAKING_PREFIX, dir=_base(base)))  # 0700
        folder = making.with_name(EDIT_PREFIX + secrets.token_hex(8))
        made += [making, folder]
        fd = _hold(making)
        os.rename(making, folder)
        yield folder
    finally:
        signals.cleaning = True
        try:
            for path in made:
                shutil.rmtree(path, ignore_errors=True)
            if fd is not None:
                os.close(fd)
        finally:
            signals.restore()
    if signals.received is not None:
        raise signals.error()


def _in_use(path: str) -> bool:
    """True while the process that made the folder at *path* lives (it holds the folder's lock)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return True  # cannot tell: leave it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def sweep(base: str | os.PathLike | None = None) -> list[Path]:
    """Remove the private edit folders of processes that are gone (a SIGKILLed `mirrorfs edit`).

    Looks in the RAM folder (or *base*) at this user's folders only; a folder
    whose edit is still running is left alone (and, without flock, every
    folder). Returns the folders removed.
    """
    root = _base(base)
    removed: list[Path] = []
    if fcntl is None:
        return removed
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        if not entry.name.startswith((EDIT_PREFIX, _MAKING_PREFIX)):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or (uid is not None and info.st_uid != uid):
            continue
        if entry.name.startswith(_MAKING_PREFIX) and time.time() - info.st_mtime < _MAKING_SECONDS:
            continue
        if _in_use(entry.path):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            removed.append(Path(entry.path))
    return removed


@dataclass(frozen=True)
class EditResult:
    """The note edited (vault-relative) and whether it was written."""

    path: str
    changed: bool

    def to_dict(self) -> dict:
        return {"path": self.path, "changed": self.changed}


def edit_note(vault, path: str | os.PathLike, run_editor: Callable[[Path], None], *,
              base: str | os.PathLike | None = None) -> EditResult:
    """Let *run_editor(file)* edit note *path* with its sections shown as ```secret blocks.

    Needs the vault unlocked (LockedError). Sections whose text did not change
    keep their exact bytes; new or changed blocks are sealed. Raises ConflictError
    (nothing written) when the note changed during the edit, InvalidValueError when
    the edited copy is not UTF-8 or is gone, EditInterruptedError on a caught signal,
    and whatever *run_editor* raises; the private folder is removed in every case.
    """
    keyring = vault.keyring
    full = vault.resolve(path)
    rel = vault.relpath(full)
    snap, bom, text = read_text(vault, full)
    try:
        opened = unseal_text(text, keyring)
    except CryptoError as exc:
        raise with_path(exc, rel) from None
    sweep(base)
    with private_folder(base) as folder:
        temp = folder / full.name
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(opened.encode("utf-8"))
        run_editor(temp)
        try:
            edited = temp.read_bytes().decode("utf-8", "strict")
        except UnicodeDecodeError:
            raise InvalidValueError(f"{rel}: the edited text is not UTF-8; nothing was written") from None
        except FileNotFoundError:
            raise InvalidValueError(f"{rel}: the edited copy was removed; nothing was written") from None
    if edited == opened:
        return EditResult(rel, False)
    try:
        sealed = seal_text(edited, keyring, vault.salt, previous=text)
    except CryptoError as exc:
        raise with_path(exc, f"{rel} (edited copy; nothing was written)") from None
    vault.store.write(full, (bom + sealed).encode("utf-8"), snap.sha)
    vault.touched(rel, "write")
    return EditResult(rel, True)
