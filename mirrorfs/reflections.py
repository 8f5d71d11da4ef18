"""Reflections: what the other instances (and people) wrote since this one looked.

Instances never message each other; instance A learns about B by reading the
files B wrote. A reflection is one such change, attributed to whoever made it:

* a mirrorfs instance, from the file's own attribution (`updated_by` with
  `updated`, a message's `instance`, a bridge note's `from`);
* `human` when the bytes changed but the attribution did not (an edit in
  Obsidian or any editor), or when a file has no mirrorfs front matter;
* `someone` for a removal nobody signed (a file that simply vanished).

What "since it looked" means is a cursor kept per device and per instance in
the state folder (`reflections/<instance>.json`): a fingerprint of every note
as the instance last saw it (stat, sha256, attribution, message ids,
intentions). Reading reflections compares the vault with the cursor, reading
only the files whose size or mtime changed; marking them read moves the cursor.
Without a cursor (the first look) the reflections are what others wrote in the
last `FIRST_LOOK_DAYS` days, judged by the files' own times.

The watcher feeds single changes through `Reflector` (or the pure
`reflect_change`) to print each reflection as it arrives, and `record`s events
that are not file edits (merged conflict copies) in a small per-device log that
`vault_reflections` returns as well.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from filelock import FileLock

from mirrorfs import ignore, storage
from mirrorfs import messages as msgs
from mirrorfs import note as notes
from mirrorfs.bridge import ANSWER_HEADING
from mirrorfs.clock import iso_or_none, time_or_none
from mirrorfs.conflict_names import is_conflict_copy
from mirrorfs.errors import InvalidValueError, MirrorfsError, UnreadableNoteError
from mirrorfs.ignore import is_note_path
from mirrorfs.instances import split_intention
from mirrorfs.jsonlog import JsonLog
from mirrorfs.layout import kind_of

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

STATE_SUBDIR = "reflections"
LOG_NAME = "log.jsonl"
CURSOR_VERSION = 1
# A first look (no cursor yet) reports what others wrote in this many days.
FIRST_LOOK_DAYS = 7
# A time-based look skips files whose mtime is older than the cutoff by more
# than this: clocks of synced devices drift, and some tools keep the origin mtime.
MTIME_SLACK = 24 * 3600
# A file whose mtime is this close after its `updated` was written by the signer.
SAME_WRITE = 2.0
LOG_MAX_LINES = 2000
LOG_KEEP_LINES = 500

HUMAN = "human"
SOMEONE = "someone"

# How a kind is named in a reflection line.
_NOUNS = {
    "memory": "memory",
    "session": "session",
    "soul": "SOUL.md",
    "bridge": "bridge note",
    "instance": "instance card",
    "pattern": "pattern",
    "note": "note",
}
_H1 = re.compile(r"^#[ \t]+(?P<title>.+?)[ \t]*#*[ \t]*$", re.M)

# --------------------------------------------------------------------------
# Reflections.


@dataclass
class Reflection:
    """One thing another instance (or a person) did in the vault.

    *instance* is who (an instance name, `human` or `someone`); *action* is
    added / changed / removed / moved / answered / merged / ...; *kind* is
    memory / session / message / soul / intention / bridge / instance /
    pattern / note / conflict; *summary* is the line without who and where.
    """

    instance: str
    action: str
    kind: str
    path: str
    title: str
    time: dt.datetime | None
    summary: str
    details: dict = field(default_factory=dict)
    # The fingerprint of the file as reflected (what marking it read stores),
    # and the log entry time for recorded events; not part of the public data.
    _after: dict | None = field(default=None, repr=False, compare=False)
    _log_t: float | None = field(default=None, repr=False, compare=False)

    def line(self) -> str:
        """One readable line: `phone added memory "Prefers tea" (memory/prefers-tea.md)`."""
        return f"{self.instance} {self.summary} ({self.path})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "action": self.action,
            "kind": self.kind,
            "path": self.path,
            "title": self.title,
            "time": self.time.isoformat() if self.time else None,
            "summary": self.summary,
            "details": self.details,
            "line": self.line(),
        }

    def env(self, prefix: str = "MIRRORFS_") -> dict[str, str]:
        """Environment variables for a hook command (`mirrorfs watch --exec`)."""
        data = self.to_dict()
        env = {f"{prefix}{key.upper()}": "" if data[key] is None else str(data[key])
               for key in ("instance", "action", "kind", "path", "title", "time", "summary", "line")}
        env[f"{prefix}REFLECTION"] = json.dumps(data, ensure_ascii=False, default=str)
        return env

    @classmethod
    def from_dict(cls, data: dict) -> "Reflection":
        t = data.get("time")
        return cls(
            instance=str(data.get("instance") or SOMEONE),
            action=str(data.get("action") or "changed"),
            kind=str(data.get("kind") or "note"),
            path=str(data.get("path") or ""),
            title=str(data.get("title") or ""),
            time=time_or_none(t),
            summary=str(data.get("summary") or data.get("action") or ""),
            details=dict(data.get("details") or {}),
        )


def conflict_reflection(vault: "Vault", path: str, copy: str, merged: bool = True,
                        details: dict | None = None, title: str | None = None) -> Reflection:
    """The reflection the watcher records for a conflict copy it merged or surfaced."""
    title = title or Path(path).stem
    if merged:
        summary = f"merged conflict copy {copy} into {_quote(title)}"
    else:
        summary = f"kept both sides of conflict copy {copy} in {_quote(title)}; settle it with `mirrorfs conflicts`"
    return Reflection(
        instance=vault.instance, action="merged" if merged else "conflict", kind="conflict", path=path,
        title=title, time=msgs.now(), summary=summary, details={"copy": copy, **(details or {})},
    )


def merge_reflection(vault: "Vault", result: Any) -> Reflection:
    """The reflection of a `mirrorfs.conflicts.MergeResult` (merged, kept_both, ...)."""
    status = str(getattr(result, "status", "merged"))
    original = str(getattr(result, "original", "") or getattr(result, "copy", ""))
    details = result.to_dict() if hasattr(result, "to_dict") else {}
    return Reflection(
        instance=vault.instance, action=status, kind="conflict", path=original,
        title=Path(original).stem, time=msgs.now(), summary=str(result.summary()), details=details,
    )


def _quote(title: str) -> str:
    return '"' + title.replace('"', "'") + '"'


def _noun(kind: str) -> str:
    return _NOUNS.get(kind, kind)


def _named(kind: str, title: str) -> str:
    """`memory "Prefers tea"`, or just `SOUL.md`."""
    return "SOUL.md" if kind == "soul" else f"{_noun(kind)} {_quote(title)}"


# --------------------------------------------------------------------------
# Fingerprints: what the cursor keeps of each note.


def _short(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.replace(",", " ").split() if v.strip()]
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [str(value)]


def _front_matter(text: str) -> tuple[str, str, dict, bool]:
    """(front matter text, body, mapping, usable) as note.parse_text splits them."""
    parts = notes.split(text)
    if not parts.fm_open:
        return "", text, {}, False
    meta, error = notes.load_yaml(parts.fm_text)
    return parts.fm_text, parts.body, meta, error is None


class _Messages(dict):
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


def _messages(body: str) -> _Messages:
    """Every message of a session body by id, in order (see messages.blocks)."""
    found = _Messages()
    for block in msgs.blocks(body):
        found[block.id] = block.raw
    return found


def fingerprint(relpath: str, data: bytes, mtime_ns: int = 0, size: int | None = None) -> tuple[dict, dict]:
    """(fingerprint, messages) of a note's bytes; messages maps id -> (instance, time, role)."""
    fp: dict[str, Any] = {"m": mtime_ns, "s": len(data) if size is None else size, "h": storage.sha256(data)}
    messages: dict = _Messages()
    stem = relpath.rsplit("/", 1)[-1].removesuffix(".md")
    try:
        _, text = notes.decode(data, relpath)
    except UnreadableNoteError:
        fp.update(k=kind_of(relpath, {}), t=stem, plain=True)
        return fp, messages
    fm_text, body, meta, usable = _front_matter(text)
    kind = kind_of(relpath, meta)
    fp["k"] = kind
    title = meta.get("title")
    if kind == "instance":
        title = title or stem
    elif kind == "soul":
        title = meta.get("name") or "SOUL.md"
    elif not title:
        m = _H1.search(body)
        title = m.group("title") if m else stem
    fp["t"] = str(title)
    if not meta or not usable:
        fp["plain"] = True
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
        fp["to"] = _names(meta.get("to")) or ["all"]
        fp["c"] = fp["c"] or HUMAN
        answered = ANSWER_HEADING.search(body)
        fp["st"] = str(meta.get("status") or ("answered" if answered else "open"))
    return fp, messages


