"""What mirrorfs does with a conflict copy: the vault's `conflict_strategy` setting.

* `merge` (the default): merge when the merge is certain, keep both for a
  person when it is not (`mirrorfs.conflicts`);
* `latest`: keep the newer side under the note's name and put the other in
  the vault's trash;
* `manual`: merge nothing; every copy waits for a person on the bridge.

The setting is a flat key of `.mirrorfs/config.yaml`, so it syncs to every
device and every watcher acts alike; it is read afresh for each conflict, so a
running watcher follows a change at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from mirrorfs import note as notes
from mirrorfs import storage
from mirrorfs.clock import time_or_none
from mirrorfs.config import load_config, set_config_keys
from mirrorfs.errors import InvalidValueError, UnreadableNoteError

LATEST = "latest"
MERGE = "merge"
MANUAL = "manual"
STRATEGIES = (LATEST, MERGE, MANUAL)
DEFAULT = MERGE
CONFIG_KEY = "conflict_strategy"


def strategy_of(config: dict) -> str:
    """The strategy a vault config names (the default when it names none)."""
    value = config.get(CONFIG_KEY)
    if value is None:
        return DEFAULT
    if value not in STRATEGIES:
        raise InvalidValueError(
            f"{CONFIG_KEY}: {value!r} in .mirrorfs/config.yaml is not one of {', '.join(STRATEGIES)}; "
            f"conflicts wait for a person until it is fixed (mirrorfs conflicts strategy merge)"
        )
    return str(value)


def current(root: str | os.PathLike) -> str:
    """The strategy of the vault at *root*, read from its config now."""
    return strategy_of(load_config(root))


def set_strategy(store: storage.Store, root: str | os.PathLike, value: str) -> str:
    """Set the vault's strategy (through the one write path, touching only that line)."""
    if value not in STRATEGIES:
        raise InvalidValueError(f"the conflict strategy must be one of {', '.join(STRATEGIES)}, not {value!r}")
    set_config_keys(store, root, {CONFIG_KEY: value})
    return value


def _updated(data: bytes):
    try:
        meta = notes.parse(data).meta
    except UnreadableNoteError:
        return None
    return time_or_none(meta.get("updated")) if isinstance(meta, dict) else None


def newer_side(mine: bytes, theirs: bytes, mine_path: Path | None = None, theirs_path: Path | None = None) -> str:
    """'theirs' when the other version is the newer one, else 'mine' (a tie keeps mine).

    Newer by the front matter's `updated` when both sides have one (the time of
    the write, the same on every device), else by the files' modification times.
    """
    m, t = _updated(mine), _updated(theirs)
    if m is not None and t is not None:
        return "theirs" if t > m else "mine"
    try:
        if mine_path is not None and theirs_path is not None:
            return "theirs" if theirs_path.stat().st_mtime > mine_path.stat().st_mtime else "mine"
    except OSError:
        pass
    return "mine"
