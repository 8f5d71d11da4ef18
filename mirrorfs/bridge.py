"""The human bridge: notes between the person who coordinates and the instances.

A bridge note is `bridge/<slug>.md` with `type: bridge`, `title`, `from` (an
instance or `human`), `to` (`all` or a list of instance names) and `status`
(`open` or `answered`). It appears in the reflections of the instances it is
addressed to. Answering appends a `## Answer from <who> · <time>` section and
sets `status: answered`. A plain Markdown file a person drops into `bridge/`
(no front matter) counts as a note from `human` to `all`; it is answered when
it holds an `## Answer from` heading, and answering it never adds front matter.

`bridge_overview` puts side by side what the person needs to keep the
instances aligned: each instance's presence and intentions, open conflicts,
and the bridge notes nobody has answered yet.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from mirrorfs import conflicts, ignore
from mirrorfs import note as notes
from mirrorfs.clock import isoformat as _iso
from mirrorfs.clock import local_minute, parse_time, time_or_none, timestamp
from mirrorfs.clock import now as local_now
from mirrorfs.conflict_names import is_conflict_copy
from mirrorfs.errors import InvalidValueError, NotFoundError, UnreadableNoteError
from mirrorfs.ignore import is_ignored_name
from mirrorfs.layout import BRIDGE_DIR as BRIDGE_DIR
from mirrorfs.slug import title_from_text

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

HUMAN = "human"
ALL = "all"
STATUSES = ("open", "answered")
# The heading `answer` writes; any level counts, so a person may type one too.
ANSWER_HEADING = re.compile(r"^#{1,6}[ \t]+Answer from[ \t]+(?P<who>[^\s·]+)", re.M)
# A note's first level-1 heading: its title when the front matter names none.
TITLE_HEADING = re.compile(r"^#[ \t]+(?P<title>.+?)[ \t]*#*[ \t]*$", re.M)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def split_names(value: Any) -> list[str]:
    """Names from `to:` as people write it: `all`, `phone, laptop`, or a YAML list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [str(value)]


def normalise_to(to: str | Iterable[str] | None) -> list[str]:
    """`"all"`, `"phone"`, `"phone,laptop"` or a list -> a checked list of names."""
    # Instance names are lowercase, so `ALL` or `Phone` can only mean all / phone.
    names = [n.lower() for n in split_names(to)] if to is not None else [ALL]
    if not names:
        raise InvalidValueError("address the bridge note to `all` or to instance names, e.g. --to phone")
    for name in names:
        if not _NAME.match(name):
            raise InvalidValueError(
                f"cannot address a bridge note to {name!r}: use `all`, `human` or an instance name like phone"
            )
    if ALL in names:
        return [ALL]
    return list(dict.fromkeys(names))


def _sender(name: str | None, vault: "Vault") -> str:
    sender = name or vault.instance
    if not _NAME.match(sender):
        raise InvalidValueError(f"invalid sender {sender!r}: use `human` or an instance name")
    return sender


@dataclass(frozen=True)
class BridgeNote:
    """A bridge note as read from disk."""

    path: str  # vault-relative
    note: notes.Note

    @property
    def meta(self) -> dict:
        return self.note.meta if self.note.error is None else {}

    @property
    def title(self) -> str:
        title = self.meta.get("title")
        if title:
            return str(title)
        m = TITLE_HEADING.search(self.note.body)
        return m.group("title") if m else Path(self.path).stem

    @property
    def sender(self) -> str:
        return str(self.meta.get("from") or HUMAN)

    @property
    def to(self) -> list[str]:
        return split_names(self.meta.get("to")) or [ALL]

    @property
    def answers(self) -> list[str]:
        """Who answered, in order (from the `## Answer from` headings)."""
        return [m.group("who") for m in ANSWER_HEADING.finditer(self.note.body)]

    @property
    def status(self) -> str:
        status = self.meta.get("status")
        if status:
            return str(status)
        return "answered" if self.answers else "open"

    @property
    def is_open(self) -> bool:
        return self.status != "answered"

    def addressed_to(self, instance: str) -> bool:
        return ALL in self.to or instance in self.to

    def to_dict(self, body: bool = True) -> dict[str, Any]:
        data = {
            "path": self.path,
            "id": self.meta.get("id"),
            "title": self.title,
            "from": self.sender,
            "to": self.to,
            "status": self.status,
            "created": _iso(self.meta.get("created")),
            "updated": _iso(self.meta.get("updated")),
            "updated_by": self.meta.get("updated_by"),
            "answers": self.answers,
        }
        if body:
            data["body"] = self.note.body.strip("\r\n")
        return data


