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
  is, leaves the copy where it is, and records an open conflict in the vault
  (`mirrorfs.conflict_records`), which every device shows to the person who
  bridges the instances (`mirrorfs conflicts list|show|resolve`).

The vault's `conflict_strategy` (`mirrorfs.conflict_strategy`) can make it keep
the newer side instead (`latest`), or merge nothing (`manual`). A note holding
git conflict markers (a pull without the mirrorfs merge driver) is a conflict
too: listed, shown, settled and merged like a copy, its two versions taken
from the markers (`mirrorfs.conflict_markers`).

The merges themselves are pure and live in `mirrorfs.merge`; this module reads
and writes. A merged file is written through the one write path
(compare-and-swap against the bytes that were read, retried when the original
changed meanwhile); the copy is removed only after that write is durable.
Whatever text a merge drops from either side (a line one side deleted, a
front-matter value the other side replaced) is first put in the vault's trash
(`mirrorfs.trash`), so every line of both sides is in the result, in a kept
copy, or in `.mirrorfs/trash/`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mirrorfs import (
    conflict_markers,
    conflict_records,
    conflict_strategy,
    ignore,
    snapshots,
    storage,
    trash,
)
from mirrorfs import note as notes
from mirrorfs.clock import timestamp

# Conflict names are read by mirrorfs.conflict_names and the merges done by
# mirrorfs.merge; both are re-exported for callers of this module.
from mirrorfs.conflict_names import TOOLS as TOOLS
from mirrorfs.conflict_names import ConflictName as ConflictName
from mirrorfs.conflict_names import conflict_original as conflict_original
from mirrorfs.conflict_names import parse_conflict_name as parse_conflict_name
from mirrorfs.conflict_names import probable_copy
from mirrorfs.conflict_records import OpenConflict as OpenConflict
from mirrorfs.errors import (
    ConflictError,
    InvalidValueError,
    MirrorfsError,
    NotFoundError,
    UnreadableNoteError,
)
from mirrorfs.merge import KEEP as KEEP
from mirrorfs.merge import KEPT_BOTH as KEPT_BOTH
from mirrorfs.merge import MERGED as MERGED
from mirrorfs.merge import NEEDS_PERSON as NEEDS_PERSON
from mirrorfs.merge import RESOLVED as RESOLVED
from mirrorfs.merge import Plan as Plan
from mirrorfs.merge import merge_meta as merge_meta
from mirrorfs.merge import merge_text as merge_text
from mirrorfs.merge import plan_merge, settle

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

GONE = "gone"  # the copy was no longer there
KEPT_LATEST = "kept_latest"  # strategy `latest`: the newer side kept, the other in the trash
MANUAL = "manual"  # why a copy waits under strategy `manual`
MERGE_RETRIES = 10
# Per-device cache of which notes hold git conflict markers, by size and mtime.
MARKER_CACHE = "conflict-markers.json"


def same_note(vault: "Vault", copy: str, original: str) -> bool:
    """True when *copy* and *original* are two versions of one note: both carry the same mirrorfs `id`.

    Decides the names a note could have as well as a copy (iCloud's `note 2.md`,
    `conflict_names.probable_copy`); a note without an `id` is never taken for a copy.
    """
    target = vault.root / original
    if not target.is_file():
        return False
    try:
        ids = [notes.read_front_matter(p).get("id") for p in (target, vault.root / copy)]
    except (UnreadableNoteError, OSError, AttributeError):
        return False
    return bool(ids[0]) and ids[0] == ids[1]


def copy_name(vault: "Vault", relpath: str) -> ConflictName | None:
    """What *relpath* is a conflict copy of, by its name and (for names a note could have) its content."""
    return parse_conflict_name(relpath, exists=lambda rel: (vault.root / rel).is_file()) or \
        probable_copy(relpath, lambda c, o: same_note(vault, c, o))


