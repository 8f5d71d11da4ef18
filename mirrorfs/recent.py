"""The working memory: notes this device read or wrote lately.

A small append-only log in the per-device state folder (never synced: what
one device looked at is its own business). Each line is JSON
`{"t": unix time, "path": relpath, "action": "read"|"write"}`. Appends are one
`write` on an O_APPEND file, so concurrent processes do not interleave lines;
the log is compacted when it grows past MAX_LINES.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

LOG_NAME = "recent.jsonl"
MAX_LINES = 5000
KEEP_LINES = 1000


@dataclass
class Access:
    path: str
    action: str
    time: dt.datetime


def _log_path(vault) -> Path:
    return Path(vault.state_dir) / LOG_NAME


def record_access(vault, relpath: str, action: str = "read") -> None:
    """Note that this device read or wrote *relpath* (vault-relative). Never raises."""
    line = json.dumps({"t": round(time.time(), 3), "path": str(relpath).replace(os.sep, "/"),
                       "action": action}, ensure_ascii=False) + "\n"
    path = _log_path(vault)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
        if path.stat().st_size > MAX_LINES * 120:
            _compact(path)
    except OSError:
        pass  # the working-memory log is a convenience; never fail a read or write over it


def _read(path: Path) -> list[Access]:
    out: list[Access] = []
    try:
        data = path.read_bytes()
    except OSError:
        return out
    for raw in data.splitlines():
        try:
            rec = json.loads(raw)
            out.append(Access(str(rec["path"]), str(rec.get("action", "read")),
                              dt.datetime.fromtimestamp(float(rec["t"]), dt.timezone.utc)))
        except (ValueError, KeyError, TypeError):
            continue  # a torn or foreign line
    return out


def _compact(path: Path) -> None:
    entries = _read(path)
    if len(entries) <= KEEP_LINES:
        return
    kept = latest(entries)[:KEEP_LINES]
    kept.reverse()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for a in kept:
            f.write(json.dumps({"t": a.time.timestamp(), "path": a.path, "action": a.action},
                               ensure_ascii=False) + "\n")
    os.replace(tmp, path)


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
    return latest(_read(_log_path(vault)))
