"""Which watcher merges a conflict copy that several devices see.

A sync tool puts its conflict copy on every device, so every running watcher
meets it. If each merged it, each would write its own merge (built on its own
last-seen versions) and its own trash entry, and the sync tool would carry
both: duplicated lines, a second conflict, two trash entries. So exactly one
watcher merges each copy, and all of them agree which one without talking to
each other: among the instances whose presence card says a watcher is running
(`status: watching`, seen recently), the one for which
sha256(copy path, copy hash, instance name) is smallest. Every device reads
the same synced cards and the same copy, so every device picks the same
instance. The others leave the copy alone and take it over only when it is
still there `HANDOVER_SECONDS` later (that watcher stopped, or its card is
stale), so a conflict is never left waiting for a device that is off.

Should two watchers ever merge the same copy anyway (a handover race, two
devices running the same instance name), their trash entries still coincide
(`trash.merge_entry`) and their merges are the same bytes whenever their
earlier versions agree, which the sync tool then carries as one file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

# How long the other watchers leave a copy to the chosen one before merging it themselves.
HANDOVER_SECONDS = 120.0
# The status line a running watcher keeps on its card (mirrorfs.daemon writes it).
WATCHING = "watching"


def watchers(vault: "Vault", now: dt.datetime | None = None) -> list[str]:
    """Instances with a running watcher by their cards (this one always counts), by name."""
    names = {vault.instance}
    for card in vault.instances.list(now=now):
        if card.status == WATCHING and card.state == "active":
            names.add(card.name)
    return sorted(names)


def _score(copy: str, sha: str, instance: str) -> str:
    return hashlib.sha256(f"{copy}\0{sha}\0{instance}".encode("utf-8", "surrogatepass")).hexdigest()


def merger(vault: "Vault", copy: str, sha: str, now: dt.datetime | None = None) -> str:
    """The instance whose watcher merges the copy *copy* that hashes to *sha*."""
    return min(watchers(vault, now), key=lambda name: _score(copy, sha, name))
