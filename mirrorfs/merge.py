"""The merges themselves, bytes in and bytes out: no files, no clock but "today".

Two versions of one note that a sync tool (or git) put side by side merge
here. "mine" is the version kept under the note's name, "theirs" the other
one, and a *base* is an earlier version both may descend from:

* `merge_text`: three ways line by line (the classic diff3); where both sides
  inserted different lines at one place both are kept;
* `merge_meta`: front matter key by key, list keys as sets, the later
  `updated` wins the bookkeeping keys;
* `merge_sessions`: the union of two sessions' messages by id, ordered by time;
* `keep_both`: the readable "keep both" rendering of a clash (the original,
  then a section holding the other version), never `<<<<<<<` markers;
* `plan_merge` and `settle` put these together for whole notes and say what
  each side would lose, so a caller can put that in the trash first.

`mirrorfs.conflicts` runs them on sync-conflict copies; a git merge driver can
run the same functions on the three files git hands it.
"""

from __future__ import annotations

import collections
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from mirrorfs import messages as msgs
from mirrorfs import note as notes
from mirrorfs.clock import time_or_none
from mirrorfs.errors import InvalidValueError, MirrorfsError, UnreadableNoteError

# The line-level merges live in mirrorfs.merge_lines; re-exported for callers of this module.
from mirrorfs.merge_lines import diff3 as diff3
from mirrorfs.merge_lines import merge_text as merge_text
from mirrorfs.merge_lines import same_newlines as same_newlines
from mirrorfs.merge_lines import union_lines as union_lines

MERGED = "merged"  # the copy is merged into the original and removed
KEPT_BOTH = "kept_both"  # both sides changed the same text: both kept, a person decides
NEEDS_PERSON = "needs_person"  # not something mirrorfs merges (binary, broken YAML, ...)
RESOLVED = "resolved"  # a person settled it (`settle`)

# Front matter values that change on every write: the newer one is taken and the
# older one is not worth keeping in the trash.
BOOKKEEPING_KEYS = frozenset({"updated", "updated_by", "tokens", "last_seen"})
# Lists merged as sets (an item added on either side is kept).
SET_KEYS = frozenset({"tags", "aliases", "intentions"})
# How many earlier versions a three-way merge is tried against: the merge must
# come out the same against each, otherwise which one is the common base is
# uncertain and a person decides.
BASE_CANDIDATES = 2
# What a person may keep when settling: the original, the other version, or both.
KEEP = ("mine", "theirs", "both")


# -- reading sides -----------------------------------------------------------------


@dataclass
class Side:
    """One version of a note: its bytes, parsed when they are text."""

    data: bytes
    note: notes.Note | None  # None: not text (binary, bad UTF-8)
    problem: str | None  # why this side cannot be merged automatically

    @property
    def type(self) -> Any:
        return self.note.meta.get("type") if self.note is not None else None

    @property
    def is_session(self) -> bool:
        return self.problem is None and self.type == "session"


def read_side(data: bytes, path: str) -> Side:
    """*data* parsed as a note named *path*, with the reason it cannot merge, if any."""
    if len(data) > notes.DEFAULT_MAX_BYTES:
        return Side(data, None, f"{path} is larger than {notes.DEFAULT_MAX_BYTES} bytes")
    try:
        note = notes.parse(data, path)
    except UnreadableNoteError as exc:
        return Side(data, None, exc.reason if "binary" not in exc.reason else f"{path} is binary")
    if note.error:
        return Side(data, note, f"{path}: front matter cannot be parsed: {note.error}")
    return Side(data, note, None)


# -- line bookkeeping (what a merge keeps and drops) --------------------------------

_TOP_KEY = re.compile(r"^(['\"]?)([^\s#'\"][^:]*?)\1\s*:(?:\s|$)")


def content_lines(note: notes.Note) -> collections.Counter:
    """Non-blank lines of a note, minus front matter lines of bookkeeping keys."""
    lines: list[str] = []
    key = None
    for line in note.fm_text.splitlines():
        m = _TOP_KEY.match(line)
        if m and not line[:1].isspace():
            key = m.group(2).strip()
        elif line and not line[:1].isspace() and not line.startswith("-"):
            key = None
        if key in BOOKKEEPING_KEYS or not line.strip():
            continue
        lines.append(line.rstrip("\r\n"))
    lines += [ln for ln in note.body.splitlines() if ln.strip()]
    return collections.Counter(lines)