def find_conflicts(vault: "Vault") -> list[ConflictName]:
    """Every conflict copy of a note in the vault, sorted by path."""
    found = []
    for rel in ignore.iter_note_paths(vault.root, on_error=lambda exc: None):
        name = copy_name(vault, rel.as_posix())
        if name is not None:
            found.append(name)
    return found


@dataclass
class MergeResult:
    """What happened to one conflict copy."""

    status: str  # merged | kept_both | needs_person | gone | resolved | kept_latest
    copy: str
    original: str
    tool: str | None = None
    kind: str = "note"  # session | note | file
    reason: str = ""
    # Why a person is needed: lines, no_base, base_uncertain, front_matter,
    # messages, preamble, unparseable, binary, type, missing_original, manual, markers.
    conflict: str | None = None
    added_messages: int = 0
    added_lines: int = 0
    removed_lines: int = 0
    written: bool = False  # the original was rewritten
    trashed: list[str] = field(default_factory=list)  # vault-relative paths in the trash
    keep: str | None = None  # resolve(), strategy latest: mine | theirs | both

    def summary(self) -> str:
        """One line for people, e.g. for the watcher's reflections."""
        if self.status == MERGED:
            if self.kind == "session":
                what = f"+{self.added_messages} message{'s' if self.added_messages != 1 else ''}"
            elif self.added_lines or self.removed_lines or self.written:
                what = f"+{self.added_lines} -{self.removed_lines} lines"
            else:
                what = "nothing new in the copy"
            source = "git conflict markers in" if self.copy == self.original else "conflict copy of"
            text = f"merged {source} {self.original}: {what}"
        elif self.status == RESOLVED:
            text = f"settled conflict copy of {self.original}: kept {self.keep}"
        elif self.status == KEPT_LATEST:
            newer = "the conflict copy" if self.keep == "theirs" else "the note"
            text = f"kept the newer version of {self.original} ({newer}, conflict strategy latest)"
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


# -- open conflicts: recorded in the vault, for every device (mirrorfs.conflict_records) ----------


def _entry(name: ConflictName, status: str, conflict: str | None, reason: str, detected: str = "",
           by: str = "", sha: str | None = None) -> OpenConflict:
    return OpenConflict(
        copy=name.relpath, original=name.original, tool=name.tool, device=name.device,
        time=name.time.isoformat() if name.time else None, status=status, conflict=conflict,
        reason=reason, detected=detected, detected_by=by, copy_sha256=sha or "",
    )


def _record_open(vault: "Vault", name: ConflictName, result: MergeResult, sha: str | None) -> None:
    entry = _entry(name, result.status, result.conflict, result.reason, timestamp().isoformat(), vault.instance, sha)
    conflict_records.record(vault.store, vault.root, entry)


def _forget_open(vault: "Vault", copy: str) -> None:
    conflict_records.forget(vault.store, vault.root, copy)


def list_open(vault: "Vault", scan: bool = True) -> list[OpenConflict]:
    """Conflicts waiting for a person, as recorded in the vault by any device; with *scan*,
    also copies not tried yet and notes holding git conflict markers."""
    found = list(conflict_records.prune(vault.store, vault.root, lambda c: (vault.root / c).is_file()).values())
    if scan:
        known = {c.copy for c in found}
        for name in find_conflicts(vault):
            if name.relpath not in known:
                found.append(_entry(name, conflict_records.PENDING, None, "not merged yet (mirrorfs conflicts merge)"))
        for rel in find_marked(vault):
            found.append(OpenConflict(
                copy=rel, original=rel, tool=conflict_markers.TOOL, device=None, time=None,
                status=conflict_records.MARKERS, conflict="markers", detected="",
                reason="the note holds git conflict markers (a pull without the mirrorfs merge driver)",
            ))
    return sorted(found, key=lambda c: (c.original, c.copy))


# -- notes holding git conflict markers --------------------------------------------------


