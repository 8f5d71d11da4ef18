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
from dataclasses import dataclass
from pathlib import Path

import filelock

from mirrorfs import ignore, storage
from mirrorfs.conflict_names import conflict_original  # sync conflict copies are not notes
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


# Catalogs as last loaded or saved by this process, by path, with the stat they had.
_CACHE: dict[str, tuple[tuple, dict]] = {}


def load(gen_dir: Path) -> dict | None:
    """The catalog of a generation, or None when missing or unreadable."""
    path = gen_dir / CATALOG_FILE
    try:
        st = path.stat()
    except OSError:
        return None
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _CACHE.get(str(path))
    if cached and cached[0] == key:
        return cached[1]
    try:
        with open(path, "rb") as f:
            catalog = pickle.load(f)
    except Exception as exc:  # truncated, garbage, or from an incompatible version
        log.warning("index catalog %s unreadable (%s); the index will be rebuilt", path, exc)
        return None
    if not isinstance(catalog, dict) or not isinstance(catalog.get("files"), dict):
        return None
    _CACHE[str(path)] = (key, catalog)
    return catalog


def save(gen_dir: Path, catalog: dict) -> None:
    """Replace a generation's catalog (atomically; no fsync: it can be rebuilt)."""
    path = gen_dir / CATALOG_FILE
    storage.atomic_write(path, pickle.dumps(catalog, protocol=pickle.HIGHEST_PROTOCOL), sync=False)
    st = path.stat()  # what we wrote is what a reload would give: keep it
    _CACHE[str(path)] = ((st.st_mtime_ns, st.st_size, st.st_ino), catalog)


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
