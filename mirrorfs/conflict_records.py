"""Open conflicts, recorded in the vault so every device sees them.

A conflict copy that waits for a person gets a small JSON file,
`.mirrorfs/conflicts/<16 hex>.json` (the hex: sha256 of the copy's path), in
the synced folder: whichever device noticed it, `mirrorfs conflicts list` and
the bridge show it on every device, and settling it on one device removes the
file everywhere. The format is in docs/format.md ("Open conflicts").

A record only says why the copy waits; the copy itself (or the note holding
git conflict markers) is the conflict. So a record whose copy is not on this
device is not shown (the copy may still be on its way), and is removed once it
is older than `STALE_SECONDS`. Two devices that record the same copy at once
make the sync tool keep both files (a conflict copy of a record): both are
read, and settling removes both.

Writes go through the one write path (`storage.Store`); these functions take
the vault folder and its store rather than a `Vault`, so that the git merge
driver can record a conflict without opening one.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

from mirrorfs import storage
from mirrorfs.errors import ConflictError, MirrorfsError
from mirrorfs.layout import CONFLICTS_DIR

SUFFIX = ".json"
# A record whose copy is gone from this device for this long is settled: removed.
STALE_SECONDS = 10 * 60
# What a record may say about a copy, besides the merge statuses (kept_both, needs_person).
PENDING = "pending"  # never tried (listed from the copy alone, never written)
MARKERS = "markers"  # a note holding git conflict markers (listed from the note, never written)


@dataclass
class OpenConflict:
    """A conflict waiting for a person."""

    copy: str  # the conflict copy (for a note with git markers: the note itself)
    original: str
    tool: str | None
    device: str | None
    time: str | None
    status: str  # kept_both | needs_person | pending | markers
    conflict: str | None
    reason: str
    detected: str  # when it was recorded ("" when never recorded)
    detected_by: str = ""  # the instance that recorded it
    copy_sha256: str = ""  # the copy's hash when it was recorded

    def to_dict(self) -> dict[str, Any]:
        # "path" (the copy) is what bridge overviews show for each conflict.
        return {"path": self.copy, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "OpenConflict":
        names = {f.name for f in fields(cls)}
        values = {k: data.get(k) for k in names}
        for key in ("reason", "detected", "detected_by", "copy_sha256"):
            values[key] = str(values.get(key) or "")
        return cls(**values)


def key(copy: str) -> str:
    """The file name (without suffix) of the record of *copy*: 16 hex of sha256 of its path."""
    return hashlib.sha256(copy.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def folder(root: str | Path) -> Path:
    return Path(root) / CONFLICTS_DIR


def _files(root: str | Path) -> list[Path]:
    where = folder(root)
    if not where.is_dir():
        return []
    # Also a sync tool's conflict copy of a record (`<key>.sync-conflict-....json`).
    return sorted(p for p in where.iterdir() if p.name.endswith(SUFFIX) and p.is_file())


def _read(path: Path) -> OpenConflict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # half-synced or hand-broken: the copy is still listed from itself
    if not isinstance(data, dict) or not isinstance(data.get("copy"), str) or not data.get("original"):
        return None
    return OpenConflict.from_dict(data)


def load(root: str | Path) -> dict[str, tuple[OpenConflict, list[Path]]]:
    """Every recorded conflict by copy: (the latest record, every file recording it)."""
    found: dict[str, tuple[OpenConflict, list[Path]]] = {}
    for path in _files(root):
        entry = _read(path)
        if entry is None:
            continue
        if entry.copy in found:
            best, paths = found[entry.copy]
            paths.append(path)
            if entry.detected > best.detected:
                found[entry.copy] = (entry, paths)
        else:
            found[entry.copy] = (entry, [path])
    return found


def render(entry: OpenConflict) -> bytes:
    """The record's bytes: sorted keys, so the same facts always give the same bytes."""
    return (json.dumps(asdict(entry), ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode("utf-8")


def _same_facts(a: OpenConflict, b: OpenConflict) -> bool:
    """The same copy, in the same state: the first record's words (its reason, who noticed) stand."""
    return (a.copy, a.original, a.status, a.copy_sha256) == (b.copy, b.original, b.status, b.copy_sha256)


def record(store: storage.Store, root: str | Path, entry: OpenConflict) -> bool:
    """Record *entry* unless a record of the same copy in the same state is there; True when written.

    A record is rewritten only when the copy changed or its status did, so
    devices that look at a conflict again do not churn the synced file; a
    rewritten record keeps its first `detected` time.
    """
    path = folder(root) / f"{key(entry.copy)}{SUFFIX}"
    current = storage.read(path)
    old = _read(path) if current.exists else None
    if old is not None:
        if _same_facts(old, entry):
            return False
        entry = OpenConflict(**{**asdict(entry), "detected": old.detected or entry.detected})
    try:
        return store.write(path, render(entry), current.sha)
    except ConflictError:
        return False  # another writer recorded it meanwhile: its record stands


def forget(store: storage.Store, root: str | Path, copy: str) -> None:
    """Remove every record of *copy* (settled, merged or gone)."""
    found = load(root).get(copy)
    for path in found[1] if found else []:
        snap = storage.read(path)
        if snap.exists:
            try:
                store.delete(path, snap.sha)
            except (ConflictError, MirrorfsError):
                pass  # changed or removed meanwhile: the next look decides again


def prune(store: storage.Store, root: str | Path, present: Callable[[str], bool],
          now: float | None = None) -> dict[str, OpenConflict]:
    """The records whose copy is on this device; records of copies gone for STALE_SECONDS are removed."""
    now = time.time() if now is None else now
    kept: dict[str, OpenConflict] = {}
    for copy, (entry, paths) in load(root).items():
        if present(copy):
            kept[copy] = entry
            continue
        try:
            age = now - max(p.stat().st_mtime for p in paths)
        except OSError:
            continue
        if age > STALE_SECONDS:
            forget(store, root, copy)
    return kept
