"""Which index generations are in use, and removing the ones that are not.

A process reading (or writing) a generation holds a shared `flock` on its
`readers` file for as long as it has it open. A generation that is no longer
CURRENT is removed as soon as nobody holds that lock: by the rebuild that
replaced it when no reader was left, else by the last reader when it lets go.
So a rebuild leaves one generation on disk, and a reader in another process
never loses the files it is answering from.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from mirrorfs import catalog as catalog_mod

READERS_FILE = "readers"


class ReaderLock:
    """A shared lock on one generation, held while it is open."""

    def __init__(self, gen_dir: Path):
        # Raises FileNotFoundError when the generation was removed meanwhile.
        self._fd = os.open(gen_dir / READERS_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_SH)
        except BaseException:
            os.close(self._fd)
            raise

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None


def remove_if_unused(gen_dir: Path) -> bool:
    """Remove a generation nobody holds open; False when a reader still has it."""
    try:
        fd = os.open(gen_dir / READERS_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        return not gen_dir.exists()
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        catalog_mod.forget(gen_dir)
        shutil.rmtree(gen_dir, ignore_errors=True)
        return True
    finally:
        os.close(fd)


def prune(layout: catalog_mod.Layout, keep: set[str | None]) -> list[str]:
    """Remove every generation but *keep* that no reader holds; the names removed."""
    removed = []
    for p in layout.dir.glob("gen-*"):
        if p.name not in keep and p.is_dir() and remove_if_unused(p):
            removed.append(p.name)
    return removed