def find_marked(vault: "Vault") -> list[str]:
    """Notes holding git conflict markers, by path; only notes whose size or mtime changed are read."""
    cache_path = Path(vault.state_dir) / MARKER_CACHE
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
        cache = cache if isinstance(cache, dict) else {}
    except (OSError, ValueError):
        cache = {}  # per-device and derived: rebuilt from the notes
    fresh: dict[str, list] = {}
    for rel, entry in ignore.walk(vault.root, on_error=lambda rel, exc: None):
        if parse_conflict_name(rel) is not None:
            continue
        try:
            st = entry.stat()
        except OSError:
            continue
        old = cache.get(rel)
        if isinstance(old, list) and len(old) == 3 and old[:2] == [st.st_size, st.st_mtime_ns]:
            fresh[rel] = old
            continue
        try:
            data = storage.read(vault.root / rel).data
        except MirrorfsError:
            data = None  # a FIFO, a huge or unreadable file: not a note, so no markers to show
        fresh[rel] = [st.st_size, st.st_mtime_ns, bool(data) and conflict_markers.has_markers(data)]
    if fresh != cache:
        storage.atomic_write(cache_path, json.dumps(fresh, separators=(",", ":")).encode("utf-8"), sync=False)
    return sorted(rel for rel, (_, _, marked) in fresh.items() if marked)


def _marked(vault: "Vault", rel: str) -> tuple[storage.Snapshot, tuple] | None:
    try:
        snap = storage.read(vault.root / rel)
    except MirrorfsError:
        return None
    found = conflict_markers.sides(snap.data) if snap.data else None
    return (snap, found) if found else None


def _settle_marked(vault: "Vault", rel: str, snap: storage.Snapshot, data: bytes, lost: bool,
                   result: MergeResult) -> MergeResult:
    """Write *data* over the marked note read as *snap*, its marked bytes to the trash first if *lost*."""
    assert snap.data is not None
    if lost:
        result.trashed.append(trash.put(vault, rel, snap.data))
    result.written = vault.store.write(snap.path, data, snap.sha)
    _remember(vault, rel, data)
    return result


def merge_marked(vault: "Vault", rel: str, strategy: str | None = None) -> MergeResult:
    """Merge the two versions a note's git conflict markers hold, when the merge is certain."""
    found = _marked(vault, rel)
    if found is None:
        raise NotFoundError(f"{rel} holds no git conflict markers")
    snap, (ours, theirs, base, marked) = found
    strategy = strategy or conflict_strategy.current(vault.root)
    result = MergeResult(conflict_records.MARKERS, rel, rel, conflict_markers.TOOL, conflict="markers",
                         reason="the note holds git conflict markers")
    if strategy == conflict_strategy.MANUAL:
        result.reason = "the conflict strategy is manual"
        return result
    if strategy == conflict_strategy.LATEST:
        side = conflict_strategy.newer_side(ours, theirs)
        result.status, result.keep = KEPT_LATEST, side
        return _settle_marked(vault, rel, snap, ours if side == "mine" else theirs, True, result)
    plan = plan_merge(ours, theirs, [base] if base is not None else [], rel, conflict_markers.source(marked))
    result.kind, result.reason = plan.kind, plan.reason
    if plan.status != MERGED or plan.data is None:
        result.conflict = plan.conflict or "markers"
        return result
    result.status, result.added_messages = MERGED, plan.added_messages
    result.added_lines, result.removed_lines = plan.added_lines, plan.removed_lines
    return _settle_marked(vault, rel, snap, plan.data, plan.lost_from_original or plan.lost_from_copy, result)


# -- merging on disk ----------------------------------------------------------------


def _name_of(vault: "Vault", path: str | os.PathLike) -> ConflictName:
    rel = vault.relpath(path)
    name = copy_name(vault, rel)
    if name is None:
        raise InvalidValueError(f"{rel} is not a sync conflict copy (see docs/format.md, Conflict copies)")
    return name


