"""The per-device vector store of a vault: chunk vectors, kept up to date incrementally.

One SQLite file in the vault's state folder (never in the synced vault):

* `vectors(embedder, sha, vec)`: a float32 vector per (embedder id, sha256 of a
  chunk's text). Text embedded once is never embedded again, wherever it moves,
  and another model's vectors sit beside, never mixed with, this one's.
* `chunks(path, key, sha, type, doc)`: which chunks each note has now; a changed
  or deleted note replaces or drops its rows. No chunk text is stored at all.
* `files(path, mtime_ns, size, sha)`: what the last update saw, so a scan
  re-reads only files whose stat changed and re-chunks only those whose bytes did.
* `log(seq, path)`: every path whose chunks changed, so a process holding the
  vectors in memory reloads only those rows.

Queries are brute-force cosine over an in-memory float32 matrix (one matrix
product; see docs/semantic.md for why not sqlite-vec). Two processes (a watcher
and a CLI) can use one store at once: SQLite's WAL lets readers read while one
writer writes, and a file lock lets one `update` run at a time; a query does
not wait for a running update, it searches what is already stored.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import filelock
import numpy as np

from mirrorfs import chunks as chunks_mod
from mirrorfs import ignore, state
from mirrorfs import note as note_mod
from mirrorfs.catalog import scan as index_scan
from mirrorfs.conflict_names import conflict_original
from mirrorfs.embed import Embedder
from mirrorfs.errors import UnreadableNoteError, VectorStoreError
from mirrorfs.transactions import read as _read
from mirrorfs.transactions import write as _write

SCHEMA = 2
DB_NAME = state.vectors_file("").name
# Files per transaction: progress survives an interruption, and the WAL stays small.
BATCH_FILES = 64
LOG_KEEP = 50_000
_SQL_VARS = 500

ProgressFn = Callable[[int, int], None]

_TABLES = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, mtime_ns INTEGER, size INTEGER, sha TEXT);
CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY, path TEXT NOT NULL, key TEXT NOT NULL,
    sha TEXT NOT NULL, type TEXT NOT NULL, doc TEXT NOT NULL, UNIQUE(path, key));
CREATE INDEX IF NOT EXISTS chunks_sha ON chunks(sha);
CREATE TABLE IF NOT EXISTS vectors(id INTEGER PRIMARY KEY, embedder TEXT NOT NULL, sha TEXT NOT NULL,
    vec BLOB NOT NULL, UNIQUE(embedder, sha));
CREATE TABLE IF NOT EXISTS log(seq INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL);
"""


@dataclass
class UpdateReport:
    """What one `update` did."""

    embedder: str
    files: int = 0  # notes read
    changed: int = 0  # notes whose chunks were replaced
    deleted: int = 0  # notes whose chunks were dropped
    chunks: int = 0  # chunks of the changed notes
    embedded: int = 0  # texts sent to the embedder
    reused: int = 0  # chunks whose vector was already stored
    busy: bool = False  # another process was updating: nothing was done
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


@dataclass
class VectorHit:
    """One chunk close to a query; `cosine` in [-1, 1]."""

    path: str
    key: str
    doc: str
    type: str
    cosine: float


def _blob(vec: np.ndarray) -> bytes:
    return np.ascontiguousarray(vec, dtype="<f4").tobytes()


def _groups(items: list, size: int = _SQL_VARS):
    for i in range(0, len(items), size):
        yield items[i:i + size]


