"""What searches return: hits, result lists, catalog entries, freshness reports.

Plain data, without Whoosh, so that a search answered by a running watcher
(`mirrorfs.watch_client`) builds the same objects as one run in-process.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable

from mirrorfs.clock import parse_time

_TIMES = ("created", "updated", "time", "accessed")


def _dict(obj) -> dict[str, Any]:
    d = asdict(obj)
    for k in _TIMES:
        if d.get(k) is not None:
            d[k] = d[k].isoformat()
    return {k: v for k, v in d.items() if v not in (None, [])}


@dataclass
class ReconcileReport:
    """What bringing the index up to date did."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rebuilt: bool = False
    stale: bool = False  # another process held the writer; answered from the index as it was
    seconds: float = 0.0

    @property
    def changes(self) -> int:
        return len(self.added) + len(self.changed) + len(self.deleted)


@dataclass
class SearchHit:
    """One result: a note, or a message of a session (`doc == "message"`)."""

    path: str
    title: str
    type: str
    score: float
    snippet: str = ""
    doc: str = "note"
    id: str | None = None
    tags: list[str] = field(default_factory=list)
    kind: str | None = None
    instance: str | None = None
    created: dt.datetime | None = None
    updated: dt.datetime | None = None
    flags: list[str] = field(default_factory=list)
    # Message hits only:
    session: str | None = None
    session_title: str | None = None
    message_id: str | None = None
    role: str | None = None
    time: dt.datetime | None = None
    relevance: float | None = None  # recall: the BM25 part of the score, normalised

    def to_dict(self) -> dict[str, Any]:
        return _dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchHit":
        """The hit `to_dict` gave (as the watcher sends it)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for k in _TIMES:
            if isinstance(values.get(k), str):
                values[k] = parse_time(values[k])
        return cls(**values)


@dataclass
class SemanticHit(SearchHit):
    """A SearchHit with the two parts of its score, each in [0, 1] (None: not found that way)."""

    semantic: float | None = None
    keyword: float | None = None
    chunk: str | None = None  # the best chunk's key (`#Heading`, "" for the lead)


class SearchResults(list):
    """A list of SearchHit, with what the freshness pass reported."""

    def __init__(self, hits: Iterable[SearchHit] = (), query: str = "",
                 report: ReconcileReport | None = None, via: str = "local"):
        super().__init__(hits)
        self.query = query
        self.report = report or ReconcileReport()
        self.via = via  # who answered: "watcher" (over its socket) or "local" (this process)

    @property
    def warnings(self) -> list[str]:
        return self.report.warnings

    @property
    def stale(self) -> bool:
        return self.report.stale

    def to_reply(self) -> dict[str, Any]:
        """The results as the watcher sends them over its socket."""
        return {"hits": [h.to_dict() for h in self], "warnings": list(self.warnings), "stale": self.stale}

    @classmethod
    def from_reply(cls, reply: dict[str, Any], query: str = "", hit: type[SearchHit] | None = None) -> "SearchResults":
        """Results the watcher sent (see `to_reply`), as *hit* objects (default SearchHit)."""
        report = ReconcileReport(warnings=list(reply.get("warnings") or ()), stale=bool(reply.get("stale")))
        hit = hit or SearchHit
        return cls((hit.from_dict(h) for h in reply.get("hits") or ()), query, report, via="watcher")


@dataclass
class NoteInfo:
    """What the index knows of one file, without reading it."""

    path: str
    title: str
    type: str
    id: str | None = None
    tags: list[str] = field(default_factory=list)
    category: str | None = None
    kind: str | None = None
    instance: str | None = None
    created: dt.datetime | None = None
    updated: dt.datetime | None = None
    messages: int = 0
    accessed: dt.datetime | None = None
    action: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _dict(self)
