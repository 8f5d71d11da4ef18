"""mirrorfs: a local-first memory layer for AI assistants.

Every memory is a Markdown file with YAML front matter in a folder you own.

    from mirrorfs import Vault
    vault = Vault.open("~/Mira", instance="laptop")
    vault.remember("Prefers tea in the morning", kind="preference", tags=["drinks"])
"""

from mirrorfs.errors import MirrorfsError
from mirrorfs.vault import Vault

__version__ = "0.1.0"
__all__ = ["Vault", "MirrorfsError", "__version__"]
