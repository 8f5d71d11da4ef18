"""What gets embedded: a note cut into chunks, with every secret left out.

* memory notes: whole (title and body) while short, else by heading;
* sessions: one chunk per message (key: the message id), plus the preamble;
* every other note: by heading (the text before the first heading has key "").

A heading's chunk is keyed by its anchor as Obsidian links it (`#Heading`);
a repeated heading, or a section cut in parts because it is long, gets `~2`,
`~3` ... Encrypted sections and ```secret blocks are removed with
`crypto.strip_sections` before anything is cut, and a chunk in which either
still shows is dropped: the embedder never sees text meant to be secret.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Iterator

from mirrorfs import messages
from mirrorfs import note as note_mod
from mirrorfs.crypto import find_sections, has_unsealed, strip_sections

# Bump when the cutting rules change: the vector store re-chunks every note.
VERSION = 1
WHOLE_CHARS = 1500  # a memory note up to this long is one chunk
MAX_CHARS = 2000  # a longer section is cut at paragraph breaks

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class Chunk:
    """One piece of a note to embed; `sha256` (of `text`) is its identity in the store."""

    path: str
    key: str
    text: str = field(repr=False)
    sha256: str
    type: str = "note"  # the note's type: memory, session, soul, bridge, ... or note
    doc: str = "note"  # "message" for a session message, as in search hits


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _make(path: str, key: str, text: str, type_: str, doc: str = "note") -> Chunk | None:
    text = text.strip()
    if not text or has_unsealed(text) or find_sections(text):
        return None
    return Chunk(path, key, text, sha256(text), type_, doc)


def sections(body: str) -> list[tuple[str, str]]:
    """(heading text, section text) of a Markdown body; "" heads the text before
    the first heading. Headings inside code fences do not count."""
    out: list[tuple[str, list[str]]] = [("", [])]
    fence: str | None = None
    for line in body.splitlines():
        m = _FENCE.match(line)
        if m:
            mark = m.group(1)
            if fence is None:
                fence = mark
            elif mark[0] == fence[0] and len(mark) >= len(fence) and not line.strip()[len(mark):].strip():
                fence = None
        elif fence is None:
            h = _HEADING.match(line)
            if h:
                out.append((h.group(2).strip(), []))
                continue
        out[-1][1].append(line)
    return [(head, "\n".join(lines)) for head, lines in out]


def _parts(text: str, limit: int = MAX_CHARS) -> list[str]:
    """*text* cut at blank lines (else at line ends) into pieces of about *limit* chars."""
    if len(text) <= limit:
        return [text]
    pieces = re.split(r"\n[ \t]*\n", text)
    if len(pieces) == 1:
        pieces = text.split("\n")
    out: list[str] = []
    for piece in pieces:
        while len(piece) > limit:  # one huge paragraph: cut at a space
            cut = piece.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            out.append(piece[:cut])
            piece = piece[cut:]
        if out and len(out[-1]) + len(piece) + 2 <= limit:
            out[-1] = out[-1] + "\n\n" + piece
        else:
            out.append(piece)
    return [p for p in out if p.strip()]


def _by_heading(title: str, body: str) -> Iterator[tuple[str, str]]:
    used: dict[str, int] = {}
    for head, text in sections(body):
        base = "#" + head if head else ""
        lead = title if not head or head == title else f"{title} › {head}" if title else head
        if not text.strip():  # a heading with nothing under it says nothing of its own
            continue
        for part in _parts(text):
            n = used.get(base, 0) + 1
            used[base] = n
            part = part.strip()
            yield (base if n == 1 else f"{base}~{n}"), (f"{lead}\n\n{part}" if lead else part)


def _pieces(path: str, note: note_mod.Note) -> Iterator[tuple[str, str, str, str]]:
    """(key, text, type, doc) of every piece of a note, in order, before the secret check."""
    meta = note.meta if note.error is None else {}
    type_ = str(meta.get("type") or "note").lower()
    name = path.rsplit("/", 1)[-1]
    title = str(meta.get("title") or (name[:-3] if name.endswith(".md") else name))
    if type_ == "session":
        # The preamble ends at the first message's heading; found without parsing
        # every message, which only a consumer that reads on needs.
        body = note.body
        cut = body.find(messages.COMMENT_PREFIX)
        preamble = body[: body.rfind("\n### ", 0, cut) + 1] if cut >= 0 else body
        yield "", f"{title}\n\n{strip_sections(preamble).strip()}", type_, "note"
        seen: set[str] = set()
        for msg in messages.parse(body)[1]:
            if msg.id in seen:  # a damaged merge may repeat one; the first is the one shown
                continue
            seen.add(msg.id)
            yield msg.id, strip_sections(msg.content), type_, "message"
        return
    body = strip_sections(note.body)
    if type_ == "memory" and len(body) <= WHOLE_CHARS:
        yield "", f"{title}\n\n{body.strip()}", type_, "note"
        return
    for key, text in _by_heading(title, body):
        yield key, text, type_, "note"


def note_chunks(path: str, text: str) -> list[Chunk]:
    """The chunks of one note, given its vault-relative POSIX path and decoded text."""
    return of_note(path, note_mod.parse_text(text, path=path))


def of_note(path: str, note: note_mod.Note) -> list[Chunk]:
    """The chunks of an already parsed note."""
    made = (_make(path, key, text, type_, doc) for key, text, type_, doc in _pieces(path, note))
    return [c for c in made if c is not None]


def chunk_text(path: str, text: str, key: str) -> str:
    """The text of one chunk of a note (what was embedded for *key*), "" if it has none."""
    for k, piece, type_, doc in _pieces(path, note_mod.parse_text(text, path=path)):
        if k == key:
            chunk = _make(path, k, piece, type_, doc)
            return chunk.text if chunk is not None else ""
    return ""


def file_chunks(path: str, data: bytes) -> list[Chunk]:
    """The chunks of a note's bytes; raises UnreadableNoteError for binary or non-UTF-8 data."""
    return note_chunks(path, note_mod.decode(data, path)[1])
