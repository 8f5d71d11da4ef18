"""Search, recall, similar notes and statistics over a vault.

Every function takes a Vault and first makes the index match the files (see
mirrorfs.index: a cheap stat pass, no watcher needed), so results are never
stale. Query syntax: docs/search.md.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, Callable, Iterable

from mirrorfs import messages as messages_mod
from mirrorfs import note as note_mod
from mirrorfs import recent as recent_log
from mirrorfs.clock import aware_utc, from_unix
from mirrorfs.crypto import strip_sections
from mirrorfs.errors import InvalidValueError, NotFoundError, UnreadableNoteError
from mirrorfs.index import Index
from mirrorfs.results import NoteInfo, ReconcileReport, SearchHit, SearchResults

SNIPPET_CHARS = 180


def _index(vault, progress=None, reconcile: bool = True) -> tuple[Index, ReconcileReport]:
    idx = Index.for_vault(vault)
    report = idx.ensure(progress=progress) if reconcile else ReconcileReport()
    return idx, report


# --------------------------------------------------------------------------
# Snippets: read the (just reconciled) files rather than storing bodies in the
# index, which keeps the index small and the snippet exactly what is on disk.


class _Texts:
    """File text for snippets, read once per search."""

    def __init__(self, vault):
        self.root = Path(vault.root)
        idx = Index.for_vault(vault)
        self.max_bytes = idx.max_bytes
        self.files = idx.catalog()["files"]
        self._texts: dict[str, str] = {}

    def text(self, relpath: str) -> str:
        if relpath not in self._texts:
            try:
                with open(self.root / relpath, "rb") as f:
                    data = f.read(self.max_bytes + 1)
                self._texts[relpath] = "" if len(data) > self.max_bytes else note_mod.decode(data, relpath)[1]
            except (OSError, UnreadableNoteError):
                self._texts[relpath] = ""
        return self._texts[relpath]

    def body(self, relpath: str, fields: dict) -> str:
        body = note_mod.body_of(self.text(relpath))
        if fields.get("type") == "session":
            cut = body.find(messages_mod.COMMENT_PREFIX)
            if cut >= 0:  # the preamble ends at the first message's heading
                body = body[: body.rfind("\n### ", 0, cut) + 1]
        return strip_sections(body)

    def session_info(self, relpath: str) -> dict:
        rec = self.files.get(relpath)
        return rec[4] if rec else {}

    def message(self, relpath: str, msg_id: str) -> str:
        """One message's content, found by its id without parsing the whole session."""
        text = self.text(relpath)
        key = messages_mod.COMMENT_PREFIX + '{"id": ' + json.dumps(msg_id)
        at = text.find(key)
        if at < 0:  # written by another tool with other JSON spacing: parse it all
            for m in messages_mod.parse(note_mod.body_of(text))[1]:
                if m.id == msg_id:
                    return strip_sections(m.content)
            return ""
        start = text.rfind("\n", 0, max(0, text.rfind("\n", 0, at))) + 1
        nxt = text.find("\n" + messages_mod.COMMENT_PREFIX, at + len(key))
        end = text.rfind("\n", 0, nxt) + 1 if nxt >= 0 else len(text)
        for m in messages_mod.parse(text[start:end])[1]:
            return strip_sections(m.content)
        return ""


