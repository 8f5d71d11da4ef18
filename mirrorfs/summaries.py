"""Summaries of a conversation's older turns, kept as Markdown notes any instance reuses.

`summaries/<session id>.md` (format in docs/format.md) holds the summary of a
session's messages up to and including the message ``through``, with
``source_sha256``: the SHA-256 of those messages as stored. A context built by
any instance for that session reuses the note while that hash still matches,
so only the first instance pays for the summary, and a person can read and
correct it in Obsidian (the next fold starts from their text). When the
session has grown past what the budget can show, the turns after ``through``
are folded into the summary by one more call; the tail shown verbatim is cut
to about a third of the space so the next few turns fit without another call.
A note that no longer matches (a summarised message was edited) goes to the
vault's trash before a new one is made, so nothing a person wrote is lost.

Summaries are made from what a locked vault shows (secret sections as
placeholders), whatever the caller asked for: the note is clear text.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from mirrorfs import note as notes
from mirrorfs import pricing, usage
from mirrorfs.clock import timestamp
from mirrorfs.context_sources import Turn
from mirrorfs.errors import ConflictError, MirrorfsError, ProviderConfigError
from mirrorfs.layout import SUMMARIES_DIR
from mirrorfs.overview import soul_name
from mirrorfs.session import wikilink
from mirrorfs.storage import sha256

if TYPE_CHECKING:
    from mirrorfs.llm import Provider
    from mirrorfs.messages import Message
    from mirrorfs.session import Session
    from mirrorfs.vault import Vault

# The verbatim tail after a fold takes about this share of the space, so several turns fit before the next fold.
TAIL_SHARE = 0.35
SUMMARY_MAX_TOKENS = 600
SUMMARY_MIN_TOKENS = 120

FOLD_SYSTEM = (
    "You keep a running summary of a conversation between a person and {name}, so that {name} can continue "
    "it later without the full transcript. Write Markdown bullet points: facts learned, decisions, open "
    "questions, promises, names, dates and numbers. Keep everything the existing summary says unless the new "
    "turns correct it; a person may have edited it, and their wording wins. No preamble, no closing remarks. "
    "At most {words} words."
)


def source_sha256(messages: Sequence["Message"], through: str) -> str | None:
    """The hash of the messages up to and including ``through`` as stored (None when it is not there)."""
    h = hashlib.sha256()
    for m in messages:
        h.update(f"{m.id}\x00{m.role}\x00{m.content}\x00".encode("utf-8"))
        if m.id == through:
            return h.hexdigest()
    return None


@dataclass
class Summary:
    """A summary note as read from the vault."""

    path: str
    sha256: str
    body: str
    meta: dict[str, Any]

    @property
    def through(self) -> str:
        return str(self.meta.get("through") or "")

    @property
    def messages(self) -> int:
        try:
            return int(self.meta.get("messages") or 0)
        except (TypeError, ValueError):
            return 0

    @property
    def made_by(self) -> str:
        return str(self.meta.get("updated_by") or self.meta.get("instance") or "someone")


def summary_path(session: "Session") -> str:
    return f"{SUMMARIES_DIR}/{session.id}.md"


def load(vault: "Vault", session: "Session") -> Summary | None:
    """The summary note of ``session``, if there is one and it is about this session."""
    full = vault.root / summary_path(session)
    try:
        data = notes.read_bytes(full)
    except (MirrorfsError, OSError):
        return None
    note = notes.parse(data, summary_path(session))
    if note.error or note.meta.get("type") != "summary":
        return None
    if str(note.meta.get("source_path") or session.relpath) != session.relpath:
        return None
    return Summary(summary_path(session), sha256(data), note.body.strip(), dict(note.meta))


def _covered(summary: Summary, stored: Sequence["Message"], ids: list[str]) -> int:
    """How many of the turns ``ids`` the summary covers (0 when it no longer matches the session)."""
    if summary.through in ids and source_sha256(stored, summary.through) == summary.meta.get("source_sha256"):
        return ids.index(summary.through) + 1
    return 0


@dataclass
class Plan:
    """What the context shows of a long session: the summary (if any) and ``turns[covered:]``."""

    summary: Summary | None
    covered: int
    made: bool = False
    reused: bool = False
    notes: list[str] = field(default_factory=list)


def _boundary(turns: Sequence[Turn], start: int, tail_room: int, room: int, cost: Callable[[str], int]) -> int:
    """Where the verbatim tail starts after a fold: on a user turn after ``start``, the longest tail
    within ``tail_room``, else the shortest within ``room``; ``len(turns)`` when none fits."""
    users = [i for i in range(start + 1, len(turns)) if turns[i].role == "user"]
    costs = {i: sum(cost(t.text) for t in turns[i:]) for i in users}
    within = [i for i in users if costs[i] <= tail_room]
    if within:
        return within[0]
    within = [i for i in users if costs[i] <= room]
    return within[-1] if within else len(turns)


def _fold_messages(vault: "Vault", existing: str | None, fold: Sequence[Turn], words: int) -> list[dict]:
    transcript = "\n\n".join(f"{t.role}: {t.text}" for t in fold)
    return [{"role": "system", "content": FOLD_SYSTEM.format(name=soul_name(vault), words=words)},
            {"role": "user", "content": f"Existing summary:\n{existing or '(none yet)'}\n\n"
                                        f"Turns to fold in:\n\n{transcript}"}]


def _cost_usd(completion) -> float | None:
    try:
        return pricing.cost(completion.usage, completion.model, completion.provider)
    except ProviderConfigError:
        return None


def _write(vault: "Vault", session: "Session", old: Summary | None, text: str, through: str, count: int,
           digest: str, completion, stale: Summary | None = None) -> Summary:
    """Write the new summary over ``old`` (compare-and-swap), or as a new note; a ``stale`` note (one
    that no longer matches the session) goes to the trash first, so a person's edits are never lost."""
    path = summary_path(session)
    calls = usage.message_metadata(completion.usage, completion.model, completion.provider, _cost_usd(completion))
    before = (old or stale).meta if (old or stale) else {}
    values = {"source_sha256": digest, "through": through, "messages": count, "model": completion.model,
              "provider": completion.provider, "summary_calls": int(before.get("summary_calls") or 0) + 1,
              **usage.running_totals(before, {**calls, "calls": 1})}
    if stale is not None:
        vault.trash(stale.path)
    body = text.strip() + "\n"
    if old is None:
        now = timestamp()
        meta = {"id": secrets.token_hex(6), "type": "summary", "title": f"Summary of {session.title}",
                "derived": True, "source": wikilink(session.id), "source_path": session.relpath, **values,
                "tags": ["summary"], "created": now, "updated": now, "instance": vault.instance,
                "updated_by": vault.instance}
        data = notes.new(meta, body).render()
        vault.store.create(vault.resolve(path), data)
        vault.touched(path, "write")
        return Summary(path, sha256(data), body.strip(), meta)

    def change(n: notes.Note) -> notes.Note:
        if n.body.strip() != old.body:
            raise ConflictError(path, f"{path} was edited while a new summary was made; kept the edit")
        return n.update({**values, "updated": timestamp(), "updated_by": vault.instance}).with_body(
            n.newline + body)

    written = vault.edit(path, change)
    vault.touched(path, "write")
    return Summary(path, sha256(written.render()), body.strip(), dict(written.meta))


