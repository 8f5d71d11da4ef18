"""Where the context builder's items come from: SOUL.md, the other instances, this session, recall.

Every text that leaves here is what a reader of a locked vault sees (secret
sections as placeholders), unless the vault is unlocked and the caller asked
for locked sections. Nothing here marks reflections read or writes anything.

**The recall seam.** `relevant` finds candidates through a named *recaller*
(`RECALLERS`; the vault setting ``context.recall`` chooses, default
``lexical``: BM25 recall over memory notes plus a search over every
instance's session messages, both through the running watcher when there is
one). Semantic or hybrid recall (the embed work) plugs in with
`register_recaller("hybrid", function)`; a recaller takes (vault, query,
limit) and returns `Candidate`s with their text already loaded.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from mirrorfs import crypto, lookup
from mirrorfs import messages as msgs
from mirrorfs import note as notes
from mirrorfs.bridge import ago
from mirrorfs.clock import local_minute
from mirrorfs.clock import now as local_now
from mirrorfs.errors import InvalidValueError, LockedError, MirrorfsError, QueryError
from mirrorfs.layout import SOUL_FILE
from mirrorfs.overview import effective_state, soul_name
from mirrorfs.storage import sha256

if TYPE_CHECKING:
    from mirrorfs.session import Session
    from mirrorfs.vault import Vault

ACTIVITY_DAYS = 3
ACTIVITY_LINES = 12
RECALL_LIMIT = 8
# Two texts sharing this much of their word trigrams say the same thing.
NEAR_DUPLICATE = 0.6
_WORD = re.compile(r"\w+", re.UNICODE)
# Words of three letters or more make the OR-query over messages (shorter ones are mostly noise).
_MIN_QUERY_WORD = 2
_MAX_QUERY_WORDS = 16
# Words a question is made of rather than about: matching them finds everything, slowly.
_FUNCTION_WORDS = frozenset("""
a about above after again all also am an and any are as at be because been before being below between both but
by can could did do does doing down during each few for from further had has have having he her here hers him his
how i if in into is it its just me more most my no nor not now of off on once only or other our out over own same
she should so some such than that the their them then there these they this those through to too under until up
very was we were what when where which while who whom why will with would you your yours tell know think please
""".split())


def shown(vault: "Vault", text: str, include_locked: bool) -> str:
    """``text`` as it may enter a prompt: secret sections as placeholders unless unlocked *and* asked."""
    if include_locked:
        if not vault.unlocked:
            raise LockedError("locked sections were asked for but the vault is locked: unlock it first "
                              "(--passphrase-file PATH or MIRRORFS_PASSPHRASE)")
        return vault.readable(text)
    return crypto.lock_placeholder(text)


@dataclass
class Source:
    """A text from one file, ready to become an item."""

    kind: str
    path: str | None
    sha256: str | None
    title: str
    text: str
    score: float | None = None
    why: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


# -- pinned ----------------------------------------------------------------------------


def soul(vault: "Vault", include_locked: bool) -> Source | None:
    """SOUL.md with a line that says who is speaking; None when the vault has none."""
    path = vault.root / SOUL_FILE
    try:
        data = notes.read_bytes(path)
    except (MirrorfsError, OSError):
        return None
    note = notes.parse(data, SOUL_FILE)
    body = shown(vault, note.body, include_locked).strip()
    if not body:
        return None
    name = soul_name(vault)
    text = f"You are {name}, speaking as your instance `{vault.instance}`. This is SOUL.md, who you are:\n\n{body}"
    return Source("soul", SOUL_FILE, sha256(data), "SOUL.md", text, why="pinned: who you are (SOUL.md)")


def _card_line(card, now: dt.datetime) -> str:
    data = card.to_dict()
    state = effective_state(data) or "unknown"
    parts = [f"{state}, seen {ago(card.last_seen, now)}"]
    if card.status and card.status not in (state, "active", "idle"):
        parts.append(f"status: {card.status}")
    intents = [i["text"] for i in data["intention_items"]]
    if intents:
        parts.append("intends: " + "; ".join(intents))
    return f"- {card.name} ({'; '.join(parts)})"


def activity(vault: "Vault", days: float = ACTIVITY_DAYS, limit: int = ACTIVITY_LINES,
             now: dt.datetime | None = None) -> Source | None:
    """What the other instances (and people) did in the last ``days``: their cards and the latest
    reflections, newest first, with their age. Reads reflections without marking them read."""
    now = now or local_now()
    # Gone instances too: what they said they would do is still worth knowing.
    cards = [c for c in vault.instances.list(now=now) if c.name != vault.instance]
    found = vault.reflections(since=now - dt.timedelta(days=days))
    if not cards and not found:
        return None
    lines = [f"## What your other instances did lately (last {days:g} days; now {local_minute(now)})", ""]
    lines += [_card_line(c, now) for c in cards]
    newest = list(reversed(found))[:limit]
    for r in newest:
        when = f"{ago(r.time, now)}: " if r.time else ""
        lines.append(f"- {when}{r.line()}")
    if len(found) > len(newest):
        lines.append(f"- … and {len(found) - len(newest)} earlier changes")
    text = "\n".join(lines)
    who = sorted({r.instance for r in found} | {c.name for c in cards})
    why = (f"pinned: what {', '.join(who)} did lately ({len(newest)} of {len(found)} changes in "
           f"{days:g} days, {len(cards)} instance cards)")
    return Source("activity", None, sha256(text.encode("utf-8")), "Other instances", text, why=why,
                  meta={"changes": len(found), "instances": who})


# -- this session --------------------------------------------------------------------------


@dataclass
class Turn:
    """One message of the session being continued."""

    id: str
    role: str
    instance: str
    time: dt.datetime
    text: str
    index: int


def turns(vault: "Vault", session: "Session | None", include_locked: bool,
          exclude: frozenset[str] = frozenset(), messages: "list[msgs.Message] | None" = None) -> list[Turn]:
    """The user and assistant messages of ``session`` (others' roles are not conversation turns);
    ``messages`` when the caller has read them already."""
    if session is None:
        return []
    out = []
    for i, m in enumerate(session.get_messages() if messages is None else messages):
        if m.role not in ("user", "assistant") or m.id in exclude:
            continue
        text = shown(vault, m.content, include_locked).strip()
        if text:
            out.append(Turn(m.id, m.role, m.instance, m.time, text, i))
    return out


# -- relevant: the recall seam --------------------------------------------------------------

Recaller = Callable[["Vault", str, int], list[Source]]
RECALLERS: dict[str, Recaller] = {}


def register_recaller(name: str, recaller: Recaller) -> None:
    """Make ``recaller`` available as the vault setting ``context.recall: name``."""
    RECALLERS[name] = recaller


def recall_method(vault: "Vault") -> str:
    """The vault's `context.recall` setting; else hybrid once this device has embeddings, else lexical."""
    settings = vault.config.get("context")
    method = settings.get("recall") if isinstance(settings, dict) else None
    return str(method or ("hybrid" if vault.has_embeddings() else "lexical"))


def query_words(text: str, min_length: int = 1) -> list[str]:
    """The words of a question as search terms: lowercase (so none is an operator), without the
    punctuation a question carries (`tea?` would be a wildcard) and, when anything else is left,
    without function words (what, did, about...), each once."""
    words: list[str] = []
    for w in _WORD.findall(text.lower()):
        if len(w) >= min_length and w not in words:
            words.append(w)
    content = [w for w in words if w not in _FUNCTION_WORDS]
    return (content or words)[:_MAX_QUERY_WORDS]


def or_query(text: str) -> str | None:
    """The words of ``text`` joined by OR, or None."""
    return " OR ".join(query_words(text, _MIN_QUERY_WORD)) or None


def _memory_sources(vault: "Vault", hits: list[dict], limit: int) -> list[Source]:
    found = [h for h in hits if h.get("doc") == "note" and h.get("type") == "memory"][:limit]
    best = max((float(h.get("score") or 0) for h in found), default=0.0) or 1.0
    out = []
    for hit in found:
        try:
            note, snap = vault.read(hit["path"])
        except MirrorfsError:
            continue
        score = round(float(hit.get("score") or 0) / best, 4)
        title = str(note.meta.get("title") or hit.get("title") or hit["path"])
        when = local_minute(note.meta.get("updated") or note.meta.get("created")) if note.meta else "?"
        out.append(Source("memory", hit["path"], snap.sha, title, note.body, score=score,
                          why=f"relevant: memory, score {score:.2f}",
                          meta={"updated": when, "instance": note.meta.get("instance")}))
    return out


def _message_sources(vault: "Vault", hits: list[dict], limit: int) -> list[Source]:
    hits = hits[:limit]
    best = max((float(h.get("score") or 0) for h in hits), default=0.0) or 1.0
    files: dict[str, tuple[str | None, str, list[msgs.Block]]] = {}
    out = []
    for hit in hits:
        path = hit.get("path")
        if path not in files:
            try:
                data = notes.read_bytes(vault.root / path)
                body = notes.parse(data, path).body
                files[path] = (sha256(data), body, msgs.blocks(body))
            except (MirrorfsError, OSError):
                files[path] = (None, "", [])
        digest, body, blocks = files[path]
        at = next((i for i, b in enumerate(blocks) if b.id == hit.get("message_id")), None)
        if at is None:
            continue
        m = msgs.message_of(body, blocks[at])
        pair = [m]
        # A question is worth little without its answer.
        if m.role == "user" and at + 1 < len(blocks):
            answer = msgs.message_of(body, blocks[at + 1])
            if answer.role == "assistant":
                pair.append(answer)
        score = round(0.8 * float(hit.get("score") or 0) / best, 4)
        out.append(Source("message", path, digest, str(hit.get("session_title") or hit.get("session") or path),
                          "\n\n".join(f"{p.role}: {p.content.strip()}" for p in pair), score=score,
                          why=f"relevant: {m.role} message by {m.instance} in another conversation, "
                              f"score {score:.2f}",
                          meta={"message_id": m.id, "instance": m.instance, "session": hit.get("session"),
                                "time": local_minute(m.time), "ids": [p.id for p in pair]}))
    return out


def lexical(vault: "Vault", query: str, limit: int) -> list[Source]:
    """BM25 over the memory notes and over every instance's messages for the question's words (any
    of them), through the running watcher when there is one; best first, memories before messages
    among equals.

    Two searches: the notes unfiltered (a type filter costs the index more than the search; the
    memory notes are picked from the hits) and the messages alone (among all notes they would
    rank last, their texts being short). Recency does not weigh in (yet): a semantic or hybrid
    recaller may do better.
    """
    q = or_query(query)
    if q is None:
        return []
    try:
        # No snippets: the sources below read the notes and messages themselves.
        notes_hits = lookup.search(vault, q, limit=limit * 4, mode="keyword", snippets=False)["hits"]
        # The type in the query, not as a filter: the index intersects it faster than it filters.
        message_hits = lookup.search(vault, f"({q}) AND type:message", limit=limit, mode="keyword",
                                     snippets=False)["hits"]
    except QueryError:
        return []
    found = _memory_sources(vault, notes_hits, limit) + _message_sources(vault, message_hits, limit)
    found.sort(key=lambda s: s.score or 0.0, reverse=True)
    return found


def hybrid(vault: "Vault", query: str, limit: int) -> list[Source]:
    """What was meant, not only the words (docs/semantic.md): hybrid search over the memory notes
    and over every instance's messages, each ranked by meaning and words fused; best first."""
    try:
        memory_hits = lookup.search(vault, query, types=["memory"], limit=limit, mode="hybrid")["hits"]
        message_hits = lookup.search(vault, query, types=["message"], limit=limit, mode="hybrid")["hits"]
    except QueryError:
        return []
    found = _memory_sources(vault, memory_hits, limit) + _message_sources(vault, message_hits, limit)
    found.sort(key=lambda s: s.score or 0.0, reverse=True)
    return found


register_recaller("lexical", lexical)
register_recaller("hybrid", hybrid)


def relevant(vault: "Vault", query: str, limit: int = RECALL_LIMIT, method: str | None = None) -> list[Source]:
    """Candidates for ``query`` from the vault's recaller, best first (text not yet made safe)."""
    name = method or recall_method(vault)
    recaller = RECALLERS.get(name)
    if recaller is None:
        raise InvalidValueError(f"unknown recall method {name!r} (context.recall in .mirrorfs/config.yaml); "
                                f"known: {', '.join(sorted(RECALLERS))}")
    return recaller(vault, query, limit)


# -- near-duplicates ---------------------------------------------------------------------------


def shingles(text: str) -> frozenset:
    words = _WORD.findall(text.lower())
    if len(words) < 3:
        return frozenset(words)
    return frozenset(zip(words, words[1:], words[2:]))


def near_duplicate(a: frozenset, b: frozenset, threshold: float = NEAR_DUPLICATE) -> bool:
    """True when two shingle sets overlap by ``threshold`` of the smaller one (one repeats the other)."""
    if not a or not b:
        return False
    return len(a & b) / min(len(a), len(b)) >= threshold
