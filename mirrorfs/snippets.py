"""The text snippets are cut from: the files as they are on disk.

Bodies are not stored in the index, which keeps it small and each snippet
exactly what the file says now. What a hit reads is bounded: a message reads
its own block (the index stores where it sits in its session), a note at most
its first `SNIPPET_READ_BYTES`.
"""

from __future__ import annotations

import os
from pathlib import Path

from mirrorfs import messages as messages_mod
from mirrorfs import note as note_mod
from mirrorfs.crypto import strip_sections
from mirrorfs.errors import UnreadableNoteError

SNIPPET_CHARS = 180
# A snippet comes from at most this much of a file (of a message's block):
# a hit in a huge note costs a bounded read, not the whole file.
SNIPPET_READ_BYTES = 256 * 1024


def _whole_chars(data: bytes) -> bytes:
    """*data* without a UTF-8 sequence cut short at its end (a bounded read may split one)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data
        if byte >= 0xC0:  # a lead byte: is its sequence complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= need else data[:-back]
    return data


class NoteTexts:
    """File text for snippets, read once per search.

    *files* is the index catalog (for a message's session title and tags);
    *texts* are texts already known (relpath -> decoded text), used instead of
    the files (`search --unlock` passes the decrypted copies it holds in memory).
    """

    def __init__(self, root: str | os.PathLike, max_bytes: int, files: dict,
                 texts: dict[str, str] | None = None):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.files = files
        self._texts: dict[str, str] = dict(texts or {})

    def _read(self, relpath: str, offset: int, size: int) -> str:
        """*size* bytes of a file from *offset* (fewer at its end), decoded; "" when unreadable."""
        try:
            with open(self.root / relpath, "rb") as f:
                # read(n) allocates n bytes first: ask for no more than the file holds.
                left = max(0, os.fstat(f.fileno()).st_size - offset)
                if offset:
                    f.seek(offset)
                data = f.read(min(size, left))
            if size < left:  # the file goes on: never decode half a character
                data = _whole_chars(data)
            return note_mod.decode(data, relpath)[1]
        except (OSError, UnreadableNoteError):
            return ""

    def text(self, relpath: str) -> str:
        """A note's text: its first SNIPPET_READ_BYTES (all of a smaller note)."""
        if relpath not in self._texts:
            self._texts[relpath] = self._read(relpath, 0, min(self.max_bytes, SNIPPET_READ_BYTES))
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

    def message(self, relpath: str, msg_id: str, at: tuple[int, int] | None = None) -> str:
        """One message's content (at most SNIPPET_READ_BYTES of it). *at*, its
        block's byte offset and length as the index has them, reads just that
        block; without it, or when the file changed and the block moved, the
        session is searched."""
        found = None
        if relpath in self._texts:  # texts given (decrypted): never the file
            found = messages_mod.find(self._texts[relpath], msg_id)
        else:
            if at:
                found = messages_mod.find(self._read(relpath, at[0], min(at[1], SNIPPET_READ_BYTES)), msg_id)
            if found is None:
                found = messages_mod.find(self._read(relpath, 0, self.max_bytes), msg_id)
        return strip_sections(found.content) if found is not None else ""


def lead(text: str, chars: int = SNIPPET_CHARS) -> str:
    """The start of *text* on one line, cut at a word: the snippet when no term matched."""
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[:chars].rsplit(" ", 1)[0] + " …"
