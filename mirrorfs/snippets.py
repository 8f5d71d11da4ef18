"""The text snippets are cut from: the files as they are on disk.

Bodies are not stored in the index, which keeps it small and each snippet
exactly what the file says now; a search reads each hit's file once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mirrorfs import messages as messages_mod
from mirrorfs import note as note_mod
from mirrorfs.crypto import strip_sections
from mirrorfs.errors import UnreadableNoteError

SNIPPET_CHARS = 180


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


def lead(text: str, chars: int = SNIPPET_CHARS) -> str:
    """The start of *text* on one line, cut at a word: the snippet when no term matched."""
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[:chars].rsplit(" ", 1)[0] + " …"
