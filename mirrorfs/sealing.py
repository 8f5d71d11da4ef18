"""Secrets in the vault's notes: seal what a person marked, reveal a note, list what failed per file.

The functions take an opened :class:`mirrorfs.vault.Vault` (unlocked where they
need the key) and write only through its one write path. A failure in one
note never stops the others: it comes back as a :class:`FileError` with the
note's path in front of a message that holds no plaintext.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from mirrorfs import ignore, storage
from mirrorfs import note as notes
from mirrorfs.errors import CryptoError, InvalidValueError, MirrorfsError, NotFoundError
from mirrorfs.keys import has_key
from mirrorfs.secret_blocks import has_unsealed
from mirrorfs.sections import with_path


@dataclass(frozen=True)
class FileError:
    """One note that could not be processed: its vault-relative path and the error (path included)."""

    path: str
    error: MirrorfsError

    def __str__(self) -> str:
        return str(self.error)

    def to_dict(self) -> dict:
        return {"path": self.path, "error": str(self.error)}


@dataclass
class SealReport:
    """What :func:`seal_notes` did: the notes it sealed and the ones that failed."""

    sealed: list[str] = field(default_factory=list)
    failed: list[FileError] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"sealed": self.sealed, "failed": [f.to_dict() for f in self.failed]}


def located(exc: MirrorfsError, rel: str) -> MirrorfsError:
    """*exc* naming the note *rel*: crypto errors get the path in front (they name only a section)."""
    return with_path(exc, rel) if isinstance(exc, CryptoError) else exc


def note_paths(vault, paths: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Absolute paths of *paths* (checked to be inside the vault), or of every note of the vault."""
    paths = list(paths)
    if paths:
        return [vault.resolve(p) for p in paths]
    return [vault.root / rel for rel in ignore.iter_note_paths(vault.root)]


def read_text(vault, full: Path) -> tuple[storage.Snapshot, str, str]:
    """(snapshot for a compare-and-swap write, BOM, decoded text) of one note; NotFoundError if absent."""
    snap = storage.read(full)
    if not snap.exists:
        raise NotFoundError(f"no note at {vault.relpath(full)}")
    bom, text = notes.decode(snap.data, vault.relpath(full))
    return snap, bom, text


def seal_note(vault, path: str | os.PathLike) -> bool:
    """Seal the ```secret blocks of one note through the write path; True if the note changed.

    A note without blocks is not touched. Raises LockedError when it has some and
    the vault is locked, and crypto errors with the note's path in front.
    """
    full = vault.resolve(path)
    rel = vault.relpath(full)
    before = storage.read(full)
    if not before.exists:
        raise NotFoundError(f"no note at {rel}")
    if not has_unsealed(notes.decode(before.data, rel)[1]):
        return False
    try:
        after = vault.edit(full, lambda n: n.with_body(vault.seal_text(n.body)))
    except CryptoError as exc:
        raise located(exc, rel) from None
    return after.render() != before.data


def seal_notes(vault, paths: Iterable[str | os.PathLike] = ()) -> SealReport:
    """Seal every note of *paths* (default: the whole vault), one note at a time."""
    report = SealReport()
    for full in note_paths(vault, paths):
        rel = vault.relpath(full)
        try:
            if seal_note(vault, full):
                report.sealed.append(rel)
        except MirrorfsError as exc:
            report.failed.append(FileError(rel, exc))
    return report


def reveal(vault, path: str | os.PathLike) -> str:
    """The text of one note with its sections decrypted, in memory only (nothing is written).

    Needs the vault unlocked (LockedError); a section that does not open raises
    its crypto error with the note's path in front.
    """
    vault.keyring
    full = vault.resolve(path)
    rel = vault.relpath(full)
    _, _, text = read_text(vault, full)
    try:
        return vault.readable(text, errors="raise")
    except CryptoError as exc:
        raise located(exc, rel) from None


def refuse_second_key(vault) -> None:
    """InvalidValueError, nothing written, when the vault has a key already (`mirrorfs rekey` changes it)."""
    if has_key(vault.config):
        raise InvalidValueError("this vault already has a passphrase; nothing was changed (`mirrorfs rekey` changes it)")


def init_key(vault, passphrase: str) -> None:
    """Make *passphrase* the key of a vault that has none yet, and leave the vault unlocked.

    This (or the first secret written) is the only way a vault gets its key: a
    read never sets one. See :func:`refuse_second_key` for a vault that has one.
    """
    refuse_second_key(vault)
    vault.unlock(passphrase, create=True)