def _remember(vault: "Vault", relpath: str, data: bytes) -> None:
    try:
        snapshots.remember(vault, relpath, data)
    except MirrorfsError:
        pass  # a missing base later only means a person decides


class _MissingOriginal(Exception):
    pass


def merge_conflict(
    vault: "Vault",
    copy_relpath: str | os.PathLike,
    on_written: Callable[[str, bytes], None] | None = None,
    before_write: Callable[[str, bytes, bytes], None] | None = None,
    strategy: str | None = None,
) -> MergeResult:
    """Merge one conflict copy into its original, or keep both and record it.

    *strategy* (default: the vault's `conflict_strategy`) may say to keep the
    newer side instead (`latest`) or to merge nothing (`manual`).
    *before_write(original_relpath, old, new)* is called, under the original's
    lock, just before its bytes *old* are replaced with the merge *new* (the
    watcher notes the change as its own); *on_written(original_relpath, data)*
    after the merged original is durably written and before the copy is
    removed. Raises ConflictError when the files keep changing.
    """
    name = _name_of(vault, copy_relpath)
    strategy = strategy or conflict_strategy.current(vault.root)
    for _ in range(MERGE_RETRIES):
        copy = storage.read(vault.root / name.relpath)
        if copy.data is None:
            _forget_open(vault, name.relpath)
            return MergeResult(GONE, name.relpath, name.original, name.tool, reason="the copy is gone")
        if strategy == conflict_strategy.MANUAL:
            result = MergeResult(NEEDS_PERSON, name.relpath, name.original, name.tool, conflict=MANUAL,
                                 reason="the conflict strategy is manual: a person settles every copy")
            _record_open(vault, name, result, copy.sha)
            return result
        entry = trash.merge_entry(name.relpath, copy.sha or "", name.time)
        try:
            if strategy == conflict_strategy.LATEST:
                result, plan = _keep_latest(vault, name, copy, entry, before_write)
            else:
                result, plan = _merge_into_original(vault, name, copy.data, entry, before_write)
        except _MissingOriginal:
            result = MergeResult(
                NEEDS_PERSON, name.relpath, name.original, name.tool, kind="file",
                conflict="missing_original", reason="the original note no longer exists",
            )
            _record_open(vault, name, result, copy.sha)
            return result
        except ConflictError:
            continue  # the original changed since we read it: read both again
        if result.written:
            assert plan.data is not None
            _remember(vault, name.original, plan.data)
            if on_written:
                on_written(name.original, plan.data)
        if plan.status not in (MERGED, KEPT_LATEST):
            _record_open(vault, name, result, copy.sha)
            return result
        # Only now, with the merge durably on disk, does the copy go.
        if _remove_copy(vault, name, copy, plan.lost_from_copy, result, entry):
            _forget_open(vault, name.relpath)
            return result
    raise ConflictError(
        name.original, f"{name.original} and {name.relpath} kept changing while merging; nothing was lost, try again"
    )


def _merge_into_original(
    vault: "Vault", name: ConflictName, theirs: bytes, entry: str,
    before_write: Callable[[str, bytes, bytes], None] | None,
) -> tuple[MergeResult, Plan]:
    """Plan the merge against the original's bytes and write it, trashing what it drops."""
    try:
        bases = snapshots.for_vault(vault).history(name.original)
    except MirrorfsError:
        bases = []
    planned: list[tuple[bytes, Plan]] = []
    trashed: list[str] = []

    def change(data: bytes | None) -> bytes:
        if data is None:
            raise _MissingOriginal
        plan = plan_merge(data, theirs, bases, name.original, name.relpath)
        planned.append((data, plan))
        if plan.data is None or plan.data == data:
            return data  # nothing to write
        if plan.lost_from_original:
            trashed.append(trash.put(vault, name.original, data, entry=entry))
        if before_write:
            before_write(name.original, data, plan.data)
        return plan.data

    # Under the original's lock from read to write, so mirrorfs writers on
    # this device (a session appending) wait; only an outside writer (an
    # editor, the sync tool) can still make the compare-and-swap fail.
    vault.store.update(vault.root / name.original, change)
    before, plan = planned[-1]
    result = MergeResult(
        plan.status, name.relpath, name.original, name.tool, kind=plan.kind, reason=plan.reason,
        conflict=plan.conflict, added_messages=plan.added_messages,
        added_lines=plan.added_lines, removed_lines=plan.removed_lines,
        written=plan.data is not None and plan.data != before, trashed=trashed,
    )
    return result, plan


