"""Sync-conflict copies: recognise them, merge them when the merge is certain,
and keep both sides for a person when it is not. Nothing is ever lost.

When two devices change the same file before a sync tool has carried one
change across, the tool keeps one version under the note's name (the winner:
"mine" here) and writes the other beside it under a conflict name (the copy:
"theirs"). mirrorfs then:

* merges a **session** as the union of its messages by id, ordered by time,
  front matter from the side with the newer `updated` (tags unioned);
* merges any **other note** three ways against a version this device saw
  before (see `snapshots`): front matter key by key, body line by line;
* when the merge is not certain (both sides changed the same lines, no earlier
  version is known, the file is not a valid note) leaves the original as it
  is, leaves the copy where it is, and records an open conflict for the
  person who bridges the instances (`mirrorfs conflicts list|show|resolve`).

A merged file is written through the one write path (compare-and-swap against
the bytes that were read, retried when the original changed meanwhile); the
copy is removed only after that write is durable. Whatever text a merge drops
from either side (a line one side deleted, a front-matter value the other side
replaced) is first put in the vault's trash, so every line of both sides is in
the result, in a kept copy, or in `.mirrorfs/trash/`.
"""

from __future__ import annotations

import collections
import datetime as dt
import difflib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from mirrorfs import ignore, snapshots, storage
from mirrorfs import messages as msgs
from mirrorfs import note as notes
from mirrorfs.clock import time_or_none

# Conflict names are read by mirrorfs.conflict_names; re-exported for callers of this module.
from mirrorfs.conflict_names import TOOLS as TOOLS
from mirrorfs.conflict_names import ConflictName as ConflictName
from mirrorfs.conflict_names import conflict_original as conflict_original
from mirrorfs.conflict_names import parse_conflict_name as parse_conflict_name
from mirrorfs.errors import (
    ConflictError,
    InvalidValueError,
    MirrorfsError,
    NotFoundError,
    UnreadableNoteError,
)
from mirrorfs.layout import TRASH_DIR

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

# Recognising conflict copies: the table in mirrorfs.conflict_names.


def find_conflicts(vault: "Vault") -> list[ConflictName]:
    """Every conflict copy of a note in the vault, sorted by path."""
    found = []
    for rel in ignore.iter_note_paths(vault.root, on_error=lambda exc: None):
        name = parse_conflict_name(rel.as_posix())
        if name is not None:
            found.append(name)
    return found


# -- merge results ---------------------------------------------------------------

MERGED = "merged"  # the copy is merged into the original and removed
KEPT_BOTH = "kept_both"  # both sides changed the same text: both kept, a person decides
NEEDS_PERSON = "needs_person"  # not something mirrorfs merges (binary, broken YAML, ...)
GONE = "gone"  # the copy was no longer there
RESOLVED = "resolved"  # a person settled it with resolve()

# Front matter values that change on every write: the newer one is taken and the
# older one is not worth keeping in the trash.
BOOKKEEPING_KEYS = frozenset({"updated", "updated_by", "tokens", "last_seen"})
# Lists merged as sets (an item added on either side is kept).
SET_KEYS = frozenset({"tags", "aliases", "intentions"})
# How many earlier versions a three-way merge is tried against: the merge must
# come out the same against each, otherwise which one is the common base is
# uncertain and a person decides.
BASE_CANDIDATES = 2
MERGE_RETRIES = 10
REGISTRY = "conflicts.json"


@dataclass
class MergeResult:
    """What happened to one conflict copy."""

    status: str  # merged | kept_both | needs_person | gone | resolved
    copy: str
    original: str
    tool: str | None = None
    kind: str = "note"  # session | note | file
    reason: str = ""
    # Why a person is needed: lines, no_base, base_uncertain, front_matter,
    # messages, preamble, unparseable, binary, type, missing_original.
    conflict: str | None = None
    added_messages: int = 0
    added_lines: int = 0
    removed_lines: int = 0
    written: bool = False  # the original was rewritten
    trashed: list[str] = field(default_factory=list)  # vault-relative paths in the trash
    keep: str | None = None  # resolve(): mine | theirs | both

    def summary(self) -> str:
        """One line for people, e.g. for the watcher's reflections."""
        if self.status == MERGED:
            if self.kind == "session":
                what = f"+{self.added_messages} message{'s' if self.added_messages != 1 else ''}"
            elif self.added_lines or self.removed_lines or self.written:
                what = f"+{self.added_lines} -{self.removed_lines} lines"
            else:
                what = "nothing new in the copy"
            text = f"merged conflict copy of {self.original}: {what}"
        elif self.status == RESOLVED:
            text = f"settled conflict copy of {self.original}: kept {self.keep}"
        elif self.status == GONE:
            return f"conflict copy {self.copy} is gone (settled elsewhere)"
        else:
            text = (
                f"conflict copy {self.copy} kept for a person: {self.reason} "
                f"(mirrorfs conflicts show {_quote(self.copy)})"
            )
        if self.trashed:
            text += "; replaced text kept in " + ", ".join(self.trashed)
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _quote(path: str) -> str:
    return f'"{path}"' if re.search(r"[\s'\"()]", path) else path


