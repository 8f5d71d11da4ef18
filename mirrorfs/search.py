"""Search, recall, similar notes and statistics over a vault.

`search` and `recall` ask the running watcher first (`mirrorfs watch` keeps
the index open and fresh); when none serves this vault they answer here
(`search_local`, `recall_local`), first making the index match the files (a
cheap stat pass, see mirrorfs.index), so results are never stale either way.
Every other function answers here. Query syntax: docs/search.md.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from mirrorfs import note as note_mod
from mirrorfs import recent as recent_log
from mirrorfs import watch_client
from mirrorfs.clock import from_unix, parse_time
from mirrorfs.crypto import strip_sections
from mirrorfs.errors import InvalidValueError, NotFoundError, QueryError
from mirrorfs.results import NoteInfo, ReconcileReport, SearchHit, SearchResults
from mirrorfs.snippets import SNIPPET_CHARS, NoteTexts, lead

if TYPE_CHECKING:
    from mirrorfs.index import Index, RawHit


def open_index(vault) -> "Index":
    """The (cached, per process) index of *vault*."""
    # Whoosh takes a third of a second to import; a search the watcher answers needs none of it.
    from mirrorfs.index import Index

    return Index.for_vault(vault)


def _index(vault, progress=None, reconcile: bool = True) -> tuple["Index", ReconcileReport]:
    idx = open_index(vault)
    report = idx.ensure(progress=progress) if reconcile else ReconcileReport()
    return idx, report


def texts_for(vault, idx: "Index", texts: dict[str, str] | None = None) -> NoteTexts:
    """The snippet texts of one search (see NoteTexts)."""
    return NoteTexts(vault.root, idx.max_bytes, idx.catalog()["files"], texts)


def _text(raw: "RawHit", texts: NoteTexts) -> str:
    f = raw.fields
    if f.get("type") == "message":
        return texts.message(f["path"], f.get("msg", ""), f.get("at"))
    return texts.body(f["path"], f)


def make_hit(raw: "RawHit", idx: "Index", texts: NoteTexts, snippets: bool = True,
             terms: frozenset[str] = frozenset()) -> SearchHit:
    """A SearchHit of an index hit, with its snippet marking *terms*."""
    f = raw.fields
    doc = "message" if f.get("type") == "message" else "note"
    snippet = ""
    if snippets:
        text = _text(raw, texts)
        snippet = idx.highlight(text, terms, chars=SNIPPET_CHARS) if terms else ""
        if not snippet:
            snippet = lead(text)
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
        created=from_unix(f.get("created_at")),
        updated=from_unix(f.get("updated_at")),
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


def search_scope(types: Iterable[str] | None, sessions: bool) -> tuple[list[str] | None, bool]:
    """(note types, whether messages are wanted) of a search's *types* and *sessions*."""
    types = [t.lower() for t in types] if types else None
    messages = sessions and (types is None or "session" in types or "message" in types)
    note_types = [t for t in types if t != "message"] if types else None
    if types and not note_types:
        note_types = ["-none-"]
    return note_types, messages


def ask_watcher(vault, op: str, args: dict, hit: type[SearchHit] | None = None) -> SearchResults | None:
    """The running watcher's results (as *hit* objects), or None when no watcher serves this vault here."""
    try:
        reply = watch_client.ask(vault.state_dir, op, args)
    except OSError:  # none listens, or it died or hung mid-answer: answer here
        return None
    return SearchResults.from_reply(reply, args.get("query", ""), hit)


def plain_keyword(mode: str | None, min_score: float | None, has_vectors: Callable[[], bool]) -> bool:
    """Whether a search is the keyword search of docs/search.md, with BM25 scores as they are:
    keyword mode with no threshold, or no mode while this device has no embeddings."""
    return min_score is None and (mode == "keyword" or mode is None and not has_vectors())


# A person's query is a few words; a megabyte of text took seconds to parse and held
# the watcher up. `similar` takes long texts (it keeps their key terms only).
MAX_QUERY_CHARS = 2000


def check_query(query: str) -> None:
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is {len(query):,} characters long; queries are limited to "
                         f"{MAX_QUERY_CHARS:,} (for a long text, use `mirrorfs similar`)")


