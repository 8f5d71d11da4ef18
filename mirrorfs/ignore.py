"""Which paths in a vault are notes, and which belong to tools.

One rule set shared by the scanner, the index and the watcher, so that a file is
either a note everywhere or nowhere.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Callable, Container, Iterable, Iterator

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


def walk(
    root: str | os.PathLike,
    on_error: Callable[[str, OSError], None] | None = None,
    known: Container[str] = (),
    recursive: bool = True,
    on_escape: Callable[[str], None] | None = None,
    vault_root: str | os.PathLike | None = None,
) -> Iterator[tuple[str, os.DirEntry]]:
    """The one vault walker: every note file under *root* as (relpath, DirEntry).

    Relpaths are POSIX strings; each folder's files come in name order before
    its subfolders (as os.walk gives them). Tool folders and temporaries are
    skipped; symlinked folders are not followed. Paths in *known* passed the
    name rules before and skip them (the index walks before every query).
    A folder that cannot be listed goes to *on_error* (relative folder, error):
    a silently skipped folder would look like one whose notes were all
    deleted. An unlistable *root* raises its OSError. With *recursive* False
    only the notes directly in *root* come (the watcher rescanning one folder).

    A symbolic link whose target lies outside the vault (*vault_root*, default
    *root*) is never yielded: sync tools and git carry links, and another
    device could plant one to /etc/passwd. *on_escape* hears of each one.
    """
    root = os.fspath(root)
    real_root = os.path.realpath(vault_root if vault_root is not None else root)
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if not prefix:
                raise
            if on_error is None:
                raise
            on_error(prefix[:-1], exc)
            continue
        subfolders = []
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if recursive and name not in IGNORED_DIRS and not entry.is_symlink():
                    subfolders.append((entry.path, prefix + name + "/"))
                continue
            if not name.endswith(NOTE_SUFFIX):
                continue
            relpath = prefix + name
            if relpath not in known and is_ignored_name(name):
                continue
            if entry.is_symlink() and escapes(entry.path, real_root):
                if on_escape is not None:
                    on_escape(relpath)
                continue
            yield relpath, entry
        stack.extend(reversed(subfolders))


def escapes(path: str | os.PathLike, real_root: str) -> bool:
    """True when *path* (a link, followed to the end) leads outside the folder *real_root*."""
    real = os.path.realpath(path)
    return not (real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep))


def inside(root: str | os.PathLike, paths: Iterable[Path]) -> list[Path]:
    """*paths* (a folder listing) without the links that lead outside the vault *root*."""
    real_root = os.path.realpath(root)
    return [p for p in paths if not (p.is_symlink() and escapes(p, real_root))]


def iter_note_paths(root: str | os.PathLike, on_error=None) -> Iterator[Path]:
    """Yield the vault-relative path of every note under *root* (see `walk`).

    *on_error* receives the OSError of a folder that cannot be listed; without it
    the error is raised.
    """
    try:
        for relpath, _ in walk(root, on_error=None if on_error is None else lambda rel, exc: on_error(exc)):
            yield Path(relpath)
    except OSError as exc:
        if on_error is None:
            raise
        on_error(exc)
