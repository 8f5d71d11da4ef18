"""Memory notes: one Markdown file per thing the AI remembers (`memory/<slug>.md`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from mirrorfs import crypto, ignore, storage
from mirrorfs import note as notes
from mirrorfs.clock import isoformat as _iso
from mirrorfs.clock import timestamp
from mirrorfs.errors import (
    ConflictError,
    InvalidValueError,
    NotFoundError,
    UnreadableNoteError,
)
from mirrorfs.messages import check_content
from mirrorfs.slug import title_from_text

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

MEMORY_DIR = "memory"
TIERS = ("working", "long_term", "semantic")
KINDS = ("fact", "preference", "project", "insight", "person", "event")


@dataclass(frozen=True)
class MemoryNote:
    """A memory note as read from disk."""

    path: str  # vault-relative
    note: notes.Note
    # The body as the vault reads it: sections decrypted when unlocked, placeholders when locked.
    shown: str | None = None

    @property
    def meta(self) -> dict:
        return self.note.meta

    @property
    def id(self) -> str:
        return str(self.meta.get("id", ""))

    @property
    def title(self) -> str:
        return str(self.meta.get("title") or Path(self.path).stem)

    @property
    def body(self) -> str:
        return (self.note.body if self.shown is None else self.shown).strip("\r\n")

    @property
    def text(self) -> str:
        """The whole note as a reader sees it (front matter as on disk, body as in ``body``)."""
        raw = self.note.text
        if self.shown is None or not raw.endswith(self.note.body):
            return raw
        return raw[: len(raw) - len(self.note.body)] + self.shown

    @property
    def tags(self) -> list[str]:
        return normalise_tags(self.meta.get("tags"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "id": self.id,
            "title": self.title,
            "kind": self.meta.get("kind"),
            "tier": self.meta.get("tier"),
            "tags": self.tags,
            "created": _iso(self.meta.get("created")),
            "updated": _iso(self.meta.get("updated")),
            "instance": self.meta.get("instance"),
            "updated_by": self.meta.get("updated_by"),
            "body": self.body,
        }



def normalise_tags(value: Any) -> list[str]:
    """Tags as Obsidian reads them: a list or a comma/space separated string, no '#'."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, (list, tuple)):
        value = [value]
    return [str(t).lstrip("#") for t in value if str(t).strip("# ")]


def check_tier(tier: str) -> str:
    if tier not in TIERS:
        raise InvalidValueError(f"unknown tier {tier!r}: use one of {', '.join(TIERS)}")
    return tier