def _folder(vault: "Vault") -> Path:
    return vault.root / BRIDGE_DIR


def _paths(vault: "Vault") -> list[Path]:
    folder = _folder(vault)
    if not folder.is_dir():
        return []
    return sorted(p for p in ignore.inside(vault.root, folder.glob("*.md"))
                  if not is_ignored_name(p.name) and not is_conflict_copy(f"{BRIDGE_DIR}/{p.name}"))


def _load(vault: "Vault", path: Path) -> BridgeNote:
    return BridgeNote(vault.relpath(path), notes.read_note(path))


def write_bridge_note(vault: "Vault", text: str, to: str | Iterable[str] | None = ALL, title: str | None = None,
                      sender: str | None = None, known_only: bool = False) -> BridgeNote:
    """Write `bridge/<slug>.md` from *sender* (default: this instance) to *to*.

    With *known_only*, every recipient must be `all`, `human` or an instance
    with a card (a person's typo, `--to tablet`, is refused, nothing written).
    """
    if not text or not text.strip():
        raise InvalidValueError("a bridge note needs some text")
    recipients = normalise_to(to)
    if known_only:
        known = [c.name for c in vault.instances.list()]
        for name in recipients:
            if name not in (ALL, HUMAN) and name not in known:
                raise InvalidValueError(
                    f"there is no instance {name!r} in this vault (instances: {', '.join(known) or 'none yet'}); "
                    "address the note to one of them, to human or to all; nothing was written")
    who = _sender(sender, vault)
    title = " ".join((title or title_from_text(text)).split())
    created = timestamp()
    meta = {
        "id": secrets.token_hex(6),
        "type": "bridge",
        "title": title,
        "from": who,
        "to": ALL if recipients == [ALL] else recipients,
        "status": "open",
        "created": created,
        "updated": created,
        "instance": vault.instance,
        "updated_by": who,
    }
    data = notes.new(meta, text.strip("\n") + "\n").render()
    rel = vault.create_note(vault.relpath(_folder(vault)), title, data)
    vault.touched(rel)
    return BridgeNote(rel, notes.parse(data, rel))


def list_bridge(vault: "Vault", open_only: bool = True, for_instance: str | None = None,
                on_error=None) -> list[BridgeNote]:
    """Bridge notes, oldest first; only open ones unless *open_only* is False;
    only those addressed to *for_instance* (or to all) when given."""
    found = []
    for path in _paths(vault):
        try:
            b = _load(vault, path)
        except (UnreadableNoteError, FileNotFoundError) as exc:
            if on_error and isinstance(exc, UnreadableNoteError):
                on_error(exc)
            continue
        if b.note.meta.get("type") not in (None, "bridge") and b.note.error is None:
            continue  # some other kind of note a person keeps in bridge/
        if open_only and not b.is_open:
            continue
        if for_instance and not b.addressed_to(for_instance):
            continue
        found.append(b)
    found.sort(key=lambda b: (str(_iso(b.meta.get("created")) or ""), b.path))
    return found


def get_bridge(vault: "Vault", ref: str) -> BridgeNote:
    """A bridge note by path, file name (with or without .md), id or title."""
    ref = str(ref).strip()
    if not ref:
        raise NotFoundError("no bridge note given")
    for candidate in (ref, f"{BRIDGE_DIR}/{ref}", f"{BRIDGE_DIR}/{ref}.md"):
        if candidate.endswith(".md"):
            full = vault.resolve(candidate)
            if full.is_file():
                return _load(vault, full)
    matches = []
    for path in _paths(vault):
        try:
            b = _load(vault, path)
        except (UnreadableNoteError, FileNotFoundError):
            continue
        if ref == str(b.meta.get("id") or "") or ref.lower() == b.title.lower():
            return b
        if path.stem.startswith(ref):
            matches.append(b)
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise NotFoundError(f"bridge note {ref!r} is ambiguous: " + ", ".join(b.path for b in matches[:5]))
    raise NotFoundError(f"no bridge note {ref!r} (see `mirrorfs bridge list --all`)")