def _addressed(fp: dict, me: str) -> bool:
    """A bridge note concerns *me* when it is to me or to all, or when I wrote it."""
    to = fp.get("to") or ["all"]
    return "all" in to or me in to or fp.get("c") == me


def _attribution(old: dict, new: dict) -> str:
    """Who wrote *new* over *old*: the instance that re-signed it, else a person.

    `updated` has whole seconds, so an instance writing twice within one second
    leaves the signature as it was; such a file was written (its mtime) within
    `SAME_WRITE` of its `updated`, which an editor's save after the fact is not.
    """
    by = new.get("b")
    if not by or new.get("plain"):
        return HUMAN
    if by != old.get("b") or new.get("u") != old.get("u"):
        return by
    signed, written = time_or_none(new.get("u")), new.get("m")
    if signed is not None and written and 0 <= written / 1e9 - signed.timestamp() < SAME_WRITE:
        return by
    return HUMAN


def _mtime(fp: dict) -> dt.datetime | None:
    m = fp.get("m")
    return dt.datetime.fromtimestamp(m / 1e9).astimezone() if m else None


def _change_time(fp: dict, actor: str) -> dt.datetime | None:
    if actor != HUMAN:
        return time_or_none(fp.get("u")) or _mtime(fp)
    return _mtime(fp) or time_or_none(fp.get("u"))