def _keep_latest(
    vault: "Vault", name: ConflictName, copy: storage.Snapshot, entry: str,
    before_write: Callable[[str, bytes, bytes], None] | None,
) -> tuple[MergeResult, Plan]:
    """Strategy `latest`: the newer side stays under the note's name, the other goes to the trash."""
    assert copy.data is not None
    orig_path = vault.root / name.original
    read: list[bytes] = []
    trashed: list[str] = []

    def side() -> str:
        return "mine" if read[-1] == copy.data else \
            conflict_strategy.newer_side(read[-1], copy.data, orig_path, copy.path)

    def change(data: bytes | None) -> bytes:
        if data is None:
            raise _MissingOriginal
        read.append(data)
        if side() == "mine":
            return data
        trashed.append(trash.put(vault, name.original, data, entry=entry))
        if before_write:
            before_write(name.original, data, copy.data)
        return copy.data

    vault.store.update(orig_path, change)
    keep = side()
    plan = Plan(KEPT_LATEST, "note", data=copy.data if keep == "theirs" else None,
                reason=f"kept the newer side ({keep})", lost_from_copy=keep == "mine" and read[-1] != copy.data)
    result = MergeResult(KEPT_LATEST, name.relpath, name.original, name.tool, reason=plan.reason,
                         keep=keep, written=keep == "theirs", trashed=trashed)
    return result, plan


def _remove_copy(vault: "Vault", name: ConflictName, copy: storage.Snapshot, keep: bool,
                 result: MergeResult, entry: str) -> bool:
    """Delete the merged copy (to the trash when *keep*); False when it changed and needs merging again."""
    try:
        if keep:
            result.trashed.append(trash.move(vault, name.relpath, copy.sha, entry=entry))
        else:
            vault.store.delete(copy.path, copy.sha)
    except ConflictError:
        return not copy.path.exists()  # gone: someone settled it; changed: merge its new content too
    return True


def merge_all(vault: "Vault", strategy: str | None = None) -> list[MergeResult]:
    """Merge every conflict copy in the vault (copies of one note one after another), then every
    note holding git conflict markers."""
    strategy = strategy or conflict_strategy.current(vault.root)
    results = [merge_conflict(vault, name.relpath, strategy=strategy) for name in find_conflicts(vault)]
    return results + [merge_marked(vault, rel, strategy) for rel in find_marked(vault)]


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
    name = copy_name(vault, rel) if (vault.root / rel).is_file() else parse_conflict_name(rel)
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


def _diff(mine: bytes | None, theirs: bytes | None, mine_name: str, theirs_name: str) -> str:
    return "".join(difflib.unified_diff(
        _text_for_diff(mine), _text_for_diff(theirs), fromfile=mine_name, tofile=theirs_name,
    )) or "(no difference)\n"


def _marked_note(vault: "Vault", path: str | os.PathLike):
    """(relpath, snapshot, sides) when *path* names a note (not a copy) holding git conflict markers."""
    rel = vault.relpath(path)
    if parse_conflict_name(rel) is not None:
        return None
    found = _marked(vault, rel)
    return (rel, *found) if found else None