class _Matrix:
    """The vectors of one embedder in memory, with what each row is.

    Row facts are kept compact (a path is stored once, doc and type as one code)
    because a vault has hundreds of thousands of chunks.
    """

    def __init__(self, dim: int, capacity: int = 0):
        self.dim = dim
        # Room to grow, so the next changed notes need no copy of the whole matrix.
        cap = capacity + capacity // 8 + 1024 if capacity else 0
        self.vecs = np.zeros((cap, dim), dtype=np.float32)
        self.alive = np.zeros(cap, dtype=bool)
        self.kind = np.zeros(cap, dtype=np.int32)  # code of (doc, type), for filters
        self.path_of = np.zeros(cap, dtype=np.int32)
        self.n = 0
        self.kinds: dict[tuple[str, str], int] = {}
        self.kind_names: list[tuple[str, str]] = []
        self.paths: list[str] = []
        self.path_ids: dict[str, int] = {}
        self.keys: list[str] = []
        self.by_path: dict[str, list[int]] = {}
        self.dead = 0
        self.seq = 0
        self.data_version = -1

    def _grow(self, need: int) -> None:
        cap = max(need, int(len(self.vecs) * 1.5) + 1024)
        for name in ("vecs", "alive", "kind", "path_of"):
            old = getattr(self, name)
            grown = np.zeros((cap,) + old.shape[1:], dtype=old.dtype)
            grown[: self.n] = old[: self.n]
            setattr(self, name, grown)

    def add(self, rows: list[tuple[str, str, str, str]], vecs: np.ndarray) -> None:
        need = self.n + len(rows)
        if need > len(self.vecs):
            self._grow(need)
        self.vecs[self.n:need] = vecs
        self.alive[self.n:need] = True
        for i, (path, key, doc, type_) in enumerate(rows, self.n):
            code = self.kinds.get((doc, type_))
            if code is None:
                code = self.kinds[(doc, type_)] = len(self.kind_names)
                self.kind_names.append((doc, type_))
            pid = self.path_ids.get(path)
            if pid is None:
                pid = self.path_ids[path] = len(self.paths)
                self.paths.append(path)
            self.kind[i], self.path_of[i] = code, pid
            self.keys.append(key)
            self.by_path.setdefault(path, []).append(i)
        self.n = need

    def row(self, i: int) -> tuple[str, str, str, str]:
        """(path, key, doc, type) of row *i*."""
        doc, type_ = self.kind_names[self.kind[i]]
        return self.paths[self.path_of[i]], self.keys[i], doc, type_

    def drop_path(self, path: str) -> None:
        for i in self.by_path.pop(path, ()):
            self.alive[i] = False
            self.dead += 1