def _message_reflections(me: str, rel: str, fp: dict, new_ids: Iterable[str], messages: dict,
                         skip: str | None = None) -> list[Reflection]:
    """One reflection per instance that added messages to a session."""
    groups: dict[str, list[str]] = {}
    for mid in new_ids:
        who = messages.get(mid, (SOMEONE, None, ""))[0] or SOMEONE
        if who in (me, skip):
            continue
        groups.setdefault(who, []).append(mid)
    out = []
    for who, ids in groups.items():
        times = [t for t in (time_or_none(messages[i][1]) for i in ids) if t]
        n = len(ids)
        what = "a message" if n == 1 else f"{n} messages"
        out.append(Reflection(
            instance=who, action="added", kind="message", path=rel, title=fp.get("t", ""),
            time=max(times) if times else _mtime(fp),
            summary=f"added {what} to session {_quote(fp.get('t', ''))}",
            details={"count": n, "messages": [
                {"id": i, "role": messages[i][2], "time": messages[i][1]} for i in ids
            ]},
            _after=fp,
        ))
    return out


def _intention_reflections(rel: str, fp: dict, actor: str, added: list[str], removed: list[str],
                           when: dt.datetime | None) -> list[Reflection]:
    owner = rel.rsplit("/", 1)[-1].removesuffix(".md")
    suffix = "" if actor == owner else f" for {owner}"
    out = []
    for action, items in (("added", added), ("removed", removed)):
        for raw in items:
            text, day = split_intention(raw)
            out.append(Reflection(
                instance=actor, action=action, kind="intention", path=rel, title=text, time=when,
                summary=f"{action} intention {_quote(text)}{suffix}",
                details={"owner": owner, "text": text, "since": day.isoformat() if day else None},
                _after=fp,
            ))
    return out


def _diff(me: str, rel: str, old: dict | None, new: dict | None, messages: dict | None,
          trash_actor: str | None = None, now: dt.datetime | None = None) -> list[Reflection]:
    """The reflections of one note going from fingerprint *old* to *new* (None: absent)."""
    if old is None and new is None:
        return []
    if new is None:
        assert old is not None
        kind = old.get("k", "note")
        if kind == "bridge" and not _addressed(old, me):
            return []
        actor = trash_actor or SOMEONE
        if actor == me:
            return []
        return [Reflection(
            instance=actor, action="removed", kind=kind, path=rel, title=old.get("t", ""),
            time=now or msgs.now(), summary=f"removed {_named(kind, old.get('t', ''))}", details={},
            _after=None,
        )]
    if old is not None and old.get("h") == new.get("h"):
        return []
    messages = messages or {}
    kind = new.get("k", "note")
    title = new.get("t", "")
    if kind == "bridge" and not _addressed(new, me):
        return []

    if old is None:
        creator = new.get("c") or new.get("b") or HUMAN
        if new.get("plain"):
            creator = HUMAN
        if creator == me:
            # Created here, changed elsewhere before this instance looked.
            by = new.get("b")
            if not by or by == me:
                return _message_reflections(me, rel, new, new.get("ids", []), messages) if kind == "session" else []
            old = {"b": me, "u": None, "k": kind, "t": title, "ids": [
                i for i in new.get("ids", []) if messages.get(i, (me,))[0] == me
            ], "in": [], "st": "open"}
        else:
            return _added(me, rel, new, messages, creator)

    actor = _attribution(old, new)
    when = _change_time(new, actor)
    details: dict[str, Any] = {}
    if old.get("f") and old.get("f") != new.get("f"):
        details["properties"] = True
    if old.get("d") and old.get("d") != new.get("d"):
        details["text"] = True
    if old.get("t") and old.get("t") != title:
        details["old_title"] = old.get("t")

    if kind == "session":
        known = set(old.get("ids") or [])
        fresh = [i for i in new.get("ids", []) if i not in known]
        out = _message_reflections(me, rel, new, fresh, messages)
        if fresh:
            return out
        if actor == me:
            return []
        gone = [i for i in old.get("ids") or [] if i not in set(new.get("ids", []))]
        if gone:
            details["removed_messages"] = len(gone)
        action, verb = "changed", "changed"
        if old.get("st") != "closed" and new.get("st") == "closed":
            action, verb = "closed", "closed"
        return [Reflection(actor, action, kind, rel, title, when, f"{verb} session {_quote(title)}", details,
                           _after=new)]

    if kind == "instance":
        before, after = list(old.get("in") or []), list(new.get("in") or [])
        added = [i for i in after if i not in before]
        removed = [i for i in before if i not in after]
        if actor == me:
            return []
        if added or removed:
            return _intention_reflections(rel, new, actor, added, removed, when)
        if actor != HUMAN:
            return []  # last_seen / status: presence, not news
        return [Reflection(actor, "changed", kind, rel, title, when, f"changed {_named(kind, title)}", details,
                           _after=new)]

    if actor == me:
        return []
    if kind == "bridge" and old.get("st") != "answered" and new.get("st") == "answered":
        return [Reflection(actor, "answered", kind, rel, title, when, f"answered {_named(kind, title)}",
                           details, _after=new)]
    return [Reflection(actor, "changed", kind, rel, title, when, f"changed {_named(kind, title)}", details,
                       _after=new)]