# -- reading sides -----------------------------------------------------------------


@dataclass
class _Side:
    data: bytes
    note: notes.Note | None  # None: not text (binary, bad UTF-8)
    problem: str | None  # why this side cannot be merged automatically

    @property
    def type(self) -> Any:
        return self.note.meta.get("type") if self.note is not None else None


def _side(data: bytes, path: str) -> _Side:
    if len(data) > notes.DEFAULT_MAX_BYTES:
        return _Side(data, None, f"{path} is larger than {notes.DEFAULT_MAX_BYTES} bytes")
    try:
        note = notes.parse(data, path)
    except UnreadableNoteError as exc:
        return _Side(data, None, exc.reason if "binary" not in exc.reason else f"{path} is binary")
    if note.error:
        return _Side(data, note, f"{path}: front matter cannot be parsed: {note.error}")
    return _Side(data, note, None)


# -- line bookkeeping (what a merge keeps and drops) --------------------------------

_TOP_KEY = re.compile(r"^(['\"]?)([^\s#'\"][^:]*?)\1\s*:(?:\s|$)")


def _content_lines(note: notes.Note) -> collections.Counter:
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


def _lost(side: notes.Note, merged: notes.Note) -> bool:
    """True when some content line of *side* is not in *merged*."""
    return bool(_content_lines(side) - _content_lines(merged))


# -- text and front matter merges -------------------------------------------------


def _is_subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


def _union(a: list[str], b: list[str]) -> list[str]:
    """Every line of *a* and *b*, shared runs once, *a*'s lines first where they differ."""
    out: list[str] = []
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            out += a[i1:i2]
        else:
            out += a[i1:i2] + b[j1:j2]
    return out


def _same_newlines(text: str, newline: str) -> str:
    if newline == "\n":
        return text.replace("\r\n", "\n")
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def merge_text(base: str | None, mine: str, theirs: str, newline: str = "\n") -> tuple[str, int]:
    """Three-way merge of two texts line by line: (result, conflicting regions).

    Conflicting regions come out as *mine*'s lines. Where both sides inserted
    different lines at the same place (nothing of the base changed there) both
    insertions are kept, mine's first: nothing is lost and nothing is in doubt
    but the order. Without a base the merge succeeds only when one side holds
    every line of the other in order (a pure addition).
    """
    if mine == theirs:
        return mine, 0
    a = mine.splitlines(keepends=True)
    b = theirs.splitlines(keepends=True)
    if base is None:
        if _is_subsequence(b, a):
            return mine, 0
        if _is_subsequence(a, b):
            return theirs, 0
        return mine, 1
    # A last line without its line ending must still equal the same line with one.
    a, b, z = (_end_lines(x, newline) for x in (a, b, base.splitlines(keepends=True)))
    out: list[str] = []
    conflicts = 0
    for zs, xs, ys in _diff3(z, a, b):
        if xs == zs:
            out += ys  # changed on their side only (or nowhere)
        elif ys == zs or xs == ys:
            out += xs  # changed on our side only, or the same way on both
        elif not zs:
            out += _union(xs, ys)  # both inserted at the same place: keep both
        else:
            conflicts += 1
            out += xs
    text = "".join(out)
    if not mine.endswith("\n") and not theirs.endswith("\n") and text.endswith(newline):
        text = text[: -len(newline)]
    return text, conflicts


def _matches(base: list[str], side: list[str]) -> list[tuple[int, int, int]]:
    return difflib.SequenceMatcher(None, base, side, autojunk=False).get_matching_blocks()


