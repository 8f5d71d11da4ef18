"""The vault's trash: where forgotten notes and text a merge replaced wait for a person.

An entry is `.mirrorfs/trash/<UTC stamp>[-<instance>]/<original path>`: the
stamp orders entries and keeps two entries of one path apart; the instance,
when given, names who removed the note (a forget), which reflections report.
Text a merge replaced carries no instance: nothing was removed by anyone.
Obsidian's own trash (`.trash/<file name>`) is only read, to tell that a
person removed a note. Every write goes through the vault's one write path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from mirrorfs import storage
from mirrorfs.errors import InvalidValueError, NotFoundError
from mirrorfs.layout import TRASH_DIR, trash_entry, trash_entry_instance

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

# Where Obsidian moves a note deleted in the app ("move to Obsidian trash").
OBSIDIAN_TRASH = ".trash"
entry_name = trash_entry
entry_instance = trash_entry_instance


def _target(relpath: str, instance: str | None) -> str:
    return f"{TRASH_DIR}/{entry_name(instance)}/{relpath}"


def put(vault: "Vault", relpath: str, data: bytes, instance: str | None = None) -> str:
    """Keep a copy of *data* (bytes *relpath* held) in the trash; the entry's vault-relative path."""
    target = _target(relpath, instance)
    vault.store.create(vault.root / target, data)
    return target


def move(vault: "Vault", relpath: str, sha: str, instance: str | None = None) -> str:
    """Move the file at *relpath* (still hashing to *sha*) to the trash; the entry's vault-relative path."""
    target = _target(relpath, instance)
    vault.store.move(vault.root / relpath, vault.root / target, sha)
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
