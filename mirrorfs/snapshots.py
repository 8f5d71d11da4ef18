"""The versions of each note this device last saw: the bases of three-way merges.

When a sync tool leaves a conflict copy, the two sides can only be merged
safely against a version both descend from. Nothing in the files records one,
so this device keeps, per note, the last few versions it saw (the watcher calls
`remember` for every settled read; a merge remembers its result). The store is
per device, outside the vault, content-addressed (a version seen under two
paths, or seen twice, is stored once) and bounded in entries and bytes: the
versions seen longest ago are evicted first. Losing it costs nothing but a
conflict that must be settled by a person instead of merged.

One SQLite file in `<state dir>/seen/`: SQLite gives atomic updates and safe
concurrent use by the watcher and CLI processes of the same device.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from mirrorfs.errors import (
    SnapshotStoreError as SnapshotStoreError,  # importable from here too
)
from mirrorfs.storage import sha256

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

SEEN_DIR = "seen"
DB_NAME = "seen.sqlite3"
# Versions kept per note: more than one, because the newest versions this device
# saw are often one side of the conflict itself (its own write, or the other
# side arriving), and an older one is the common base.
MAX_VERSIONS_PER_NOTE = 6
MAX_ENTRIES = 20_000
MAX_BYTES = 128 * 1024 * 1024  # stored (compressed) bytes
# A larger file would evict a great many small notes; it is not kept.
MAX_FILE_BYTES = 2 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    sha  TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    sha  TEXT NOT NULL,
    UNIQUE (path, sha)
);
CREATE INDEX IF NOT EXISTS seen_path ON seen (path, seq);
CREATE INDEX IF NOT EXISTS seen_sha ON seen (sha);
-- Running totals, so the bounds are checked without scanning the store.
CREATE TABLE IF NOT EXISTS totals (
    id      INTEGER PRIMARY KEY CHECK (id = 0),
    entries INTEGER NOT NULL,
    bytes   INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals (id, entries, bytes) VALUES (0, 0, 0);
"""