def _diff3(base: list[str], a: list[str], b: list[str]) -> Iterable[tuple[list[str], list[str], list[str]]]:
    """Chunks (base, a, b) of a three-way diff, in order (the classic diff3).

    Lines of the base that both sides kept unchanged ("sync regions", where
    the base-to-a and base-to-b matches overlap) anchor the alignment; the
    chunks between them are what either side changed. A sync region comes out
    as a chunk with all three parts equal.
    """
    ma, mb = _matches(base, a), _matches(base, b)
    syncs: list[tuple[int, int, int, int]] = []  # (base start, a start, b start, length)
    i = j = 0
    while i < len(ma) and j < len(mb):
        za, xa, na = ma[i]
        zb, yb, nb = mb[j]
        start, end = max(za, zb), min(za + na, zb + nb)
        if start < end:
            syncs.append((start, xa + start - za, yb + start - zb, end - start))
        if za + na < zb + nb:
            i += 1
        else:
            j += 1
    syncs.append((len(base), len(a), len(b), 0))
    z0 = x0 = y0 = 0
    for zs, xs, ys, n in syncs:
        if zs > z0 or xs > x0 or ys > y0:
            yield base[z0:zs], a[x0:xs], b[y0:ys]
        if n:
            yield base[zs:zs + n], a[xs:xs + n], b[ys:ys + n]
        z0, x0, y0 = zs + n, xs + n, ys + n


def _end_lines(lines: list[str], newline: str) -> list[str]:
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1] + [lines[-1] + newline]
    return lines


_MISSING = object()


def _as_list(value: Any) -> list | None:
    if isinstance(value, list):
        return value
    return None


def _set_merge(base: Any, mine: list, theirs: list) -> list:
    """Items kept on both sides or added on either; removals honoured when there is a base."""
    b = _as_list(base) if base is not _MISSING else None
    if b is None:
        return mine + [x for x in theirs if x not in mine]
    kept = [x for x in mine if x in theirs or x not in b]
    return kept + [x for x in theirs if x not in mine and x not in b]


def _newer(mine_meta: dict, theirs_meta: dict) -> str:
    """'theirs' when the copy's `updated` is later than the original's, else 'mine'."""
    m, t = time_or_none(mine_meta.get("updated")), time_or_none(theirs_meta.get("updated"))
    if t is not None and (m is None or t > m):
        return "theirs"
    return "mine"


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
    newer = _newer(mine, theirs)
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
            first, second = (t, m) if newer == "theirs" else (m, t)
            value = first if first is not _MISSING else second
        elif key in SET_KEYS and (isinstance(m, list) or m is _MISSING) and (isinstance(t, list) or t is _MISSING):
            value = _set_merge(_MISSING if union_tags else b, m if m is not _MISSING else [], t if t is not _MISSING else [])
        elif base is not None and t == b:
            value = m
        elif base is not None and m == b:
            value = t
        elif newer_wins:
            value = t if newer == "theirs" else m
        else:
            conflicts.append(str(key))
            value = m
        if value is not _MISSING:
            out[key] = value
    return out, conflicts


def _apply_meta(template: notes.Note, merged: dict) -> notes.Note:
    """*template* with its front matter changed to *merged*, other lines untouched."""
    note = template
    for key in [k for k in note.meta if k not in merged]:
        note = note.unset(key)
    for key, value in merged.items():
        if note.meta.get(key, _MISSING) != value:
            note = note.set(key, value)
    return note


# -- planning a merge (no I/O) -----------------------------------------------------


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
    """Decide how the copy (*theirs*) merges into the original (*mine*).

    *bases* are earlier versions of the note this device saw, newest first;
    versions equal to either side are skipped (they are a side, not a base).
    """
    if mine == theirs:
        return Plan(MERGED, "note", data=mine, reason="the copy is identical to the original")
    m, t = _side(mine, original), _side(theirs, copy)
    for side in (m, t):
        if side.problem:
            kind = "binary" if side.note is None else "unparseable"
            return Plan(NEEDS_PERSON, "file", reason=side.problem, conflict=kind)
    assert m.note is not None and t.note is not None
    if (m.type == "session") != (t.type == "session"):
        return Plan(
            NEEDS_PERSON, "file", conflict="type",
            reason=f"one side is a session and the other is not (type {m.type!r} / {t.type!r})",
        )
    base_notes = []
    for data in bases:
        if data == mine or data == theirs:
            continue
        b = _side(data, original)
        if b.note is not None and b.problem is None:
            base_notes.append(b.note)
    if m.type == "session":
        return _plan_session(m.note, t.note, base_notes[0] if base_notes else None)
    return _plan_note(m.note, t.note, base_notes[:BASE_CANDIDATES])


