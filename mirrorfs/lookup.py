"""Search, recall and similar notes as the AI entrances hand them out: plain dicts with
the sha256 of each hit's file (which an edit needs), and a `via` that says who answered.

The library asks a running watcher by itself (mirrorfs.search), and picks the
mode: hybrid once this device has embeddings, keyword before. Whoosh and the
embedder are imported on first use, never at a server's start.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Iterable

from mirrorfs.clock import age, parse_since
from mirrorfs.errors import InvalidValueError
from mirrorfs.storage import sha256

if TYPE_CHECKING:
    from mirrorfs.vault import Vault


def since_day(since: Any, today: dt.date | None = None) -> str:
    """`2026-11-21`, an ISO time, or an age (`7d`, `2w`, `3m`, `1y`) as the day it starts."""
    text = str(since or "").strip()
    ago = age(text)
    if ago is not None:
        return ((today or dt.datetime.now(dt.timezone.utc).date()) - dt.timedelta(days=ago.days)).isoformat()
    try:
        dt.date.fromisoformat(text[:10])
        parse_since(text)
        return text[:10]
    except (ValueError, InvalidValueError):
        raise InvalidValueError(
            f"since must be a date like 2026-11-21 or an age like 7d, 2w, 3m (got {since!r})") from None


def with_since(query: str, since: Any) -> str:
    """*query* restricted to notes updated, or messages written, on or after *since*."""
    day = since_day(since)
    return f"({query}) AND (updated:>={day} OR created:>={day})"


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


def _answer(vault: "Vault", found) -> dict:
    return {"hits": _hashed(vault, (h.to_dict() for h in found)), "warnings": list(found.warnings),
            "stale": bool(found.stale), "via": getattr(found, "via", "local")}


def search(vault: "Vault", query: str, types: list[str] | None = None, since: Any = None,
           limit: int = 10, mode: str | None = None, min_score: float | None = None,
           snippets: bool = True) -> dict:
    """`vault.search` as a dict: {hits, warnings, stale, via}; without *snippets* a keyword
    search highlights nothing (a caller that reads the notes itself)."""
    if since:
        query = with_since(query, since) if mode in (None, "keyword") else query
    return _answer(vault, vault.search(query, types=types or None, sessions=True, limit=limit, mode=mode,
                                       min_score=min_score, snippets=snippets))


def recall(vault: "Vault", query: str, limit: int = 10) -> dict:
    """`vault.recall` as a dict."""
    return _answer(vault, vault.recall(query, limit=limit))


def similar(vault: "Vault", path_or_text: str, limit: int = 5, method: str | None = None) -> dict:
    """`vault.find_similar` as a dict."""
    return _answer(vault, vault.find_similar(path_or_text, limit=limit, method=method))