class VectorStore:
    """The vector store of one vault on this device."""

    def __init__(self, state_dir: str | os.PathLike):
        self.path = state.vectors_file(state_dir)
        self.dir = self.path.parent
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._update_lock = filelock.FileLock(str(self.dir / "update.lock"))
        self._lock = threading.RLock()
        self._matrices: dict[str, _Matrix] = {}
        self._db = self._open()

    # -- opening ------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_TABLES)
        return db

    def _open(self) -> sqlite3.Connection:
        try:
            db = self._connect()
            schema = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError:
            # Derived data: a damaged file is removed and rebuilt, never patched.
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            try:
                db = self._connect()
            except sqlite3.DatabaseError as exc:
                raise VectorStoreError(f"cannot open the vector store {self.path}: {exc}") from None
            schema = None
        if schema is None or schema[0] != str(SCHEMA):
            # A new store, or one of another layout: start empty (it is all derived).
            with _write(db):
                if _meta(db, "schema") != str(SCHEMA):  # (unless another process just made it)
                    for table in ("files", "chunks", "vectors", "log", "meta"):
                        db.execute(f"DROP TABLE IF EXISTS {table}")
                    for statement in filter(str.strip, _TABLES.split(";")):
                        db.execute(statement)
                    db.execute("INSERT INTO meta VALUES('schema', ?)", (str(SCHEMA),))
        if _meta(db, "chunker") != str(chunks_mod.VERSION):
            # New cutting rules: every note is cut again; unchanged texts keep their vectors.
            with _write(db):
                if _meta(db, "chunker") == str(chunks_mod.VERSION):
                    return db
                db.execute("DELETE FROM files")
                db.execute("DELETE FROM chunks")
                db.execute("INSERT INTO log(path) VALUES('')")
                db.execute("INSERT OR REPLACE INTO meta VALUES('chunker', ?)", (str(chunks_mod.VERSION),))
        return db

    _OPEN: dict[str, "VectorStore"] = {}

    @classmethod
    def for_vault(cls, vault) -> "VectorStore":
        """The (cached, per process) store of a Vault."""
        key = os.fspath(vault.state_dir)
        store = cls._OPEN.get(key)
        if store is None:
            store = cls._OPEN[key] = cls(vault.state_dir)
        return store

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._matrices.clear()
            self._OPEN.pop(os.fspath(self.dir.parent), None)

    # -- updating -------------------------------------------------------------

    def update(self, vault, changed: Iterable[str] | Mapping[str, bytes | None] | None,
               embedder: Embedder, progress: ProgressFn | None = None,
               wait: bool = True) -> UpdateReport:
        """Bring the vectors of *embedder* up to date with the vault's notes.

        *changed*: None to scan the whole vault (stat every note, read those
        whose stat changed), or the vault-relative paths a watcher saw change,
        optionally mapped to the bytes it already read. *progress(done, total)*
        is called per batch of notes. Without *wait*, returns at once with
        `busy` set when another process is updating.
        """
        report = UpdateReport(embedder.id)
        started = time.perf_counter()
        try:
            self._update_lock.acquire(timeout=-1 if wait else 0)
        except filelock.Timeout:
            report.busy = True
            return report
        # Its own connection: queries in other threads of this process keep
        # reading (their own snapshot) while this one writes.
        self._w = self._connect()
        try:
            self._update(vault, changed, embedder, progress, report)
        finally:
            self._w.close()
            self._update_lock.release()
        report.seconds = time.perf_counter() - started
        return report

    def _update(self, vault, changed, embedder: Embedder, progress, report: UpdateReport) -> None:
        root = Path(vault.root)
        max_bytes = int((getattr(vault, "config", None) or {}).get("max_note_bytes",
                                                                  note_mod.DEFAULT_MAX_BYTES))
        known = {p: (m, s, h) for p, m, s, h in self._w.execute("SELECT path, mtime_ns, size, sha FROM files")}
        # Has anyone but this embedder changed chunks since its last update?
        synced = _meta(self._w, "synced:" + embedder.id)
        foreign = synced != str(self._last_seq())
        if changed is None:
            todo, gone = self._scan(root, known, embedder.id, foreign, report)
            given: Mapping = {}
        else:
            given = changed if isinstance(changed, Mapping) else {}
            todo, gone = self._given(root, changed, known)
        self._delete(gone)
        report.deleted = len(gone)
        total = len(todo)
        if progress:
            progress(0, total)
        for start in range(0, total, BATCH_FILES):
            batch = todo[start:start + BATCH_FILES]
            self._update_batch(root, batch, given, known, max_bytes, embedder, report)
            if progress:
                progress(min(start + BATCH_FILES, total), total)
        if changed is None:
            with _write(self._w):
                self._w.execute("DELETE FROM vectors WHERE embedder=? AND sha NOT IN "
                                 "(SELECT sha FROM chunks)", (embedder.id,))
                self._w.execute("DELETE FROM log WHERE seq < (SELECT MAX(seq) FROM log) - ?", (LOG_KEEP,))
            if report.changed or report.deleted:
                # A cold build leaves a WAL as large as its biggest batch; give the space back.
                self._w.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if changed is None or not foreign:
            with _write(self._w):
                self._w.execute("INSERT OR REPLACE INTO meta VALUES(?, ?)",
                                 ("synced:" + embedder.id, str(self._last_seq())))

    def _last_seq(self) -> int:
        return self._w.execute("SELECT COALESCE(MAX(seq), 0) FROM log").fetchone()[0]

    def _scan(self, root: Path, known: dict, embedder_id: str, foreign: bool, report: UpdateReport):
        """(paths to read, with force flag; paths gone) for a whole-vault pass.

        The walk is the index's (same notes, same rules, conflict copies left out).
        """
        found = index_scan(root, known)
        report.warnings.extend(f"{d or '.'}: cannot list this folder; its notes are kept"
                               for d in found.unreadable)
        backfill: set[str] = set()
        if foreign:  # chunks another model wrote may lack this model's vectors
            backfill = {p for (p,) in self._w.execute(
                "SELECT DISTINCT c.path FROM chunks c LEFT JOIN vectors v ON v.embedder=? AND v.sha=c.sha "
                "WHERE v.sha IS NULL", (embedder_id,))}
        todo: list[tuple[str, bool]] = []
        for rel, (mtime_ns, size, _ino) in found.files.items():
            old = known.get(rel)
            if rel in backfill:
                todo.append((rel, True))
            elif old is None or (old[0], old[1]) != (mtime_ns, size):
                todo.append((rel, False))
        gone = [p for p in known if p not in found.files and p not in found.denied and found.covers(p)]
        return sorted(todo), gone

    @staticmethod
    def _given(root: Path, changed, known: dict):
        todo: list[tuple[str, bool]] = []
        gone: list[str] = []
        for path in changed:
            p = Path(path)
            try:
                rel = (p.relative_to(root) if p.is_absolute() else p).as_posix()
            except ValueError:  # not in this vault
                continue
            if not ignore.is_note_path(rel) or conflict_original(rel) is not None \
                    or not (root / rel).is_file():
                if rel in known:
                    gone.append(rel)
                continue
            todo.append((rel, False))
        return todo, gone

    def _update_batch(self, root: Path, batch, given: Mapping, known: dict, max_bytes: int,
                      embedder: Embedder, report: UpdateReport) -> None:
        stats: list[tuple[str, int, int, str | None]] = []
        replaced: dict[str, list[chunks_mod.Chunk]] = {}
        for rel, force in batch:
            full = root / rel
            try:
                st = os.stat(full)
                data = given.get(rel) if given else None
                if data is None:
                    data = note_mod.read_bytes(full, max_bytes)
            except FileNotFoundError:
                continue
            except (UnreadableNoteError, OSError) as exc:
                reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
                if not os.access(full, os.R_OK):
                    report.warnings.append(f"{rel}: {reason}; its vectors are kept")
                    continue
                report.warnings.append(f"{rel}: {reason}; not embedded")
                stats.append((rel, st.st_mtime_ns, st.st_size, None))
                replaced[rel] = []
                continue
            report.files += 1
            sha = hashlib.sha256(data).hexdigest()
            stats.append((rel, st.st_mtime_ns, st.st_size, sha))
            old = known.get(rel)
            if not force and old is not None and old[2] == sha:
                continue  # touched, not changed
            try:
                replaced[rel] = chunks_mod.file_chunks(rel, data)
            except UnreadableNoteError as exc:
                report.warnings.append(f"{rel}: {exc.reason}")
                replaced[rel] = []
        texts = {c.sha256: c.text for cs in replaced.values() for c in cs}
        have = self._have(embedder.id, list(texts))
        missing = [s for s in texts if s not in have]
        vecs = embedder.embed([texts[s] for s in missing]) if missing else None
        report.embedded += len(missing)
        report.changed += len(replaced)
        report.chunks += sum(len(cs) for cs in replaced.values())
        report.reused += sum(len(cs) for cs in replaced.values()) - len(missing)
        with _write(self._w):
            if missing:
                self._w.executemany("INSERT OR REPLACE INTO vectors(embedder, sha, vec) VALUES(?, ?, ?)",
                                     ((embedder.id, s, _blob(v)) for s, v in zip(missing, vecs)))
            for rel, cs in replaced.items():
                self._w.execute("DELETE FROM chunks WHERE path=?", (rel,))
                self._w.executemany("INSERT INTO chunks(path, key, sha, type, doc) VALUES(?, ?, ?, ?, ?)",
                                     ((c.path, c.key, c.sha256, c.type, c.doc) for c in cs))
                self._w.execute("INSERT INTO log(path) VALUES(?)", (rel,))
            self._w.executemany("INSERT OR REPLACE INTO files VALUES(?, ?, ?, ?)", stats)

    def _have(self, embedder_id: str, shas: list[str]) -> set[str]:
        have: set[str] = set()
        for group in _groups(shas):
            marks = ",".join("?" * len(group))
            have.update(s for (s,) in self._w.execute(
                f"SELECT sha FROM vectors WHERE embedder=? AND sha IN ({marks})", (embedder_id, *group)))
        return have

    def _delete(self, paths: list[str]) -> None:
        if not paths:
            return
        with _write(self._w):
            for rel in paths:
                self._w.execute("DELETE FROM chunks WHERE path=?", (rel,))
                self._w.execute("DELETE FROM files WHERE path=?", (rel,))
                self._w.execute("INSERT INTO log(path) VALUES(?)", (rel,))

    # -- reading --------------------------------------------------------------

    def _matrix(self, embedder_id: str, dim: int) -> _Matrix:
        """The up-to-date in-memory vectors of *embedder_id*, reloading only what changed."""
        m = self._matrices.get(embedder_id)
        db = self._db
        # Changes only when some other connection (another process, or this one's
        # update) committed: one cheap pragma instead of a transaction per query.
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if m is not None and m.data_version == version:
            return m
        with _read(db):
            last, first = db.execute("SELECT COALESCE(MAX(seq), 0), COALESCE(MIN(seq), 0) FROM log").fetchone()
            if m is not None and m.seq == last:
                m.data_version = version
                return m
            paths: list[str] | None = None
            if m is not None and last > m.seq and first <= m.seq + 1 and m.dead < max(4096, m.n // 4):
                paths = [p for (p,) in db.execute("SELECT DISTINCT path FROM log WHERE seq > ?", (m.seq,))]
                if "" in paths or len(paths) > 5000:  # a reset, or too many: reload it all
                    paths = None
            if paths is None:
                count = db.execute("SELECT COUNT(*) FROM vectors WHERE embedder=?", (embedder_id,)).fetchone()[0]
                m = _Matrix(dim, count)
                self._add_rows(m, db.execute(
                    "SELECT c.path, c.key, c.doc, c.type, v.vec FROM chunks c JOIN vectors v "
                    "ON v.embedder=? AND v.sha=c.sha ORDER BY c.id", (embedder_id,)))
            else:
                for path in paths:
                    m.drop_path(path)
                for group in _groups(paths):
                    marks = ",".join("?" * len(group))
                    self._add_rows(m, db.execute(
                        "SELECT c.path, c.key, c.doc, c.type, v.vec FROM chunks c JOIN vectors v "
                        f"ON v.embedder=? AND v.sha=c.sha WHERE c.path IN ({marks}) ORDER BY c.id",
                        (embedder_id, *group)))
            m.seq = last
        m.data_version = version
        self._matrices[embedder_id] = m
        return m

    @staticmethod
    def _add_rows(m: _Matrix, cursor: sqlite3.Cursor) -> None:
        """Rows of a cursor into the matrix, a few thousand at a time (never every blob at once)."""
        while True:
            rows = cursor.fetchmany(4096)
            if not rows:
                return
            vecs = np.frombuffer(b"".join(r[4] for r in rows), dtype="<f4")
            if vecs.size != len(rows) * m.dim:
                raise VectorStoreError(f"the vector store holds vectors of another size than {m.dim} "
                                       f"for this embedder; delete {DB_NAME} to rebuild it")
            m.add([(r[0], r[1], r[2], r[3]) for r in rows], vecs.reshape(len(rows), m.dim))

    def search(self, embedder: Embedder, query: np.ndarray, limit: int = 20,
               keep: Callable[[str, str], bool] | None = None) -> list[VectorHit]:
        """The *limit* chunks closest to the unit vector *query*, best first.

        *keep(doc, type)* filters chunks before ranking.
        """
        with self._lock:
            m = self._matrix(embedder.id, embedder.dimension)
            if m.n == 0:
                return []
            scores = m.vecs[: m.n] @ np.asarray(query, dtype=np.float32).reshape(-1)
            mask = None if not m.dead else m.alive[: m.n]
            if keep is not None:
                wanted = [code for kind, code in m.kinds.items() if keep(*kind)]
                if len(wanted) < len(m.kinds):
                    kept = np.isin(m.kind[: m.n], wanted)
                    mask = kept if mask is None else mask & kept
            if mask is not None:
                scores[~mask] = -np.inf
            k = min(limit, m.n if mask is None else int(mask.sum()))
            if k <= 0:
                return []
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
            return [VectorHit(*m.row(i), float(scores[i])) for i in top]

    def has(self, embedder_id: str) -> bool:
        """True when any vector of *embedder_id* is stored (one index probe)."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM vectors WHERE embedder=? LIMIT 1",
                                    (embedder_id,)).fetchone() is not None

    def count(self, embedder_id: str) -> int:
        """Chunks that have a vector of *embedder_id* now."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM chunks c JOIN vectors v ON v.embedder=? "
                                    "AND v.sha=c.sha", (embedder_id,)).fetchone()[0]

    def stats(self) -> dict:
        """Notes, chunks, vectors per embedder and bytes on disk."""
        with self._lock:
            db = self._db
            per = dict(db.execute("SELECT embedder, COUNT(*) FROM vectors GROUP BY embedder").fetchall())
            return {
                "path": str(self.path),
                "files": db.execute("SELECT COUNT(*) FROM files").fetchone()[0],
                "chunks": db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0],
                "vectors": per,
                "size_bytes": self.size_bytes(),
            }

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.dir.glob(DB_NAME + "*") if p.is_file())

    def drop(self, embedder_id: str) -> int:
        """Forget every vector of *embedder_id* (an old model); returns how many."""
        with self._lock, _write(self._db):
            n = self._db.execute("DELETE FROM vectors WHERE embedder=?", (embedder_id,)).rowcount
            self._db.execute("INSERT INTO log(path) VALUES('')")
        self._matrices.pop(embedder_id, None)
        return n


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return row[0] if row else None


def update(vault, changed_paths, embedder: Embedder, progress: ProgressFn | None = None,
           wait: bool = True) -> UpdateReport:
    """`VectorStore.for_vault(vault).update(...)`: see there."""
    return VectorStore.for_vault(vault).update(vault, changed_paths, embedder, progress, wait)
