"""Which paths in a vault are notes, and which belong to tools.

One rule set shared by the scanner, the index and the watcher, so that a file is
either a note everywhere or nowhere.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Iterator

# Folders that belong to tools, never to the user's notes.
IGNORED_DIRS = frozenset({
    ".obsidian", ".git", ".mirrorfs", ".stfolder", ".stversions", ".trash",
    ".sync", ".dropbox.cache", "node_modules",
})

# Temporaries written by editors, sync tools and mirrorfs itself.
IGNORED_FILE_PATTERNS = (
    ".syncthing.*.tmp",
    "~syncthing~*.tmp",
    "*.swp",
    "*.swx",
    "*.swo",
    "4913",
    ".#*",
    "*~",
    "*.backup",
    ".mirrorfs-*.tmp",
    ".DS_Store",
    "*.crswap",
)
_SED_TEMP = re.compile(r"^sed[A-Za-z0-9]{6}$")
_IGNORED_RE = re.compile(
    "|".join(fnmatch.translate(p) for p in IGNORED_FILE_PATTERNS)
)

NOTE_SUFFIX = ".md"


def is_ignored_name(name: str) -> bool:
    """True for a file name that is a temporary of an editor, sync tool or mirrorfs."""
    return bool(_IGNORED_RE.match(name) or _SED_TEMP.match(name))


def is_ignored(relpath: str | os.PathLike) -> bool:
    """True when a vault-relative path is inside a tool folder or is a temporary."""
    parts = Path(relpath).parts
    if not parts:
        return True
    if any(part in IGNORED_DIRS for part in parts[:-1]):
        return True
    return parts[-1] in IGNORED_DIRS or is_ignored_name(parts[-1])


def is_note_path(relpath: str | os.PathLike) -> bool:
    """True when a vault-relative path names a Markdown note mirrorfs reads."""
    return str(relpath).endswith(NOTE_SUFFIX) and not is_ignored(relpath)


def iter_note_paths(root: str | os.PathLike, on_error=None) -> Iterator[Path]:
    """Yield the vault-relative path of every note under *root*, sorted per folder.

    *on_error* receives the OSError of a folder that cannot be listed; without it
    the error is raised, because a silently skipped folder would look like a
    folder whose notes were all deleted.
    """
    root = Path(root)

    def onerror(exc: OSError) -> None:
        if on_error is None:
            raise exc
        on_error(exc)

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        rel_dir = Path(dirpath).relative_to(root)
        for name in sorted(filenames):
            if name.endswith(NOTE_SUFFIX) and not is_ignored_name(name):
                yield rel_dir / name
