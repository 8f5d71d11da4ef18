"""The working memory: notes this device read or wrote lately.

A small append-only log in the per-device state folder (never synced: what
one device looked at is its own business). Each line is JSON
`{"t": unix time, "path": relpath, "action": "read"|"write"}`. Appends are one
`write` on an O_APPEND file, so concurrent processes do not interleave lines;
the log is compacted when it grows past MAX_LINES.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path

from mirrorfs.jsonlog import JsonLog

LOG_NAME = "recent.jsonl"
MAX_LINES = 5000
KEEP_LINES = 1000


@dataclass
class Access:
    path: str
    action: str
    time: dt.datetime


def _log(vault) -> JsonLog:
    return JsonLog(Path(vault.state_dir) / LOG_NAME, max_bytes=MAX_LINES * 120, keep=KEEP_LINES)


def record_access(vault, relpath: str, action: str = "read") -> None:
    """Note that this device read or wrote *relpath* (vault-relative). Never raises."""
    entry = {"t": round(time.time(), 3), "path": str(relpath).replace(os.sep, "/"), "action": action}
    try:
        _log(vault).append(entry, compact=_newest_per_path)
    except OSError:
        pass  # the working-memory log is a convenience; never fail a read or write over it


def _accesses(entries: list[dict]) -> list[Access]:
    out: list[Access] = []
    for rec in entries:
        try:
            out.append(Access(str(rec["path"]), str(rec.get("action", "read")),
                              dt.datetime.fromtimestamp(float(rec["t"]), dt.timezone.utc)))
        except (ValueError, KeyError, TypeError, OverflowError):
            continue  # a foreign line
    return out


def _newest_per_path(entries: list[dict]) -> list[dict]:
    kept = latest(_accesses(entries))[:KEEP_LINES]
    kept.reverse()
    return [{"t": a.time.timestamp(), "path": a.path, "action": a.action} for a in kept]


def latest(entries: list[Access]) -> list[Access]:
    """The most recent access of each path, newest first."""
    seen: dict[str, Access] = {}
    for a in entries:
        prev = seen.get(a.path)
        if prev is None or a.time >= prev.time:
            seen[a.path] = a
    return sorted(seen.values(), key=lambda a: a.time, reverse=True)


def accesses(vault) -> list[Access]:
    """Every logged access, newest path first, one entry per path."""
    return latest(_accesses(_log(vault).read()))
