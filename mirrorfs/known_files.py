"""What a watcher on this device last knew of each note, kept across restarts.

Two tables in one SQLite file in the state folder (`watch-known.sqlite3`):

    watched    path -> sha256 and the stat signature (size, mtime_ns, ctime_ns,
               inode) the watcher read it with
    reflected  path -> the reflections fingerprint (`mirrorfs.fingerprints`)
               of the same bytes

A restarted watcher seeds itself with them, so its start-up scan reads only
the files whose signature changed (a change while it was down is then reported
as a change), and the reflector takes its fingerprints from here instead of
parsing every note again. Rows are upserted per batch, one transaction each,
never rewritten whole. Derived data: deleting the file costs one full read of
the vault at the next start.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping

from mirrorfs import transactions
from mirrorfs.errors import KnownFilesError

DB_NAME = "watch-known.sqlite3"
VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS watched (
    path  TEXT PRIMARY KEY,
    sha   TEXT NOT NULL,
    size  INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    ctime INTEGER NOT NULL,
    ino   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reflected (path TEXT PRIMARY KEY, sha TEXT, fp TEXT NOT NULL) WITHOUT ROWID;
"""


# (sha256, (size, mtime_ns, ctime_ns, inode))
Watched = tuple


class KnownFiles:
    """The watcher's and the reflector's record of every note; see the module docstring."""

    def __init__(self, state_dir: str | os.PathLike):
        self.path = Path(state_dir) / DB_NAME
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # One connection, kept open and shared under a lock: the watcher's
        # thread writes a small transaction per batch.
        with self._lock:
            try:
                if self._con is None:
                    con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                    con.execute("PRAGMA journal_mode=WAL")
                    # A lost last batch after a power cut only means those files are read again.
                    con.execute("PRAGMA synchronous=NORMAL")
                    con.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                    row = con.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
                    if row is not None and row[0] != str(VERSION):  # another layout: start afresh
                        con.executescript("DROP TABLE IF EXISTS watched; DROP TABLE IF EXISTS reflected; "
                                          "DELETE FROM meta;")
                    con.executescript(_SCHEMA)
                    self._con = con
                yield self._con
            except sqlite3.Error as exc:
                self._close()
                raise KnownFilesError(f"cannot use {self.path}: {exc}; it only holds derived data "
                                      "and can be deleted") from None

    def _close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            with contextlib.suppress(sqlite3.Error):
                con.close()

    def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        with self._lock:
            self._close()

    def watched(self) -> dict[str, Watched] | None:
        """path -> (sha256, signature) as the watcher last knew it; None before it first wrote."""
        with self._db() as con:
            if con.execute("SELECT 1 FROM meta WHERE key = 'version'").fetchone() is None:
                return None
            return {path: (sha, (size, mtime, ctime, ino))
                    for path, sha, size, mtime, ctime, ino in con.execute("SELECT * FROM watched")}

    def update_watched(self, rows: Mapping[str, Watched | None]) -> None:
        """Store what the watcher now knows of *rows* (None: no longer a note), in one transaction."""
        keep = [(rel, sha, *sig) for rel, row in rows.items() if row is not None
                for sha, sig in [row] if sig is not None]
        drop = [(rel,) for rel, row in rows.items() if row is None or row[1] is None]
        with self._db() as con, transactions.write(con):
            con.executemany("DELETE FROM watched WHERE path = ?", drop)
            con.executemany("INSERT OR REPLACE INTO watched VALUES (?, ?, ?, ?, ?, ?)", keep)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(VERSION),))

    def reflected(self) -> dict[str, str | None]:
        """path -> sha256 of the bytes whose reflections fingerprint is stored (see `fingerprint`).

        Only the hashes: a restart needs few of the fingerprints, a session's
        holds every message id.
        """
        with self._db() as con:
            return dict(con.execute("SELECT path, sha FROM reflected"))

    def baseline(self, seen: Mapping[str, Watched]) -> tuple["StoredFingerprints", list[str]]:
        """The stored fingerprints of the very bytes the watcher knew (*seen*), and the paths without one."""
        stored = self.reflected()
        known = StoredFingerprints(self.fingerprint)
        unknown = []
        for relpath, entry in seen.items():
            if stored.get(relpath) == entry[0]:
                dict.__setitem__(known, relpath, StoredFingerprints.STORED)
            else:
                unknown.append(relpath)
        return known, unknown

    def fingerprint(self, relpath: str) -> dict | None:
        """The reflections fingerprint stored for *relpath* (None: none, or damaged)."""
        with self._db() as con:
            row = con.execute("SELECT fp FROM reflected WHERE path = ?", (relpath,)).fetchone()
        if row is None:
            return None
        try:
            fp = json.loads(row[0])
        except ValueError:
            return None
        return fp if isinstance(fp, dict) else None

    def update_reflected(self, rows: Mapping[str, dict | None]) -> None:
        """Store the fingerprints of *rows* (None: forget the path), in one transaction."""
        keep = [(rel, fp.get("h"), json.dumps(fp, ensure_ascii=False, separators=(",", ":")))
                for rel, fp in rows.items() if fp is not None]
        drop = [(rel,) for rel, fp in rows.items() if fp is None]
        with self._db() as con, transactions.write(con):
            con.executemany("DELETE FROM reflected WHERE path = ?", drop)
            con.executemany("INSERT OR REPLACE INTO reflected VALUES (?, ?, ?)", keep)


class StoredFingerprints(dict):
    """path -> fingerprint, where a value may still be `STORED`: then *load(path)* fetches it.

    A restart takes thousands of stored fingerprints and needs few (a
    session's holds every message id): each is fetched when first asked for.
    """

    STORED = object()

    def __init__(self, load):
        super().__init__()
        self._load = load

    def __getitem__(self, key: str) -> dict:
        value = dict.__getitem__(self, key)
        if value is StoredFingerprints.STORED:
            value = self._load(key) or {}
            dict.__setitem__(self, key, value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            value = self[key]
            del self[key]
            return value
        if default:
            return default[0]
        raise KeyError(key)
