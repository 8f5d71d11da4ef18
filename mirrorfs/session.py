"""Conversation sessions: one Markdown file per conversation, messages appended.

A persistent session lives at `sessions/<instance>/<date>-<slug>-<hex4>.md`, so
each instance owns the files it appends to and two devices rarely edit the same
file. An ephemeral session lives in this device's state folder and is dropped on
close unless it is saved into the vault.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from mirrorfs import export, ignore, storage, usage
from mirrorfs import messages as msgs
from mirrorfs import note as notes
from mirrorfs.clock import isoformat as _iso
from mirrorfs.clock import parse_since, time_or_none, timestamp
from mirrorfs.errors import InvalidValueError, NotFoundError, UnreadableNoteError
from mirrorfs.export import EXPORT_FORMATS as EXPORT_FORMATS
from mirrorfs.memory import normalise_tags
from mirrorfs.messages import Message
from mirrorfs.slug import slugify

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

SESSIONS_DIR = "sessions"
EPHEMERAL_DIR = "ephemeral"
PERSISTENCE = ("persistent", "ephemeral")
# A message appended within this many seconds of the session's last stamp is
# appended flat (the file is not rewritten); after it, the whole file is, and
# `updated` catches up. So `updated` lags the newest message by at most this.
FLAT_WINDOW = 60.0
STATUSES = ("open", "closed")

# Re-exported for readers of sessions (the index, conflict merges).
parse_messages = msgs.parse
__all__ = ["Session", "Sessions", "Message", "parse_messages"]


def wikilink(stem: str) -> str:
    return f"[[{stem}]]"


def link_target(value: Any) -> str | None:
    """`[[2026-11-20-foo-ab12|Foo]]` -> `2026-11-20-foo-ab12`."""
    if not value:
        return None
    text = str(value).strip()
    if text.startswith("[[") and text.endswith("]]"):
        text = text[2:-2]
    return text.split("|")[0].split("#")[0].rsplit("/", 1)[-1].removesuffix(".md") or None


class Session:
    """One conversation. Reads go to the file every time: it is the truth."""

    def __init__(self, vault: "Vault", path: Path, ephemeral: bool = False):
        self.vault = vault
        self.path = path
        self.ephemeral = ephemeral

    # -- reading -----------------------------------------------------------

    def read(self) -> notes.Note:
        if not self.path.is_file():
            raise NotFoundError(f"session {self.id} no longer exists")
        return notes.read_note(self.path)

    @property
    def id(self) -> str:
        return self.path.stem

    @property
    def meta(self) -> dict:
        return self.read().meta

    @property
    def title(self) -> str:
        return str(self.meta.get("title") or self.id)

    @property
    def status(self) -> str:
        return str(self.meta.get("status", "open"))

    @property
    def category(self) -> str | None:
        return self.meta.get("category")

    @category.setter
    def category(self, value: str | None) -> None:
        self._edit(lambda n: n.unset("category") if value is None else n.set("category", value))

    @property
    def tags(self) -> list[str]:
        return normalise_tags(self.meta.get("tags"))

    @property
    def relpath(self) -> str:
        if self.ephemeral:
            return f"(ephemeral)/{self.path.name}"
        return self.vault.relpath(self.path)

    def get_messages(self, limit: int | None = None, offset: int = 0) -> list[Message]:
        """Messages in file order; *offset*/*limit* page through them."""
        _, messages = msgs.parse(self.read().body)
        end = None if limit is None else offset + limit
        return messages[offset:end]

    def __len__(self) -> int:
        return len(self.get_messages())

    def to_dict(self, messages: bool = False) -> dict[str, Any]:
        note = self.read()
        _, found = msgs.parse(note.body)
        meta = note.meta
        data = {
            "id": self.id,
            "path": self.relpath,
            "title": str(meta.get("title") or self.id),
            "instance": meta.get("instance"),
            "status": meta.get("status", "open"),
            "persistence": "ephemeral" if self.ephemeral else "persistent",
            "category": meta.get("category"),
            "tags": normalise_tags(meta.get("tags")),
            "created": _iso(meta.get("created")),
            "updated": _iso(meta.get("updated")),
            "previous": link_target(meta.get("previous")),
            "next": link_target(meta.get("next")),
            "tokens": meta.get("tokens", 0),
            "message_count": len(found),
        }
        if messages:
            data["messages"] = [m.to_dict() for m in found]
        return data

    # -- writing -----------------------------------------------------------

    def _edit(self, change) -> notes.Note:
        def stamped(n: notes.Note) -> notes.Note:
            changed = change(n)
            return n if changed is n else self.vault.stamp(changed)

        return self.vault.edit_file(self.path, stamped)

    def add_message(self, role: str, content: str, secret: bool = False, **metadata: Any) -> Message:
        """Append a message; safe against concurrent appenders (re-read and re-apply).

        ``secret=True`` encrypts the whole content; otherwise its ```secret blocks
        are sealed. Either needs the vault unlocked (LockedError, nothing written).
        """
        msgs.check_role(role)
        msgs.check_content(content)
        # Sealed before anything is written: plaintext of a secret never reaches the disk.
        sealed = self.vault.seal_body(content).rstrip("\r\n") if secret else self.vault.seal_text(content)
        msg = msgs.make(role, sealed, self.vault.instance, **metadata)
        block_tokens = metadata.get("tokens")
        marker = (msgs.COMMENT_PREFIX + '{"id": "' + msg.id + '"').encode("utf-8")

        def append(data: bytes | None) -> bytes:
            if data is None:
                raise NotFoundError(f"session {self.id} no longer exists")
            note = notes.parse(data, self.relpath)
            note.check_editable()
            if marker.decode("utf-8") in note.body:
                return data  # already there: a retry after a swap that others built on
            body = note.body
            torn = msgs.torn_tail(body)
            if torn is not None:
                body = body[:torn]  # the first bytes of an append a crash cut short (never acknowledged)
            if body and not body.endswith("\n"):
                body += note.newline
            body += msgs.render(msg, note.newline)
            values: dict[str, Any] = {}
            if isinstance(block_tokens, int):
                values["tokens"] = int(note.meta.get("tokens") or 0) + block_tokens
            values.update(usage.running_totals(note.meta, metadata))
            data = self.vault.stamp(note.with_body(body), **values).render()
            if len(data) > storage.MAX_NOTE_BYTES:
                raise InvalidValueError(
                    f"{self.relpath} would grow to {len(data) / 2**20:.1f} MiB, over the "
                    f"{storage.MAX_NOTE_BYTES // 2**20} MiB limit for notes; nothing was written. Continue in a "
                    f"new session: mirrorfs session new TITLE --previous {self.id}")
            return data

        plain = block_tokens is None and not usage.running_totals({}, metadata)
        flat = plain and self.vault.store.append(self.path, lambda head, tail, size: self._flat_block(msg, head, tail),
                                                 lambda data: marker in data)
        if not flat:
            self.vault.store.update(self.path, append, append_only=True)
        if not self.ephemeral:
            self.vault.touched(self.relpath, "write")
        return msg

    def _flat_block(self, msg: Message, head: bytes, tail: bytes) -> bytes | None:
        """The bytes a flat append adds (see docs/format.md), or None for the whole-file path.

        Flat when the front matter needs no new values: it was stamped by this
        instance less than FLAT_WINDOW seconds ago and the message carries no
        token counts. Otherwise, and when the front matter does not parse or
        the end of the file looks torn, the whole-file path handles it.
        """
        close = head.find(b"\n---", 3)
        end = head.find(b"\n", close + 4) if close >= 0 else -1
        if end < 0:
            return None  # no front matter, or longer than the head
        try:
            note = notes.parse(head[: end + 1], self.relpath)
        except UnreadableNoteError:
            return None
        if note.error is not None or note.meta.get("type") not in (None, "session"):
            return None
        stamped = time_or_none(note.meta.get("updated"))
        if note.meta.get("updated_by") != self.vault.instance or stamped is None or \
                not 0 <= (timestamp() - stamped).total_seconds() < FLAT_WINDOW:
            return None
        text = tail.decode("utf-8", "ignore")
        if msgs.torn_tail(text) is not None:
            return None
        lead = note.newline if tail and not tail.endswith(b"\n") else ""
        return (lead + msgs.render(msg, note.newline)).encode("utf-8")

    def get_token_usage(self) -> dict[str, Any]:
        """Tokens and estimated cost of this session's AI calls (see mirrorfs.usage):
        ``prompt_tokens``, ``completion_tokens``, ``total_tokens``, ``estimated_cost_usd``
        (None when a model had no price: unknown, not 0), ``calls``, ``unpriced_calls``, ..."""
        return usage.session_usage(self.get_messages())

    def add_tag(self, tag: str) -> None:
        tag = tag.lstrip("#")
        self._edit(lambda n: n if tag in normalise_tags(n.meta.get("tags")) else n.set("tags", normalise_tags(n.meta.get("tags")) + [tag]))

    def remove_tag(self, tag: str) -> None:
        tag = tag.lstrip("#")

        def change(n: notes.Note) -> notes.Note:
            tags = normalise_tags(n.meta.get("tags"))
            if tag not in tags:
                return n
            return n.set("tags", [t for t in tags if t != tag])

        self._edit(change)

    def close(self, keep: bool = False) -> "Session | None":
        """Close the session. An ephemeral one is discarded unless *keep* saves it."""
        if self.ephemeral:
            if keep:
                saved = self.persist()
                saved.close()
                return saved
            snap = storage.read(self.path)
            if snap.exists:
                self.vault.store.delete(self.path, snap.sha)
            return None
        self._edit(lambda n: n.set("status", "closed"))
        return self

    def persist(self) -> "Session":
        """Move an ephemeral session into the vault as a persistent one."""
        if not self.ephemeral:
            return self
        snap = storage.read(self.path)
        note = notes.parse(snap.data, self.relpath).set("persistence", "persistent")
        target = self.vault.sessions.folder_of(self.vault.instance) / self.path.name
        self.vault.store.create(target, note.render())
        self.vault.store.delete(self.path, snap.sha)
        return Session(self.vault, target)

    def delete(self, purge: bool = False) -> Path | None:
        """Move the session to the trash (or delete it with *purge*)."""
        if self.ephemeral:
            self.close()
            return None
        return self.vault.trash(self.path, purge=purge)

    def link_next(self, other: "Session") -> None:
        """Make *other* follow this session (both files record the link)."""
        self._edit(lambda n: n.set("next", wikilink(other.id)))
        other._edit(lambda n: n.set("previous", wikilink(self.id)))

    @property
    def previous(self) -> "Session | None":
        target = link_target(self.meta.get("previous"))
        return self.vault.sessions.load(target) if target else None

    @property
    def next(self) -> "Session | None":
        target = link_target(self.meta.get("next"))
        return self.vault.sessions.load(target) if target else None

    def search(self, text: str, case_sensitive: bool = False) -> list[Message]:
        """Messages of this session whose content contains *text* (a plain substring)."""
        if not text:
            raise InvalidValueError("search text must not be empty")
        needle = text if case_sensitive else text.casefold()
        return [m for m in self.get_messages() if needle in (m.content if case_sensitive else m.content.casefold())]

    def export(self, format: str = "markdown") -> str:
        """The session as json, markdown, txt or mirrordna (see docs/format.md)."""
        return export.export_session(self, format)

    def __repr__(self) -> str:
        return f"<Session {self.id}>"



class Sessions:
    """The sessions of a vault."""

    def __init__(self, vault: "Vault"):
        self.vault = vault

    @property
    def folder(self) -> Path:
        return self.vault.root / SESSIONS_DIR

    @property
    def ephemeral_folder(self) -> Path:
        path = self.vault.state_dir / EPHEMERAL_DIR
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def folder_of(self, instance: str) -> Path:
        return self.folder / instance

    def create(
        self,
        title: str,
        persistence: str = "persistent",
        category: str | None = None,
        tags: list[str] | tuple[str, ...] = (),
        previous: str | None = None,
        **extra: Any,
    ) -> Session:
        """Start a session; *previous* links it after an existing one."""
        if persistence not in PERSISTENCE:
            raise InvalidValueError(f"unknown persistence {persistence!r}: use persistent or ephemeral")
        if not title or not title.strip():
            raise InvalidValueError("a session needs a title")
        before = self.load(previous) if previous else None
        created = timestamp()
        ephemeral = persistence == "ephemeral"
        folder = self.ephemeral_folder if ephemeral else self.folder_of(self.vault.instance)
        for _ in range(100):
            stem = f"{created:%Y-%m-%d}-{slugify(title, 48)}-{secrets.token_hex(2)}"
            path = folder / f"{stem}.md"
            if not path.exists():
                break
        meta = {
            "id": stem,
            "type": "session",
            "title": title.strip(),
            "instance": self.vault.instance,
            "status": "open",
            "persistence": persistence,
            "category": category,
            "tags": normalise_tags(list(tags)) or None,
            "created": created,
            "updated": created,
            "updated_by": self.vault.instance,
            "previous": wikilink(before.id) if before else None,
            **extra,
        }
        data = notes.new(meta, "").render()
        self.vault.store.create(path, data)
        session = Session(self.vault, path, ephemeral=ephemeral)
        if before is not None:
            before._edit(lambda n: n.set("next", wikilink(stem)))
        if not ephemeral:
            self.vault.touched(session.relpath, "write")
        return session

    def paths(self) -> Iterator[Path]:
        if self.folder.is_dir():
            yield from ignore.inside(self.vault.root, sorted(self.folder.glob("*/*.md")))

    def load(self, ref: str) -> Session:
        """A session by id (file stem), unique id prefix, or path."""
        ref = str(ref).strip()
        if not ref:
            raise NotFoundError("no session id given")
        if ref.endswith(".md") or "/" in ref:
            return Session(self.vault, self._session_file(ref))
        exact = ignore.inside(self.vault.root, self.folder.glob(f"*/{ref}.md")) if self.folder.is_dir() else []
        if exact:
            return Session(self.vault, exact[0])
        private = self.ephemeral_folder / f"{ref}.md"
        if private.is_file():
            return Session(self.vault, private, ephemeral=True)
        candidates = [p for p in self.paths() if p.stem.startswith(ref)]
        candidates += [p for p in self.ephemeral_folder.glob(f"{ref}*.md")]
        if len(candidates) == 1:
            p = candidates[0]
            return Session(self.vault, p, ephemeral=p.parent == self.ephemeral_folder)
        if len(candidates) > 1:
            raise NotFoundError(
                f"session id {ref!r} is ambiguous: " + ", ".join(p.stem for p in candidates[:5])
            )
        # A renamed file keeps its id in the front matter.
        for p in self.paths():
            try:
                if notes.read_note(p).meta.get("id") == ref:
                    return Session(self.vault, p)
            except UnreadableNoteError:
                continue
        raise NotFoundError(f"no session {ref!r} (see `mirrorfs session list`)")

    def _session_file(self, ref: str) -> Path:
        """The session file a path names; never another note (SOUL.md, a config, a card)."""
        full = self.vault.resolve(ref)
        rel = full.relative_to(self.vault.root).as_posix()
        if not rel.startswith(SESSIONS_DIR + "/") or full.suffix != ".md":
            raise InvalidValueError(
                f"{rel} is not a session: session commands act on the files in {SESSIONS_DIR}/ "
                "(see `mirrorfs session list`); nothing was changed")
        if not full.is_file():
            raise NotFoundError(f"no session at {ref}")
        kind = notes.read_front_matter(full).get("type")
        if kind not in (None, "session"):
            raise InvalidValueError(f"{rel} is a {kind} note, not a session; nothing was changed")
        return full

    def list(
        self,
        instance: str | None = None,
        tag: str | None = None,
        category: str | None = None,
        status: str | None = None,
        since: dt.datetime | dt.date | str | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_ephemeral: bool = True,
    ) -> list[Session]:
        """Sessions, newest first, filtered by the given properties."""
        if status is not None and status not in STATUSES:
            raise InvalidValueError(f"unknown status {status!r}: use open or closed")
        cutoff = parse_since(since) if since else None
        found: list[tuple[str, Session]] = []
        candidates = [(p, False) for p in self.paths()]
        if include_ephemeral:
            candidates += [(p, True) for p in sorted(self.ephemeral_folder.glob("*.md"))]
        for path, ephemeral in candidates:
            if instance and not ephemeral and path.parent.name != instance:
                continue
            try:
                meta = notes.read_front_matter(path)
            except (UnreadableNoteError, OSError):
                continue
            if instance and meta.get("instance", path.parent.name) != instance:
                continue
            if tag and tag.lstrip("#") not in normalise_tags(meta.get("tags")):
                continue
            if category and meta.get("category") != category:
                continue
            if status and meta.get("status", "open") != status:
                continue
            created = meta.get("created")
            if cutoff and created is not None:
                try:
                    if msgs.parse_time(created) < cutoff:
                        continue
                except ValueError:
                    pass
            key = str(_iso(meta.get("updated") or created or ""))
            found.append((key, Session(self.vault, path, ephemeral=ephemeral)))
        found.sort(key=lambda item: item[0], reverse=True)
        sessions = [s for _, s in found]
        end = None if limit is None else offset + limit
        return sessions[offset:end]
