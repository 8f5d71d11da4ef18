"""What is wrong in a vault's notes, as a list a person (or a script) can act on.

:func:`diagnose` reads every note and changes nothing: unsealed ```secret
blocks, damaged or weak encrypted sections, front matter that does not parse,
unreadable files and sync conflict copies waiting to be merged. No message
holds plaintext.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from mirrorfs import ignore, storage
from mirrorfs import note as notes
from mirrorfs.conflict_names import conflict_original
from mirrorfs.errors import CryptoError, MirrorfsError
from mirrorfs.secret_blocks import has_unsealed
from mirrorfs.sections import find_sections


@dataclass(frozen=True)
class Problem:
    """One finding: which check, which note (vault-relative), what to do about it.

    ``check`` is one of unreadable, unparseable, conflict, unsealed, damaged, weak, link, temp.
    """

    check: str
    path: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.check}: {self.path}: {self.message}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def diagnose(vault) -> list[Problem]:
    """Problems in the notes of *vault*, in walk order (a list; empty when all is well).

    Works on a locked vault: nothing needs decrypting to find these.
    """
    problems: list[Problem] = []

    def unlistable(rel: str, exc: OSError) -> None:
        problems.append(Problem("unreadable", rel, f"cannot list this folder: {exc.strerror or exc}"))

    def escaping(rel: str) -> None:
        problems.append(Problem("link", rel, (
            "a symbolic link to a file outside the vault: mirrorfs never opens, indexes or shows it; "
            "remove the link or copy the file into the vault")))

    try:
        found = list(ignore.walk(vault.root, on_error=unlistable, on_escape=escaping))
    except OSError as exc:
        return [Problem("unreadable", ".", f"cannot list the vault folder: {exc.strerror or exc}")]
    for temp in storage.stale_temp_files(vault.root):
        age = (time.time() - temp.lstat().st_mtime) / 60
        problems.append(Problem("temp", temp.relative_to(vault.root).as_posix(), (
            f"a temp file a killed writer left {age:.0f} min ago (a copy of a note being written); "
            "`mirrorfs watch` removes these, or delete it")))
    for rel, _ in found:
        original = conflict_original(rel)
        if original is not None:
            problems.append(Problem("conflict", rel, f"conflict copy of {original} waiting (`mirrorfs conflicts`)"))
        try:
            note = notes.read_note(vault.root / rel)
        except MirrorfsError as exc:
            problems.append(Problem("unreadable", rel, str(exc)))
            continue
        if note.error:
            problems.append(Problem("unparseable", rel, f"cannot parse front matter: {note.error}"))
        text = note.text
        if has_unsealed(text):
            problems.append(Problem("unsealed", rel, (
                "holds a ```secret block in plaintext: it touched the disk when a person saved it; "
                "`mirrorfs seal` encrypts it (sync tools or backups may still hold the plaintext)")))
        try:
            sections = find_sections(text)
        except CryptoError as exc:
            problems.append(Problem("damaged", rel, str(exc)))
            continue
        weak = sum(1 for s in sections if s.weak)
        if weak:
            problems.append(Problem("weak", rel, (
                f"{_plural(weak, 'section')} in an old, weak Meld form; `mirrorfs rekey` upgrades them")))
    return problems
