"""The names sync tools give conflict copies: one table, read by every module.

The indexer skips conflict copies, the watcher and the daemon merge them,
reflections leave them out and `conflicts` lists them: all through
`parse_conflict_name`. A new tool's naming scheme is one row of `SCHEMES`.

Some tools name a copy in a way an ordinary note could be named too (iCloud's
`note 2.md`, Google Drive's `note (1).md`, OneDrive's `note-MyPC.md`). Their
rows are *probable*: the name alone never makes a copy, `probable_copy` asks
the caller whether the note it would be a copy of is the same note (for
mirrorfs: the same front-matter `id`). Where a name does not say where the
note's name ends and the device's begins (OneDrive puts a host name that may
hold hyphens after a hyphen), the row *splits*: each reading is tried, and a
caller that can look at the folder passes `exists` to pick the one whose
original is there.

Sources for each scheme are listed in docs/format.md ("Conflict copies").
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

SYNCTHING = "syncthing"
DROPBOX = "dropbox"
NEXTCLOUD = "nextcloud"
OBSIDIAN = "obsidian"
GIT = "git"
ONEDRIVE = "onedrive"
RESILIO = "resilio"
ICLOUD = "icloud"
GOOGLE_DRIVE = "google_drive"


@dataclass(frozen=True)
class Scheme:
    """One tool's conflict-copy naming: a pattern with named groups and how to read its time.

    The pattern must have `stem` (or `head`, see *split*) and may have `ext`,
    `device`, `n` (a counter); `time_groups` are concatenated and read with
    `time_format` (none: the name carries no time). *hint* is a piece every
    such name contains (a cheap test first). *split*: `head` is the note's name
    and the device's joined by this character, at a place the name does not
    tell. *probable*: the name alone is not enough (see the module docstring).
    """

    tool: str
    pattern: re.Pattern
    time_groups: tuple[str, ...] = ()
    time_format: str = ""
    hint: str = "onflict"
    split: str | None = None
    probable: bool = False


SCHEMES: tuple[Scheme, ...] = (
    # Syncthing, lib/model/folder_sendrecv.go: name + ".sync-conflict-20060102-150405-"
    # + short id of the device whose version WON + ext. The copy holds the losing
    # bytes. Versions before 0.14 wrote no device id.
    Scheme(SYNCTHING, re.compile(
        r"^(?P<stem>.+?)\.sync-conflict-(?P<date>\d{8})-(?P<time>\d{6})(?:-(?P<device>[A-Z0-9]{7}))?(?P<ext>\.[^.]*)?$"),
        ("date", "time"), "%Y%m%d%H%M%S"),
    # Obsidian Sync: "name (Conflicted copy DEVICE YYYYMMDDHHMM).md"; the device
    # name may hold spaces.
    Scheme(OBSIDIAN, re.compile(
        r"^(?P<stem>.+) \(Conflicted copy (?P<device>.+) (?P<stamp>\d{12})\)(?P<ext>\.[^.]*)?$"),
        ("stamp",), "%Y%m%d%H%M"),
    # Nextcloud desktop (Utility::makeConflictFileName): "name (conflicted copy
    # [USER ]yyyy-MM-dd hhmmss).ext"; the user name has no parentheses.
    Scheme(NEXTCLOUD, re.compile(
        r"^(?P<stem>.+) \(conflicted copy (?:(?P<device>[^()]+) )?(?P<date>\d{4}-\d{2}-\d{2}) (?P<time>\d{6})\)"
        r"(?P<ext>\.[^.]*)?$"),
        ("date", "time"), "%Y-%m-%d%H%M%S"),
    # ownCloud / old Nextcloud clients: "name_conflict-yyyyMMdd-hhmmss.ext".
    Scheme(NEXTCLOUD, re.compile(
        r"^(?P<stem>.+)_conflict-(?P<date>\d{8})-(?P<time>\d{6})(?P<ext>\.[^.]*)?$"),
        ("date", "time"), "%Y%m%d%H%M%S"),
    # mirrorfs's git merge driver (mirrorfs.gitdriver): the other side of a
    # same-line clash, beside the note; the hex is the start of its sha256.
    Scheme(GIT, re.compile(
        r"^(?P<stem>.+?)\.git-conflict-(?P<date>\d{8})-(?P<time>\d{6})-(?P<device>[0-9a-f]{7})(?P<ext>\.[^.]*)?$"),
        ("date", "time"), "%Y%m%d%H%M%S"),
    # Dropbox: "name (Sam's conflicted copy 2026-11-21).ext", numbered
    # "(Sam's conflicted copy 2026-11-21 (1))", older clients without the owner.
    Scheme(DROPBOX, re.compile(
        r"^(?P<stem>.+) \((?:(?P<device>[^()]+?)['\u2019]s )?conflicted copy (?P<date>\d{4}-\d{2}-\d{2})"
        r"(?: \((?P<n>\d+)\))?\)(?P<ext>\.[^.]*)?$"),
        ("date",), "%Y-%m-%d"),
    # OneDrive for Linux (abraunegg/onedrive >= 2.5.3, docs/client-architecture.md):
    # "filename-hostname-safeBackup-0001.ext"; the host name may hold hyphens.
    Scheme(ONEDRIVE, re.compile(r"^(?P<head>.+)-safeBackup-(?P<n>\d{4})(?P<ext>\.[^.]*)?$"),
           hint="-safeBackup-", split="-"),
    # Resilio Sync (help.resilio.com, "Conflict files in Sync"): "filename.Conflict.jpg",
    # numbered "filename.Conflict1", "filename.Conflict 3".
    Scheme(RESILIO, re.compile(r"^(?P<stem>.+?)\.Conflict(?: ?(?P<n>\d+))?(?P<ext>\.[^.]*)?$"), hint=".Conflict"),
    # OneDrive (Microsoft's client, Windows and macOS): the local version keeps the
    # computer's name, "filename-MyPC.ext", then "filename-MyPC-2.ext".
    Scheme(ONEDRIVE, re.compile(r"^(?P<head>.+?)(?:-(?P<n>\d+))?(?P<ext>\.[^.]*)?$"), hint="-", split="-",
           probable=True),
    # iCloud Drive (and Google Drive for desktop on macOS): Finder's "filename 2.ext".
    Scheme(ICLOUD, re.compile(r"^(?P<stem>.+) (?P<n>[2-9]|[1-9]\d+)(?P<ext>\.[^.]*)?$"), hint=" ", probable=True),
    # Google Drive: a second file of one name, "filename (1).ext".
    Scheme(GOOGLE_DRIVE, re.compile(r"^(?P<stem>.+) \((?P<n>[1-9]\d*)\)(?P<ext>\.[^.]*)?$"), hint=" (",
           probable=True),
)
TOOLS = tuple(dict.fromkeys(s.tool for s in SCHEMES))
GIT_COPY = "{stem}.git-conflict-{time:%Y%m%d-%H%M%S}-{sha7}{ext}"
# The cheap test before any pattern runs (the indexer and the watcher ask about every file).
_HINTS = tuple(dict.fromkeys(s.hint for s in SCHEMES if not s.probable))


@dataclass(frozen=True)
class ConflictName:
    """What a conflict copy's name says."""

    relpath: str  # the copy, vault-relative POSIX path
    original: str  # the note it is a copy of (through nested copies)
    tool: str  # one of TOOLS: syncthing, dropbox, nextcloud, obsidian, git, onedrive, resilio, ...
    device: str | None  # Syncthing: the WINNER's short id; others: the copy's device or user
    time: dt.datetime | None  # when the copy was made, naive (the device's local time)
    number: int | None = None  # Dropbox's "(1)" when a day had several copies

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = self.time.isoformat() if self.time else None
        return data