def _lead(text: str, chars: int = SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[:chars].rsplit(" ", 1)[0] + " …"


def _text(raw, texts: _Texts) -> str:
    f = raw.fields
    if f.get("type") == "message":
        return texts.message(f["path"], f.get("msg", ""))
    return texts.body(f["path"], f)


def _hit(raw, idx: Index, texts: _Texts, snippets: bool = True,
         terms: frozenset[str] = frozenset()) -> SearchHit:
    f = raw.fields
    doc = "message" if f.get("type") == "message" else "note"
    snippet = ""
    if snippets:
        text = _text(raw, texts)
        snippet = idx.highlight(text, terms, chars=SNIPPET_CHARS) if terms else ""
        if not snippet:
            snippet = _lead(text)
        snippet = " ".join(snippet.split())
    tags = [t for t in (f.get("tags") or "").split(",") if t]
    hit = SearchHit(
        path=f["path"],
        title=f.get("title") or f.get("session_title") or "",
        type=f.get("type", "note"),
        score=round(raw.score, 4),
        snippet=snippet,
        doc=doc,
        id=f.get("id"),
        tags=tags,
        kind=f.get("kind"),
        instance=f.get("instance"),
        created=aware_utc(f.get("created_at")),
        updated=aware_utc(f.get("updated_at")),
        flags=(f.get("flags") or "").split(),
    )
    if doc == "message":
        info = texts.session_info(f["path"])
        hit.session = info.get("id") or f["path"].rsplit("/", 1)[-1][:-3]
        hit.session_title = info.get("title")
        hit.tags = list(info.get("tags") or [])
        hit.title = hit.session_title or hit.session or ""
        hit.message_id = f.get("msg")
        hit.role = f.get("role")
        hit.time = hit.created
    return hit


# --------------------------------------------------------------------------
# Public API (Vault delegates here).


def search(vault, query: str, types: Iterable[str] | None = None, sessions: bool = True,
           limit: int | None = 20, tags: Iterable[str] | None = None,
           instances: Iterable[str] | None = None, snippets: bool = True,
           reconcile: bool = True, any_word: bool = False) -> SearchResults:
    """Search notes and session messages; see docs/search.md for the syntax.

    *types* keeps notes of those types (memory, session, soul, ...); message
    hits are kept when *sessions* is true and *types* is None or names
    "session" or "message". Words must all match unless *any_word*.
    Raises QueryError for a malformed query.
    """
    if limit is not None and limit < 1:
        raise InvalidValueError("limit must be at least 1")
    idx = Index.for_vault(vault)
    q = idx.parse(query, any_word)  # a malformed query fails before any work
    idx, report = _index(vault, reconcile=reconcile)
    types = [t.lower() for t in types] if types else None
    messages = sessions and (types is None or "session" in types or "message" in types)
    note_types = [t for t in types if t != "message"] if types else None
    if types and not note_types:
        note_types = ["-none-"]
    raws = idx.search(q, types=note_types, messages=messages, tags=tags,
                      instances=instances, limit=limit)
    texts = _Texts(vault)
    terms = idx.query_terms(q) if snippets and raws else frozenset()
    return SearchResults((_hit(r, idx, texts, snippets, terms) for r in raws), query, report)


def recall(vault, query: str, limit: int = 10, half_life_days: float = 30.0,
           recency_weight: float = 0.3, now: dt.datetime | None = None) -> SearchResults:
    """Memory notes for *query*, ranked by relevance plus recency.

    Any word of the query may match (more matching words rank higher), as
    suits a question in natural language.

    score = (1 - w) * bm25 / best_bm25 + w * 0.5 ** (age_days / half_life_days),
    with w = *recency_weight* and age from `updated` (else `created`).
    """
    if limit < 1:
        raise InvalidValueError("limit must be at least 1")
    pool = search(vault, query, types=["memory"], sessions=False, limit=max(50, limit * 5),
                  snippets=False, any_word=True)
    now = now or dt.datetime.now(dt.timezone.utc)
    best = max((h.score for h in pool), default=0.0) or 1.0
    for h in pool:
        when = h.updated or h.created
        age = max(0.0, (now - when).total_seconds() / 86400) if when else 10 * half_life_days
        recency = 0.5 ** (age / half_life_days)
        h.relevance = round(h.score / best, 4)
        h.score = round((1 - recency_weight) * h.score / best + recency_weight * recency, 4)
    pool.sort(key=lambda h: h.score, reverse=True)
    top = pool[:limit]
    idx = Index.for_vault(vault)
    texts = _Texts(vault)
    terms = set(idx.analyze(re.sub(r"\w+:\S+", " ", query)))
    for h in top:
        body = texts.body(h.path, {"type": h.type})
        h.snippet = " ".join((idx.highlight(body, terms) or _lead(body)).split())
    return SearchResults(top, query, pool.report)


def _resolve_source(vault, text_or_path: str) -> tuple[str | None, str]:
    """(relpath or None, text) of find_similar's argument."""
    candidate = str(text_or_path)
    if "\n" not in candidate and len(candidate) < 1024:
        root = Path(vault.root)
        for p in (Path(candidate), root / candidate):
            try:
                if p.suffix == ".md" and p.is_file():
                    full = p.resolve()
                    rel = full.relative_to(root.resolve()).as_posix()
                    n = note_mod.read_note(full)
                    return rel, f"{n.meta.get('title') or ''}\n{strip_sections(n.body)}"
            except (OSError, ValueError):
                continue
        if candidate.endswith(".md"):
            raise NotFoundError(f"no note at {candidate}")
    return None, candidate


def find_similar(vault, text_or_path: str, limit: int = 10, threshold: float = 0.15,
                 sessions: bool = False) -> SearchResults:
    """Notes that share the most characteristic terms with a note or a text.

    Key terms come from Whoosh's Bo1 "more like this" model. Each hit's
    `score` is the share (0..1) of the key terms' weight it contains; hits
    under *threshold* are dropped and the source note itself is never returned.
    """
    source, text = _resolve_source(vault, text_or_path)
    idx, report = _index(vault)
    terms = idx.key_terms(text)
    if not terms:
        return SearchResults([], text_or_path, report)
    total = sum(w for _, w in terms) or 1.0
    weight = dict(terms)
    raws = idx.search(idx.similar_query(terms), messages=sessions, limit=limit * 3 + 1)
    texts = _Texts(vault)
    hits = []
    for raw in raws:
        if raw.fields.get("path") == source and raw.fields.get("type") != "message":
            continue
        text = _text(raw, texts)
        if raw.fields.get("type") != "message":
            text = f"{raw.fields.get('title') or ''}\n{text}"
        present = idx.terms_of(text)
        share = sum(w for t, w in weight.items() if t in present) / total
        if share < threshold:
            continue
        hit = _hit(raw, idx, texts, True, frozenset(weight))
        hit.relevance = hit.score
        hit.score = round(share, 4)
        hits.append(hit)
    hits.sort(key=lambda h: (h.score, h.relevance or 0), reverse=True)
    return SearchResults(hits[:limit], text_or_path, report)


def session_search(session, text: str, case_sensitive: bool = False) -> list:
    """Messages of one session whose content contains *text* (a plain substring)."""
    if not text:
        raise InvalidValueError("search text must not be empty")
    needle = text if case_sensitive else text.casefold()
    found = []
    for msg in session.get_messages():
        hay = msg.content if case_sensitive else msg.content.casefold()
        if needle in hay:
            found.append(msg)
    return found


def _info(relpath: str, rec: tuple) -> NoteInfo:
    info = rec[4]
    return NoteInfo(
        path=relpath,
        title=info.get("title") or relpath.rsplit("/", 1)[-1][:-3],
        type=info.get("type") or "note",
        id=info.get("id"),
        tags=list(info.get("tags") or []),
        category=info.get("category"),
        kind=info.get("kind"),
        instance=info.get("instance"),
        created=from_unix(info.get("created")),
        updated=from_unix(info.get("updated")),
        messages=info.get("messages", 0),
    )


def _catalog_files(vault) -> dict:
    idx, _ = _index(vault)
    return idx.catalog()["files"]


def _newest_first(items: list[NoteInfo]) -> list[NoteInfo]:
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return sorted(items, key=lambda i: (i.updated or i.created or epoch, i.path), reverse=True)


def notes_where(vault, predicate: Callable[[dict], bool]) -> list[NoteInfo]:
    """Indexed notes whose catalog summary satisfies *predicate*, newest first."""
    files = _catalog_files(vault)
    return _newest_first([_info(p, rec) for p, rec in files.items()
                          if rec[4].get("status") != "skipped" and predicate(rec[4])])


def by_tag(vault, tag: str, types: Iterable[str] | None = ("session",)) -> list[NoteInfo]:
    """Sessions (or notes of *types*; None for all) tagged *tag* or a nested tag under it."""
    tag = tag.lstrip("#").lower()
    wanted = set(types) if types else None
    return notes_where(vault, lambda i: (wanted is None or i.get("type") in wanted)
                       and tag in (i.get("tags") or ()))


def by_category(vault, category: str) -> list[NoteInfo]:
    """Sessions of a category, newest first."""
    cat = category.lower()
    return notes_where(vault, lambda i: i.get("type") == "session" and i.get("category") == cat)


def record_access(vault, relpath: str, action: str = "read") -> None:
    """Log that this device read or wrote a note (feeds `recent`)."""
    recent_log.record_access(vault, relpath, action)


def recent(vault, limit: int = 10, types: Iterable[str] | None = None) -> list[NoteInfo]:
    """Working memory: notes this device read or wrote lately, newest first.

    Notes deleted or renamed since are left out.
    """
    files = _catalog_files(vault)
    wanted = set(types) if types else None
    out: list[NoteInfo] = []
    seen: set[str] = set()
    for acc in recent_log.accesses(vault):
        rec = files.get(acc.path)
        path = acc.path
        if rec is None:
            continue
        if rec[4].get("status") == "skipped":
            continue
        if path in seen:
            continue
        info = _info(path, rec)
        if wanted and info.type not in wanted:
            continue
        seen.add(path)
        info.accessed = acc.time
        info.action = acc.action
        out.append(info)
        if len(out) >= limit:
            break
    return out


def statistics(vault) -> dict[str, Any]:
    """Counts over the whole vault, from the index catalog (no file is read)."""
    idx, report = _index(vault)
    files = idx.catalog()["files"]
    by_type: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    by_tag: dict[str, int] = {}
    by_instance: dict[str, dict[str, int]] = {}
    by_role: dict[str, int] = {}
    total_bytes = 0
    sessions = []
    unparseable = skipped = 0
    for path, rec in files.items():
        total_bytes += rec[1]
        info = rec[4]
        if info.get("status") == "skipped":
            skipped += 1
            continue
        unparseable += info.get("status") == "unparseable"
        t = info.get("type") or "note"
        by_type[t] = by_type.get(t, 0) + 1
        if info.get("kind"):
            by_kind[info["kind"]] = by_kind.get(info["kind"], 0) + 1
        for tag in info.get("tags") or ():
            by_tag[tag] = by_tag.get(tag, 0) + 1
        inst = info.get("instance")
        if inst:
            slot = by_instance.setdefault(inst, {"notes": 0, "sessions": 0, "messages": 0})
            slot["sessions" if t == "session" else "notes"] += 1
        for mi, n in (info.get("msg_instances") or {}).items():
            slot = by_instance.setdefault(mi, {"notes": 0, "sessions": 0, "messages": 0})
            slot["messages"] += n
        for role, n in (info.get("msg_roles") or {}).items():
            by_role[role] = by_role.get(role, 0) + n
        if t == "session":
            sessions.append((path, rec))
    total_messages = sum(rec[4].get("messages", 0) for _, rec in sessions)

    def brief(path, rec, **extra):
        info = _info(path, rec)
        return {"id": info.id, "title": info.title, "path": path,
                "created": info.created.isoformat() if info.created else None, **extra}

    oldest = None
    dated = [(rec[4].get("created") or rec[4].get("first_message"), p, rec) for p, rec in sessions]
    dated = [d for d in dated if d[0] is not None]
    if dated:
        _, p, rec = min(dated, key=lambda d: (d[0], d[1]))
        oldest = brief(p, rec)
    most = None
    if sessions:
        p, rec = max(sessions, key=lambda s: (s[1][4].get("messages", 0), s[0]))
        most = brief(p, rec, messages=rec[4].get("messages", 0))
    desc = lambda d: dict(sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))  # noqa: E731
    return {
        "total_notes": sum(by_type.values()),
        "total_sessions": len(sessions),
        "total_messages": total_messages,
        "avg_messages_per_session": round(total_messages / len(sessions), 2) if sessions else 0.0,
        "storage_size_mb": round(total_bytes / (1024 * 1024), 3),
        "oldest_session": oldest,
        "most_active_session": most,
        "by_type": desc(by_type),
        "by_kind": desc(by_kind),
        "by_tag": desc(by_tag),
        "by_instance": dict(sorted(by_instance.items())),
        "messages_by_role": desc(by_role),
        "unparseable_notes": unparseable,
        "skipped_files": skipped,
        "index_size_mb": round(idx.size_bytes() / (1024 * 1024), 3),
    }


