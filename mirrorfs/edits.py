"""Text edits of one note, each a compare-and-swap against the sha256 that was read (DESIGN §8.5).

An AI (or a script) reads a note, gets its sha256, and names that sha256 when
it edits: `str_replace`, `insert` at a line, `append`, `set_property` or
`unset_property`. The edit is applied inside the one write path
(`Vault.edit`: lock, compare, atomic replace), so a note that changed since the
read is refused with its current sha256 and a short summary of what changed,
and nothing is written. The versions this device saw (`mirrorfs.snapshots`)
supply the base of that summary; a reader calls `remember_read` so there is one.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mirrorfs import note as notes
from mirrorfs import snapshots
from mirrorfs.crypto import lock_placeholder
from mirrorfs.errors import InvalidValueError, MirrorfsError, StaleEditError
from mirrorfs.storage import sha256

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

COMMANDS = ("str_replace", "insert", "append", "set_property", "unset_property")
# Bookkeeping mirrorfs keeps itself: an edit that set these would forge history.
PROTECTED_KEYS = ("id", "type", "created", "updated", "updated_by", "instance")
_SHA = re.compile(r"^[0-9a-f]{64}$")
SUMMARY_CHARS = 400


@dataclass(frozen=True)
class EditResult:
    """What an edit did: the note's sha256 after it, and whether any byte changed."""

    path: str
    command: str
    sha256: str
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "command": self.command, "sha256": self.sha256, "changed": self.changed}


def check_sha(value: Any) -> str:
    """A sha256 as 64 lowercase hex digits, or InvalidValueError."""
    text = str(value or "").strip().lower()
    if not _SHA.match(text):
        raise InvalidValueError("expected_sha256 must be the 64 hex digits a read returned")
    return text


def remember_read(vault: "Vault", relpath: str, data: bytes) -> None:
    """Keep the version a caller read, so a later stale edit can say what changed since."""
    try:
        snapshots.remember(vault, relpath, data)
    except MirrorfsError:
        pass  # derived state: without it a stale edit only says less


def _normalise(text: str, newline: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", newline)


def _ending(text: str, newline: str) -> str:
    return text if not text or text.endswith(("\n", "\r")) else text + newline


def _replace(body: str, old: str, new: str, newline: str, path: str) -> str:
    if not old:
        raise InvalidValueError("str_replace needs old_str: the exact text to replace")
    old = _normalise(old, newline)
    count = body.count(old)
    if count == 0:
        raise InvalidValueError(
            f"old_str was not found in the body of {path}; copy it exactly from memory_read "
            "(locked sections cannot be edited here)"
        )
    if count > 1:
        raise InvalidValueError(f"old_str occurs {count} times in {path}; include more context so it is unique")
    return body.replace(old, _normalise(new, newline), 1)


def _insert(body: str, line: Any, text: str, newline: str) -> str:
    lines = body.splitlines(keepends=True)
    if isinstance(line, bool) or not isinstance(line, int) or not 0 <= line <= len(lines):
        raise InvalidValueError(f"insert_line must be a line number from 0 (the top) to {len(lines)} (the end)")
    if not text:
        raise InvalidValueError("insert needs insert_text")
    if line and not lines[line - 1].endswith(("\n", "\r")):
        lines[line - 1] += newline
    lines.insert(line, _ending(_normalise(text, newline), newline))
    return "".join(lines)


def _append(body: str, text: str, newline: str) -> str:
    if not text:
        raise InvalidValueError("append needs text")
    return _ending(body, newline) + _ending(_normalise(text, newline), newline)


def _key(key: Any) -> str:
    name = str(key or "").strip()
    if not name:
        raise InvalidValueError("set_property and unset_property need key: the front-matter property")
    if name in PROTECTED_KEYS:
        raise InvalidValueError(f"{name} is bookkeeping mirrorfs keeps itself; it cannot be changed by an edit")
    return name


def check_command(command: Any) -> str:
    if command not in COMMANDS:
        raise InvalidValueError(f"unknown command {command!r}: use one of {', '.join(COMMANDS)}")
    return command


def edit_note(vault: "Vault", path: str, expected_sha256: str, command: str, *, old_str: str | None = None,
              new_str: str | None = None, insert_line: int | None = None, insert_text: str | None = None,
              text: str | None = None, key: str | None = None, value: Any = None) -> EditResult:
    """Apply one edit command to the note at *path* if it still has *expected_sha256*.

    Raises StaleEditError (nothing written) when the note changed since it was
    read, InvalidValueError for a command that cannot apply, LockedError when
    new text holds a ```secret block and the vault is locked.
    """
    expected = check_sha(expected_sha256)
    check_command(command)
    full = vault.resolve(path)
    rel = vault.relpath(full)
    if command in ("set_property", "unset_property"):
        key = _key(key)
    # Sealed before the write path runs: a secret typed into an edit never reaches the disk.
    seal = vault.seal_text
    new_str = seal(new_str or "") if command == "str_replace" else new_str
    insert_text = seal(insert_text or "") if command == "insert" else insert_text
    text = seal(text or "") if command == "append" else text

    read: list[bytes] = []

    def change(n: notes.Note) -> notes.Note:
        data = n.render()
        read.append(data)
        current = sha256(data)
        if current != expected:
            raise StaleEditError(rel, expected, current, change_summary(vault, rel, expected, data))
        nl = n.newline
        if command == "str_replace":
            edited = n.with_body(_replace(n.body, old_str or "", new_str, nl, rel))
        elif command == "insert":
            edited = n.with_body(_insert(n.body, insert_line, insert_text, nl))
        elif command == "append":
            edited = n.with_body(_append(n.body, text, nl))
        elif command == "set_property":
            edited = n.set(key, value)
        else:
            edited = n.unset(key)
        if edited is n or edited.render() == data:
            return n
        return vault.stamp(edited)

    after = vault.edit(full, change).render()
    changed = after != read[-1]
    if changed:
        remember_read(vault, rel, after)
    return EditResult(rel, command, sha256(after), changed)


def change_summary(vault: "Vault", relpath: str, old_sha: str, current: bytes) -> str:
    """One or two sentences on how *current* differs from the version *old_sha* (locked text hidden)."""
    old = None
    try:
        for version in snapshots.for_vault(vault).history(relpath):
            if sha256(version) == old_sha:
                old = version
                break
    except MirrorfsError:
        old = None
    new_text = lock_placeholder(current.decode("utf-8", "replace"))
    if old is None:
        lines = new_text.count("\n") + 1
        meta = notes.parse_text(new_text).meta
        who = meta.get("updated_by")
        when = meta.get("updated")
        by = f", last written by {who}" + (f" at {when}" if when else "") if who else ""
        return f"The version you read is not known on this device; the note now has {lines} lines{by}."
    a = lock_placeholder(old.decode("utf-8", "replace")).splitlines()
    b = new_text.splitlines()
    added = removed = 0
    first: str | None = None
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        removed += i2 - i1
        added += j2 - j1
        if first is None:
            was = " / ".join(a[i1:i2])[:120]
            now = " / ".join(b[j1:j2])[:120]
            first = f"line {i1 + 1}: " + (f"was {was!r}, " if was else "") + (f"now {now!r}" if now else "removed")
    summary = f"Changes since your version: +{added} -{removed} lines" + (f", first at {first}" if first else "") + "."
    return summary if len(summary) <= SUMMARY_CHARS else summary[: SUMMARY_CHARS - 1] + "…"
