"""From a file's bytes to its search documents and its catalog row.

One parse per file: the bytes are decoded and their front matter loaded once
(`note.parse`), a session's messages split once (`messages.parse`); the facts
gathered here feed every row of the field table (`mirrorfs.fields`) and the
catalog summary that statistics, `by_tag` and `recent` read without opening a
file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from mirrorfs import messages as messages_mod
from mirrorfs import note as note_mod
from mirrorfs import storage
from mirrorfs.clock import naive_utc
from mirrorfs.conflict_markers import indexable
from mirrorfs.crypto import strip_sections  # ciphertext must never become search terms
from mirrorfs.errors import UnreadableNoteError
from mirrorfs.fields import TABLE, FieldTable

DEFAULT_MAX_BYTES = note_mod.DEFAULT_MAX_BYTES


def unknown_stat(size: int) -> tuple:
    """The stat part of a catalog row whose bytes came from the watcher: it read
    them, but with no stat we could trust to match, so the next scan reads the
    file once to learn it (the hash then shows nothing changed). The size is
    the bytes' own, for statistics."""
    return (-1, size, -1)


_INLINE_TAG = re.compile(r"(?:^|(?<=\s))#([^\W\d][\w/-]*)", re.M)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set)):
        return [str(v) for v in value if v is not None and str(v).strip()]
    return [s for s in re.split(r"[,\s]+", str(value)) if s]


def expand_tags(tags: Iterable[str]) -> list[str]:
    """Obsidian nested tags: `project/mirrorfs` is also found by `tag:project`."""
    out: list[str] = []
    for tag in tags:
        tag = tag.strip().lstrip("#").lower()
        if not tag:
            continue
        parts = tag.split("/")
        for i in range(1, len(parts) + 1):
            t = "/".join(parts[:i])
            if t and t not in out:
                out.append(t)
    return out


def _inline_tags(body: str) -> list[str]:
    if "#" not in body:
        return []
    return _INLINE_TAG.findall(_FENCE.sub("", body))


def _low(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value).strip().lower() or None


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value).strip() or None


def _ts(t: dt.datetime | None) -> float | None:
    """A naive-UTC datetime as a POSIX timestamp (the catalog pickles floats
    several times faster than datetimes)."""
    return t.replace(tzinfo=dt.timezone.utc).timestamp() if t is not None else None


@dataclass
class NoteFacts:
    """What the field table reads of one note file."""

    path: str
    meta: dict
    type: str
    title: str
    id: str | None
    tags: list[str]
    aliases: list[str]
    preamble: str  # the body (a session's: before its first message), sections stripped
    created: dt.datetime | None
    updated: dt.datetime | None
    flags: list[str] = field(default_factory=list)


@dataclass
class MessageFacts:
    """What the field table reads of one session message."""

    path: str
    id: str
    role: str | None
    instance: str | None
    time: dt.datetime | None
    text: str
    at: tuple[int, int] | None = None  # (byte offset, byte length) of its block in the file


@dataclass
class FileEntry:
    """What one file contributes: its documents and its catalog summary."""

    docs: list[dict]
    info: dict


def _byte_spans(data: bytes, body: str, found: list) -> list[tuple[int, int]]:
    """(byte offset, byte length) in the file of each message block, so that a
    snippet reads one message rather than its whole session."""
    if data.isascii():
        base = len(data) - len(body)
        return [(base + b.start, b.end - b.start) for b in found]
    base = len(data) - len(body.encode("utf-8"))  # the body is the end of the file
    out, at, done = [], base, 0
    for b in found:
        at += len(body[done:b.start].encode("utf-8"))
        size = len(body[b.start:b.end].encode("utf-8"))
        out.append((at, size))
        at, done = at + size, b.end
    return out


