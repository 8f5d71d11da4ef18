"""A note's fingerprint: what reflections keep of it to tell later what changed and who did it.

A fingerprint is a small JSON-ready dict, never the note's text:

    m, s   mtime (ns) and size when it was read
    h      sha256 of the bytes (or `stat:<size>:<mtime>` for a file too big to read)
    k, t   kind (memory, session, ...) and title
    b, u   the signature: `updated_by` and `updated`
    c, cr  the creator (`instance`, a bridge note's `from`) and `created`
    f, d   short hashes of the front matter and of the body
    plain  True when no usable mirrorfs front matter signs it
    ids    a session's message ids, in order; st: its status
    in     an instance card's intentions
    to, st a bridge note's recipients and status

Reading a session's messages for their authors is deferred (`Messages`): a
look needs the details of the new messages only.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from mirrorfs import crypto, starter, storage
from mirrorfs import messages as msgs
from mirrorfs import note as notes
from mirrorfs.bridge import ANSWER_HEADING, HUMAN, TITLE_HEADING, split_names
from mirrorfs.clock import iso_or_none
from mirrorfs.errors import UnreadableNoteError
from mirrorfs.layout import kind_of


def _short(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _front_matter(text: str) -> tuple[str, str, dict, bool]:
    """(front matter text, body, mapping, usable) as note.parse_text splits them."""
    parts = notes.split(text)
    if not parts.fm_open:
        return "", text, {}, False
    meta, error = notes.load_yaml(parts.fm_text)
    return parts.fm_text, parts.body, meta, error is None


class Messages(dict):
    """id -> (instance, time, role), decoded from the message's JSON on first use.

    A session holds thousands of messages and a look needs the details of only
    the new ones, so the JSON waits until it is asked for.
    """

    def __getitem__(self, key: str) -> tuple[str, str | None, str]:
        value = dict.__getitem__(self, key)
        if isinstance(value, str):
            try:
                header = json.loads(value)
            except ValueError:
                header = {}
            t = header.get("time")
            value = (str(header.get("instance", "")), None if t is None else str(t), str(header.get("role", "")))
            dict.__setitem__(self, key, value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default


def _messages(body: str) -> Messages:
    """Every message of a session body by id, in order (see messages.blocks)."""
    found = Messages()
    for block in msgs.blocks(body):
        found[block.id] = block.raw
    return found


def _stem(relpath: str) -> str:
    return relpath.rsplit("/", 1)[-1].removesuffix(".md")


def _title(kind: str, meta: dict, body: str, stem: str) -> str:
    title = meta.get("title")
    if kind == "instance":
        title = title or stem
    elif kind == "soul":
        title = meta.get("name") or "SOUL.md"
    elif not title:
        # A heading inside a ```secret block not sealed yet is plaintext: it never becomes a title.
        m = TITLE_HEADING.search(crypto.lock_placeholder(body) if crypto.has_unsealed(body) else body)
        title = m.group("title") if m else stem
    return str(title)


def fingerprint(relpath: str, data: bytes, mtime_ns: int = 0, size: int | None = None) -> tuple[dict, Messages]:
    """(fingerprint, messages) of a note's bytes; messages maps id -> (instance, time, role)."""
    fp: dict[str, Any] = {"m": mtime_ns, "s": len(data) if size is None else size, "h": storage.sha256(data)}
    messages = Messages()
    stem = _stem(relpath)
    try:
        _, text = notes.decode(data, relpath)
    except UnreadableNoteError:
        fp.update(k=kind_of(relpath, {}), t=stem, plain=True)
        return fp, messages
    fm_text, body, meta, usable = _front_matter(text)
    kind = kind_of(relpath, meta)
    fp["k"] = kind
    fp["t"] = _title(kind, meta, body, stem)
    if not meta or not usable:
        fp["plain"] = True
    if starter.is_untouched(relpath, text, meta):
        fp["starter"] = True  # init wrote it and nobody changed it: no one's news
    fp["b"] = None if meta.get("updated_by") is None else str(meta.get("updated_by"))
    fp["u"] = iso_or_none(meta.get("updated"))
    fp["cr"] = iso_or_none(meta.get("created"))
    creator = meta.get("from") if kind == "bridge" else meta.get("instance")
    fp["c"] = None if creator is None else str(creator)
    fp["f"] = _short(fm_text)
    fp["d"] = _short(body)
    if kind == "session":
        messages = _messages(body)
        fp["ids"] = list(messages)
        fp["st"] = str(meta.get("status", "open"))
    elif kind == "instance":
        value = meta.get("intentions") or []
        fp["in"] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    elif kind == "bridge":
        fp["to"] = split_names(meta.get("to")) or ["all"]
        fp["c"] = fp["c"] or HUMAN
        answered = ANSWER_HEADING.search(body)
        fp["st"] = str(meta.get("status") or ("answered" if answered else "open"))
    return fp, messages


def stat_fingerprint(relpath: str, st: os.stat_result) -> dict:
    """The fingerprint of a file too big or unreadable to read: followed by its stat alone."""
    return {"m": st.st_mtime_ns, "s": st.st_size, "h": f"stat:{st.st_size}:{st.st_mtime_ns}",
            "k": kind_of(relpath, {}), "t": relpath.rsplit("/", 1)[-1][:-3], "plain": True}