def _plan_note(mine: notes.Note, theirs: notes.Note, bases: list[notes.Note]) -> Plan:
    attempts = [_merge_note(b, mine, theirs) for b in bases] or [_merge_note(None, mine, theirs)]
    merged, conflict, reason = attempts[0]
    if merged is not None and any(other[0] is None or other[0].render() != merged.render() for other in attempts[1:]):
        merged, conflict = None, "base_uncertain"
        reason = "the merge comes out differently against the earlier versions this device saw"
    if merged is None:
        return Plan(KEPT_BOTH, "note", reason=reason, conflict=conflict)
    mine_lines, merged_lines = _content_lines(mine), _content_lines(merged)
    return Plan(
        MERGED, "note",
        data=merged.render(),
        reason="merged three ways" if bases else "one side only added lines",
        added_lines=sum((merged_lines - mine_lines).values()),
        removed_lines=sum((mine_lines - merged_lines).values()),
        lost_from_original=_lost(mine, merged),
        lost_from_copy=_lost(theirs, merged),
    )


def _merge_note(
    base: notes.Note | None, mine: notes.Note, theirs: notes.Note
) -> tuple[notes.Note | None, str | None, str]:
    """(merged note or None, conflict kind, reason)."""
    meta, key_conflicts = merge_meta(base.meta if base else None, mine.meta, theirs.meta)
    if key_conflicts:
        return None, "front_matter", "both sides changed " + ", ".join(key_conflicts) + " differently"
    nl = mine.newline
    body, conflicts = merge_text(
        _same_newlines(base.body, nl) if base is not None else None,
        mine.body,
        _same_newlines(theirs.body, nl),
        nl,
    )
    if conflicts:
        if base is None:
            return None, "no_base", "no earlier version of this note is known on this device to merge against"
        return None, "lines", f"both sides changed the same lines ({conflicts} place{'s' if conflicts > 1 else ''})"
    try:
        merged = _apply_meta(mine, meta).with_body(body)
    except MirrorfsError as exc:
        return None, "front_matter", f"the merged front matter cannot be written safely: {exc}"
    return merged, None, ""


# -- sessions ------------------------------------------------------------------------


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


def _render_blocks(preamble: str, blocks: list[str], newline: str) -> str:
    return _trim_preamble(preamble) + "".join(newline + b for b in blocks)


def _with_other_version(block: _Block, other: _Block, copy: str, newline: str) -> str:
    """A message block holding its own content and the other side's version of it."""
    content = (
        block.message.content.rstrip("\n")
        + f"\n\n_Other version of this message, from the conflict copy `{copy}`:_\n\n"
        + other.message.content
    )
    msg = msgs.Message(
        id=block.message.id, role=block.message.role, time=block.message.time,
        instance=block.message.instance, content=content, meta=dict(block.message.meta),
    )
    return msgs.render(msg, newline)[len(newline):]