class Seen:
    """A bounded, content-addressed store of the versions of notes this device saw."""

    def __init__(
        self,
        folder: str | os.PathLike,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
        max_versions: int = MAX_VERSIONS_PER_NOTE,
        max_file_bytes: int = MAX_FILE_BYTES,
        vault_root: str | os.PathLike | None = None,
    ):
        self.folder = Path(folder)
        if vault_root is not None:
            root = Path(vault_root).resolve()
            here = self.folder.resolve()
            if here == root or root in here.parents:
                raise SnapshotStoreError(
                    f"the store of last-seen versions ({here}) would sit inside the vault {root}; "
                    "per-device state must stay out of the synced folder (check MIRRORFS_STATE_DIR)"
                )
        self.max_entries = max(1, int(max_entries))
        self.max_bytes = max(1, int(max_bytes))
        self.max_versions = max(1, int(max_versions))
        self.max_file_bytes = int(max_file_bytes)
        self.path = self.folder / DB_NAME
        self._local = threading.local()

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # One connection per thread, kept open: opening and closing SQLite (a
        # WAL checkpoint on close) costs more than the update itself, and the
        # watcher remembers a version on every change.
        con = getattr(self._local, "con", None)
        try:
            if con is None:
                self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                con.execute("PRAGMA journal_mode=WAL")
                # A lost last entry after a power cut only means a merge asks a person.
                con.execute("PRAGMA synchronous=NORMAL")
                con.executescript(_SCHEMA)
                self._local.con = con
            yield con
        except sqlite3.DatabaseError as exc:
            self.close()
            raise SnapshotStoreError(
                f"{self.path}: {exc}; it only holds derived data and can be deleted"
            ) from None
        except sqlite3.Error as exc:
            self.close()
            raise SnapshotStoreError(f"cannot use {self.path}: {exc}") from None

    def close(self) -> None:
        """Close this thread's connection (it reopens on next use)."""
        con = getattr(self._local, "con", None)
        self._local.con = None
        if con is not None:
            with contextlib.suppress(sqlite3.Error):
                con.close()

    def remember(self, relpath: str | os.PathLike, data: bytes) -> bool:
        """Record *data* as the newest version of *relpath* seen; False if not kept.

        Cheap when the version is already the newest one recorded (no write).
        """
        if len(data) > self.max_file_bytes:
            return False
        key = _key(relpath)
        sha = sha256(data)
        with self._db() as con:
            newest = con.execute(
                "SELECT sha FROM seen WHERE path = ? ORDER BY seq DESC LIMIT 1", (key,)
            ).fetchone()
            if newest is not None and newest[0] == sha:
                return True
            con.execute("BEGIN IMMEDIATE")
            try:
                if con.execute("SELECT 1 FROM blobs WHERE sha = ?", (sha,)).fetchone() is None:
                    packed = zlib.compress(data, 6)
                    con.execute("INSERT INTO blobs (sha, data, size) VALUES (?, ?, ?)", (sha, packed, len(packed)))
                    con.execute("UPDATE totals SET bytes = bytes + ? WHERE id = 0", (len(packed),))
                # Seeing an older version again makes it the newest.
                _drop(con, "path = ? AND sha = ?", (key, sha), keep=sha)
                con.execute("INSERT INTO seen (path, sha) VALUES (?, ?)", (key, sha))
                con.execute("UPDATE totals SET entries = entries + 1 WHERE id = 0")
                _drop(
                    con,
                    "path = ? AND seq NOT IN (SELECT seq FROM seen WHERE path = ? ORDER BY seq DESC LIMIT ?)",
                    (key, key, self.max_versions),
                )
                self._evict(con)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return True

    def _evict(self, con: sqlite3.Connection) -> None:
        """Drop the versions seen longest ago until both bounds hold."""
        entries, size = con.execute("SELECT entries, bytes FROM totals WHERE id = 0").fetchone()
        if entries > self.max_entries:
            _drop(con, "seq IN (SELECT seq FROM seen ORDER BY seq LIMIT ?)", (entries - self.max_entries,))
            size = con.execute("SELECT bytes FROM totals WHERE id = 0").fetchone()[0]
        while size > self.max_bytes:
            # Enough of the oldest versions to get under the limit at the average size.
            surplus = -(-(size - self.max_bytes) * max(entries, 1) // max(size, 1))
            _drop(con, "seq IN (SELECT seq FROM seen ORDER BY seq LIMIT ?)", (max(1, surplus),))
            entries, size = con.execute("SELECT entries, bytes FROM totals WHERE id = 0").fetchone()
            if entries == 0:
                break

    def history(self, relpath: str | os.PathLike) -> list[bytes]:
        """The versions of *relpath* this device saw, newest first."""
        with self._db() as con:
            rows = con.execute(
                "SELECT b.data FROM seen s JOIN blobs b ON b.sha = s.sha WHERE s.path = ? ORDER BY s.seq DESC",
                (_key(relpath),),
            ).fetchall()
        return [zlib.decompress(r[0]) for r in rows]

    def last_seen(self, relpath: str | os.PathLike) -> bytes | None:
        """The newest version of *relpath* this device saw, or None."""
        with self._db() as con:
            row = con.execute(
                "SELECT b.data FROM seen s JOIN blobs b ON b.sha = s.sha WHERE s.path = ? "
                "ORDER BY s.seq DESC LIMIT 1",
                (_key(relpath),),
            ).fetchone()
        return None if row is None else zlib.decompress(row[0])

    def forget(self, relpath: str | os.PathLike) -> None:
        """Drop every version of *relpath* (a note deleted for good)."""
        with self._db() as con:
            con.execute("BEGIN IMMEDIATE")
            _drop(con, "path = ?", (_key(relpath),))
            con.execute("COMMIT")

    def stats(self) -> dict[str, int]:
        """Entries, distinct notes, distinct versions and stored bytes."""
        with self._db() as con:
            entries, notes = con.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM seen").fetchone()
            blobs, size = con.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs").fetchone()
        return {"entries": entries, "notes": notes, "blobs": blobs, "bytes": size}


def _drop(con: sqlite3.Connection, where: str, params: tuple, keep: str | None = None) -> None:
    """Delete the `seen` rows matching *where*, then the versions nothing refers to."""
    rows = con.execute(f"SELECT seq, sha FROM seen WHERE {where}", params).fetchall()
    if not rows:
        return
    con.executemany("DELETE FROM seen WHERE seq = ?", [(seq,) for seq, _ in rows])
    con.execute("UPDATE totals SET entries = entries - ? WHERE id = 0", (len(rows),))
    for sha in {sha for _, sha in rows} - {keep}:
        if con.execute("SELECT 1 FROM seen WHERE sha = ? LIMIT 1", (sha,)).fetchone() is None:
            size = con.execute("SELECT size FROM blobs WHERE sha = ?", (sha,)).fetchone()
            if size is not None:
                con.execute("DELETE FROM blobs WHERE sha = ?", (sha,))
                con.execute("UPDATE totals SET bytes = bytes - ? WHERE id = 0", (size[0],))


def _key(relpath: str | os.PathLike) -> str:
    return Path(relpath).as_posix()


_STORES: dict[tuple, Seen] = {}
_STORES_LOCK = threading.Lock()


def for_vault(vault: "Vault", **limits: int) -> Seen:
    """The store of *vault* on this device, `<state dir>/seen/` (one object per folder)."""
    key = (str(vault.state_dir), str(vault.root), tuple(sorted(limits.items())))
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = Seen(vault.state_dir / SEEN_DIR, vault_root=vault.root, **limits)
        return store


def remember(vault: "Vault", relpath: str | os.PathLike, data: bytes) -> bool:
    """Record *data* as the version of *relpath* this device just saw."""
    return for_vault(vault).remember(relpath, data)


def last_seen(vault: "Vault", relpath: str | os.PathLike) -> bytes | None:
    """The newest version of *relpath* this device saw, or None."""
    return for_vault(vault).last_seen(relpath)
