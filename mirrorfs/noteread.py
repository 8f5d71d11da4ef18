"""Looking at notes on disk the way the watcher trusts them.

A folder is listed with each note's stat signature (the walker's rules decide
what is a note). A note is read whole, twice: a file caught mid-write reads
short, empty or different at the next look, so a read is taken as the note's
content only when two looks a moment apart agree on the bytes and the stat
signature, and each look saw the whole file.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from typing import Callable, Iterable, NamedTuple

from mirrorfs.ignore import is_note_path, walk
from mirrorfs.signatures import Signature, signature

PRESENT = "present"
MISSING = "missing"
ERROR = "error"
UNSTABLE = "unstable"


class Read(NamedTuple):
    state: str  # PRESENT | MISSING | ERROR | UNSTABLE
    content: bytes | None = None
    sha256: str | None = None
    sig: Signature | None = None
    # The file's size and signature did not change while it was read.
    consistent: bool = False
    error: OSError | None = None

    def accepted(self) -> Read:
        """This look, taken as the note's content although it never held still."""
        return Read(PRESENT, self.content, self.sha256, self.sig, True)


def list_notes(root: str, folder: str, recursive: bool) -> tuple[dict[str, Signature | None], list[tuple[str, OSError]]]:
    """The notes in *folder* (below it too when *recursive*) with their stat signatures.

    Paths are relative to *root*; a signature is None when the note vanished
    between listing and stat. Folders that could not be listed come back as
    (folder, error), *folder* itself included; a folder removed while we
    looked is simply not found.
    """
    top = os.path.join(root, folder) if folder else root
    base = folder + "/" if folder else ""
    errors: list[tuple[str, OSError]] = []

    def on_error(where: str, exc: OSError) -> None:
        if not (isinstance(exc, (FileNotFoundError, NotADirectoryError)) and where):
            errors.append((where, exc))

    found: dict[str, Signature | None] = {}
    try:
        for rel, entry in walk(top, on_error=lambda sub, exc: on_error(base + sub, exc), recursive=recursive):
            try:
                found[base + rel] = signature(entry.stat())
            except OSError:
                found[base + rel] = None
    except OSError as exc:
        on_error(folder, exc)
    return found, errors


def read_note(root: str, rel: str) -> Read:
    """One look at the note *rel* under *root*; anything but a regular note file is missing."""
    if not is_note_path(rel):  # e.g. a seeded path that the ignore rules now exclude
        return Read(MISSING)
    path = os.path.join(root, rel)
    try:
        before = os.stat(path)
        if not stat.S_ISREG(before.st_mode):
            return Read(MISSING)
        with open(path, "rb") as f:
            content = f.read()
            after = os.fstat(f.fileno())
    except (FileNotFoundError, NotADirectoryError):
        return Read(MISSING)
    except OSError as exc:
        return Read(ERROR, error=exc)
    sig = signature(after)
    consistent = signature(before) == sig and len(content) == after.st_size
    return Read(PRESENT, content, hashlib.sha256(content).hexdigest(), sig, consistent)


def read_settled(root: str, rels: Iterable[str], gap: float,
                 sleep: Callable[[float], None] = time.sleep) -> dict[str, Read]:
    """Read each path twice, *gap* seconds apart; reads that differ come back UNSTABLE."""
    first = {rel: read_note(root, rel) for rel in rels}
    if any(r.state == PRESENT for r in first.values()):
        sleep(gap)
    out: dict[str, Read] = {}
    for rel, r1 in first.items():
        if r1.state != PRESENT:
            # A path that vanished between two looks is re-read once more so that
            # a delete racing a create (Syncthing) is judged on the later look.
            out[rel] = r1 if r1.state == ERROR else read_note(root, rel)
            if out[rel].state == PRESENT:
                out[rel] = Read(UNSTABLE)
            continue
        r2 = read_note(root, rel)
        if r2.state == PRESENT and r1.consistent and r2.consistent and \
                r1.sig == r2.sig and r1.sha256 == r2.sha256:
            out[rel] = r2
        else:
            out[rel] = Read(UNSTABLE, r2.content, r2.sha256, r2.sig, r2.consistent, r2.error)
    return out