class Memory:
    """The memory notes of a vault."""

    def __init__(self, vault: "Vault"):
        self.vault = vault

    @property
    def folder(self) -> Path:
        return self.vault.root / MEMORY_DIR

    def add(
        self,
        text: str,
        title: str | None = None,
        kind: str = "fact",
        tags: Iterable[str] = (),
        tier: str = "long_term",
        source: str | None = None,
        secret: bool = False,
        **extra: Any,
    ) -> MemoryNote:
        """Write a new memory note and return it.

        ``secret=True`` encrypts the whole body (title and front matter stay clear;
        without a title it is "Secret memory"); otherwise ```secret blocks in
        *text* are sealed. Both need the vault unlocked (LockedError, nothing written).
        """
        check_content(text, "a memory")
        check_tier(tier)
        # A title made from a secret would put it in the clear (and in the file name).
        if not title:
            clear = "" if secret else crypto.strip_sections(text).strip()
            title = title_from_text(clear) if clear else "Secret memory"
        title = title.strip()
        created = timestamp()
        meta = {
            "id": secrets.token_hex(6),
            "type": "memory",
            "title": title,
            "kind": kind,
            "tier": tier,
            "tags": normalise_tags(list(tags)) or None,
            "created": created,
            "updated": created,
            "instance": self.vault.instance,
            "updated_by": self.vault.instance,
            "source": source,
            **extra,
        }
        body = text.strip("\n") + "\n"
        # Sealed before anything is written: plaintext of a secret never reaches the disk.
        body = self.vault.seal_body(body) if secret else self.vault.seal_text(body)
        data = notes.new(meta, body).render()
        rel = self.vault.create_note(MEMORY_DIR, title, data)
        self.vault.touched(rel, "write")
        # The caller has the plaintext already: what comes back shows secrets as placeholders,
        # so echoing the result (e.g. `remember --json`) cannot print them.
        written = notes.parse(data, rel)
        shown = crypto.lock_placeholder(written.body)
        return MemoryNote(rel, written, None if shown == written.body else shown)

    def _shown(self, m: MemoryNote) -> MemoryNote:
        shown = self.vault.readable(m.note.body)
        return m if shown == m.note.body else MemoryNote(m.path, m.note, shown)

    def paths(self) -> list[Path]:
        return ignore.inside(self.vault.root, sorted(self.folder.glob("*.md"))) if self.folder.is_dir() else []

    def _load(self, path: Path) -> MemoryNote:
        rel = self.vault.relpath(path)
        return self._shown(MemoryNote(rel, notes.read_note(path)))

    def get(self, ref: str) -> MemoryNote:
        """A memory note by path, file name, id or title."""
        candidate = self._by_path(ref)
        if candidate is not None:
            self.vault.touched(candidate.path)
            return candidate
        for path in self.paths():
            try:
                m = self._load(path)
            except UnreadableNoteError:
                continue
            if ref in (m.id, m.title) or m.title.lower() == ref.lower():
                self.vault.touched(m.path)
                return m
        raise NotFoundError(f"no memory note {ref!r} (give its path, file name, id or title)")

    def _by_path(self, ref: str) -> MemoryNote | None:
        for candidate in (ref, f"{MEMORY_DIR}/{ref}", f"{MEMORY_DIR}/{ref}.md"):
            if not candidate.endswith(".md"):
                continue
            full = self.vault.resolve(candidate)
            if full.is_file():
                return self._load(full)
        return None

    def list(
        self,
        kind: str | None = None,
        tag: str | None = None,
        tier: str | None = None,
        limit: int | None = None,
        on_error=None,
    ) -> list[MemoryNote]:
        """Memory notes, newest update first; unreadable ones go to *on_error*."""
        found = []
        for path in self.paths():
            try:
                m = self._load(path)
            except UnreadableNoteError as exc:
                if on_error:
                    on_error(exc)
                continue
            if m.note.error and on_error:
                on_error(UnreadableNoteError(m.path, f"cannot parse front matter: {m.note.error}"))
            if kind and m.meta.get("kind") != kind:
                continue
            if tier and m.meta.get("tier") != tier:
                continue
            if tag and tag.lstrip("#") not in m.tags:
                continue
            found.append(m)
        found.sort(key=lambda m: str(_iso(m.meta.get("updated") or m.meta.get("created") or "")), reverse=True)
        return found[:limit] if limit else found

    def update(
        self,
        ref: str,
        text: str | None = None,
        expected_sha: str | None = None,
        **properties: Any,
    ) -> MemoryNote:
        """Change a memory's text and/or properties (title, kind, tier, tags...)."""
        current = self.get(ref)
        full = self.vault.resolve(current.path)
        if "tier" in properties:
            check_tier(properties["tier"])
        if "tags" in properties:
            properties["tags"] = normalise_tags(properties["tags"])

        def change(n: notes.Note) -> notes.Note:
            if expected_sha is not None:
                if storage.sha256(n.render()) != expected_sha:
                    raise ConflictError(current.path)
            if text is not None:
                n = n.with_body(n.newline + text.strip("\n").replace("\n", n.newline) + n.newline)
            return self.vault.stamp(n, **properties)

        if text is not None:
            text = self.vault.seal_text(check_content(text, "a memory"))
        updated = self.vault.edit(full, change)
        self.vault.touched(current.path, "write")
        return self._shown(MemoryNote(current.path, updated))

    def forget(self, ref: str, purge: bool = False) -> Path | None:
        """Move a memory to the trash (restorable), or delete it with *purge*."""
        current = self.get(ref)
        return self.vault.trash(current.path, purge=purge)