def refresh(vault) -> ReconcileReport:
    """Bring the index up to date now (what every query does first); for a
    watcher that wants results ready before the next query."""
    return _index(vault)[1]


def rebuild(vault, progress: Callable[[int, int], None] | None = None,
            procs: int | None = None) -> ReconcileReport:
    """Re-index the whole vault into a new index and switch to it when done."""
    return Index.for_vault(vault).rebuild(progress=progress, procs=procs)


def status(vault) -> dict[str, Any]:
    """Where the index is, what it holds, and what it skipped (reconciles first)."""
    idx, report = _index(vault)
    catalog = idx.catalog()
    files = catalog["files"]
    docs, deleted = idx.doc_count()
    skipped = {p: rec[4].get("error") for p, rec in files.items() if rec[4].get("status") == "skipped"}
    unparseable = {p: rec[4].get("error") for p, rec in files.items()
                   if rec[4].get("status") == "unparseable"}
    return {
        "path": str(idx.layout.dir),
        "engine": catalog.get("engine"),
        "schema_version": catalog.get("schema"),
        "files": len(files) - len(skipped),
        "documents": docs,
        "deleted_documents": deleted,
        "size_mb": round(idx.size_bytes() / (1024 * 1024), 3),
        "built": dt.datetime.fromtimestamp(catalog["built"], dt.timezone.utc).isoformat(),
        "updated": dt.datetime.fromtimestamp(catalog["updated"], dt.timezone.utc).isoformat(),
        "skipped": skipped,
        "unparseable": unparseable,
        "warnings": report.warnings,
        "reconcile": {"added": report.added, "changed": report.changed,
                      "deleted": report.deleted, "renamed": report.renamed,
                      "rebuilt": report.rebuilt, "seconds": round(report.seconds, 4)},
    }