Reading = tuple  # (tool, original name, device, time, number)


def _readings(scheme: Scheme, name: str) -> list[Reading]:
    """Every way *name* reads as a copy under *scheme*, the likeliest first."""
    if scheme.hint not in name:
        return []
    m = scheme.pattern.match(name)
    if not m:
        return []
    try:
        t = dt.datetime.strptime("".join(m[g] for g in scheme.time_groups), scheme.time_format) \
            if scheme.time_groups else None
    except ValueError:
        return []
    groups = m.groupdict()
    number = int(groups["n"]) if groups.get("n") else None
    ext = groups.get("ext") or ""
    if scheme.split is None:
        return [(scheme.tool, m["stem"] + ext, groups.get("device"), t, number)]
    head = m["head"]
    cuts = [i for i, ch in enumerate(head) if ch == scheme.split and 0 < i < len(head) - 1]
    return [(scheme.tool, head[:i] + ext, head[i + 1:], t, number) for i in reversed(cuts)]


def _match_name(name: str, probable: bool = False) -> list[Reading]:
    """The readings of one layer of a conflict name by the first scheme that reads it."""
    if not probable and not any(h in name for h in _HINTS):
        return []
    for scheme in SCHEMES:
        if scheme.probable == probable:
            found = _readings(scheme, name)
            if found:
                return found
    return []


