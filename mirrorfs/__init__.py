"""mirrorfs: a local-first memory layer for AI assistants.

Every memory is a Markdown file with YAML front matter in a folder you own.

    from mirrorfs import Vault
    vault = Vault.open("~/Mira", instance="laptop")
    vault.remember("Prefers tea in the morning", kind="preference", tags=["drinks"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Vault", "MirrorfsError", "__version__"]

if TYPE_CHECKING:
    from mirrorfs.errors import MirrorfsError
    from mirrorfs.vault import Vault

# Loaded on first use (PEP 562): importing any mirrorfs module (the lean
# console, the socket client) must not pull in the vault and YAML with it.
_LAZY = {"Vault": "mirrorfs.vault", "MirrorfsError": "mirrorfs.errors"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mirrorfs' has no attribute {name!r}")