def lost(side: notes.Note, merged: notes.Note) -> bool:
    """True when some content line of *side* is not in *merged*."""
    return bool(content_lines(side) - content_lines(merged))


def _decodable(data: bytes) -> bool:
    try:
        notes.decode(data)
        return True
    except UnreadableNoteError:
        return False


def lost_any(side: Side, data: bytes) -> bool:
    """True when some of *side*'s text would not be in *data*."""
    if side.data == data:
        return False
    if side.note is None or not _decodable(data):
        return True
    return lost(side.note, notes.parse(data))


# -- front matter ------------------------------------------------------------------------

_MISSING = object()


def _set_merge(base: Any, mine: list, theirs: list) -> list:
    """Items kept on both sides or added on either; removals honoured when there is a base."""
    b = base if isinstance(base, list) else None
    if b is None:
        return mine + [x for x in theirs if x not in mine]
    kept = [x for x in mine if x in theirs or x not in b]
    return kept + [x for x in theirs if x not in mine and x not in b]


def newer(mine_meta: dict, theirs_meta: dict) -> str:
    """'theirs' when the other side's `updated` is later than mine's, else 'mine'."""
    m, t = time_or_none(mine_meta.get("updated")), time_or_none(theirs_meta.get("updated"))
    if t is not None and (m is None or t > m):
        return "theirs"
    return "mine"


def _list_or_missing(value: Any) -> bool:
    return isinstance(value, list) or value is _MISSING


def merge_meta(
    base: dict | None, mine: dict, theirs: dict, newer_wins: bool = False, union_tags: bool = False
) -> tuple[dict, list[str]]:
    """Merge front matter key by key: (merged mapping, keys in conflict).

    A key changed on one side only takes that side's value; list keys (tags,
    aliases, intentions) merge as sets; `updated`/`last_seen` take the later
    time and `updated_by` follows `updated`. Anything else changed differently
    on both sides is a conflict, unless *newer_wins* (sessions), where the side
    with the later `updated` wins.
    """
    later = newer(mine, theirs)
    out: dict = {}
    conflicts: list[str] = []
    keys = list(mine) + [k for k in theirs if k not in mine]
    for key in keys:
        m, t = mine.get(key, _MISSING), theirs.get(key, _MISSING)
        b = base.get(key, _MISSING) if base is not None else _MISSING
        if m == t:
            value = m
        elif key in ("updated", "last_seen") and (time_or_none(m) or time_or_none(t)):
            tm, tt = time_or_none(m), time_or_none(t)
            value = m if tm is not None and (tt is None or tm >= tt) else t
        elif key == "updated_by":
            first, second = (t, m) if later == "theirs" else (m, t)
            value = first if first is not _MISSING else second
        elif key in SET_KEYS and _list_or_missing(m) and _list_or_missing(t):
            value = _set_merge(_MISSING if union_tags else b, m if m is not _MISSING else [],
                               t if t is not _MISSING else [])
        elif base is not None and t == b:
            value = m
        elif base is not None and m == b:
            value = t
        elif newer_wins:
            value = t if later == "theirs" else m
        else:
            conflicts.append(str(key))
            value = m
        if value is not _MISSING:
            out[key] = value
    return out, conflicts


def apply_meta(template: notes.Note, merged: dict) -> notes.Note:
    """*template* with its front matter changed to *merged*, other lines untouched."""
    note = template
    for key in [k for k in note.meta if k not in merged]:
        note = note.unset(key)
    for key, value in merged.items():
        if note.meta.get(key, _MISSING) != value:
            note = note.set(key, value)
    return note


# -- whole notes -----------------------------------------------------------------------------


@dataclass
class Plan:
    """The outcome of merging two sides in memory."""

    status: str
    kind: str
    data: bytes | None = None  # what the original should hold (None: leave it)
    reason: str = ""
    conflict: str | None = None
    added_messages: int = 0
    added_lines: int = 0
    removed_lines: int = 0
    lost_from_original: bool = False  # put the original's bytes in the trash first
    lost_from_copy: bool = False  # move the copy to the trash instead of deleting it