def _listed(values: Iterable[str] | None) -> list[str] | None:
    return list(values) if values else None


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
    Answered by the running watcher when there is one (it needs no freshness
    pass: it applies every change as it happens), else here; *reconcile*
    False skips the freshness pass here. Raises QueryError for a malformed query.
    """
    check_query(query)
    args = dict(query=query, types=_listed(types), sessions=sessions, limit=limit, tags=_listed(tags),
                instances=_listed(instances), snippets=snippets, any_word=any_word)
    served = ask_watcher(vault, "search", args)
    if served is not None:
        return served
    return search_local(vault, reconcile=reconcile, **args)


def search_local(vault, query: str, types: Iterable[str] | None = None, sessions: bool = True,
                 limit: int | None = 20, tags: Iterable[str] | None = None,
                 instances: Iterable[str] | None = None, snippets: bool = True,
                 reconcile: bool = True, any_word: bool = False) -> SearchResults:
    """`search` answered in this process, never by a watcher (the watcher's own handler)."""
    if limit is not None and limit < 1:
        raise InvalidValueError("limit must be at least 1")
    idx = open_index(vault)
    q = idx.parse(query, any_word)  # a malformed query fails before any work
    idx, report = _index(vault, reconcile=reconcile)
    note_types, messages = search_scope(types, sessions)
    raws = idx.search(q, types=note_types, messages=messages, tags=tags,
                      instances=instances, limit=limit)
    texts = texts_for(vault, idx)
    terms = idx.query_terms(q) if snippets and raws else frozenset()
    return SearchResults((make_hit(r, idx, texts, snippets, terms) for r in raws), query, report)


def recall(vault, query: str, limit: int = 10, half_life_days: float = 30.0,
           recency_weight: float = 0.3, now: dt.datetime | None = None) -> SearchResults:
    """Memory notes for *query*, ranked by relevance plus recency.

    Any word of the query may match (more matching words rank higher), as
    suits a question in natural language.

    score = (1 - w) * bm25 / best_bm25 + w * 0.5 ** (age_days / half_life_days),
    with w = *recency_weight* and age from `updated` (else `created`).
    Answered by the running watcher when there is one, else here.
    """
    check_query(query)
    args = dict(query=query, limit=limit, half_life_days=half_life_days, recency_weight=recency_weight,
                now=now.isoformat() if now is not None else None)
    served = ask_watcher(vault, "recall", args)
    if served is not None:
        return served
    return recall_local(vault, query, limit, half_life_days, recency_weight, now)


def recall_local(vault, query: str, limit: int = 10, half_life_days: float = 30.0,
                 recency_weight: float = 0.3, now: dt.datetime | str | None = None,
                 reconcile: bool = True) -> SearchResults:
    """`recall` answered in this process; *now* may be an ISO time (as the watcher receives it)."""
    if limit < 1:
        raise InvalidValueError("limit must be at least 1")
    pool = search_local(vault, query, types=["memory"], sessions=False, limit=max(50, limit * 5),
                        snippets=False, any_word=True, reconcile=reconcile)
    now = parse_time(now) if now is not None else dt.datetime.now(dt.timezone.utc)
    best = max((h.score for h in pool), default=0.0) or 1.0
    for h in pool:
        when = h.updated or h.created
        age = max(0.0, (now - when).total_seconds() / 86400) if when else 10 * half_life_days
        recency = 0.5 ** (age / half_life_days)
        h.relevance = round(h.score / best, 4)
        h.score = round((1 - recency_weight) * h.score / best + recency_weight * recency, 4)
    pool.sort(key=lambda h: h.score, reverse=True)
    top = pool[:limit]
    idx = open_index(vault)
    texts = texts_for(vault, idx)
    terms = set(idx.analyze(re.sub(r"\w+:\S+", " ", query)))
    for h in top:
        body = texts.body(h.path, {"type": h.type})
        h.snippet = " ".join((idx.highlight(body, terms) or lead(body)).split())
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
    texts = texts_for(vault, idx)
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
        hit = make_hit(raw, idx, texts, True, frozenset(weight))
        hit.relevance = hit.score
        hit.score = round(share, 4)
        hits.append(hit)
    hits.sort(key=lambda h: (h.score, h.relevance or 0), reverse=True)
    return SearchResults(hits[:limit], text_or_path, report)


def session_search(session, text: str, case_sensitive: bool = False) -> list:
    """Messages of one session whose content contains *text* (a plain substring): `Session.search`."""
    return session.search(text, case_sensitive)


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


def rebuild(vault, progress: Callable[[int, int], None] | None = None,
            procs: int | None = None) -> ReconcileReport:
    """Re-index the whole vault into a new index and switch to it when done."""
    return open_index(vault).rebuild(progress=progress, procs=procs)


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