def show(vault: "Vault", path: str | os.PathLike) -> ConflictView:
    """Both sides of the conflict at *path* (the copy, or its original) as a diff."""
    marked = _marked_note(vault, path)
    if marked is not None:
        rel, _, (ours, theirs, _, split) = marked
        return ConflictView(
            copy=rel, original=rel, tool=conflict_markers.TOOL, device=None,
            reason=f"git conflict markers ({split.regions} place{'s' if split.regions > 1 else ''})",
            diff=_diff(ours, theirs, f"mine: {rel} ({split.ours_label or 'ours'})",
                       f"theirs: {rel} ({split.theirs_label or 'theirs'})"),
        )
    name = _copy_for(vault, path)
    found = conflict_records.load(vault.root).get(name.relpath)
    mine = storage.read(vault.root / name.original).data
    theirs = storage.read(vault.root / name.relpath).data
    return ConflictView(
        copy=name.relpath, original=name.original, tool=name.tool, device=name.device,
        reason=(found[0].reason if found else "") or "not merged yet",
        diff=_diff(mine, theirs, f"mine: {name.original}" + ("" if mine is not None else " (missing)"),
                   f"theirs: {name.relpath}"),
    )


def resolve(vault: "Vault", path: str | os.PathLike, keep: str) -> MergeResult:
    """Settle a conflict: keep *mine* (the original), *theirs* (the copy) or *both*.

    mine: the original stays as it is; the copy goes to the vault trash.
    theirs: the original gets the copy's bytes (its old bytes go to the trash);
    for a session, the union of messages with the copy's version of messages
    edited on both sides. both: the original keeps its text and gains a
    section "Other version, from the conflict copy ..." holding the copy's
    text (a session: both versions inside each message edited on both sides);
    the copy is deleted. See `mirrorfs.merge.settle`. For a note holding git
    conflict markers, mine and theirs are the versions the markers hold, and
    the marked bytes go to the trash when a side is dropped.
    """
    if keep not in KEEP:
        raise InvalidValueError(f"--keep must be one of {', '.join(KEEP)}, not {keep!r}")
    marked = _marked_note(vault, path)
    if marked is not None:
        rel, snap, (ours, theirs, _, split) = marked
        plan = settle(ours, theirs, keep, rel, rel, source=conflict_markers.source(split))
        assert plan.data is not None
        result = MergeResult(RESOLVED, rel, rel, conflict_markers.TOOL, kind=plan.kind, keep=keep,
                             reason=f"kept {keep}", added_messages=plan.added_messages)
        return _settle_marked(vault, rel, snap, plan.data, plan.lost_from_original or plan.lost_from_copy,
                              result)
    name = _copy_for(vault, path)
    copy_path, orig_path = vault.root / name.relpath, vault.root / name.original
    copy = storage.read(copy_path)
    orig = storage.read(orig_path)
    if copy.data is None:
        raise NotFoundError(f"no conflict copy at {name.relpath}")
    result = MergeResult(RESOLVED, name.relpath, name.original, name.tool, keep=keep, reason=f"kept {keep}")
    if orig.data is None and keep != "mine":
        vault.store.move(copy_path, orig_path, copy.sha)
        result.written = True
    elif keep == "mine":
        result.trashed.append(trash.move(vault, name.relpath, copy.sha))
    else:
        assert orig.data is not None
        plan = settle(orig.data, copy.data, keep, name.original, name.relpath)
        assert plan.data is not None
        result.kind, result.added_messages = plan.kind, plan.added_messages
        if plan.data != orig.data:
            if plan.lost_from_original:
                result.trashed.append(trash.put(vault, name.original, orig.data))
            result.written = vault.store.write(orig_path, plan.data, orig.sha)
            _remember(vault, name.original, plan.data)
        if plan.lost_from_copy:
            result.trashed.append(trash.move(vault, name.relpath, copy.sha))
        else:
            vault.store.delete(copy_path, copy.sha)
    _forget_open(vault, name.relpath)
    return result
