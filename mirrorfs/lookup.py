"""Search and recall for long-running entrances: the running watcher answers when there is one.

A process that must answer fast (the MCP server's handshake) cannot import
Whoosh up front, and should not open a second copy of the index while a
watcher already holds one. So searches go to the watcher's socket first
(`mirrorfs.server.ask`, as the CLI does) and fall back to `mirrorfs.search`,
imported on first use. Hits come back as plain dicts (`SearchHit.to_dict()`)
with the sha256 of each hit's file added, which an edit needs.

Until the library itself asks a running watcher (issue 8), this module is that
seam; afterwards it reduces to calls of `mirrorfs.search`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any, Iterable

from mirrorfs import server
from mirrorfs.errors import InvalidValueError
from mirrorfs.storage import sha256

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[t ].*)?$")
_AGE = re.compile(r"^(\d{1,5})\s*([dwmy])$")
_AGE_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}


def since_day(since: Any, today: dt.date | None = None) -> str:
    """`2026-11-21`, an ISO time, or an age (`7d`, `2w`, `3m`, `1y`) as the UTC day it starts."""
    text = str(since or "").strip().lower()
    m = _AGE.match(text)
    if m:
        today = today or dt.datetime.now(dt.timezone.utc).date()
        return (today - dt.timedelta(days=int(m.group(1)) * _AGE_DAYS[m.group(2)])).isoformat()
    if _DAY.match(text):
        try:
            dt.date.fromisoformat(text[:10])
            return text[:10]
        except ValueError:
            pass
    raise InvalidValueError(f"since must be a date like 2026-11-21 or an age like 7d, 2w, 3m (got {since!r})")


def with_since(query: str, since: Any) -> str:
    """*query* restricted to notes updated, or messages written, on or after *since*."""
    day = since_day(since)
    return f"({query}) AND (updated:>={day} OR created:>={day})"


def _ask(vault: "Vault", op: str, args: dict) -> dict | None:
    try:
        return server.ask(vault.state_dir, op, args)
    except ConnectionError:
        return None


def _hashed(vault: "Vault", hits: Iterable[dict]) -> list[dict]:
    out = []
    digests: dict[str, str | None] = {}
    for hit in hits:
        path = hit.get("path")
        if path not in digests:
            try:
                digests[path] = sha256((vault.root / path).read_bytes())
            except OSError:
                digests[path] = None  # gone since it was indexed
        out.append({**hit, "sha256": digests[path]})
    return out


def _answer(vault: "Vault", reply: dict, via: str) -> dict:
    return {"hits": _hashed(vault, reply.get("hits", [])), "warnings": list(reply.get("warnings", [])),
            "stale": bool(reply.get("stale", False)), "via": via}


def _served(vault: "Vault", op: str, args: dict, ask: bool = True) -> dict:
    """The watcher's answer to *op*, else `mirrorfs.search`'s own (imported only then)."""
    reply = _ask(vault, op, args) if ask else None
    if reply is not None:
        return _answer(vault, reply, "watcher")
    from mirrorfs import search as local

    run = {"search": local.search, "recall": local.recall, "similar": local.find_similar}[op]
    found = run(vault, **args)
    return _answer(vault, {"hits": [h.to_dict() for h in found], "warnings": found.warnings,
                           "stale": found.stale}, "local")


def search(vault: "Vault", query: str, types: list[str] | None = None, since: Any = None,
           limit: int = 10) -> dict:
    """`mirrorfs.search.search` through the watcher when one runs: {hits, warnings, stale, via}."""
    if since:
        query = with_since(query, since)
    return _served(vault, "search", {"query": query, "types": types or None, "sessions": True, "limit": limit})


def recall(vault: "Vault", query: str, limit: int = 10) -> dict:
    """`mirrorfs.search.recall` through the watcher when one runs."""
    return _served(vault, "recall", {"query": query, "limit": limit})


def similar(vault: "Vault", path_or_text: str, limit: int = 5) -> dict:
    """`mirrorfs.search.find_similar`; the watcher has no such request yet, so it runs here."""
    return _served(vault, "similar", {"text_or_path": path_or_text, "limit": limit}, ask=False)
