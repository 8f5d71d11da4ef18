"""What the watcher last saw of each note: its sha256 and the stat signature it was read with.

The hash is the truth (mtime and inode alone are never trusted); the stat
signature only lets a rescan skip reading a file that did not change since. A
lookup by hash finds the known notes a new path may have been moved from.
The paths whose entry changed are noted until `take_changed`, so that a caller
can keep a copy on disk by storing only those. Pure: no file I/O.
"""

from __future__ import annotations

import os
from typing import Collection, Iterator, Mapping, NamedTuple

# (size, mtime_ns, ctime_ns, inode)
Signature = tuple


def signature(st: os.stat_result) -> Signature:
    """The stat signature of a file: if any part differs, the file must be read again."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class Fingerprint(NamedTuple):
    sha256: str
    # The signature when it was read; None for a hash the caller seeded.
    sig: Signature | None


class Fingerprints:
    """Vault-relative path -> Fingerprint, with a reverse lookup by hash."""

    def __init__(self) -> None:
        self._by_path: dict[str, Fingerprint] = {}
        self._by_sha: dict[str, set[str]] = {}
        self._changed: set[str] = set()

    def __len__(self) -> int:
        return len(self._by_path)

    def __contains__(self, rel: object) -> bool:
        return rel in self._by_path

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_path)

    def get(self, rel: str) -> Fingerprint | None:
        return self._by_path.get(rel)

    def set(self, rel: str, entry: Fingerprint) -> None:
        old = self._by_path.get(rel)
        if old == entry:
            return
        if old is not None and old.sha256 != entry.sha256:
            self.forget(rel)
        self._by_path[rel] = entry
        self._by_sha.setdefault(entry.sha256, set()).add(rel)
        self._changed.add(rel)

    def forget(self, rel: str) -> None:
        old = self._by_path.pop(rel, None)
        if old is not None:
            self._changed.add(rel)
            paths = self._by_sha.get(old.sha256)
            if paths is not None:
                paths.discard(rel)
                if not paths:
                    del self._by_sha[old.sha256]

    def with_hash(self, sha256: str) -> frozenset[str]:
        """The known paths whose content has this hash."""
        return frozenset(self._by_sha.get(sha256, ()))

    def take_changed(self) -> dict[str, Fingerprint | None]:
        """The paths set or forgotten since the last call, with their entries now (None: forgotten)."""
        changed, self._changed = self._changed, set()
        return {rel: self._by_path.get(rel) for rel in changed}

    def hashes(self) -> dict[str, str]:
        """A copy: path -> sha256."""
        return {rel: f.sha256 for rel, f in self._by_path.items()}

    def differences(self, found: Mapping[str, Signature | None], folder: str, recursive: bool,
                    unlisted: Collection[str] = ()) -> tuple[list[str], list[str]]:
        """Compare a listing of *folder* with what is known.

        Returns the listed paths whose signature is not the known one (new,
        changed, or known only by a seeded hash), and the known paths in the
        folder that the listing lacks, except below folders in *unlisted*
        (a folder that could not be listed has not lost its notes).
        """
        changed = [rel for rel, sig in found.items()
                   if (k := self._by_path.get(rel)) is None or k.sig is None or k.sig != sig]
        start = len(folder) + 1 if folder else 0
        missing = []
        for rel in self._by_path:
            if rel in found or not below(rel, folder):
                continue
            if not recursive and "/" in rel[start:]:
                continue
            if any(below(rel, f) for f in unlisted):
                continue
            missing.append(rel)
        return changed, missing


def below(rel: str, folder: str) -> bool:
    """Whether *rel* lies below *folder* ("" is the vault root, above everything)."""
    return not folder or rel.startswith(folder + "/")