def file_documents(relpath: str, data: bytes, table: FieldTable = TABLE) -> FileEntry:
    """Documents for one note file; raises UnreadableNoteError for non-notes."""
    source = indexable(data)  # a note with git conflict markers: each side once
    note = note_mod.parse(source, relpath)
    meta = note.meta if isinstance(note.meta, dict) else {}
    stem = relpath.rsplit("/", 1)[-1][:-3] if relpath.endswith(".md") else relpath
    ntype = _low(meta.get("type"))
    if ntype is None and relpath.startswith("sessions/"):
        ntype = "session"
    body = strip_sections(note.body)
    messages: list = []
    spans: list = []
    preamble = body
    if ntype == "session" and not note.error:
        found = messages_mod.blocks(body)
        if found:
            preamble = body[:found[0].start]
            messages = [messages_mod.message_of(body, b) for b in found]
            if source is data and body == note.body:  # the body is the file's own text
                spans = _byte_spans(data, body, found)
    created = naive_utc(meta.get("created"))
    facts = NoteFacts(
        path=relpath,
        meta=meta,
        type="note" if ntype in (None, "message") else ntype,  # "message" is for message documents
        title=_str(meta.get("title")) or stem,
        id=_str(meta.get("id")) or (stem if ntype == "session" else None),
        tags=expand_tags(_as_list(meta.get("tags")) + _inline_tags(preamble)),
        aliases=_as_list(meta.get("aliases")),
        preamble=preamble,
        created=created,
        updated=naive_utc(meta.get("updated")) or created,
        flags=["unparseable"] if note.error else [],
    )
    base = table.note_document(facts)
    docs = [base]
    msg_instances: dict[str, int] = {}
    msg_roles: dict[str, int] = {}
    first = last = None
    for n, msg in enumerate(messages):
        t = naive_utc(msg.time)
        docs.append(table.message_document(MessageFacts(
            path=relpath, id=msg.id, role=msg.role or None, instance=msg.instance or None,
            time=t, text=strip_sections(msg.content), at=spans[n] if spans else None), base))
        if msg.instance:
            msg_instances[msg.instance] = msg_instances.get(msg.instance, 0) + 1
        if msg.role:
            msg_roles[msg.role] = msg_roles.get(msg.role, 0) + 1
        if t is not None:
            first = t if first is None or t < first else first
            last = t if last is None or t > last else last
    info = {
        "status": "unparseable" if note.error else "ok",
        "error": note.error,
        "type": facts.type,
        "id": facts.id,
        "title": facts.title,
        "kind": _low(meta.get("kind")),
        "tier": _low(meta.get("tier")),
        "category": _low(meta.get("category")),
        "instance": _str(meta.get("instance")),
        "tags": expand_tags(_as_list(meta.get("tags"))),
        "created": _ts(facts.created),
        "updated": _ts(facts.updated),
        "messages": len(messages),
        "msg_instances": msg_instances,
        "msg_roles": msg_roles,
        "first_message": _ts(first),
        "last_message": _ts(last),
    }
    return FileEntry(docs, info)


# --------------------------------------------------------------------------
# Catalog rows. A row is (mtime_ns, size, inode, sha256, info).

Entry = tuple[tuple, list[dict], "str | None"]  # (catalog row, documents, warning)


def skipped_row(stat_key: tuple, sha: str | None, reason: str) -> tuple:
    """The catalog row of a file that is not indexed (too big, binary, not UTF-8)."""
    return stat_key + (sha, {"status": "skipped", "error": reason})


def entry_of(relpath: str, data: bytes, sha: str, stat_key: tuple, max_bytes: int) -> Entry:
    """(catalog row, documents, warning) of bytes already read and hashed."""
    if len(data) > max_bytes:
        reason = f"{len(data)} bytes is over the {max_bytes}-byte limit for notes; skipped"
        return skipped_row(stat_key, sha, reason), [], f"{relpath}: {reason}"
    try:
        entry = file_documents(relpath, data)
    except UnreadableNoteError as exc:
        return skipped_row(stat_key, sha, exc.reason), [], f"{relpath}: {exc.reason}"
    warning = None
    if entry.info["status"] == "unparseable":
        warning = f"{relpath}: front matter unparseable ({entry.info['error']}); indexed as plain text"
    return stat_key + (sha, entry.info), entry.docs, warning


def read_file(root: str, relpath: str, max_bytes: int) -> tuple[tuple, bytes]:
    """(stat key, bytes) of a note; stat first, so a later change is seen next time."""
    full = os.path.join(root, relpath)
    st = os.stat(full)
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    if st.st_size > max_bytes:
        raise UnreadableNoteError(
            relpath, f"{st.st_size} bytes is over the {max_bytes}-byte limit for notes; skipped"
        )
    with open(full, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnreadableNoteError(relpath, f"over the {max_bytes}-byte limit for notes; skipped")
    return key, data


def read_entry(root: str, relpath: str, max_bytes: int) -> Entry | None:
    """The entry of a file read from disk, or None when it vanished.

    PermissionError is re-raised: an unreadable file must keep its documents.
    """
    try:
        key, data = read_file(root, relpath, max_bytes)
    except FileNotFoundError:
        return None
    except UnreadableNoteError as exc:
        st = os.stat(os.path.join(root, relpath))
        return skipped_row((st.st_mtime_ns, st.st_size, st.st_ino), None, exc.reason), [], \
            f"{relpath}: {exc.reason}"
    return entry_of(relpath, data, storage.sha256(data), key, max_bytes)
