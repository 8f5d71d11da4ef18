"""Move pairing: which vanished note a new path is.

Three sources of evidence, strongest first: a rename event naming both paths
(a *hint*, confirmed only once the destination is there and the source is
gone), a folder rename (every known note below moves along), and content (a
new path whose sha256 is that of a known note no longer on disk). A move whose
halves are paired is reported as one change, so the index and reflections keep
the note's history instead of seeing a delete and an unrelated add.

Pure: no watchdog, no threads, no file I/O. Whether a path is gone is asked of
a callable the caller injects. The caller serialises access.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Collection, Container, Iterable

from mirrorfs.ignore import is_note_path

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# A content match looks at this many known paths of the same hash at most.
MAX_TWIN_CANDIDATES = 8


class MoveHints:
    """Renames seen in events but not yet confirmed: destination -> source, and back."""

    def __init__(self) -> None:
        self._source: dict[str, str] = {}  # destination -> source
        self._destination: dict[str, str] = {}  # source -> destination

    def __contains__(self, dest: object) -> bool:
        return dest in self._source

    def __len__(self) -> int:
        return len(self._source)

    def source(self, dest: str) -> str | None:
        return self._source.get(dest)

    def destination(self, src: str) -> str | None:
        """Where *src* was renamed to, while that is unconfirmed."""
        return self._destination.get(src)

    def add(self, dest: str, src: str) -> str | None:
        """Record that *src* was renamed to *dest*.

        A move of a move keeps the first source; a rename back onto the first
        source is no move at all. Returns the source of an earlier hint onto
        *dest* that this one displaced: it must now be judged on its own.
        """
        origin = self._source.pop(src, None)
        if origin is not None:
            self._destination.pop(origin, None)
            src = origin
        if src == dest:
            return None
        displaced = self._source.get(dest)
        if displaced is not None and displaced != src:
            self._destination.pop(displaced, None)
        else:
            displaced = None
        stale = self._destination.get(src)
        if stale is not None and stale != dest:
            self._source.pop(stale, None)
        self._source[dest] = src
        self._destination[src] = dest
        return displaced

    def drop(self, dest: str) -> str | None:
        """Forget the hint onto *dest*; returns its source."""
        src = self._source.pop(dest, None)
        if src is not None and self._destination.get(src) == dest:
            del self._destination[src]
        return src


def pair_hinted(
    arrivals: Iterable[tuple[str, bool]],
    hints: MoveHints,
    known: Container[str],
    gone: Callable[[str], bool],
) -> tuple[list[tuple[str, str]], list[str]]:
    """Confirm the hints onto paths just read.

    *arrivals* are (path, present now) in batch order. A hint is a move when
    its destination is present, its source was a known note and *gone(source)*
    says it is no longer there. Every hint looked at is dropped. Returns the
    moves as (destination, source) and the sources of unconfirmed hints (to be
    judged on their own).
    """
    moves: list[tuple[str, str]] = []
    released: list[str] = []
    for dest, present in arrivals:
        src = hints.drop(dest)
        if src is None:
            continue
        if present and src in known and gone(src):
            moves.append((dest, src))
        else:
            released.append(src)
    return moves, released


def twin(
    sha256: str,
    candidates: Collection[str],
    taken: Container[str],
    gone: Callable[[str], bool],
) -> str | None:
    """The source of a move that no event paired: a known note with this content that is gone.

    *candidates* are the known paths with *sha256*; the first gone one in path
    order wins, so equal twins pair the same way every time. Paths in *taken*
    are already the source of another move. Empty notes are all alike: pairing
    them would be a guess, so they never pair.
    """
    if sha256 == EMPTY_SHA256:
        return None
    for rel in sorted(candidates)[:MAX_TWIN_CANDIDATES]:
        if rel not in taken and gone(rel):
            return rel
    return None


def folder_moved(src: str, dest: str, known: Iterable[str]) -> list[tuple[str, str | None]]:
    """The known notes a rename of folder *src* to *dest* carried along.

    Returns (old path, new path) for each known note below *src*; the new path
    is None when the new name is no note (e.g. moved into a tool folder).
    """
    prefix = src + "/"
    out: list[tuple[str, str | None]] = []
    for rel in [r for r in known if r.startswith(prefix)]:
        new = dest + rel[len(src):]
        out.append((rel, new if is_note_path(new) else None))
    return out
