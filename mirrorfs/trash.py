"""The vault's trash: where forgotten notes and text a merge replaced wait for a person.

An entry is `.mirrorfs/trash/<UTC stamp>[-<instance>]/<original path>`: the
stamp orders entries and keeps two entries of one path apart; the instance,
when given, names who removed the note (a forget), which reflections report.
Text a merge replaced carries no instance: nothing was removed by anyone.
A merge of a conflict copy names its entry after the copy instead,
`<stamp>.<12 hex>` (`merge_entry`): every device that merges the same copy
fills the same entry with the same bytes, so a sync tool carries one entry,
not one per device.
Obsidian's own trash (`.trash/<file name>`) is only read, to tell that a
person removed a note. Every write goes through the vault's one write path.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from mirrorfs import storage
from mirrorfs.errors import ConflictError, InvalidValueError, NotFoundError
from mirrorfs.layout import TRASH_DIR, trash_entry, trash_entry_instance

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

# Where Obsidian moves a note deleted in the app ("move to Obsidian trash").
OBSIDIAN_TRASH = ".trash"
entry_name = trash_entry
entry_instance = trash_entry_instance


def merge_entry(copy_relpath: str, copy_sha: str, when: dt.datetime | None = None) -> str:
    """The entry name for what merging the conflict copy *copy_relpath* (hashing to *copy_sha*) replaces.

    Made of the copy alone, so two devices merging the same copy name the same
    entry: the copy's own time (its name's, as the sync tool wrote it) when
    known, then 12 hex of sha256(copy path, copy hash).
    """
    key = hashlib.sha256(f"{copy_relpath}\0{copy_sha}".encode("utf-8", "surrogatepass")).hexdigest()[:12]
    stamp = when.strftime("%Y%m%dT%H%M%S") if when is not None else "00000000T000000"
    return f"{stamp}.{key}"


def _target(relpath: str, instance: str | None, entry: str | None) -> str:
    return f"{TRASH_DIR}/{entry or entry_name(instance)}/{relpath}"


def _same_bytes(path: Path, data: bytes | None) -> bool:
    return data is not None and storage.read(path).data == data


def put(vault: "Vault", relpath: str, data: bytes, instance: str | None = None, entry: str | None = None) -> str:
    """Keep a copy of *data* (bytes *relpath* held) in the trash; the entry's vault-relative path.

    With a fixed *entry* (`merge_entry`) an entry that already holds exactly
    *data* (another device put it there) is the one.
    """
    target = _target(relpath, instance, entry)
    try:
        vault.store.create(vault.root / target, data)
    except ConflictError:
        if entry is None or not _same_bytes(vault.root / target, data):
            raise
    return target


def move(vault: "Vault", relpath: str, sha: str, instance: str | None = None, entry: str | None = None) -> str:
    """Move the file at *relpath* (still hashing to *sha*) to the trash; the entry's vault-relative path.

    With a fixed *entry* that already holds the same bytes, the file is only removed.
    """
    target = _target(relpath, instance, entry)
    full = vault.root / target
    try:
        vault.store.move(vault.root / relpath, full, sha)
    except ConflictError:
        if entry is None or storage.read(full).sha != sha:
            raise
        vault.store.delete(vault.root / relpath, sha)  # the entry already holds these bytes
    return target


def restore(vault: "Vault", trashed: str | os.PathLike) -> Path:
    """Put a trashed note back where it was; its absolute path."""
    full = vault.resolve(trashed)
    try:
        rel = full.relative_to(vault.root / TRASH_DIR)
    except ValueError:
        raise InvalidValueError(f"{trashed} is not in the trash ({TRASH_DIR})") from None
    original = vault.root / Path(*rel.parts[1:])
    snap = storage.read(full)
    if not snap.exists:
        raise NotFoundError(f"nothing in the trash at {trashed}")
    vault.store.move(full, original, snap.sha)
    return original


def entries(vault: "Vault") -> list[Path]:
    """Every note in the trash, by path."""
    root = vault.root / TRASH_DIR
    return sorted(p for p in root.rglob("*.md")) if root.is_dir() else []


def newest_entry(vault: "Vault", relpath: str) -> str | None:
    """The folder name of the newest trash entry holding *relpath*, or None."""
    trash = vault.root / TRASH_DIR
    latest: str | None = None
    if trash.is_dir():
        for entry in os.scandir(trash):
            if entry.is_dir() and os.path.exists(os.path.join(entry.path, relpath)):
                latest = entry.name if latest is None or entry.name > latest else latest
    return latest


def in_obsidian_trash(vault: "Vault", relpath: str) -> bool:
    """True when Obsidian's `.trash/` holds a file of *relpath*'s name (a person deleted it in the app)."""
    return (vault.root / OBSIDIAN_TRASH / relpath.rsplit("/", 1)[-1]).exists()
