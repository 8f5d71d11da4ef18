"""Instance cards: `instances/<name>.md`, one per instance, written only by it."""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mirrorfs import note as notes
from mirrorfs.errors import ConflictError, UnreadableNoteError

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

INSTANCES_DIR = "instances"


@dataclass(frozen=True)
class Card:
    name: str
    path: str
    meta: dict

    @property
    def intentions(self) -> list[str]:
        value = self.meta.get("intentions") or []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    def to_dict(self) -> dict[str, Any]:
        last = self.meta.get("last_seen")
        return {
            "name": self.name,
            "path": self.path,
            "device": self.meta.get("device"),
            "last_seen": last.isoformat() if hasattr(last, "isoformat") else last,
            "status": self.meta.get("status"),
            "intentions": self.intentions,
        }


class Instances:
    """The presence cards of every instance of this vault."""

    def __init__(self, vault: "Vault"):
        self.vault = vault

    @property
    def folder(self) -> Path:
        return self.vault.root / INSTANCES_DIR

    def card_path(self, name: str | None = None) -> Path:
        return self.folder / f"{name or self.vault.instance}.md"

    def ensure_card(self) -> Path:
        """Create this instance's card on first use; never rewrite an existing one."""
        from mirrorfs.vault import timestamp

        path = self.card_path()
        if path.exists():
            return path
        now = timestamp()
        meta = {
            "id": secrets.token_hex(6),
            "type": "instance",
            "title": self.vault.instance,
            "instance": self.vault.instance,
            "device": socket.gethostname(),
            "created": now,
            "updated": now,
            "updated_by": self.vault.instance,
            "last_seen": now,
            "status": "idle",
            "intentions": [],
        }
        body = f"Presence card of the mirrorfs instance **{self.vault.instance}**.\n"
        try:
            self.vault.store.create(path, notes.new(meta, body).render())
        except ConflictError:
            pass  # another process created it first: that is the card
        return path

    def list(self) -> list[Card]:
        cards = []
        for path in sorted(self.folder.glob("*.md")) if self.folder.is_dir() else []:
            try:
                meta = notes.read_note(path).meta
            except UnreadableNoteError:
                continue
            cards.append(Card(path.stem, self.vault.relpath(path), meta))
        return cards

    def get(self, name: str | None = None) -> Card:
        path = self.card_path(name)
        if name is None:
            self.ensure_card()
        return Card(path.stem, self.vault.relpath(path), notes.read_note(path).meta)