def _added(me: str, rel: str, new: dict, messages: dict, creator: str) -> list[Reflection]:
    kind = new.get("k", "note")
    title = new.get("t", "")
    when = time_or_none(new.get("cr")) or _change_time(new, creator)
    if kind == "session":
        ids = new.get("ids", [])
        own = [i for i in ids if messages.get(i, (None,))[0] == creator]
        summary = f"added session {_quote(title)}"
        if own:
            summary += " with a message" if len(own) == 1 else f" with {len(own)} messages"
        out = [Reflection(creator, "added", kind, rel, title, when, summary, {"messages": len(own)}, _after=new)]
        return out + _message_reflections(me, rel, new, ids, messages, skip=creator)
    if kind == "instance":
        out = [Reflection(creator, "added", kind, rel, title, when, "joined the vault", {}, _after=new)]
        return out + _intention_reflections(rel, new, creator, list(new.get("in") or []), [], when)
    if kind == "bridge":
        to = new.get("to") or ["all"]
        return [Reflection(creator, "added", kind, rel, title, when,
                           f"added {_named(kind, title)} for {', '.join(to)}", {"to": to}, _after=new)]
    return [Reflection(creator, "added", kind, rel, title, when, f"added {_named(kind, title)}", {}, _after=new)]


def _moves(me: str, changes: list[tuple[str, dict | None, dict | None, dict]]) -> tuple[list, list[Reflection]]:
    """Pair removals with additions of the same bytes: a rename, not a loss."""
    removed = {old["h"]: rel for rel, old, new, _ in changes if new is None and old and old.get("h")}
    if not removed:
        return changes, []
    rest, out = [], []
    paired: set[str] = set()
    for rel, old, new, messages in changes:
        if old is None and new is not None and new.get("h") in removed and removed[new["h"]] not in paired:
            src = removed[new["h"]]
            paired.add(src)
            kind = new.get("k", "note")
            if not (kind == "bridge" and not _addressed(new, me)):
                out.append(Reflection(
                    HUMAN, "moved", kind, rel, new.get("t", ""), _mtime(new),
                    f"moved {_named(kind, new.get('t', ''))} from {src}", {"from": src}, _after=new,
                ))
            continue
        rest.append((rel, old, new, messages))
    return [c for c in rest if not (c[2] is None and c[0] in paired)], out


# --------------------------------------------------------------------------
# Scanning against a cursor: stat first, hash only what changed.


@dataclass
class _Scan:
    current: dict[str, dict]
    changes: list[tuple[str, dict | None, dict | None, dict]]
    refreshed: list[str]  # same bytes, new stat: only the cursor's stat needs updating
    unreadable: list[str]


