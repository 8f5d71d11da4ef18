"""The importable sources and the one call that imports any of them.

`import_path(vault, "chatgpt", "export.zip")` reads the source module's items
and writes them with the Importer (mirrorfs/importer.py). The fifth source,
`markdown` (a folder of another tool that becomes the vault itself), is not an
import into a vault: see mirrorfs/import_markdown.py.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Callable

from mirrorfs import (
    import_activemirror,
    import_chatgpt,
    import_claude,
    import_mirrordna,
)
from mirrorfs.errors import InvalidValueError
from mirrorfs.importer import DEFAULT_INSTANCE, Importer, ImportReport, Progress
from mirrorfs.vault import Vault

READERS = {
    import_activemirror.SOURCE: import_activemirror.read,
    import_chatgpt.SOURCE: import_chatgpt.read,
    import_claude.SOURCE: import_claude.read,
    import_mirrordna.SOURCE: import_mirrordna.read,
}
SOURCES = (*READERS, "markdown")


def import_path(
    vault: Vault,
    source: str,
    path: str | os.PathLike,
    *,
    instance: str = DEFAULT_INSTANCE,
    password: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    unlock: Callable[[], None] | None = None,
    naive_tz: dt.tzinfo | None = None,
) -> ImportReport:
    """Import *path* (a file, zip or folder as *source* has it) into *vault*.

    Sessions land in `sessions/<instance>/`; an ActiveMirrorOS vault entry
    becomes a sealed memory, which needs *vault* unlocked (or an *unlock*
    callable that unlocks it; it is called at most once, before anything
    sealed is written). *password* opens an ActiveMirrorOS vault; *naive_tz*
    is the zone of its naive times (None: this machine's). Importing the same
    data again changes nothing; a newer export adds only what is new.
    """
    if source not in READERS:
        raise InvalidValueError(f"unknown source {source!r}: use one of {', '.join(READERS)} "
                                "(markdown folders are adopted with import_markdown.adopt)")
    importer = Importer(vault, source, str(path), instance=instance, dry_run=dry_run, unlock=unlock)
    items = READERS[source](path, password=password, progress=progress, naive_tz=naive_tz)
    return importer.run(items)