def _session_result(
    mine: notes.Note,
    theirs: notes.Note,
    base: notes.Note | None,
    prefer: str = "mine",
    both_copy: str | None = None,
    newer_front_matter: bool = True,
) -> tuple[notes.Note, list[str], int, str | None]:
    """(merged session, ids edited differently on both sides, messages added, preamble conflict)."""
    template = theirs if (newer_front_matter and _newer(mine.meta, theirs.meta) == "theirs") else mine
    if prefer == "theirs":
        template = theirs
    nl = template.newline
    m_pre, m_blocks = _split_session(mine.body, mine.newline)
    t_pre, t_blocks = _split_session(theirs.body, theirs.newline)
    base_msgs: dict[str, msgs.Message] = {}
    if base is not None and base.meta.get("type") == "session":
        base_msgs = {m.id: m for m in msgs.parse(base.body)[1]}
    by_id_m = {b.message.id: b for b in m_blocks}
    by_id_t = {b.message.id: b for b in t_blocks}
    chosen: dict[str, str] = {}
    edited: list[str] = []
    for mid, mb in by_id_m.items():
        tb = by_id_t.get(mid)
        if tb is None or tb.message == mb.message:
            chosen[mid] = _same_newlines(mb.text, nl)
            continue
        b = base_msgs.get(mid)
        if b is not None and b == mb.message:
            chosen[mid] = _same_newlines(tb.text, nl)
        elif b is not None and b == tb.message:
            chosen[mid] = _same_newlines(mb.text, nl)
        else:
            edited.append(mid)
            if both_copy is not None:
                chosen[mid] = _same_newlines(_with_other_version(mb, tb, both_copy, nl), nl)
            else:
                chosen[mid] = _same_newlines((tb if prefer == "theirs" else mb).text, nl)
    added = 0
    for mid, tb in by_id_t.items():
        if mid not in chosen:
            chosen[mid] = _same_newlines(tb.text, nl)
            added += 1
    order = msgs.merge([b.message for b in m_blocks], [b.message for b in t_blocks])
    base_pre = base.body if base is not None and base.meta.get("type") == "session" else None
    if base_pre is not None:
        base_pre = msgs.parse(base_pre)[0]
    m_pre_n, t_pre_n = _same_newlines(m_pre, nl), _same_newlines(t_pre, nl)
    pre_conflict = None
    if m_pre_n.strip() == t_pre_n.strip():
        preamble = m_pre_n if prefer != "theirs" else t_pre_n
    else:
        preamble, n = merge_text(_same_newlines(base_pre, nl) if base_pre is not None else None, m_pre_n, t_pre_n, nl)
        if n:
            pre_conflict = "both sides changed the text before the first message"
            if both_copy is not None:
                preamble = _union(m_pre_n.splitlines(keepends=True), t_pre_n.splitlines(keepends=True))
                preamble = "".join(preamble)
            elif prefer == "theirs":
                preamble = t_pre_n
    texts = [chosen[m.id] for m in order]
    mine_texts = [_same_newlines(b.text, nl) for b in m_blocks]
    if preamble == m_pre_n and texts[: len(mine_texts)] == mine_texts and nl == mine.newline:
        # The original's messages come first, unchanged: keep its bytes and
        # append the rest, so a merge that only adds never rewrites a line.
        body = mine.body
        if len(texts) > len(mine_texts):
            body = re.sub(r"(?:\r?\n[ \t]*)*\Z", "", body)
            body = (body + nl if body else "") + "".join(nl + t for t in texts[len(mine_texts):])
    else:
        body = _render_blocks(preamble, texts, nl)
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
    merged = _apply_meta(template, meta).with_body(body)
    return merged, edited, added, pre_conflict


def _plan_session(mine: notes.Note, theirs: notes.Note, base: notes.Note | None) -> Plan:
    try:
        merged, edited, added, pre_conflict = _session_result(mine, theirs, base)
    except MirrorfsError as exc:
        return Plan(NEEDS_PERSON, "session", conflict="front_matter", reason=f"cannot merge the front matter: {exc}")
    if edited or pre_conflict:
        # Keep the union of messages in the original anyway (sessions are
        # append-only and keep growing), with this side's version of whatever
        # both sides edited and its own front matter; the copy keeps the rest.
        partial, _, _, _ = _session_result(mine, theirs, base, newer_front_matter=False)
        reason = pre_conflict or (
            f"{len(edited)} message{'s were' if len(edited) > 1 else ' was'} edited differently on both sides"
        )
        return Plan(
            KEPT_BOTH, "session",
            data=partial.render() if not _lost(mine, partial) else None,
            reason=reason,
            conflict="preamble" if pre_conflict else "messages",
            added_messages=added,
        )
    data = merged.render()
    return Plan(
        MERGED, "session",
        data=data,
        reason="union of messages",
        added_messages=added,
        lost_from_original=_lost(mine, merged),
        lost_from_copy=_lost(theirs, merged),
    )


# -- the open-conflict registry (per device, in the state folder) ---------------------


@dataclass
class OpenConflict:
    """A conflict copy waiting for a person."""

    copy: str
    original: str
    tool: str | None
    device: str | None
    time: str | None
    status: str  # kept_both | needs_person | pending (never tried on this device)
    conflict: str | None
    reason: str
    detected: str

    def to_dict(self) -> dict[str, Any]:
        # "path" (the copy) is what bridge overviews show for each conflict.
        return {"path": self.copy, **asdict(self)}


def _registry_path(vault: "Vault") -> Path:
    return vault.state_dir / REGISTRY