def _scan(vault: "Vault", known: dict[str, dict]) -> _Scan:
    root = os.fspath(vault.root)
    unreadable: list[str] = []
    current: dict[str, dict] = {}
    changes: list[tuple[str, dict | None, dict | None, dict]] = []
    refreshed: list[str] = []
    try:
        paths = [rel for rel, _ in ignore.walk(root, on_error=lambda rel, exc: unreadable.append(rel))
                 if not is_conflict_copy(rel)]
    except OSError as exc:
        raise MirrorfsError(f"cannot read the vault folder {root}: {exc.strerror or exc}") from None
    for relpath in paths:
        full = os.path.join(root, relpath)
        try:
            st = os.stat(full)
        except OSError:
            continue
        old = known.get(relpath)
        if old is not None and old.get("m") == st.st_mtime_ns and old.get("s") == st.st_size:
            current[relpath] = old
            continue
        try:
            data = notes.read_bytes(full)
        except FileNotFoundError:
            continue
        except UnreadableNoteError:
            # Too big or unreadable: follow it by stat alone.
            data = None
        if data is None:
            fp = {"m": st.st_mtime_ns, "s": st.st_size, "h": f"stat:{st.st_size}:{st.st_mtime_ns}",
                  "k": kind_of(relpath, {}), "t": relpath.rsplit("/", 1)[-1][:-3], "plain": True}
            messages: dict = {}
        else:
            if old is not None and old.get("h") == storage.sha256(data):
                current[relpath] = {**old, "m": st.st_mtime_ns, "s": st.st_size}
                refreshed.append(relpath)
                continue
            fp, messages = fingerprint(relpath, data, st.st_mtime_ns, st.st_size)
        current[relpath] = fp
        changes.append((relpath, old, fp, messages))
    for relpath, old in known.items():
        if relpath in current:
            continue
        if any(relpath.startswith(d + "/") for d in unreadable):
            current[relpath] = old  # a folder we could not list is not a folder of deleted notes
            continue
        changes.append((relpath, old, None, {}))
    return _Scan(current, changes, refreshed, unreadable)


def _trash_actor(vault: "Vault", relpath: str) -> str | None:
    """Who removed *relpath*, when the trash says so.

    `.mirrorfs/trash/<stamp>-<instance>/<path>` names the instance that forgot
    it; a plain `<stamp>` folder only says mirrorfs did; Obsidian's `.trash/`
    means a person did.
    """
    trash = vault.root / ".mirrorfs" / "trash"
    latest: str | None = None
    if trash.is_dir():
        for entry in os.scandir(trash):
            if entry.is_dir() and os.path.exists(os.path.join(entry.path, relpath)):
                latest = entry.name if latest is None or entry.name > latest else latest
    if latest is not None:
        m = re.match(r"^[0-9TZ]+-(?P<who>[a-z0-9][a-z0-9_-]*)$", latest)
        return m.group("who") if m else None
    if (vault.root / ".trash" / relpath.rsplit("/", 1)[-1]).exists():
        return HUMAN
    return None


# --------------------------------------------------------------------------
# The cursor and the event log (per device, per instance).


def _state_dir(vault: "Vault") -> Path:
    path = Path(vault.state_dir) / STATE_SUBDIR
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def cursor_path(vault: "Vault", instance: str | None = None) -> Path:
    return _state_dir(vault) / f"{instance or vault.instance}.json"


def _lock(vault: "Vault") -> FileLock:
    return FileLock(str(_state_dir(vault) / f"{vault.instance}.lock"), timeout=60)


