"""Per-device state: everything mirrorfs keeps outside the synced vault.

The search index, lock files, cursors and ephemeral sessions are derived or
private to this device, so they live under the platform's user state folder,
keyed by the vault id, and can be deleted at any time.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from mirrorfs.locate import (
    ENV_STATE_DIR as ENV_STATE_DIR,  # where tests and callers look for it
)
from mirrorfs.locate import ROOT_FILE, VAULTS_DIR, VECTORS_FILE, state_override
from mirrorfs.locate import recorded_root as _recorded_root
from mirrorfs.locate import state_key as _key


def base_dir() -> Path:
    """The root of mirrorfs's per-device state (`MIRRORFS_STATE_DIR` overrides)."""
    override = state_override()
    if override is not None:
        return override
    return Path(platformdirs.user_state_dir("mirrorfs", appauthor=False))


def vault_state_dir(vault_id: str, root: str | os.PathLike | None = None) -> Path:
    """This device's private folder for one vault folder; created with mode 0700.

    Keyed by the vault id *and* the folder, so two copies of one vault on this
    device (a backup, a demo copy) never share an index, cursors or merge bases.
    A vault that moved (its old folder is gone) takes its state along, and so
    does the first folder to open state kept by id alone (older mirrorfs).
    """
    vaults = base_dir() / VAULTS_DIR
    if root is None:
        path = vaults / vault_id
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path
    root = Path(root)
    path = vaults / _key(vault_id, root)
    if not path.is_dir():
        vaults.mkdir(parents=True, exist_ok=True, mode=0o700)
        for old in sorted(vaults.glob(f"{vault_id}*")):
            if old == path or not (old.name == vault_id or old.name.startswith(vault_id + "-")):
                continue
            recorded = _recorded_root(old)
            if recorded is None or not recorded.is_dir():
                try:
                    os.rename(old, path)  # atomic: of two racing openers, one adopts it
                    break
                except OSError:
                    continue
        path.mkdir(exist_ok=True, mode=0o700)
    if _recorded_root(path) != root:
        (path / ROOT_FILE).write_bytes(os.fsencode(root) + b"\n")
    return path


def vectors_file(state_dir: str | os.PathLike) -> Path:
    """Where a vault's vector store lives in its state folder (mirrorfs.vectors)."""
    return Path(state_dir).joinpath(*VECTORS_FILE)
