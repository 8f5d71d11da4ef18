"""Where things live in a vault (DESIGN §2): one table every module reads.

Folder names are part of the file-format contract (docs/format.md); a module
that needs one imports it from here instead of spelling it again.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime as dt

CONFIG_DIR = ".mirrorfs"
CONFIG_FILE = f"{CONFIG_DIR}/config.yaml"
TRASH_DIR = f"{CONFIG_DIR}/trash"
# Open conflicts, one small file each, synced so every device sees them.
CONFLICTS_DIR = f"{CONFIG_DIR}/conflicts"
SOUL_FILE = "SOUL.md"
README_FILE = "README-mirrorfs.md"

MEMORY_DIR = "memory"
SESSIONS_DIR = "sessions"
INSTANCES_DIR = "instances"
BRIDGE_DIR = "bridge"
PATTERNS_DIR = "patterns"
# Derived notes the AI writes (docs/format.md): conversation summaries, saved pattern reflections.
SUMMARIES_DIR = "summaries"
INSIGHTS_DIR = "insights"
# The folders `init` creates.
FOLDERS = (MEMORY_DIR, SESSIONS_DIR, INSTANCES_DIR, BRIDGE_DIR, PATTERNS_DIR)

# The `type:` values mirrorfs owns: writes to such notes record `updated`/`updated_by`.
OWNED_TYPES = ("soul", "memory", "session", "instance", "bridge", "pattern")
# How a search ranks (mirrorfs.semantic): by words, by meaning, or both.
SEARCH_MODES = ("keyword", "semantic", "hybrid")

# Which kind a note is by its top folder, when its front matter does not say.
FOLDER_KINDS = {MEMORY_DIR: "memory", SESSIONS_DIR: "session", BRIDGE_DIR: "bridge",
                INSTANCES_DIR: "instance", PATTERNS_DIR: "pattern"}


def kind_of(relpath: str, meta: dict) -> str:
    """memory / session / soul / bridge / instance / pattern / note."""
    value = meta.get("type")
    if value is not None and str(value) in OWNED_TYPES:
        return str(value)
    if relpath == SOUL_FILE:
        return "soul"
    top = relpath.split("/", 1)[0] if "/" in relpath else ""
    return FOLDER_KINDS.get(top, "note")


# A trash entry: `<UTC stamp>[-<instance>]` (who removed the note) or
# `<UTC stamp>~<reason>` (kept by mirrorfs itself, e.g. a displaced save; `~`
# is never in an instance name, so no reason is read as a person or instance).
_TRASH_ENTRY = re.compile(r"^[0-9TZ]+(?:-(?P<who>[a-z0-9][a-z0-9_-]*))?(?:~[a-z0-9-]+)?$")


def trash_entry(instance: str | None = None, reason: str | None = None, now: dt.datetime | None = None) -> str:
    """The folder name of a new trash entry: a UTC stamp to the microsecond, then `-instance` or `~reason`."""
    import datetime as dt  # here: the lean console reads this table and needs no clock

    stamp = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    if instance:
        return f"{stamp}-{instance}"
    return f"{stamp}~{reason}" if reason else stamp


def trash_entry_instance(name: str) -> str | None:
    """The instance a trash entry's folder name ends with (`<stamp>-<instance>`), or None."""
    m = _TRASH_ENTRY.match(name)
    return m.group("who") if m else None