def plan_merge(
    mine: bytes,
    theirs: bytes,
    bases: Iterable[bytes] = (),
    original: str = "original",
    copy: str = "copy",
) -> Plan:
    """Decide how *theirs* merges into *mine*; *original*/*copy* name them in reasons.

    *bases* are earlier versions of the note, newest first; versions equal to
    either side are skipped (they are a side, not a base).
    """
    if mine == theirs:
        return Plan(MERGED, "note", data=mine, reason="the copy is identical to the original")
    m, t = read_side(mine, original), read_side(theirs, copy)
    for side in (m, t):
        if side.problem:
            kind = "binary" if side.note is None else "unparseable"
            return Plan(NEEDS_PERSON, "file", reason=side.problem, conflict=kind)
    assert m.note is not None and t.note is not None
    if m.is_session != t.is_session:
        return Plan(
            NEEDS_PERSON, "file", conflict="type",
            reason=f"one side is a session and the other is not (type {m.type!r} / {t.type!r})",
        )
    base_notes = []
    for data in bases:
        if data == mine or data == theirs:
            continue
        b = read_side(data, original)
        if b.note is not None and b.problem is None:
            base_notes.append(b.note)
    if m.is_session:
        return _plan_session(m.note, t.note, base_notes[0] if base_notes else None)
    if m.type == "instance" and t.type == "instance":
        return _plan_card(m.note, t.note, base_notes[0] if base_notes else None)
    return _plan_note(m.note, t.note, base_notes[:BASE_CANDIDATES])


def _plan_card(mine: notes.Note, theirs: notes.Note, base: notes.Note | None) -> Plan:
    """An instance card: each instance's own latest state.

    A card is written by its own instance, so where both sides changed a key
    (the status line, `last_seen`, the device) the side with the later
    `updated` is that instance's latest word; intentions merge as sets (one
    added on either side stays, one marked done on one side goes) and the text
    below the front matter merges three ways like any note.
    """
    meta, _ = merge_meta(base.meta if base else None, mine.meta, theirs.meta, newer_wins=True)
    nl = mine.newline
    body, clashes = merge_text(same_newlines(base.body, nl) if base is not None else None,
                               mine.body, same_newlines(theirs.body, nl), nl)
    if clashes:
        return Plan(KEPT_BOTH, "card", conflict="lines" if base is not None else "no_base",
                    reason="both sides changed the same lines of the card's text")
    try:
        merged = apply_meta(mine, meta).with_body(body)
    except MirrorfsError as exc:
        return Plan(KEPT_BOTH, "card", conflict="front_matter",
                    reason=f"the merged front matter cannot be written safely: {exc}")
    mine_lines, merged_lines = content_lines(mine), content_lines(merged)
    return Plan(
        MERGED, "card", data=merged.render(), reason="each instance's latest card",
        added_lines=sum((merged_lines - mine_lines).values()),
        removed_lines=sum((mine_lines - merged_lines).values()),
        lost_from_original=lost(mine, merged), lost_from_copy=lost(theirs, merged),
    )


def _plan_note(mine: notes.Note, theirs: notes.Note, bases: list[notes.Note]) -> Plan:
    attempts = [merge_note(b, mine, theirs) for b in bases] or [merge_note(None, mine, theirs)]
    merged, conflict, reason = attempts[0]
    if merged is not None and any(other[0] is None or other[0].render() != merged.render() for other in attempts[1:]):
        merged, conflict = None, "base_uncertain"
        reason = "the merge comes out differently against the earlier versions this device saw"
    if merged is None:
        return Plan(KEPT_BOTH, "note", reason=reason, conflict=conflict)
    mine_lines, merged_lines = content_lines(mine), content_lines(merged)
    return Plan(
        MERGED, "note",
        data=merged.render(),
        reason="merged three ways" if bases else "one side only added lines",
        added_lines=sum((merged_lines - mine_lines).values()),
        removed_lines=sum((mine_lines - merged_lines).values()),
        lost_from_original=lost(mine, merged),
        lost_from_copy=lost(theirs, merged),
    )


