"""Small JSON files of per-device state, read and updated under a file lock.

The rate limiter's schedule and the token calibration ratios are shared by
every mirrorfs process on this device, so each update is a read-modify-write
under a lock beside the file. They are derived and disposable: a missing or
damaged file reads as empty. Writes are atomic (temp file, replace), so a
reader without the lock never sees half a file; ``durable=False`` skips the
fsync — for state on a request's hot path (the rate limiter), where an fsync
per request would cost more than the state is worth.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from mirrorfs.storage import atomic_write

__all__ = ["read", "update"]


def read(path: str | os.PathLike) -> dict:
    """The mapping in ``path``; empty when it is missing or not a JSON object."""
    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def update(path: str | os.PathLike, timeout: float = 30, durable: bool = True) -> Iterator[dict]:
    """Lock ``path``, yield its mapping for changes, write it back if it changed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with FileLock(str(path) + ".lock", timeout=timeout):
        data = read(path)
        before = json.dumps(data, sort_keys=True)
        yield data
        after = json.dumps(data, sort_keys=True)
        if after != before:
            atomic_write(path, after.encode("utf-8"), sync=durable)
