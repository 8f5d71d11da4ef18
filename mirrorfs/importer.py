"""Importing other tools' conversations and memories into plain vault files.

Each source module (`import_activemirror`, `import_chatgpt`, `import_claude`,
`import_mirrordna`) reads its own format and yields items: `ImportedSession`,
`ImportedMemory`, `Expected` (a session announced before it comes, so links can
be written when a file is created) and `Skipped` (one line for a person); chat exports are read
by `import_streams`. The `Importer` here turns the items into files through
the one write path:

* a new session is written whole, once, with `store.create` (never over a file);
* a session imported before gains only the messages it lacks, appended with
  `store.update(..., append_only=True)` on a fresh parse of the file;
* an imported item records where it came from (`origin`, `origin_id`, ... in
  front matter; `origin_id` in each message's metadata), and that is how a
  later import finds it: by a quick front-matter read of the vault's sessions and
  memories, never through the search index. Importing the same data twice
  therefore changes no byte. See docs/format.md, "Imported notes".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from mirrorfs import messages as msgs
from mirrorfs import note as notes
from mirrorfs import storage
from mirrorfs.clock import isoformat, timestamp
from mirrorfs.errors import ConflictError, MirrorfsError, UnreadableNoteError
from mirrorfs.memory import MEMORY_DIR, normalise_tags
from mirrorfs.messages import Message
from mirrorfs.note import read_front_matter
from mirrorfs.session import SESSIONS_DIR, link_target, wikilink
from mirrorfs.slug import slugify
from mirrorfs.vault import Vault, check_instance_name

DEFAULT_INSTANCE = "import"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
# Progress is reported as (done, total) in the source's own unit: bytes of a
# streamed JSON file, items of a small store.
Progress = Callable[[int, int], None]


# -- what sources yield --------------------------------------------------------


@dataclass
class ImportedMessage:
    """One message as a source has it. `time` is aware (None: inherit the previous one)."""

    role: str
    content: str
    time: dt.datetime | None = None
    origin_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportedSession:
    """One conversation of a source, with every message it shows."""

    origin_id: str
    title: str
    messages: list[ImportedMessage]
    label: str
    created: dt.datetime | None = None
    updated: dt.datetime | None = None
    # The source's own stamp of the last change (as text): equal stamps mean
    # nothing changed, so a re-import need not read the session's body.
    version: str | None = None
    parent: str | None = None  # origin id of the session this one continues
    status: str = "closed"
    category: str | None = None
    tags: list[str] = field(default_factory=list)
    preamble: list[str] = field(default_factory=list)  # lines a person reads above the messages
    left_out: int = 0  # messages of the source deliberately not imported (empty ones)
    extra: dict[str, Any] = field(default_factory=dict)  # further front matter
    off_branch: int = 0  # messages on branches the source did not show (not imported, noted)
    skipped: list["Skipped"] = field(default_factory=list)  # its messages that could not be read


@dataclass
class ImportedMemory:
    """One memory (an ActiveMirrorOS vault entry): sealed when `secret`."""

    origin_id: str
    title: str
    text: str
    label: str
    secret: bool = False
    kind: str = "fact"
    tags: list[str] = field(default_factory=list)
    version: str | None = None


@dataclass
class Expected:
    """A session that will come later in the same run (its stem is reserved now)."""

    origin_id: str
    title: str
    created: dt.datetime | None
    parent: str | None = None


@dataclass
class Skipped:
    """Something of the source that was not imported, and why."""

    item: str
    reason: str

    def line(self) -> str:
        return f"skipped {self.item}: {self.reason}"


Item = ImportedSession | ImportedMemory | Expected | Skipped


# -- the summary ---------------------------------------------------------------


@dataclass
class ImportReport:
    """What one import did (or, with dry_run, would do)."""

    source: str
    path: str
    instance: str
    dry_run: bool = False
    sessions_new: int = 0
    sessions_updated: int = 0
    sessions_unchanged: int = 0
    messages_new: int = 0
    messages_unchanged: int = 0
    messages_left_out: int = 0
    memories_new: int = 0
    memories_unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "path": self.path,
            "instance": self.instance,
            "dry_run": self.dry_run,
            "sessions": {"new": self.sessions_new, "updated": self.sessions_updated,
                         "unchanged": self.sessions_unchanged},
            "messages": {"new": self.messages_new, "unchanged": self.messages_unchanged,
                         "left_out": self.messages_left_out},
            "memories": {"new": self.memories_new, "unchanged": self.memories_unchanged},
            "skipped": [dataclasses.asdict(s) for s in self.skipped],
            "notes": list(self.notes),
            "written": list(self.written),
        }

    def lines(self) -> list[str]:
        """The summary a person reads."""
        head = f"{self.source} {self.path} -> {SESSIONS_DIR}/{self.instance}/"
        out = [("dry run, nothing written: " if self.dry_run else "imported ") + head]
        out.append(f"sessions: {self.sessions_new} new, {self.sessions_updated} updated, "
                   f"{self.sessions_unchanged} unchanged")
        left = f", {self.messages_left_out} empty left out" if self.messages_left_out else ""
        out.append(f"messages: {self.messages_new} new, {self.messages_unchanged} already imported{left}")
        out.append(f"memories: {self.memories_new} new, {self.memories_unchanged} already imported")
        out.append(f"skipped: {len(self.skipped)}")
        out.extend("  " + s.line() for s in self.skipped)
        out.extend(f"note: {n}" for n in self.notes)
        return out


# -- small primitives the sources share ----------------------------------------

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: Any) -> str:
    """Text a note can hold: no NUL (it makes a file binary), no lone surrogate (not UTF-8),
    LF line breaks (a CR at the end of a message would not survive a round trip)."""
    text = "" if text is None else str(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")
    return _LONE_SURROGATE.sub("\ufffd", text)


def from_epoch(value: Any) -> dt.datetime | None:
    """An aware UTC time from Unix seconds (ChatGPT's `create_time`); None when absent or bad."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def from_iso(value: Any, naive: dt.tzinfo | None = dt.timezone.utc) -> dt.datetime | None:
    """An aware time from ISO 8601 text; a naive one is read in *naive* (None: this machine's zone)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.astimezone() if naive is None else t.replace(tzinfo=naive)
    return t


def fenced(text: str, info: str = "") -> str:
    """*text* in a code fence longer than any backtick run inside it."""
    runs = [len(m) for m in re.findall(r"`{3,}", text)]
    fence = "`" * max([3, *(n + 1 for n in runs)])
    return f"{fence}{info}\n{text.rstrip()}\n{fence}"


# -- what the vault already holds ----------------------------------------------


@dataclass
class _Entry:
    path: Path
    version: str | None = None
    parent: str | None = None
    created: str = ""


class _OriginIndex:
    """Sessions and memories that came from one source, by origin id (front matter only)."""

    def __init__(self, vault: Vault, source: str):
        self.sessions: dict[str, _Entry] = {}
        self.memories: dict[str, _Entry] = {}
        self.children: dict[str, list[tuple[str, str]]] = {}
        roots = [(vault.root / SESSIONS_DIR, "*/*.md", self.sessions), (vault.root / MEMORY_DIR, "*.md", self.memories)]
        for folder, pattern, into in roots:
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob(pattern)):
                try:
                    meta = read_front_matter(path)
                except (UnreadableNoteError, OSError):
                    continue
                if meta.get("origin") == source and meta.get("origin_id") is not None:
                    self.add(into, str(meta["origin_id"]), _Entry(
                        path, _text(meta.get("origin_updated")), _text(meta.get("origin_parent")),
                        str(isoformat(meta.get("created")) or "")))

    def add(self, into: dict, origin_id: str, entry: _Entry) -> None:
        into.setdefault(origin_id, entry)
        if into is self.sessions and entry.parent:
            self.children.setdefault(entry.parent, []).append((entry.created, origin_id))


def _text(value: Any) -> str | None:
    return None if value is None else str(isoformat(value))


def _fingerprint(role: str, time: dt.datetime, content: str) -> tuple:
    utc = time.astimezone(dt.timezone.utc)
    return ("fp", role, utc.replace(microsecond=utc.microsecond // 1000 * 1000).isoformat(),
            content.replace("\r\n", "\n").strip("\n"))


def message_keys(m: Message) -> set[tuple]:
    """What identifies a message across imports: its origin id, and role+time+content."""
    keys = {_fingerprint(m.role, m.time, m.content)}
    if m.meta.get("origin_id") is not None:
        keys.add(("id", str(m.meta["origin_id"])))
    return keys


# -- the engine ----------------------------------------------------------------


class Importer:
    """Writes a source's items into a vault, idempotently, under one instance's folder."""

    def __init__(self, vault: Vault, source: str, path: str, instance: str = DEFAULT_INSTANCE,
                 dry_run: bool = False, unlock: Callable[[], None] | None = None):
        check_instance_name(instance)
        self.vault = vault
        # The files belong to the import instance: it signs them (`instance`, `updated_by`).
        self.writer = vault if vault.instance == instance else Vault(vault.root, vault.config, instance)
        self.source = source
        self.instance = instance
        self.dry_run = dry_run
        self._unlock = unlock
        self.report = ImportReport(source, str(path), instance, dry_run)
        self.index = _OriginIndex(vault, source)
        self._planned: dict[str, tuple[str, str]] = {}  # origin id -> (stem, created iso)
        self._planned_children: dict[str, list[tuple[str, str]]] = {}
        self._reserved: set[str] = set()
        self._dry_keys: dict[str, set[tuple]] = {}
        self._branched = [0, 0]  # sessions with other branches, messages on them
        self._links: dict[tuple[str, str], None] = {}  # (child origin id, parent origin id), in order

    @property
    def folder(self) -> Path:
        return self.vault.root / SESSIONS_DIR / self.instance

    # -- driving -----------------------------------------------------------

    def run(self, items: Iterable[Item]) -> ImportReport:
        """Import every item, then complete the previous/next links; return the summary."""
        for item in items:
            self.add(item)
        self._complete_links()
        if self._branched[0]:
            self.report.notes.append(
                f"{self._branched[0]} conversation(s) have other branches ({self._branched[1]} message(s): regenerated "
                "or edited turns) that are not imported; each session's preamble says so")
        return self.report

    def add(self, item: Item) -> None:
        if isinstance(item, Skipped):
            self.report.skipped.append(item)
        elif isinstance(item, Expected):
            self._expect(item)
        elif isinstance(item, ImportedMemory):
            self._memory(item)
        else:
            self._session(item)

    def _write(self, action: Callable[[], Any], rel: str) -> Any:
        try:
            return action()
        except OSError as exc:
            raise MirrorfsError(f"cannot write {rel}: {exc.strerror or exc}; the import stopped there "
                                f"(what was written before is complete; run it again to go on)") from None

    # -- sessions ----------------------------------------------------------

    def _expect(self, e: Expected) -> None:
        if e.origin_id in self.index.sessions or e.origin_id in self._planned:
            return
        created = (e.created or EPOCH).astimezone()
        stem = self._free_stem(e.origin_id, created, e.title)
        self._planned[e.origin_id] = (stem, created.isoformat())
        if e.parent:
            self._planned_children.setdefault(e.parent, []).append((created.isoformat(), e.origin_id))

    def _free_stem(self, origin_id: str, created: dt.datetime, title: str) -> str:
        # Deterministic: two devices importing the same export name the file alike.
        digest = hashlib.sha256(f"{self.source}:{origin_id}".encode("utf-8")).hexdigest()
        base = f"{created:%Y-%m-%d}-{slugify(clean_text(title), 48)}"
        for i in range(0, len(digest) - 4, 4):
            stem = f"{base}-{digest[i:i + 4]}"
            taken = stem in self._reserved or any((self.vault.root / SESSIONS_DIR).glob(f"*/{stem}.md"))
            if not taken:
                self._reserved.add(stem)
                return stem
        raise MirrorfsError(f"no free file name for the session {title!r}")  # pragma: no cover

    def _stem_of(self, origin_id: str | None) -> str | None:
        if not origin_id:
            return None
        if origin_id in self.index.sessions:
            return self.index.sessions[origin_id].path.stem
        planned = self._planned.get(origin_id)
        return planned[0] if planned else None

    def _first_child(self, origin_id: str) -> str | None:
        kids = sorted(self.index.children.get(origin_id, []) + self._planned_children.get(origin_id, []))
        for _, child in kids:
            stem = self._stem_of(child)
            if stem:
                return stem
        return None

    def _messages(self, s: ImportedSession, taken: set[str]) -> list[Message]:
        """The source's messages as mirrorfs messages: ids derived from the origin, local times."""
        out: list[Message] = []
        last = s.created or EPOCH
        for m in s.messages:
            t = (m.time or last).astimezone()
            last = t
            t = t.replace(microsecond=t.microsecond // 1000 * 1000)
            content = clean_text(m.content)
            meta = {k: v for k, v in m.meta.items() if v is not None}
            if m.origin_id is not None:
                meta["origin_id"] = m.origin_id
            seed = m.origin_id if m.origin_id is not None else json.dumps(_fingerprint(m.role, t, content))
            out.append(Message(self._message_id(t, s.origin_id, seed, taken), m.role, t, self.instance,
                               content, meta))
        return out

    def _message_id(self, t: dt.datetime, session_id: str, seed: str, taken: set[str]) -> str:
        utc = t.astimezone(dt.timezone.utc)
        prefix = utc.strftime("%Y%m%dT%H%M%S") + f"{utc.microsecond // 1000:03d}-"
        digest = hashlib.sha256(f"{self.source}\0{session_id}\0{seed}".encode("utf-8")).hexdigest()
        for width in range(6, len(digest) + 1, 2):
            candidate = prefix + digest[:width]
            if candidate not in taken:
                taken.add(candidate)
                return candidate
        raise MirrorfsError("message id collision")  # pragma: no cover

    def _session(self, s: ImportedSession) -> None:
        self.report.skipped.extend(s.skipped)
        if s.off_branch:
            self._branched[0] += 1
            self._branched[1] += s.off_branch
        self.report.messages_left_out += s.left_out
        if s.parent:
            self._links[(s.origin_id, s.parent)] = None
        for _, child in self.index.children.get(s.origin_id, []):
            self._links[(child, s.origin_id)] = None
        entry = self.index.sessions.get(s.origin_id)
        if entry is None and s.origin_id in self._dry_keys:
            self._dry_existing(s)
        elif entry is None:
            self._create(s)
        else:
            self._update(s, entry)

    def _create(self, s: ImportedSession) -> None:
        planned = self._planned.get(s.origin_id)
        created = (s.created or (s.messages[0].time if s.messages and s.messages[0].time else None) or EPOCH).astimezone()
        stem = planned[0] if planned else self._free_stem(s.origin_id, created, s.title)
        messages = self._messages(s, set())
        updated = max([created, *(m.time for m in messages), *([s.updated.astimezone()] if s.updated else [])])
        meta = {
            "id": stem,
            "type": "session",
            "title": clean_text(s.title).strip() or "Untitled conversation",
            "instance": self.instance,
            "status": s.status,
            "persistence": "persistent",
            "category": s.category,
            "tags": normalise_tags([*s.tags, self.source]),
            "created": timestamp(created),
            "updated": timestamp(updated),
            "updated_by": self.instance,
            "previous": wikilink(p) if (p := self._stem_of(s.parent)) else None,
            "next": wikilink(n) if (n := self._first_child(s.origin_id)) else None,
            "origin": self.source,
            "origin_id": s.origin_id,
            "origin_updated": s.version,
            "origin_parent": s.parent,
            **s.extra,
        }
        lines = [*s.preamble, *([] if s.messages else ["The source holds no messages for this conversation."])]
        preamble = "".join(clean_text(line) + "\n" for line in lines)
        body = preamble + "".join(msgs.render(m) for m in messages)
        path = self.folder / f"{stem}.md"
        rel = f"{SESSIONS_DIR}/{self.instance}/{stem}.md"
        self.report.sessions_new += 1
        self.report.messages_new += len(messages)
        if self.dry_run:
            self._dry_keys[s.origin_id] = set().union(*(message_keys(m) for m in messages)) if messages else set()
            return
        data = notes.new(meta, body).render()
        try:
            self._write(lambda: self.writer.store.create(path, data), rel)
        except ConflictError:
            self.report.sessions_new -= 1
            self.report.messages_new -= len(messages)
            self.report.skipped.append(Skipped(s.label, f"{rel} appeared while importing; run the import again"))
            return
        self.report.written.append(rel)
        self._check_size(rel, len(data))
        self.index.add(self.index.sessions, s.origin_id, _Entry(path, s.version, s.parent, created.isoformat()))

    def _check_size(self, rel: str, size: int) -> None:
        if size > notes.DEFAULT_MAX_BYTES:
            self.report.notes.append(f"{rel} is {size // (1024 * 1024)} MiB, over the {notes.DEFAULT_MAX_BYTES // (1024 * 1024)} "
                                     "MiB note limit: search and `session show` skip it until it is split")

    def _dry_existing(self, s: ImportedSession) -> None:
        known = self._dry_keys[s.origin_id]
        new = [m for m in self._messages(s, set()) if not message_keys(m) & known]
        self._count_update(s, len(new))
        for m in new:
            known |= message_keys(m)

    def _count_update(self, s: ImportedSession, new: int) -> None:
        if new:
            self.report.sessions_updated += 1
        else:
            self.report.sessions_unchanged += 1
        self.report.messages_new += new
        self.report.messages_unchanged += len(s.messages) - new

    def _update(self, s: ImportedSession, entry: _Entry) -> None:
        rel = self.vault.relpath(entry.path)
        if s.version is not None and entry.version == s.version:
            self._count_update(s, 0)
            return
        snap = storage.read(entry.path)
        if not snap.exists:
            self.report.skipped.append(Skipped(s.label, f"{rel} disappeared while importing"))
            return
        try:
            note = notes.parse(snap.data, rel)
            note.check_editable()
        except MirrorfsError as exc:
            self.report.skipped.append(Skipped(s.label, f"{rel} cannot be read, so it was left as it is ({exc})"))
            return
        added: list[int] = []

        def append(data: bytes | None) -> bytes:
            if data is None:
                raise ConflictError(entry.path, f"{rel} disappeared while importing")
            current = notes.parse(data, rel)
            current.check_editable()
            _, existing = msgs.parse(current.body)
            known = set().union(*(message_keys(m) for m in existing)) if existing else set()
            new = [m for m in self._messages(s, {m.id for m in existing}) if not message_keys(m) & known]
            added[:] = [len(new)]
            if not new:
                return data
            body = current.body
            if body and not body.endswith("\n"):
                body += current.newline
            body += "".join(msgs.render(m, current.newline) for m in new)
            values = {k: v for k, v in (("origin_updated", s.version),
                                        ("origin_branches", s.extra.get("origin_branches"))) if v is not None}
            return self.writer.stamp(current.with_body(body), **values).render()

        if self.dry_run:
            append(snap.data)
        else:
            try:
                after = self._write(lambda: self.writer.store.update(entry.path, append, append_only=True), rel)
            except MirrorfsError as exc:
                self.report.skipped.append(Skipped(s.label, str(exc)))
                return
            if added and added[0]:
                self.report.written.append(rel)
                self._check_size(rel, len(after.data))
        self._count_update(s, added[0] if added else 0)

    def _complete_links(self) -> None:
        """previous/next on both sides of every link whose two sessions now exist."""
        if self.dry_run:
            return
        for child, parent in self._links:
            c, p = self.index.sessions.get(child), self.index.sessions.get(parent)
            if c is None or p is None:
                continue
            self._set_link(c.path, "previous", p.path.stem)
            self._set_link(p.path, "next", c.path.stem)

    def _set_link(self, path: Path, key: str, stem: str) -> None:
        def change(n: notes.Note) -> notes.Note:
            if link_target(n.meta.get(key)):
                return n  # a link a person or an earlier import set stays
            return self.writer.stamp(n.set(key, wikilink(stem)))

        rel = self.vault.relpath(path)
        try:
            before = storage.read(path).data
            after = self._write(lambda: self.writer.edit(path, change), rel)
        except MirrorfsError as exc:
            self.report.notes.append(f"could not link {rel} ({key}: {stem}): {exc}")
            return
        if after.render() != before and rel not in self.report.written:
            self.report.written.append(rel)

    # -- memories ----------------------------------------------------------

    def _memory(self, m: ImportedMemory) -> None:
        entry = self.index.memories.get(m.origin_id)
        if entry is not None:
            self.report.memories_unchanged += 1
            if m.version is not None and entry.version is not None and entry.version != m.version:
                self.report.skipped.append(Skipped(m.label, (
                    f"changed in the source since it was imported; {self.vault.relpath(entry.path)} is kept as it is "
                    "(forget it and import again to take the new version)")))
            return
        self.report.memories_new += 1
        if self.dry_run:
            self.index.add(self.index.memories, m.origin_id, _Entry(Path(m.origin_id), m.version))
            return
        if m.secret and not self.writer.unlocked:
            self._unlock_writer()
        extra = {"origin": self.source, "origin_id": m.origin_id, "origin_updated": m.version}
        written = self._write(lambda: self.writer.remember(
            clean_text(m.text), title=clean_text(m.title), kind=m.kind, tags=[*m.tags, self.source],
            secret=m.secret, **{k: v for k, v in extra.items() if v is not None}), m.label)
        self.report.written.append(written.path)
        self.index.add(self.index.memories, m.origin_id, _Entry(self.vault.root / written.path, m.version))

    def _unlock_writer(self) -> None:
        if not self.vault.unlocked and self._unlock is not None:
            self._unlock()
        keyring = self.vault.keyring  # LockedError when still locked: nothing sealed was written
        if self.writer is not self.vault:
            # Shares the caller's keyring: the passphrase is derived once.
            self.writer.unlock(keyring)
