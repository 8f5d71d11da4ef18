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
stale), so a conflict is never left waiting for a device that is off. The
copies a watcher finds when it starts are decided `START_SECONDS` later, and
then it also counts the instances seen in the last `HANDOVER_SECONDS` whatever
their status: the other device may be starting too, its "watching" card still
on its way.

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
# How long a starting watcher waits before deciding on the copies it found: the
# other devices' "watching" cards (they may be starting too) arrive meanwhile.
START_SECONDS = 10.0
# The status line a running watcher keeps on its card (mirrorfs.daemon writes it).
WATCHING = "watching"


def watchers(vault: "Vault", now: dt.datetime | None = None, recent: float = 0.0) -> list[str]:
    """Instances with a running watcher by their cards (this one always counts), by name.

    With *recent* (seconds), also instances seen that recently whatever their
    status: a watcher starting up counts the others that stopped or started
    just now, whose "watching" card may not have reached this device yet, so
    two devices waking up together still pick the same one.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    names = {vault.instance}
    for card in vault.instances.list(now=now):
        seen = card.last_seen
        lately = recent and seen is not None and abs((now - seen).total_seconds()) <= recent
        if card.state == "active" and (card.status == WATCHING or lately):
            names.add(card.name)
    return sorted(names)


def _score(copy: str, sha: str, instance: str) -> str:
    return hashlib.sha256(f"{copy}\0{sha}\0{instance}".encode("utf-8", "surrogatepass")).hexdigest()


def merger(vault: "Vault", copy: str, sha: str, now: dt.datetime | None = None, recent: float = 0.0) -> str:
    """The instance whose watcher merges the copy *copy* that hashes to *sha* (*recent*: see `watchers`)."""
    return min(watchers(vault, now, recent), key=lambda name: _score(copy, sha, name))
