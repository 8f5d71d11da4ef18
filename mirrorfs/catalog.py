"""Where the index lives on disk, its catalog of files, and the stat scan.

Layout, in the per-device state folder (never in the vault)::

    <state>/index/CURRENT          name of the live generation (replaced atomically)
    <state>/index/write.lock       one writer at a time, across processes
    <state>/index/gen-<hex>/       Whoosh segments + catalog.pickle

The *catalog* is a compact table of every note file the index holds, one row
per file: (mtime_ns, size, inode, sha256, info), where info is a summary of
its front matter (`mirrorfs.documents`). A scan stats the vault and compares
with it; only what differs is read.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import filelock

from mirrorfs import ignore, storage
from mirrorfs.conflict_names import (
    conflict_original,  # sync conflict copies are not notes
)
from mirrorfs.errors import SearchIndexError

log = logging.getLogger(__name__)

CATALOG_FILE = "catalog.pickle"


class Layout:
    """The paths of one vault's index in its state folder."""

    def __init__(self, state_dir: str | os.PathLike):
        self.dir = Path(state_dir) / "index"
        self.current = self.dir / "CURRENT"
        self.lock_path = self.dir / "write.lock"

    def gen(self, name: str) -> Path:
        return self.dir / name

    def current_name(self) -> str | None:
        try:
            name = self.current.read_text("ascii").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        return name if re.fullmatch(r"gen-[0-9a-f]{16}", name) else None

    def lock(self) -> filelock.FileLock:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return filelock.FileLock(str(self.lock_path))


# A generation's catalog is a pickled base plus a journal of the rows changed
# since (one pickled record per commit), so that one changed note costs one
# small append, not a rewrite of every row. The journal starts with the epoch
# of the base it extends: a journal left beside a newer base is ignored.
JOURNAL_FILE = "catalog.journal"
# The journal is folded into a new base when it grows past the base's size (and 1 MiB).
COMPACT_BYTES = 1 << 20

# Catalogs as this process last loaded or wrote them, by base path:
# (stat key of the base, catalog, journal bytes read).
_CACHE: dict[str, tuple[tuple, dict, int]] = {}


def _key(st: os.stat_result) -> tuple:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _replay(journal: Path, catalog: dict, start: int) -> tuple[dict, int]:
    """*catalog* with the journal records from byte *start* on; (catalog, bytes read)."""
    try:
        f = open(journal, "rb")
    except FileNotFoundError:
        return catalog, 0
    with f:
        files = None
        end = start
        f.seek(start)
        while True:
            try:
                record = pickle.load(f)
            except EOFError:
                break
            except Exception:  # a record being written, or torn by a crash: the end for now
                break
            if end == 0:  # the header: the epoch of the base this journal extends
                if record != ("epoch", catalog.get("epoch")):
                    return catalog, 0
            else:
                updated, rows, deleted = record
                if files is None:
                    files = dict(catalog["files"])
                for relpath in deleted:
                    files.pop(relpath, None)
                files.update(rows)
                catalog = dict(catalog, updated=updated)
            end = f.tell()
    if files is not None:
        catalog = dict(catalog, files=files)
    return catalog, end


def load(gen_dir: Path) -> dict | None:
    """The catalog of a generation, or None when missing or unreadable."""
    path = gen_dir / CATALOG_FILE
    try:
        st = path.stat()
    except OSError:
        return None
    journal = gen_dir / JOURNAL_FILE
    try:
        journal_size = journal.stat().st_size
    except OSError:
        journal_size = 0
    cached = _CACHE.get(str(path))
    if cached and cached[0] == _key(st) and cached[2] <= journal_size:
        if cached[2] == journal_size:
            return cached[1]
        catalog, end = _replay(journal, cached[1], cached[2])  # only what was appended since
        if end:
            _CACHE[str(path)] = (cached[0], catalog, end)
            return catalog
    try:
        with open(path, "rb") as f:
            catalog = pickle.load(f)
    except Exception as exc:  # truncated, garbage, or from an incompatible version
        log.warning("index catalog %s unreadable (%s); the index will be rebuilt", path, exc)
        return None
    if not isinstance(catalog, dict) or not isinstance(catalog.get("files"), dict):
        return None
    catalog, end = _replay(journal, catalog, 0)
    _CACHE[str(path)] = (_key(st), catalog, end)
    return catalog