def merge_note(
    base: notes.Note | None, mine: notes.Note, theirs: notes.Note
) -> tuple[notes.Note | None, str | None, str]:
    """A note merged three ways: (merged note or None, conflict kind, reason).

    Conflict kinds: front_matter, no_base, lines.
    """
    meta, key_conflicts = merge_meta(base.meta if base else None, mine.meta, theirs.meta)
    if key_conflicts:
        return None, "front_matter", "both sides changed " + ", ".join(key_conflicts) + " differently"
    nl = mine.newline
    body, conflicts = merge_text(
        same_newlines(base.body, nl) if base is not None else None,
        mine.body,
        same_newlines(theirs.body, nl),
        nl,
    )
    if conflicts:
        if base is None:
            return None, "no_base", "no earlier version of this note is known on this device to merge against"
        return None, "lines", f"both sides changed the same lines ({conflicts} place{'s' if conflicts > 1 else ''})"
    try:
        merged = apply_meta(mine, meta).with_body(body)
    except MirrorfsError as exc:
        return None, "front_matter", f"the merged front matter cannot be written safely: {exc}"
    return merged, None, ""


# -- keeping both versions, readably --------------------------------------------------------


RESOLVE_BOTH = "`mirrorfs conflicts resolve --keep both`"


def copy_source(copy: str) -> str:
    """How the keep-both renderings name a sync tool's conflict copy: "the conflict copy `name`"."""
    return f"the conflict copy `{copy}`"


def keep_both(mine: notes.Note, theirs: notes.Note, source: str, today: dt.date | None = None,
              kept_by: str = RESOLVE_BOTH) -> notes.Note:
    """*mine* followed by a section holding *theirs* (its front matter too, if it differs).

    *source* says where the other version came from (`copy_source(...)`, or
    a git branch), *kept_by* what kept both. Every byte of *mine*'s text is
    kept, no `<<<<<<<` markers; a person edits the result in any editor.
    """
    nl = mine.newline
    body = mine.body
    if body and not body.endswith("\n"):
        body += nl
    day = (today or dt.date.today()).isoformat()
    parts = [
        "",
        f"## Other version, from {source}",
        "",
        f"_Both versions kept by {kept_by} on {day}: edit this note and delete what you do not need._",
        "",
    ]
    if theirs.has_front_matter and theirs.fm_text != mine.fm_text:
        fence = "```"
        while fence in theirs.fm_text:
            fence += "`"
        fm_lines = theirs.fm_text.replace("\r\n", "\n").rstrip("\n").split("\n")
        parts += ["Front matter of the other version:", "", fence + "yaml", *fm_lines, fence, ""]
    text = nl.join(parts) + nl + same_newlines(theirs.body.lstrip("\r\n"), nl)
    if not text.endswith("\n"):
        text += nl
    return mine.with_body(body + text)


def settle(mine: bytes, theirs: bytes, keep: str, original: str = "original", copy: str = "copy",
           source: str | None = None) -> Plan:
    """What the original holds when a person keeps *theirs* or *both* (*mine* needs no merge).

    theirs: the other bytes; for a session, the union of messages with the
    other version of messages edited on both sides. both: `keep_both`; for a
    session, both versions inside each message edited on both sides. *source*
    names where the other version came from (default: the conflict copy *copy*).
    """
    if keep not in KEEP:
        raise InvalidValueError(f"--keep must be one of {', '.join(KEEP)}, not {keep!r}")
    m, t = read_side(mine, original), read_side(theirs, copy)
    plan = Plan(RESOLVED, "note", reason=f"kept {keep}")
    if keep == "mine":
        plan.data = mine
    elif m.is_session and t.is_session:
        assert m.note is not None and t.note is not None
        merged = merge_sessions(m.note, t.note, None, prefer="theirs" if keep == "theirs" else "mine",
                                both_from=(source or copy_source(copy)) if keep == "both" else None,
                                newer_front_matter=False)
        plan.kind, plan.data, plan.added_messages = "session", merged.note.render(), merged.added
    elif keep == "theirs":
        plan.data = theirs
    else:
        if m.problem:
            raise InvalidValueError(f"cannot keep both in {original}: {m.problem}; keep mine or theirs")
        if t.note is None:
            raise InvalidValueError(f"cannot keep both: {t.problem}; keep mine or theirs")
        assert m.note is not None
        plan.data = keep_both(m.note, t.note, source or copy_source(Path(copy).name)).render()
    plan.lost_from_original = plan.data != mine and lost_any(m, plan.data)
    plan.lost_from_copy = lost_any(t, plan.data)
    return plan


# -- sessions: the union of messages by id, ordered by time -------------------------------------


