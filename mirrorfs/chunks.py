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


def _by_heading(path: str, title: str, body: str, type_: str) -> list[Chunk]:
    chunks: list[Chunk] = []
    used: dict[str, int] = {}
    for head, text in sections(body):
        base = "#" + head if head else ""
        lead = title if not head or head == title else f"{title} › {head}" if title else head
        if not text.strip():  # a heading with nothing under it says nothing of its own
            continue
        for part in _parts(text):
            n = used.get(base, 0) + 1
            used[base] = n
            key = base if n == 1 else f"{base}~{n}"
            part = part.strip()
            chunk = _make(path, key, f"{lead}\n\n{part}" if lead else part, type_)
            if chunk is not None:
                chunks.append(chunk)
    return chunks


def note_chunks(path: str, text: str) -> list[Chunk]:
    """The chunks of one note, given its vault-relative POSIX path and decoded text."""
    return of_note(path, note_mod.parse_text(text, path=path))


def of_note(path: str, note: note_mod.Note) -> list[Chunk]:
    """The chunks of an already parsed note."""
    meta = note.meta if note.error is None else {}
    type_ = str(meta.get("type") or "note").lower()
    name = path.rsplit("/", 1)[-1]
    title = str(meta.get("title") or (name[:-3] if name.endswith(".md") else name))
    if type_ == "session":
        preamble, msgs = messages.parse(note.body)
        chunks = []
        head = _make(path, "", f"{title}\n\n{strip_sections(preamble).strip()}", type_)
        if head is not None:
            chunks.append(head)
        seen: set[str] = set()
        for msg in msgs:
            if msg.id in seen:  # a damaged merge may repeat one; the first is the one shown
                continue
            seen.add(msg.id)
            chunk = _make(path, msg.id, strip_sections(msg.content), type_, doc="message")
            if chunk is not None:
                chunks.append(chunk)
        return chunks
    body = strip_sections(note.body)
    if type_ == "memory" and len(body) <= WHOLE_CHARS:
        chunk = _make(path, "", f"{title}\n\n{body.strip()}", type_)
        return [chunk] if chunk is not None else []
    return _by_heading(path, title, body, type_)


def file_chunks(path: str, data: bytes) -> list[Chunk]:
    """The chunks of a note's bytes; raises UnreadableNoteError for binary or non-UTF-8 data."""
    return note_chunks(path, note_mod.decode(data, path)[1])