def plan(vault: "Vault", session: "Session", turns: Sequence[Turn], room: int, cost: Callable[[str], int],
         provider: "Provider | None" = None) -> Plan:
    """Decide (and, with a provider, make) the summary that lets ``turns`` fit in ``room`` tokens.

    ``turns`` must be the session's turns as a locked vault shows them, oldest
    first, without the message being answered. ``cost`` gives the tokens of a
    turn's text in the prompt.
    """
    stored = session.get_messages()
    ids = [t.id for t in turns]
    # The note on disk and, when it still matches the session, the summary to build on.
    on_disk = existing = load(vault, session)
    covered, out = 0, Plan(None, 0)
    if existing is not None:
        covered = _covered(existing, stored, ids)
        if covered:
            out.summary, out.covered = existing, covered
        else:
            out.notes.append(f"{existing.path} no longer matches the session (a summarised message changed or "
                             "is gone): it is not used")
            existing = None
    shown_cost = (cost(existing.body) if existing else 0) + sum(cost(t.text) for t in turns[covered:])
    if shown_cost <= room:
        out.reused = existing is not None
        return out
    b = _boundary(turns, covered, int(room * TAIL_SHARE), room, cost)
    if provider is None:
        out.notes.append(f"{b - covered} older messages would be folded into {summary_path(session)} by the "
                         "provider; no provider here (a dry run), so only the newest turns that fit are shown")
        out.reused = existing is not None
        return out
    max_tokens = max(SUMMARY_MIN_TOKENS, min(SUMMARY_MAX_TOKENS, int(room * (1 - TAIL_SHARE) * 0.8)))
    completion = provider.complete(_fold_messages(vault, existing.body if existing else None, turns[covered:b],
                                                  words=int(max_tokens * 0.7)), max_tokens=max_tokens)
    through = turns[b - 1].id
    digest = source_sha256(stored, through)
    count = next((i for i, m in enumerate(stored, 1) if m.id == through), len(stored))
    try:
        made = _write(vault, session, existing, completion.text, through, count, digest or "", completion,
                      stale=on_disk if existing is None else None)
    except ConflictError:
        # Another instance (or a person) wrote the note meanwhile: theirs is as good, and is kept.
        again = load(vault, session)
        out.notes.append(f"{summary_path(session)} was written by someone else meanwhile; it is used as it is")
        if again is not None and _covered(again, stored, ids):
            out.summary, out.covered = again, _covered(again, stored, ids)
        return out
    out.summary, out.covered, out.made = made, b, True
    return out