@dataclass
class _Block:
    message: msgs.Message
    text: str  # heading line to the end of the content, one line ending at the end


def _split_session(body: str, newline: str) -> tuple[str, list[_Block]]:
    """Preamble and message blocks, each block's bytes as in the file."""
    found = msgs.blocks(body)
    if not found:
        return body, []
    blocks = []
    for block in found:
        text = re.sub(r"(\r?\n)(?:[ \t]*\r?\n)*[ \t]*\Z", r"\1", body[block.start:block.end])
        if not text.endswith("\n"):
            text += newline
        blocks.append(_Block(msgs.message_of(body, block), text))
    return body[: found[0].start], blocks


def _trim_preamble(preamble: str) -> str:
    """The preamble without the blank line each message block starts with."""
    lines = preamble.splitlines(keepends=True)
    if lines and not lines[-1].strip():
        lines.pop()
    return "".join(lines)


def _with_other_version(block: _Block, other: _Block, source: str, newline: str) -> str:
    """A message block holding its own content and the other side's version of it (from *source*)."""
    content = (
        block.message.content.rstrip("\n")
        + f"\n\n_Other version of this message, from {source}:_\n\n"
        + other.message.content
    )
    msg = msgs.Message(
        id=block.message.id, role=block.message.role, time=block.message.time,
        instance=block.message.instance, content=content, meta=dict(block.message.meta),
    )
    return msgs.render(msg, newline)[len(newline):]


@dataclass
class SessionMerge:
    """Two sessions merged: the note, and what a caller needs to judge it."""

    note: notes.Note
    edited: list[str]  # ids of messages edited differently on both sides
    added: int  # messages the other side added
    preamble_conflict: str | None  # why the text before the first message is in doubt


def merge_sessions(
    mine: notes.Note,
    theirs: notes.Note,
    base: notes.Note | None,
    prefer: str = "mine",
    both_from: str | None = None,
    newer_front_matter: bool = True,
) -> SessionMerge:
    """The union of two sessions' messages by id, ordered by time.

    A message that differs takes the side that changed it since *base*; one
    edited on both sides takes *prefer*'s version, or with *both_from* (where
    the other version came from, e.g. `copy_source(...)`) holds both versions. Front matter merges key by key, the side with the later
    `updated` winning clashes (unless *newer_front_matter* is False: then
    mine's, or theirs' with prefer="theirs"); `tokens` is the sum over the
    messages. The original's bytes are kept when its messages come first.
    """
    template = theirs if (newer_front_matter and newer(mine.meta, theirs.meta) == "theirs") else mine
    if prefer == "theirs":
        template = theirs
    nl = template.newline
    base_session = base if base is not None and base.meta.get("type") == "session" else None
    m_pre, m_blocks = _split_session(mine.body, mine.newline)
    t_pre, t_blocks = _split_session(theirs.body, theirs.newline)
    chosen, edited, added = _merge_messages(m_blocks, t_blocks, base_session, prefer, both_from, nl)
    order = msgs.merge([b.message for b in m_blocks], [b.message for b in t_blocks])
    preamble, pre_conflict = _merge_preamble(m_pre, t_pre, base_session, prefer, both_from, nl)
    texts = [chosen[m.id] for m in order]
    m_pre_n = same_newlines(m_pre, nl)
    mine_texts = [same_newlines(b.text, nl) for b in m_blocks]
    if preamble == m_pre_n and texts[: len(mine_texts)] == mine_texts and nl == mine.newline:
        # The original's messages come first, unchanged: keep its bytes and
        # append the rest, so a merge that only adds never rewrites a line.
        body = mine.body
        if len(texts) > len(mine_texts):
            body = re.sub(r"(?:\r?\n[ \t]*)*\Z", "", body)
            body = (body + nl if body else "") + "".join(nl + t for t in texts[len(mine_texts):])
    else:
        body = _trim_preamble(preamble) + "".join(nl + t for t in texts)
    meta = _session_meta(mine, theirs, base, order, prefer, newer_front_matter)
    return SessionMerge(apply_meta(template, meta).with_body(body), edited, added, pre_conflict)


