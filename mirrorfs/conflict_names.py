"""The names sync tools give conflict copies: one table, read by every module.

The indexer skips conflict copies, the watcher and the daemon merge them,
reflections leave them out and `conflicts` lists them: all through
`parse_conflict_name`. A new tool's naming scheme is one row of `SCHEMES`.

Sources for each scheme are listed in docs/format.md ("Conflict copies").
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SYNCTHING = "syncthing"
DROPBOX = "dropbox"
NEXTCLOUD = "nextcloud"
OBSIDIAN = "obsidian"
GIT = "git"


@dataclass(frozen=True)
class Scheme:
    """One tool's conflict-copy naming: a pattern with named groups and how to read its time.

    The pattern must have `stem` and may have `ext`, `device`, `n` (a counter);
    `time_groups` are concatenated and read with `time_format`.
    """

    tool: str
    pattern: re.Pattern
    time_groups: tuple[str, ...]
    time_format: str


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
)
TOOLS = tuple(dict.fromkeys(s.tool for s in SCHEMES))
GIT_COPY = "{stem}.git-conflict-{time:%Y%m%d-%H%M%S}-{sha7}{ext}"
# Every scheme's name contains this: a cheap test before any pattern runs,
# because the indexer and the watcher ask about every file.
_HINT = "onflict"


@dataclass(frozen=True)
class ConflictName:
    """What a conflict copy's name says."""

    relpath: str  # the copy, vault-relative POSIX path
    original: str  # the note it is a copy of (through nested copies)
    tool: str  # syncthing | dropbox | nextcloud | obsidian
    device: str | None  # Syncthing: the WINNER's short id; others: the copy's device or user
    time: dt.datetime | None  # when the copy was made, naive (the device's local time)
    number: int | None = None  # Dropbox's "(1)" when a day had several copies

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = self.time.isoformat() if self.time else None
        return data


def _match_name(name: str) -> tuple[str, str, str | None, dt.datetime | None, int | None] | None:
    """(tool, original name, device, time, number) for one layer of a conflict name."""
    if _HINT not in name:
        return None
    for scheme in SCHEMES:
        m = scheme.pattern.match(name)
        if not m:
            continue
        try:
            t = dt.datetime.strptime("".join(m[g] for g in scheme.time_groups), scheme.time_format)
        except ValueError:
            continue
        groups = m.groupdict()
        number = int(groups["n"]) if groups.get("n") else None
        return scheme.tool, m["stem"] + (groups.get("ext") or ""), groups.get("device"), t, number
    return None


def parse_conflict_name(relpath: str | os.PathLike) -> ConflictName | None:
    """What the name of *relpath* says if it is a sync tool's conflict copy, else None.

    A copy of a copy (two tools, or a copy synced before it was merged) names
    the note at the end of the chain as its original; tool, device and time
    are those of the outermost name.
    """
    path = os.fspath(relpath)
    if _HINT not in path:
        return None
    path = Path(path).as_posix()
    folder, _, name = path.rpartition("/")
    first = _match_name(name)
    if first is None:
        return None
    tool, original, device, time, number = first
    for _ in range(8):  # a copy of a copy of ...
        inner = _match_name(original)
        if inner is None:
            break
        original = inner[1]
    if not original or original.startswith("."):
        return None
    return ConflictName(
        relpath=path,
        original=f"{folder}/{original}" if folder else original,
        tool=tool,
        device=device,
        time=time,
        number=number,
    )


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
