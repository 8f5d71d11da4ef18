"""`search --unlock`: find words inside encrypted sections without writing them anywhere.

The real index never sees decrypted text (it indexes notes with their sections
stripped). With the vault unlocked, the notes that hold sections are decrypted
in memory, indexed in a throw-away in-memory index, and searched with the same
query; their hits are marked `secret`. Nothing decrypted touches the disk, the
state folder or the watcher's socket.
"""

from __future__ import annotations

from typing import Iterable

from mirrorfs import crypto, search
from mirrorfs import note as note_mod
from mirrorfs.conflict_names import conflict_original
from mirrorfs.errors import CryptoError, LockedError, UnreadableNoteError
from mirrorfs.ignore import iter_note_paths
from mirrorfs.index import search_in_memory

SECRET_FLAG = "secret"
_LOCK_MARK = "🔐".encode("utf-8")


def decrypted_notes(vault) -> dict[str, str]:
    """relpath -> decrypted text of every note holding an encrypted section."""
    found: dict[str, str] = {}
    for rel in iter_note_paths(vault.root, on_error=lambda exc: None):
        relpath = rel.as_posix()
        if conflict_original(relpath) is not None:
            continue
        try:
            data = note_mod.read_bytes(vault.root / rel)
        except (UnreadableNoteError, OSError):
            continue
        if _LOCK_MARK not in data:
            continue
        try:
            text = note_mod.decode(data, relpath)[1]
            if not crypto.find_sections(text):
                continue
        except (UnreadableNoteError, CryptoError):
            continue
        found[relpath] = vault.readable(text)
    return found


def search_unlocked(vault, query: str, types: Iterable[str] | None = None, sessions: bool = True,
                    limit: int | None = 20, tags: Iterable[str] | None = None,
                    instances: Iterable[str] | None = None, any_word: bool = False) -> search.SearchResults:
    """`search.search` plus hits inside encrypted sections (flagged `secret`)."""
    if not vault.unlocked:
        raise LockedError("unlock the vault to search its encrypted sections")
    # Decrypted text stays in this process: never a request to the watcher.
    plain = search.search_local(vault, query, types=types, sessions=sessions, limit=limit, tags=tags,
                                instances=instances, any_word=any_word)
    idx = search.open_index(vault)
    q = idx.parse(query, any_word)
    note_types, messages = search.search_scope(types, sessions)
    decrypted = decrypted_notes(vault)
    raws = search_in_memory({p: t.encode("utf-8") for p, t in decrypted.items()}, q, types=note_types,
                            messages=messages, tags=tags, instances=instances, limit=limit)
    seen = {(h.path, h.message_id) for h in plain}
    texts = search.texts_for(vault, idx, decrypted)
    extra = []
    for raw in raws:
        hit = search.make_hit(raw, idx, texts, True, frozenset(raw.terms))
        if (hit.path, hit.message_id) in seen:
            continue
        hit.flags = [*hit.flags, SECRET_FLAG]
        extra.append(hit)
    merged = sorted([*plain, *extra], key=lambda h: -h.score)
    return search.SearchResults(merged[:limit] if limit else merged, query, plain.report)