def answer(vault: "Vault", ref: str, text: str, sender: str | None = None,
           now: dt.datetime | None = None) -> BridgeNote:
    """Append an `## Answer from <who>` section to a bridge note and mark it answered."""
    if not text or not text.strip():
        raise InvalidValueError("an answer needs some text")
    who = _sender(sender, vault)
    target = get_bridge(vault, ref)
    when = timestamp(now)

    def change(n: notes.Note) -> notes.Note:
        nl = n.newline
        body = n.body.rstrip("\r\n")
        section = nl.join([f"## Answer from {who} · {when:%Y-%m-%d %H:%M}", "", text.strip("\n").replace("\n", nl)])
        n = n.with_body((body + nl + nl if body else nl) + section + nl)
        if not n.has_front_matter:
            return n  # a person's plain note: the heading alone marks it answered
        n = vault.stamp(n, status="answered")
        return n.set("updated_by", who) if who != vault.instance else n

    updated = vault.edit(target.path, change)
    vault.touched(target.path)
    return BridgeNote(target.path, updated)


# --------------------------------------------------------------------------
# The overview.


def bridge_overview(vault: "Vault", now: dt.datetime | None = None) -> dict[str, Any]:
    """Every instance's presence and intentions, open conflicts and unanswered bridge notes."""
    now = now or local_now()
    problems: list[str] = []
    cards = vault.instances.list(now=now)
    waiting = conflicts.list_open(vault)
    notes_open = list_bridge(vault, open_only=True, on_error=lambda e: problems.append(str(e)))
    return {
        "instance": vault.instance,
        "time": now.isoformat(),
        "instances": [c.to_dict() for c in cards],
        "conflicts": [c.to_dict() for c in waiting],
        "bridge": [b.to_dict(body=True) for b in notes_open],
        "problems": problems,
    }


def ago(then: dt.datetime | None, now: dt.datetime) -> str:
    """`just now`, `5 min ago`, `3 h ago`, `2 days ago`."""
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    return "1 day ago" if days == 1 else f"{days} days ago"


def presence_line(card: dict, now: dt.datetime, width: int = 0) -> str:
    """`laptop  active  seen 2026-11-21 10:04 (just now) on mybox`."""
    seen = card.get("last_seen")
    when = time_or_none(seen)
    seen_text = f"seen {local_minute(seen)} ({ago(when, now)})" if when else "never seen"
    device = f" on {card['device']}" if card.get("device") else ""
    return f"{card['name']:<{width}}  {card.get('state') or '?':<6}  {seen_text}{device}"


def format_overview(overview: dict) -> str:
    """The overview as text for the person who coordinates."""
    now = parse_time(overview["time"])
    lines = ["Instances"]
    cards = overview["instances"]
    width = max((len(c["name"]) for c in cards), default=0)
    if not cards:
        lines.append("  none yet")
    for card in cards:
        lines.append("  " + presence_line(card, now, width))
        pad = " " * (width + 4)
        if card.get("status"):
            lines.append(f"{pad}status: {card['status']}")
        items = card.get("intention_items") or []
        if not items:
            lines.append(f"{pad}intends: nothing recorded")
        else:
            lines.append(f"{pad}intends:")
            for n, item in enumerate(items, 1):
                since = f" (since {item['since']})" if item.get("since") else ""
                lines.append(f"{pad}  {n}. {item['text']}{since}")
    lines += ["", "Open conflicts"]
    if not overview["conflicts"]:
        lines.append("  none")
    for c in overview["conflicts"]:
        path, original, reason = c.get("path", "?"), c.get("original"), c.get("reason")
        where = "  (git conflict markers)" if original == path else (f"  (copy of {original})" if original else "")
        lines.append(f"  {path}{where}" + (f": {reason}" if reason else ""))
    lines += ["", "Unanswered bridge notes"]
    if not overview["bridge"]:
        lines.append("  none")
    for b in overview["bridge"]:
        created = f"  {local_minute(b['created'])}" if b.get("created") else ""
        lines.append(f"  {b['path']}  \"{b['title']}\"  {b['from']} -> {', '.join(b['to'])}{created}")
    for problem in overview.get("problems") or []:
        lines.append(f"warning: {problem}")
    return "\n".join(lines)
