"""Where things live in a vault (DESIGN §2): one table every module reads.

Folder names are part of the file-format contract (docs/format.md); a module
that needs one imports it from here instead of spelling it again.
"""

from __future__ import annotations

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
# The folders `init` creates.
FOLDERS = (MEMORY_DIR, SESSIONS_DIR, INSTANCES_DIR, BRIDGE_DIR, PATTERNS_DIR)

# The `type:` values mirrorfs owns: writes to such notes record `updated`/`updated_by`.
OWNED_TYPES = ("soul", "memory", "session", "instance", "bridge", "pattern")

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
