"""Who did what: the Reflection record, and the reflections of a note going from one fingerprint to another.

Attribution comes from the files themselves (docs/format.md, Reflections):
a note's change belongs to its `updated_by` when the signature changed, a
new note to its creator, each message to its own `instance`; a change that
left the signature as it was is a person's (`human`), a removal nobody signed
is `someone`'s. Everything here is pure: fingerprints in, reflections out.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from mirrorfs.bridge import HUMAN
from mirrorfs.clock import now as local_now
from mirrorfs.clock import time_or_none
from mirrorfs.fingerprints import fingerprint
from mirrorfs.instances import split_intention

if TYPE_CHECKING:
    from mirrorfs.conflicts import MergeResult
    from mirrorfs.vault import Vault

SOMEONE = "someone"
# A file whose mtime is this close after its `updated` was written by the signer.
SAME_WRITE = 2.0

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
        title=title, time=local_now(), summary=summary, details={"copy": copy, **(details or {})},
    )


def merge_reflection(vault: "Vault", result: "MergeResult") -> Reflection:
    """The reflection of a `mirrorfs.conflicts.MergeResult` (merged, kept_both, ...)."""
    original = result.original or result.copy
    return Reflection(
        instance=vault.instance, action=result.status, kind="conflict", path=original,
        title=Path(original).stem, time=local_now(), summary=result.summary(), details=result.to_dict(),
    )


def seal_reflection(vault: "Vault", relpath: str, data: bytes, blocks: int) -> Reflection:
    """The reflection of this instance sealing *blocks* ```secret blocks of *relpath* (now *data*)."""
    fp, _ = fingerprint(relpath, data)
    kind, title = fp.get("k", "note"), fp.get("t", "")
    what = "a secret block" if blocks == 1 else f"{blocks} secret blocks"
    return Reflection(
        instance=vault.instance, action="sealed", kind=kind, path=relpath, title=title, time=local_now(),
        summary=f"sealed {what} in {_named(kind, title)}", details={"blocks": blocks},
    )


def _quote(title: str) -> str:
    return '"' + title.replace('"', "'") + '"'


def _noun(kind: str) -> str:
    return _NOUNS.get(kind, kind)


def _named(kind: str, title: str) -> str:
    """`memory "Prefers tea"`, or just `SOUL.md`."""
    return "SOUL.md" if kind == "soul" else f"{_noun(kind)} {_quote(title)}"


# --------------------------------------------------------------------------
# From two fingerprints to reflections.


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


def diff(me: str, rel: str, old: dict | None, new: dict | None, messages: dict | None,
         remover: str | None = None, now: dt.datetime | None = None) -> list[Reflection]:
    """The reflections of one note going from fingerprint *old* to *new* (None: absent).

    *me* is the instance looking (its own writes give nothing); *remover* who
    removed the note, when something says so; *messages* the new side's
    `fingerprints.Messages`.
    """
    if old is None and new is None:
        return []
    if new is None:
        assert old is not None
        return _removed(me, rel, old, remover, now)
    if old is not None and old.get("h") == new.get("h"):
        return []
    messages = messages or {}
    kind = new.get("k", "note")
    if kind == "bridge" and not _addressed(new, me):
        return []
    if old is None:
        creator = HUMAN if new.get("plain") else (new.get("c") or new.get("b") or HUMAN)
        if creator != me:
            return _added(me, rel, new, messages, creator)
        by = new.get("b")
        if not by or by == me:
            return _message_reflections(me, rel, new, new.get("ids", []), messages) if kind == "session" else []
        # Created here, changed elsewhere before this instance looked.
        old = {"b": me, "u": None, "k": kind, "t": new.get("t", ""), "ids": [
            i for i in new.get("ids", []) if messages.get(i, (me,))[0] == me
        ], "in": [], "st": "open"}
    actor = _attribution(old, new)
    when = _change_time(new, actor)
    if kind == "session":
        return _session_changed(me, rel, old, new, messages, actor, when)
    if kind == "instance":
        return _card_changed(me, rel, old, new, actor, when)
    if actor == me:
        return []
    title = new.get("t", "")
    action = "changed"
    if kind == "bridge" and old.get("st") != "answered" and new.get("st") == "answered":
        action = "answered"
    return [Reflection(actor, action, kind, rel, title, when, f"{action} {_named(kind, title)}",
                       _details(old, new), _after=new)]


def _removed(me: str, rel: str, old: dict, remover: str | None, now: dt.datetime | None) -> list[Reflection]:
    kind = old.get("k", "note")
    if kind == "bridge" and not _addressed(old, me):
        return []
    actor = remover or SOMEONE
    if actor == me:
        return []
    return [Reflection(
        instance=actor, action="removed", kind=kind, path=rel, title=old.get("t", ""),
        time=now or local_now(), summary=f"removed {_named(kind, old.get('t', ''))}", details={},
        _after=None,
    )]


def _details(old: dict, new: dict) -> dict[str, Any]:
    """What about a note changed: its properties, its text, its title."""
    details: dict[str, Any] = {}
    if old.get("f") and old.get("f") != new.get("f"):
        details["properties"] = True
    if old.get("d") and old.get("d") != new.get("d"):
        details["text"] = True
    if old.get("t") and old.get("t") != new.get("t", ""):
        details["old_title"] = old.get("t")
    return details


def _session_changed(me: str, rel: str, old: dict, new: dict, messages: dict, actor: str,
                     when: dt.datetime | None) -> list[Reflection]:
    known = set(old.get("ids") or [])
    fresh = [i for i in new.get("ids", []) if i not in known]
    if fresh:
        return _message_reflections(me, rel, new, fresh, messages)
    if actor == me:
        return []
    details = _details(old, new)
    gone = [i for i in old.get("ids") or [] if i not in set(new.get("ids", []))]
    if gone:
        details["removed_messages"] = len(gone)
    action = "closed" if old.get("st") != "closed" and new.get("st") == "closed" else "changed"
    title = new.get("t", "")
    return [Reflection(actor, action, "session", rel, title, when, f"{action} session {_quote(title)}", details,
                       _after=new)]


def _card_changed(me: str, rel: str, old: dict, new: dict, actor: str, when: dt.datetime | None) -> list[Reflection]:
    before, after = list(old.get("in") or []), list(new.get("in") or [])
    added = [i for i in after if i not in before]
    removed = [i for i in before if i not in after]
    if actor == me:
        return []
    if added or removed:
        return _intention_reflections(rel, new, actor, added, removed, when)
    if actor != HUMAN:
        return []  # last_seen / status: presence, not news
    title = new.get("t", "")
    return [Reflection(actor, "changed", "instance", rel, title, when, f"changed {_named('instance', title)}",
                       _details(old, new), _after=new)]


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


def moved(me: str, rel: str, new: dict, src: str) -> list[Reflection]:
    """A note moved from *src* to *rel*: a person's doing (mirrorfs never renames notes)."""
    kind = new.get("k", "note")
    if kind == "bridge" and not _addressed(new, me):
        return []
    title = new.get("t", "")
    return [Reflection(HUMAN, "moved", kind, rel, title, _mtime(new), f"moved {_named(kind, title)} from {src}",
                       {"from": src}, _after=new)]


def pair_moves(me: str, changes: list[tuple[str, dict | None, dict | None, dict]]) -> tuple[list, list[Reflection]]:
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
            out += moved(me, rel, new, src)
            continue
        rest.append((rel, old, new, messages))
    return [c for c in rest if not (c[2] is None and c[0] in paired)], out


def _after(value: Any, cutoff: dt.datetime) -> bool:
    t = time_or_none(value)
    return t is not None and t >= cutoff


def timed(me: str, rel: str, fp: dict, messages: dict, cutoff: dt.datetime, plain: bool) -> list[Reflection]:
    kind = fp.get("k", "note")
    title = fp.get("t", "")
    if fp.get("starter"):
        return []
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


