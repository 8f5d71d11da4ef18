"""Per-device state: everything mirrorfs keeps outside the synced vault.

The search index, lock files, cursors and ephemeral sessions are derived or
private to this device, so they live under the platform's user state folder,
keyed by the vault id, and can be deleted at any time.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_STATE_DIR = "MIRRORFS_STATE_DIR"


def base_dir() -> Path:
    """The root of mirrorfs's per-device state (`MIRRORFS_STATE_DIR` overrides)."""
    override = os.environ.get(ENV_STATE_DIR)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_state_dir("mirrorfs", appauthor=False))


def vault_state_dir(vault_id: str) -> Path:
    """This device's private folder for one vault; created with mode 0700."""
    path = base_dir() / "vaults" / vault_id
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
