"""Append-only JSON-lines logs in the per-device state folder.

One `write` of a whole line on an O_APPEND file: concurrent processes never
interleave lines. A torn or foreign line is skipped on reading. When a log
passes its size limit it is compacted under a lock to its newest entries,
written atomically. Used by the working-memory log (`recent`) and the
reflection event log.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable

from filelock import FileLock

from mirrorfs import storage


class JsonLog:
    """A JSON-lines file; *max_bytes* triggers compaction down to *keep* entries."""

    def __init__(self, path: str | os.PathLike, max_bytes: int, keep: int,
                 valid: Callable[[Any], bool] = lambda entry: isinstance(entry, dict)):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep = keep
        self.valid = valid

    def append(self, entry: dict, compact: Callable[[list[dict]], list[dict]] | None = None) -> None:
        """Add one entry; *compact* chooses what a compaction keeps (default: the newest *keep*)."""
        line = (json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        if self.path.stat().st_size > self.max_bytes:
            self.compact(compact)

    def read(self) -> list[dict]:
        """Every readable entry, oldest first."""
        try:
            raw = self.path.read_bytes()
        except OSError:
            return []
        out = []
        for line in raw.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn line
            if self.valid(entry):
                out.append(entry)
        return out

    def compact(self, choose: Callable[[list[dict]], list[dict]] | None = None) -> None:
        with FileLock(str(self.path.with_name(self.path.name + ".lock")), timeout=60):
            entries = self.read()
            if len(entries) <= self.keep:
                return
            kept = choose(entries) if choose else entries[-self.keep:]
            self.write(kept)

    def write(self, entries: Iterable[dict]) -> None:
        data = "".join(json.dumps(e, ensure_ascii=False, default=str) + "\n" for e in entries)
        storage.atomic_write(self.path, data.encode("utf-8"), sync=False)