def _conflict_name(path: str, reading: Reading) -> ConflictName | None:
    folder, _, _ = path.rpartition("/")
    tool, original, device, time, number = reading
    for _ in range(8):  # a copy of a copy of ...
        inner = _match_name(original)
        if not inner:
            break
        original = inner[0][1]
    if not original or original.startswith("."):
        return None
    return ConflictName(relpath=path, original=f"{folder}/{original}" if folder else original,
                        tool=tool, device=device, time=time, number=number)


def parse_conflict_name(relpath: str | os.PathLike, exists: Callable[[str], bool] | None = None
                        ) -> ConflictName | None:
    """What the name of *relpath* says if it is a sync tool's conflict copy, else None.

    A copy of a copy (two tools, or a copy synced before it was merged) names
    the note at the end of the chain as its original; tool, device and time
    are those of the outermost name. Where a name reads more than one way
    (OneDrive's host names), *exists* (vault-relative path -> bool) picks the
    reading whose original is there.
    """
    path = Path(os.fspath(relpath)).as_posix()
    found = [n for n in (_conflict_name(path, r) for r in _match_name(path.rpartition("/")[2])) if n]
    if exists is not None and len(found) > 1:
        return next((n for n in found if exists(n.original)), found[0])
    return found[0] if found else None


def probable_copy(relpath: str | os.PathLike, same_note: Callable[[str, str], bool]) -> ConflictName | None:
    """The copy *relpath* is by a *probable* row, when *same_note(relpath, original)* says so; else None."""
    path = Path(os.fspath(relpath)).as_posix()
    if parse_conflict_name(path) is not None:
        return None
    for reading in _match_name(path.rpartition("/")[2], probable=True):
        name = _conflict_name(path, reading)
        if name is not None and name.original != path and same_note(path, name.original):
            return name
    return None


def conflict_original(relpath: str | os.PathLike) -> str | None:
    """The original note's relpath if *relpath* is a conflict copy, else None."""
    found = parse_conflict_name(relpath)
    return found.original if found else None


def is_conflict_copy(relpath: str | os.PathLike) -> bool:
    return parse_conflict_name(relpath) is not None


def git_copy_name(relpath: str, sha: str, time: dt.datetime) -> str:
    """The name mirrorfs's git merge driver gives the other side of a clash in *relpath*."""
    folder, _, name = relpath.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not stem:
        stem, ext = name, ""
    made = GIT_COPY.format(stem=stem, time=time, sha7=sha[:7], ext=f".{ext}" if ext else "")
    return f"{folder}/{made}" if folder else made
