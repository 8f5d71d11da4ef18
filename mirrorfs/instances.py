"""Instance cards: `instances/<name>.md`, one per instance, written only by it.

A card is the instance's presence (device, `last_seen`, a status line) and its
intentions, which the person who coordinates reads on the bridge. Presence is
throttled: `touch` rewrites `last_seen` at most every few minutes unless forced,
because every write is a file a sync tool has to carry to every device.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mirrorfs import ignore
from mirrorfs import note as notes
from mirrorfs.clock import now as local_now
from mirrorfs.clock import time_or_none, timestamp
from mirrorfs.errors import (
    ConflictError,
    InvalidValueError,
    NotFoundError,
    UnreadableNoteError,
)

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

INSTANCES_DIR = "instances"

# Defaults of the `presence:` settings in .mirrorfs/config.yaml (seconds).
TOUCH_INTERVAL = 5 * 60  # least time between two throttled `last_seen` writes
ACTIVE_WITHIN = 10 * 60  # seen this recently: active (> TOUCH_INTERVAL, so a watcher stays active)
IDLE_WITHIN = 7 * 24 * 3600  # seen this recently: idle; longer ago: gone
STATES = ("active", "idle", "gone")

# An intention is a plain string, so Obsidian shows the list as text; the date
# it was recorded rides along at the end: "Book the ryokan (since 2026-11-21)".
_SINCE = re.compile(r"^(?P<text>.*?)\s*\(since (?P<date>\d{4}-\d{2}-\d{2})\)\s*$", re.S)


def presence_settings(vault: "Vault") -> dict[str, float]:
    """`touch_interval`, `active` and `idle` in seconds, from the vault config."""
    raw = vault.config.get("presence")
    raw = raw if isinstance(raw, dict) else {}
    settings = {"touch_interval": TOUCH_INTERVAL, "active": ACTIVE_WITHIN, "idle": IDLE_WITHIN}
    for key in settings:
        value = raw.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            settings[key] = float(value)
    return settings


def presence_state(last_seen: dt.datetime | None, now: dt.datetime, active: float = ACTIVE_WITHIN,
                   idle: float = IDLE_WITHIN) -> str:
    """active / idle / gone from the age of `last_seen` (unknown counts as gone)."""
    if last_seen is None:
        return "gone"
    age = (now - last_seen).total_seconds()
    if age < active:
        return "active"  # a last_seen slightly in the future (clock skew) is active too
    return "idle" if age < idle else "gone"


def split_intention(value: str) -> tuple[str, dt.date | None]:
    """`"Book the ryokan (since 2026-11-21)"` -> ("Book the ryokan", date(2026, 11, 21))."""
    m = _SINCE.match(value)
    if not m:
        return value.strip(), None
    try:
        return m.group("text").strip(), dt.date.fromisoformat(m.group("date"))
    except ValueError:
        return value.strip(), None


def format_intention(text: str, day: dt.date) -> str:
    return f"{text} (since {day.isoformat()})"


def _one_line(text: str, what: str) -> str:
    line = " ".join(str(text).split())
    if not line:
        raise InvalidValueError(f"an empty {what} says nothing; give some text")
    return line


@dataclass(frozen=True)
class Card:
    """An instance card as read from disk; *state* is filled in by `Instances.list`."""

    name: str
    path: str
    meta: dict
    state: str | None = None

    @property
    def intentions(self) -> list[str]:
        value = self.meta.get("intentions") or []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    @property
    def last_seen(self) -> dt.datetime | None:
        return time_or_none(self.meta.get("last_seen"))

    @property
    def status(self) -> str | None:
        value = self.meta.get("status")
        return None if value is None else str(value)

    @property
    def device(self) -> str | None:
        value = self.meta.get("device")
        return None if value is None else str(value)

    def to_dict(self) -> dict[str, Any]:
        last = self.last_seen
        items = []
        for raw in self.intentions:
            text, day = split_intention(raw)
            items.append({"text": text, "since": day.isoformat() if day else None})
        return {
            "name": self.name,
            "path": self.path,
            "device": self.device,
            "last_seen": last.isoformat() if last else self.meta.get("last_seen"),
            "state": self.state,
            "status": self.status,
            "intentions": self.intentions,
            "intention_items": items,
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

    def list(self, now: dt.datetime | None = None) -> list[Card]:
        """Every card, by name, with its state (active/idle/gone) at *now*."""
        settings = presence_settings(self.vault)
        now = now or local_now()
        cards = []
        for path in ignore.inside(self.vault.root, sorted(self.folder.glob("*.md"))) if self.folder.is_dir() else []:
            try:
                meta = notes.read_note(path).meta
            except (UnreadableNoteError, FileNotFoundError):
                continue
            card = Card(path.stem, self.vault.relpath(path), meta)
            state = presence_state(card.last_seen, now, settings["active"], settings["idle"])
            cards.append(Card(card.name, card.path, meta, state))
        return cards

    def get(self, name: str | None = None, now: dt.datetime | None = None) -> Card:
        """One card (this instance's by default, created if missing)."""
        path = self.card_path(name)
        if name is None:
            self.ensure_card()
        if not path.is_file():
            raise NotFoundError(f"no instance {name!r} (no {INSTANCES_DIR}/{name}.md); see `mirrorfs instances`")
        card = Card(path.stem, self.vault.relpath(path), notes.read_note(path).meta)
        settings = presence_settings(self.vault)
        state = presence_state(card.last_seen, now or local_now(), settings["active"], settings["idle"])
        return Card(card.name, card.path, card.meta, state)

    # -- writing this instance's card --------------------------------------

    def _edit(self, change, now: dt.datetime | None) -> notes.Note:
        """Edit this instance's card through the one write path, marking it seen."""
        self.ensure_card()
        seen = timestamp(now)

        def apply(n: notes.Note) -> notes.Note:
            changed = change(n)
            return self.vault.stamp(changed, last_seen=seen)

        return self.vault.edit(self.card_path(), apply)

    def touch(self, status: str | None = None, force: bool = False, now: dt.datetime | None = None) -> bool:
        """Record that this instance is alive; returns True when the card was written.

        Without *force*, `last_seen` is rewritten only when the last write is at
        least `presence.touch_interval` old (5 minutes by default) or the status
        line changes. A watcher forces it when it starts and stops.
        """
        now = now or local_now()
        if status is not None:
            status = _one_line(status, "status line")
        self.ensure_card()
        card = self.get()
        if not force and (status is None or status == card.status):
            last = card.last_seen
            interval = presence_settings(self.vault)["touch_interval"]
            if last is not None and 0 <= (now - last).total_seconds() < interval:
                return False
        values = {} if status is None else {"status": status}
        self._edit(lambda n: n.update(values), now)
        return True

    def intend(self, text: str, now: dt.datetime | None = None) -> Card:
        """Append an intention (dated today) to this instance's card."""
        now = now or local_now()
        entry = format_intention(_one_line(text, "intention"), now.date())

        def change(n: notes.Note) -> notes.Note:
            current = _intentions_of(n)
            return _set_intentions(n, current + [entry])

        self._edit(change, now)
        return self.get(now=now)

    def clear_intentions(self, now: dt.datetime | None = None) -> Card:
        """Remove every intention from this instance's card."""
        self._edit(lambda n: _set_intentions(n, []), now)
        return self.get(now=now)

    def done(self, n: int, now: dt.datetime | None = None) -> str:
        """Remove intention number *n* (1-based, as listed) and return its text."""
        removed: list[str] = []

        def change(note: notes.Note) -> notes.Note:
            current = _intentions_of(note)
            if not 1 <= n <= len(current):
                raise InvalidValueError(
                    f"{self.vault.instance} has {len(current)} intention(s); "
                    + (f"give a number from 1 to {len(current)}" if current else "there is nothing to mark done")
                )
            removed.append(current[n - 1])
            return _set_intentions(note, current[: n - 1] + current[n:])

        self._edit(change, now)
        return split_intention(removed[0])[0]


def _intentions_of(n: notes.Note) -> list[str]:
    value = n.meta.get("intentions") or []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _set_intentions(n: notes.Note, values: list[str]) -> notes.Note:
    # An empty flow list `[]` would keep flow style; going through null first
    # gives the block list Obsidian writes, on the same line of the card.
    if values and n.meta.get("intentions") == []:
        n = n.set("intentions", None)
    return n.set("intentions", values)