def save(gen_dir: Path, catalog: dict) -> dict:
    """Write a generation's whole catalog as a new base (atomically; no fsync: it
    can be rebuilt) and drop the journal; returns the catalog as saved."""
    path = gen_dir / CATALOG_FILE
    catalog = dict(catalog, epoch=secrets.token_hex(8))
    storage.atomic_write(path, pickle.dumps(catalog, protocol=pickle.HIGHEST_PROTOCOL), sync=False)
    try:
        (gen_dir / JOURNAL_FILE).unlink()
    except FileNotFoundError:
        pass
    _CACHE[str(path)] = (_key(path.stat()), catalog, 0)  # what a reload would give: keep it
    return catalog


def update(gen_dir: Path, catalog: dict, rows: dict[str, tuple], deleted: list[str],
           compact_bytes: int = COMPACT_BYTES) -> dict:
    """*catalog* (as loaded, under the writer lock) with *rows* replaced and
    *deleted* removed, written as one journal record (or, once the journal is
    over *compact_bytes* and the base's size, as a new base); returns the new catalog."""
    path = gen_dir / CATALOG_FILE
    files = dict(catalog["files"])
    for relpath in deleted:
        files.pop(relpath, None)
    files.update(rows)
    new = dict(catalog, files=files, updated=time.time())
    cached = _CACHE.get(str(path))
    if cached is None or cached[1] is not catalog or cached[2] > max(compact_bytes, cached[0][1]):
        return save(gen_dir, new)
    end = cached[2]
    with open(gen_dir / JOURNAL_FILE, "r+b" if end else "wb") as f:
        f.seek(end)
        if not end:
            pickle.dump(("epoch", catalog.get("epoch")), f, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump((new["updated"], rows, list(deleted)), f, protocol=pickle.HIGHEST_PROTOCOL)
        f.truncate()  # whatever a crash left after the last good record
        end = f.tell()
    _CACHE[str(path)] = (cached[0], new, end)
    return new


def forget(gen_dir: Path) -> None:
    """Drop a removed generation's catalog from the cache."""
    _CACHE.pop(str(gen_dir / CATALOG_FILE), None)


@dataclass
class Scan:
    files: dict[str, tuple]  # relpath -> (mtime_ns, size, inode)
    unreadable: list[str]  # folders (relative, POSIX) that could not be listed
    denied: set[str]  # files that could not be stat'ed
    conflicts: list[str]

    def covers(self, relpath: str) -> bool:
        """False when *relpath* is inside a folder we could not list."""
        return not any(relpath.startswith(d + "/") or d == "" for d in self.unreadable)

    def differs(self, files: dict) -> bool:
        """True when the scan differs from the catalog's *files* (anything to do)."""
        for relpath, st in self.files.items():
            rec = files.get(relpath)
            if rec is None or rec[0] != st[0] or rec[1] != st[1] or rec[2] != st[2]:
                return True
        if len(files) != len(self.files):
            for relpath in files:
                if relpath not in self.files and relpath not in self.denied and self.covers(relpath):
                    return True
        return False

    def warnings(self) -> list[str]:
        w = [f"cannot read folder {d or '.'}: its notes are kept in the index as they were"
             for d in self.unreadable]
        w += [f"cannot read {p}: kept in the index as it was" for p in sorted(self.denied)]
        return w


def scan(root: str | os.PathLike, known: dict | None = None) -> Scan:
    """Stat every note of the vault. An unlistable vault root raises SearchIndexError.

    The same files as `ignore.iter_note_paths` (same rules: tool folders and
    temporaries skipped, symlinked folders not followed), walked with
    os.scandir and plain strings: this runs before every query. Paths in
    *known* (the catalog) passed the name rules before and skip them.
    """
    known = known or {}
    root = os.fspath(root)
    files: dict[str, tuple] = {}
    denied: set[str] = set()
    conflicts: list[str] = []
    unreadable: list[str] = []
    try:
        for relpath, entry in ignore.walk(root, on_error=lambda rel, exc: unreadable.append(rel), known=known):
            if relpath not in known and conflict_original(relpath) is not None:
                conflicts.append(relpath)
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            except OSError:
                denied.add(relpath)
                continue
            files[relpath] = (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError as exc:
        raise SearchIndexError(f"cannot read the vault folder {root}: {exc.strerror or exc}") from None
    return Scan(files, unreadable, denied, conflicts)