def load_cursor(vault: "Vault") -> dict | None:
    """This instance's cursor, or None before its first `mark_read` (or if unreadable)."""
    try:
        data = json.loads(cursor_path(vault).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # derived state: a damaged cursor is a first look again
    if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION or not isinstance(data.get("files"), dict):
        return None
    return data


def _save_cursor(vault: "Vault", cursor: dict) -> None:
    text = json.dumps(cursor, ensure_ascii=False, separators=(",", ":"))
    storage.atomic_write(cursor_path(vault), text.encode("utf-8"))


def last_looked(vault: "Vault") -> dt.datetime | None:
    """When this instance last marked its reflections read (None: never)."""
    cursor = load_cursor(vault)
    return time_or_none(cursor.get("looked")) if cursor else None


def _log(vault: "Vault") -> JsonLog:
    return JsonLog(_state_dir(vault) / LOG_NAME, max_bytes=LOG_MAX_LINES * 400, keep=LOG_KEEP_LINES,
                   valid=lambda e: isinstance(e, dict) and isinstance(e.get("r"), dict))


def record(vault: "Vault", reflection: Reflection) -> None:
    """Append an event (e.g. a merged conflict copy) to this device's reflection log."""
    _log(vault).append({"t": time.time(), "n": secrets.token_hex(4), "r": reflection.to_dict()})


def _logged(vault: "Vault", after_t: float | None = None, since: dt.datetime | None = None) -> list[Reflection]:
    out = []
    for entry in _log(vault).read():
        t = float(entry.get("t") or 0)
        if after_t is not None and t <= after_t:
            continue
        r = Reflection.from_dict(entry["r"])
        if since is not None and (r.time or dt.datetime.fromtimestamp(t).astimezone()) < since:
            continue
        r._log_t = t
        out.append(r)
    return out


# --------------------------------------------------------------------------
# Public API.


def parse_since(value: Any) -> dt.datetime:
    """A cutoff from a datetime, a date or text (`2026-11-21` is local midnight)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.astimezone()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day).astimezone()
    text = str(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.datetime.fromisoformat(text).astimezone()
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValueError(f"cannot read {text!r} as a date: use YYYY-MM-DD or an ISO 8601 time") from None
    return t if t.tzinfo else t.astimezone()


def first_look_days(vault: "Vault") -> float:
    """Days a first look reaches back: `reflections: {first_look_days: N}` in the config."""
    settings = vault.config.get("reflections")
    value = settings.get("first_look_days") if isinstance(settings, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return float(FIRST_LOOK_DAYS)


def vault_reflections(vault: "Vault", since: Any = None, mark_read: bool = False,
                      now: dt.datetime | None = None) -> list[Reflection]:
    """What others wrote since this instance last looked (or since *since*), oldest first.

    With *mark_read* the cursor moves past everything returned. Own writes
    never appear; recorded events (merges) from this device's log do.
    """
    now = now or msgs.now()
    cursor = load_cursor(vault)
    read: dict[str, dict] = {}
    if since is not None:
        found = _since(vault, parse_since(since), plain=True)
    elif cursor is None:
        found = _since(vault, now - dt.timedelta(days=first_look_days(vault)), plain=False, collect=read)
    else:
        found = _since_cursor(vault, cursor, now)
    _sort(found)
    if mark_read:
        _mark(vault, found, now, first=read)
    return found


def _sort(found: list[Reflection]) -> None:
    found.sort(key=lambda r: (r.time is None, r.time.timestamp() if r.time else 0, r.path))


def mark_read(vault: "Vault", reflections: Iterable[Reflection], now: dt.datetime | None = None) -> None:
    """Move this instance's cursor past *reflections* (as they were when reflected)."""
    _mark(vault, list(reflections), now or msgs.now())


def reflect_change(vault: "Vault", relpath: str, old_bytes: bytes | None, new_bytes: bytes | None) -> list[Reflection]:
    """The reflections of one note going from *old_bytes* to *new_bytes* (None: absent).

    Pure: reads nothing else and moves no cursor. Own writes give nothing.
    """
    relpath = str(relpath).replace(os.sep, "/")
    if not is_note_path(relpath) or is_conflict_copy(relpath):
        return []
    mtime = 0
    if new_bytes is not None:
        try:
            mtime = os.stat(vault.root / relpath).st_mtime_ns
        except OSError:
            mtime = time.time_ns()
    old = fingerprint(relpath, old_bytes)[0] if old_bytes is not None else None
    new, messages = fingerprint(relpath, new_bytes, mtime) if new_bytes is not None else (None, {})
    trash = _trash_actor(vault, relpath) if new is None else None
    return _diff(vault.instance, relpath, old, new, messages, trash)


class Reflector:
    """Live reflections for a running watcher: one call per settled change.

    Keeps a fingerprint of every note in memory (not its bytes), so each change
    is compared with the version the watcher saw last. `start` fingerprints the
    vault (reading only what changed since the cursor) and returns what is
    unread; the cursor itself moves only when someone marks reflections read.
    """

    def __init__(self, vault: "Vault"):
        self.vault = vault
        self.known: dict[str, dict] = {}
        self.started = False

    def start(self, now: dt.datetime | None = None) -> list[Reflection]:
        """Take the vault's current state as the baseline; return what is still unread."""
        now = now or msgs.now()
        cursor = load_cursor(self.vault)
        if cursor is None:
            read: dict[str, dict] = {}
            found = _since(self.vault, now - dt.timedelta(days=first_look_days(self.vault)), plain=False,
                           collect=read)
            self.known = _scan(self.vault, read).current
        else:
            scan = _scan(self.vault, cursor["files"])
            found = _from_scan(self.vault, scan, now) + _logged(self.vault, after_t=cursor.get("log_until"))
            self.known = scan.current
        self.started = True
        _sort(found)
        return found

    def apply(self, change: Any) -> list[Reflection]:
        """Reflect one `mirrorfs.watcher.Change` (added / modified / deleted / moved)."""
        if change.kind == "deleted":
            return self.change(change.path, None)
        data = change.content
        if data is None:
            try:
                data = notes.read_bytes(self.vault.root / change.path)
            except (OSError, UnreadableNoteError):
                return []
        return self.change(change.path, data, old_path=change.old_path if change.kind == "moved" else None)

    def change(self, relpath: str, new_bytes: bytes | None, old_path: str | None = None) -> list[Reflection]:
        """Reflect one settled change: *new_bytes* None for a removal, *old_path* for a move."""
        if not self.started:
            self.start()
        me = self.vault.instance
        relpath = str(relpath).replace(os.sep, "/")
        if old_path is not None:
            old_path = str(old_path).replace(os.sep, "/")
        if not is_note_path(relpath) or is_conflict_copy(relpath):
            if old_path and old_path in self.known:  # moved out of the notes: a removal
                return self.change(old_path, None)
            return []
        if new_bytes is None:
            old = self.known.pop(relpath, None)
            return _diff(me, relpath, old, None, None, _trash_actor(self.vault, relpath))
        try:
            st = os.stat(self.vault.root / relpath)
            mtime, size = st.st_mtime_ns, st.st_size
        except OSError:
            mtime, size = time.time_ns(), len(new_bytes)
        new, messages = fingerprint(relpath, new_bytes, mtime, size)
        if old_path is not None and old_path != relpath:
            old = self.known.pop(old_path, None)
            self.known[relpath] = new
            if old is None:
                return _diff(me, relpath, None, new, messages)
            kind = new.get("k", "note")
            out = []
            if not (kind == "bridge" and not _addressed(new, me)):
                out.append(Reflection(HUMAN, "moved", kind, relpath, new.get("t", ""), _mtime(new),
                                      f"moved {_named(kind, new.get('t', ''))} from {old_path}",
                                      {"from": old_path}, _after=new))
            return out + _diff(me, relpath, old, new, messages)
        old = self.known.get(relpath)
        self.known[relpath] = new
        return _diff(me, relpath, old, new, messages)


# --------------------------------------------------------------------------
# The two ways to look: against the cursor, or by the files' own times.


def _from_scan(vault: "Vault", scan: _Scan, now: dt.datetime) -> list[Reflection]:
    me = vault.instance
    changes, found = _moves(me, scan.changes)
    for rel, old, new, messages in changes:
        trash = _trash_actor(vault, rel) if new is None else None
        found.extend(_diff(me, rel, old, new, messages, trash, now))
    return found


def _since_cursor(vault: "Vault", cursor: dict, now: dt.datetime) -> list[Reflection]:
    scan = _scan(vault, cursor["files"])
    found = _from_scan(vault, scan, now)
    reflected = {r.path for r in found} | {str(r.details["from"]) for r in found if r.action == "moved"}
    silent = [c for c in scan.changes if c[0] not in reflected]
    if silent or scan.refreshed:
        # Changes that are nobody's news (own writes, presence) go straight into
        # the cursor, so the next look need not hash those files again.
        _fold(vault, cursor, scan, silent)
    return found + _logged(vault, after_t=cursor.get("log_until"))


def _fold(vault: "Vault", seen: dict, scan: _Scan, silent: list) -> None:
    with _lock(vault):
        cursor = load_cursor(vault)
        if cursor is None or cursor.get("looked") != seen.get("looked"):
            return  # someone marked read meanwhile: leave their cursor alone
        files = cursor["files"]
        before = seen["files"]
        for rel in scan.refreshed:
            if files.get(rel) == before.get(rel):
                files[rel] = scan.current[rel]
        for rel, old, new, _ in silent:
            if files.get(rel) != old:
                continue
            if new is None:
                files.pop(rel, None)
            else:
                files[rel] = new
        _save_cursor(vault, cursor)


def _since(vault: "Vault", cutoff: dt.datetime, plain: bool, collect: dict | None = None) -> list[Reflection]:
    """What others wrote at or after *cutoff*, judged by the files' own times.

    With *plain*, files without mirrorfs attribution whose mtime is past the
    cutoff count as human edits; a first look leaves them out, as it has no
    earlier version to compare with. *collect* receives the fingerprints read.
    """
    me = vault.instance
    root = os.fspath(vault.root)
    cut = cutoff.timestamp()
    found: list[Reflection] = []
    try:
        paths = [rel for rel, _ in ignore.walk(root, on_error=lambda rel, exc: None) if not is_conflict_copy(rel)]
    except OSError:
        paths = []
    for relpath in paths:
        full = os.path.join(root, relpath)
        try:
            st = os.stat(full)
            if st.st_mtime < cut - MTIME_SLACK:
                continue
            data = notes.read_bytes(full)
        except (OSError, UnreadableNoteError):
            continue
        fp, messages = fingerprint(relpath, data, st.st_mtime_ns, st.st_size)
        if collect is not None:
            collect[relpath] = fp
        found.extend(_timed(me, relpath, fp, messages, cutoff, plain))
    return found + _logged(vault, since=cutoff)


def _after(value: Any, cutoff: dt.datetime) -> bool:
    t = time_or_none(value)
    return t is not None and t >= cutoff


def _timed(me: str, rel: str, fp: dict, messages: dict, cutoff: dt.datetime, plain: bool) -> list[Reflection]:
    kind = fp.get("k", "note")
    title = fp.get("t", "")
    if fp.get("plain") or not (fp.get("c") or fp.get("b")):
        # Nothing signed it: a person's file (or mirrorfs's own template).
        when = _mtime(fp)
        if not plain or when is None or when < cutoff or (kind == "bridge" and not _addressed(fp, me)):
            return []
        return [Reflection(HUMAN, "changed", kind, rel, title, when, f"changed {_named(kind, title)}", {},
                           _after=fp)]
    if kind == "bridge" and not _addressed(fp, me):
        return []
    creator = fp.get("c") or fp.get("b") or HUMAN
    by = fp.get("b") or creator
    created = _after(fp.get("cr"), cutoff)
    updated = _after(fp.get("u"), cutoff)
    if kind == "session":
        recent = [i for i in fp.get("ids", []) if _after(messages.get(i, ("", None, ""))[1], cutoff)]
        if created and creator != me:
            return _added(me, rel, {**fp, "ids": recent}, messages, creator)
        out = _message_reflections(me, rel, fp, recent, messages)
        if not out and updated and by != me:
            out.append(Reflection(by, "changed", kind, rel, title, time_or_none(fp.get("u")),
                                  f"changed session {_quote(title)}", {}, _after=fp))
        return out
    if kind == "instance":
        owner = by
        if owner == me:
            return []
        fresh = [raw for raw in fp.get("in", []) if (split_intention(raw)[1] or dt.date.min) >= cutoff.date()]
        out = []
        if created:
            out.append(Reflection(owner, "added", kind, rel, title, time_or_none(fp.get("cr")), "joined the vault", {},
                                  _after=fp))
        return out + _intention_reflections(rel, fp, owner, fresh, [], time_or_none(fp.get("u")))
    if kind == "bridge":
        if created and creator != me:
            to = fp.get("to") or ["all"]
            return [Reflection(creator, "added", kind, rel, title, time_or_none(fp.get("cr")),
                               f"added {_named(kind, title)} for {', '.join(to)}", {"to": to}, _after=fp)]
        if updated and by != me:
            action = "answered" if fp.get("st") == "answered" else "changed"
            return [Reflection(by, action, kind, rel, title, time_or_none(fp.get("u")),
                               f"{action} {_named(kind, title)}", {}, _after=fp)]
        return []
    if created and creator != me:
        return [Reflection(creator, "added", kind, rel, title, time_or_none(fp.get("cr")), f"added {_named(kind, title)}",
                           {}, _after=fp)]
    if updated and by != me:
        return [Reflection(by, "changed", kind, rel, title, time_or_none(fp.get("u")), f"changed {_named(kind, title)}",
                           {}, _after=fp)]
    return []


def _mark(vault: "Vault", reflections: list[Reflection], now: dt.datetime, first: dict | None = None) -> None:
    """Store the cursor: reflected files as reflected, silent changes as they are now.

    *first*: fingerprints a first look already read (their stat tells whether
    they need reading again).
    """
    me = vault.instance
    with _lock(vault):
        cursor = load_cursor(vault)
        known = cursor["files"] if cursor else (first or {})
        scan = _scan(vault, known)
        shown: dict[str, Reflection] = {}
        moved_from: set[str] = set()
        log_until = float(cursor.get("log_until") or 0) if cursor else 0.0
        for r in reflections:
            if r._log_t is not None:
                log_until = max(log_until, r._log_t)
                continue
            shown.setdefault(r.path, r)
            if r.action == "moved" and r.details.get("from"):
                moved_from.add(str(r.details["from"]))
        if cursor is None:
            # A first look takes everything the log held as its baseline too.
            log_until = max([log_until] + [float(e.get("t") or 0) for e in _log(vault).read()])
        files = dict(scan.current)
        if cursor is not None:
            for rel, old, new, messages in scan.changes:
                if rel in shown:
                    after = shown[rel]._after
                    if after is None and shown[rel].action == "removed":
                        files.pop(rel, None)
                    elif after is not None:
                        files[rel] = after
                    continue
                if rel in moved_from:
                    files.pop(rel, None)
                    continue
                if _diff(me, rel, old, new, messages, None, now):
                    # Unread news stays unread.
                    if old is None:
                        files.pop(rel, None)
                    else:
                        files[rel] = old
        _save_cursor(vault, {
            "version": CURSOR_VERSION,
            "instance": me,
            "looked": now.isoformat(),
            "log_until": log_until,
            "files": files,
        })