def _load_registry(vault: "Vault") -> dict[str, dict]:
    try:
        data = json.loads(_registry_path(vault).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        # Derived state: a broken file is rebuilt from the copies on disk.
        return {}
    return data.get("open", {}) if isinstance(data, dict) else {}


def _update_registry(vault: "Vault", change: Callable[[dict[str, dict]], None]) -> None:
    path = _registry_path(vault)
    with vault.store.lock(path):
        entries = _load_registry(vault)
        before = json.dumps(entries, sort_keys=True)
        change(entries)
        if json.dumps(entries, sort_keys=True) != before:
            data = json.dumps({"open": entries}, ensure_ascii=False, indent=1, sort_keys=True)
            storage.atomic_write(path, data.encode("utf-8"))


def _record_open(vault: "Vault", name: ConflictName, result: MergeResult) -> None:
    entry = OpenConflict(
        copy=name.relpath,
        original=name.original,
        tool=name.tool,
        device=name.device,
        time=name.time.isoformat() if name.time else None,
        status=result.status,
        conflict=result.conflict,
        reason=result.reason,
        detected=dt.datetime.now().astimezone().replace(microsecond=0).isoformat(),
    ).to_dict()

    def change(entries: dict) -> None:
        old = entries.get(name.relpath)
        if old:
            entry["detected"] = old.get("detected", entry["detected"])
        entries[name.relpath] = entry

    _update_registry(vault, change)


def _forget_open(vault: "Vault", copy: str) -> None:
    _update_registry(vault, lambda entries: entries.pop(copy, None))


def list_open(vault: "Vault", scan: bool = True) -> list[OpenConflict]:
    """Conflict copies waiting for a person (and, with *scan*, copies not tried yet)."""
    entries = _load_registry(vault)
    gone = [c for c in entries if not (vault.root / c).is_file()]
    if gone:
        _update_registry(vault, lambda e: [e.pop(c, None) for c in gone])
    found = [OpenConflict(**{k: e.get(k) for k in OpenConflict.__dataclass_fields__}) for c, e in entries.items() if c not in gone]
    if scan:
        known = {c.copy for c in found}
        for name in find_conflicts(vault):
            if name.relpath not in known:
                found.append(OpenConflict(
                    copy=name.relpath, original=name.original, tool=name.tool, device=name.device,
                    time=name.time.isoformat() if name.time else None, status="pending", conflict=None,
                    reason="not merged yet (mirrorfs conflicts merge)", detected="",
                ))
    return sorted(found, key=lambda c: (c.original, c.copy))


# -- merging on disk ----------------------------------------------------------------


def _name_of(vault: "Vault", path: str | os.PathLike) -> ConflictName:
    rel = vault.relpath(path)
    name = parse_conflict_name(rel)
    if name is None:
        raise InvalidValueError(f"{rel} is not a sync conflict copy (see docs/format.md, Conflict copies)")
    return name


def _trash_stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def _trash_bytes(vault: "Vault", relpath: str, data: bytes) -> str:
    """Put a copy of *data* in the vault trash under *relpath*; its vault-relative path."""
    target = f"{TRASH_DIR}/{_trash_stamp()}/{relpath}"
    vault.store.create(vault.root / target, data)
    return target


def _trash_file(vault: "Vault", relpath: str, sha: str) -> str:
    """Move the file at *relpath* (still hashing to *sha*) to the vault trash."""
    target = f"{TRASH_DIR}/{_trash_stamp()}/{relpath}"
    vault.store.move(vault.root / relpath, vault.root / target, sha)
    return target


def _remember(vault: "Vault", relpath: str, data: bytes) -> None:
    try:
        snapshots.remember(vault, relpath, data)
    except MirrorfsError:
        pass  # a missing base later only means a person decides


def merge_conflict(
    vault: "Vault",
    copy_relpath: str | os.PathLike,
    on_written: Callable[[str, bytes], None] | None = None,
) -> MergeResult:
    """Merge one conflict copy into its original, or keep both and record it.

    *on_written(original_relpath, data)* is called after the merged original is
    durably written and before the copy is removed (the watcher can note the
    write as its own). Raises ConflictError when the files keep changing.
    """
    name = _name_of(vault, copy_relpath)
    copy_path, orig_path = vault.root / name.relpath, vault.root / name.original
    for _ in range(MERGE_RETRIES):
        copy = storage.read(copy_path)
        if copy.data is None:
            _forget_open(vault, name.relpath)
            return MergeResult(GONE, name.relpath, name.original, name.tool, reason="the copy is gone")
        try:
            bases = snapshots.for_vault(vault).history(name.original)
        except MirrorfsError:
            bases = []
        planned: list[tuple[bytes, Plan]] = []
        trashed: list[str] = []

        def change(data: bytes | None) -> bytes:
            if data is None:
                raise _MissingOriginal
            plan = plan_merge(data, copy.data, bases, name.original, name.relpath)
            planned.append((data, plan))
            if plan.data is None or plan.data == data:
                return data  # nothing to write
            if plan.lost_from_original:
                trashed.append(_trash_bytes(vault, name.original, data))
            return plan.data

        try:
            # Under the original's lock from read to write, so mirrorfs writers on
            # this device (a session appending) wait; only an outside writer (an
            # editor, the sync tool) can still make the compare-and-swap fail.
            vault.store.update(orig_path, change)
        except _MissingOriginal:
            result = MergeResult(
                NEEDS_PERSON, name.relpath, name.original, name.tool, kind="file",
                conflict="missing_original", reason="the original note no longer exists",
            )
            _record_open(vault, name, result)
            return result
        except ConflictError:
            continue  # the original changed since we read it: read both again
        before, plan = planned[-1]
        result = MergeResult(
            plan.status, name.relpath, name.original, name.tool, kind=plan.kind, reason=plan.reason,
            conflict=plan.conflict, added_messages=plan.added_messages,
            added_lines=plan.added_lines, removed_lines=plan.removed_lines,
            written=plan.data is not None and plan.data != before, trashed=trashed,
        )
        if result.written:
            assert plan.data is not None
            _remember(vault, name.original, plan.data)
            if on_written:
                on_written(name.original, plan.data)
        if plan.status != MERGED:
            _record_open(vault, name, result)
            return result
        # Only now, with the merge durably on disk, does the copy go.
        try:
            if plan.lost_from_copy:
                result.trashed.append(_trash_file(vault, name.relpath, copy.sha))
            else:
                vault.store.delete(copy_path, copy.sha)
        except ConflictError:
            if not copy_path.exists():
                break
            continue  # the copy changed: merge its new content too
        break
    else:
        raise ConflictError(
            name.original, f"{name.original} and {name.relpath} kept changing while merging; nothing was lost, try again"
        )
    _forget_open(vault, name.relpath)
    return result


class _MissingOriginal(Exception):
    pass


def merge_all(vault: "Vault") -> list[MergeResult]:
    """Merge every conflict copy in the vault (copies of one note one after another)."""
    results = []
    for name in find_conflicts(vault):
        results.append(merge_conflict(vault, name.relpath))
    return results


# -- showing and settling -----------------------------------------------------------


@dataclass
class ConflictView:
    """Both sides of an open conflict, for a person."""

    copy: str
    original: str
    tool: str | None
    device: str | None
    reason: str
    diff: str  # unified diff from the original (mine) to the copy (theirs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _copy_for(vault: "Vault", path: str | os.PathLike) -> ConflictName:
    """The conflict copy meant by *path*: the copy itself, or a note with exactly one copy."""
    rel = vault.relpath(path)
    name = parse_conflict_name(rel)
    if name is not None:
        if not (vault.root / name.relpath).is_file():
            raise NotFoundError(f"no conflict copy at {rel}")
        return name
    copies = [c for c in find_conflicts(vault) if c.original == rel]
    if not copies:
        raise NotFoundError(f"{rel} has no conflict copy")
    if len(copies) > 1:
        raise InvalidValueError(
            f"{rel} has {len(copies)} conflict copies; name one: " + ", ".join(c.relpath for c in copies)
        )
    return copies[0]


def _text_for_diff(data: bytes | None) -> list[str]:
    if data is None:
        return []
    try:
        bom, text = notes.decode(data)
    except UnreadableNoteError:
        return [f"(binary file, {len(data)} bytes)\n"]
    return [ln if ln.endswith("\n") else ln + "\n" for ln in text.replace("\r\n", "\n").splitlines(keepends=True)]


def show(vault: "Vault", path: str | os.PathLike) -> ConflictView:
    """Both sides of the conflict at *path* (the copy, or its original) as a diff."""
    name = _copy_for(vault, path)
    entry = _load_registry(vault).get(name.relpath, {})
    mine = storage.read(vault.root / name.original).data
    theirs = storage.read(vault.root / name.relpath).data
    diff = "".join(difflib.unified_diff(
        _text_for_diff(mine), _text_for_diff(theirs),
        fromfile=f"mine: {name.original}" + ("" if mine is not None else " (missing)"),
        tofile=f"theirs: {name.relpath}",
    ))
    return ConflictView(
        copy=name.relpath, original=name.original, tool=name.tool, device=name.device,
        reason=entry.get("reason") or "not merged yet", diff=diff or "(no difference)\n",
    )


KEEP = ("mine", "theirs", "both")


def _both_note(mine: notes.Note, theirs: _Side, copy: str) -> notes.Note:
    """The original followed by a section holding the copy's text."""
    nl = mine.newline
    body = mine.body
    if body and not body.endswith("\n"):
        body += nl
    today = dt.date.today().isoformat()
    parts = [
        "",
        f"## Other version, from the conflict copy `{Path(copy).name}`",
        "",
        f"_Both versions kept by `mirrorfs conflicts resolve --keep both` on {today}: "
        "edit this note and delete what you do not need._",
        "",
    ]
    assert theirs.note is not None
    other = theirs.note
    if other.has_front_matter and other.fm_text != mine.fm_text:
        fence = "```"
        while fence in other.fm_text:
            fence += "`"
        parts += ["Front matter of the other version:", "", fence + "yaml", *other.fm_text.replace("\r\n", "\n").rstrip("\n").split("\n"), fence, ""]
    text = nl.join(parts) + nl + _same_newlines(other.body.lstrip("\r\n"), nl)
    if not text.endswith("\n"):
        text += nl
    return mine.with_body(body + text)


def resolve(vault: "Vault", path: str | os.PathLike, keep: str) -> MergeResult:
    """Settle a conflict: keep *mine* (the original), *theirs* (the copy) or *both*.

    mine: the original stays as it is; the copy goes to the vault trash.
    theirs: the original gets the copy's bytes (its old bytes go to the trash);
    for a session, the union of messages with the copy's version of messages
    edited on both sides. both: the original keeps its text and gains a
    section "Other version, from the conflict copy ..." holding the copy's
    text (a session: both versions inside each message edited on both sides);
    the copy is deleted.
    """
    if keep not in KEEP:
        raise InvalidValueError(f"--keep must be one of {', '.join(KEEP)}, not {keep!r}")
    name = _copy_for(vault, path)
    copy_path, orig_path = vault.root / name.relpath, vault.root / name.original
    copy = storage.read(copy_path)
    orig = storage.read(orig_path)
    if copy.data is None:
        raise NotFoundError(f"no conflict copy at {name.relpath}")
    result = MergeResult(RESOLVED, name.relpath, name.original, name.tool, keep=keep, reason=f"kept {keep}")
    if orig.data is None:
        if keep == "mine":
            result.trashed.append(_trash_file(vault, name.relpath, copy.sha))
        else:
            vault.store.move(copy_path, orig_path, copy.sha)
            result.written = True
        _forget_open(vault, name.relpath)
        return result
    if keep == "mine":
        result.trashed.append(_trash_file(vault, name.relpath, copy.sha))
        _forget_open(vault, name.relpath)
        return result
    m, t = _side(orig.data, name.original), _side(copy.data, name.relpath)
    is_session = m.problem is None and t.problem is None and m.type == "session" and t.type == "session"
    if is_session:
        assert m.note is not None and t.note is not None
        result.kind = "session"
        merged, _, added, _ = _session_result(
            m.note, t.note, None, prefer="theirs" if keep == "theirs" else "mine",
            both_copy=name.relpath if keep == "both" else None, newer_front_matter=False,
        )
        data = merged.render()
        result.added_messages = added
    elif keep == "theirs":
        data = copy.data
    else:
        if m.problem:
            raise InvalidValueError(f"cannot keep both in {name.original}: {m.problem}; keep mine or theirs")
        if t.note is None:
            raise InvalidValueError(f"cannot keep both: {t.problem}; keep mine or theirs")
        assert m.note is not None
        data = _both_note(m.note, t, name.relpath).render()
    if data != orig.data:
        if _lost_any(m, data):
            result.trashed.append(_trash_bytes(vault, name.original, orig.data))
        result.written = vault.store.write(orig_path, data, orig.sha)
        _remember(vault, name.original, data)
    if _lost_any(t, data):
        result.trashed.append(_trash_file(vault, name.relpath, copy.sha))
    else:
        vault.store.delete(copy_path, copy.sha)
    _forget_open(vault, name.relpath)
    return result


def _decodable(data: bytes) -> bool:
    try:
        notes.decode(data)
        return True
    except UnreadableNoteError:
        return False


def _lost_any(side: _Side, data: bytes) -> bool:
    """True when some of *side*'s text would not be in *data*."""
    if side.data == data:
        return False
    if side.note is None or not _decodable(data):
        return True
    return _lost(side.note, notes.parse(data))