def _merge_messages(
    m_blocks: list[_Block], t_blocks: list[_Block], base: notes.Note | None,
    prefer: str, both_from: str | None, nl: str,
) -> tuple[dict[str, str], list[str], int]:
    """(block text chosen per id, ids edited differently on both sides, messages added from theirs)."""
    base_msgs = {m.id: m for m in msgs.parse(base.body)[1]} if base is not None else {}
    by_id_m = {b.message.id: b for b in m_blocks}
    by_id_t = {b.message.id: b for b in t_blocks}
    chosen: dict[str, str] = {}
    edited: list[str] = []
    for mid, mb in by_id_m.items():
        tb = by_id_t.get(mid)
        if tb is None or tb.message == mb.message:
            chosen[mid] = same_newlines(mb.text, nl)
            continue
        b = base_msgs.get(mid)
        if b is not None and b == mb.message:
            chosen[mid] = same_newlines(tb.text, nl)
        elif b is not None and b == tb.message:
            chosen[mid] = same_newlines(mb.text, nl)
        else:
            edited.append(mid)
            if both_from is not None:
                chosen[mid] = same_newlines(_with_other_version(mb, tb, both_from, nl), nl)
            else:
                chosen[mid] = same_newlines((tb if prefer == "theirs" else mb).text, nl)
    added = 0
    for mid, tb in by_id_t.items():
        if mid not in chosen:
            chosen[mid] = same_newlines(tb.text, nl)
            added += 1
    return chosen, edited, added


def _merge_preamble(
    m_pre: str, t_pre: str, base: notes.Note | None, prefer: str, both_from: str | None, nl: str,
) -> tuple[str, str | None]:
    """The text before the first message, merged: (text, why it is in doubt or None)."""
    m_pre_n, t_pre_n = same_newlines(m_pre, nl), same_newlines(t_pre, nl)
    if m_pre_n.strip() == t_pre_n.strip():
        return (m_pre_n if prefer != "theirs" else t_pre_n), None
    base_pre = same_newlines(msgs.parse(base.body)[0], nl) if base is not None else None
    preamble, n = merge_text(base_pre, m_pre_n, t_pre_n, nl)
    if not n:
        return preamble, None
    if both_from is not None:
        preamble = "".join(union_lines(m_pre_n.splitlines(keepends=True), t_pre_n.splitlines(keepends=True)))
    elif prefer == "theirs":
        preamble = t_pre_n
    return preamble, "both sides changed the text before the first message"


def _session_meta(mine: notes.Note, theirs: notes.Note, base: notes.Note | None,
                  order: list[msgs.Message], prefer: str, newer_front_matter: bool) -> dict:
    meta, _ = merge_meta(
        base.meta if base is not None else None, mine.meta, theirs.meta, newer_wins=True, union_tags=True,
    )
    if prefer == "theirs":
        meta = {**meta, **{k: v for k, v in theirs.meta.items() if k not in ("tags",)}}
    elif not newer_front_matter:
        meta = {**meta, **{k: v for k, v in mine.meta.items() if k not in ("tags",)}}
    if "tokens" in meta:
        total = sum(int(m.meta.get("tokens") or 0) for m in order if isinstance(m.meta.get("tokens"), int))
        if total:
            meta["tokens"] = total
    return meta


def _plan_session(mine: notes.Note, theirs: notes.Note, base: notes.Note | None) -> Plan:
    try:
        merged = merge_sessions(mine, theirs, base)
    except MirrorfsError as exc:
        return Plan(NEEDS_PERSON, "session", conflict="front_matter", reason=f"cannot merge the front matter: {exc}")
    if merged.edited or merged.preamble_conflict:
        # Keep the union of messages in the original anyway (sessions are
        # append-only and keep growing), with this side's version of whatever
        # both sides edited and its own front matter; the copy keeps the rest.
        partial = merge_sessions(mine, theirs, base, newer_front_matter=False).note
        n = len(merged.edited)
        reason = merged.preamble_conflict or (
            f"{n} message{'s were' if n > 1 else ' was'} edited differently on both sides"
        )
        return Plan(
            KEPT_BOTH, "session",
            data=partial.render() if not lost(mine, partial) else None,
            reason=reason,
            conflict="preamble" if merged.preamble_conflict else "messages",
            added_messages=merged.added,
        )
    return Plan(
        MERGED, "session",
        data=merged.note.render(),
        reason="union of messages",
        added_messages=merged.added,
        lost_from_original=lost(mine, merged.note),
        lost_from_copy=lost(theirs, merged.note),
    )
