"""Reflections: what the other instances (and people) wrote since this one looked.

Instances never message each other; instance A learns about B by reading the
files B wrote. A reflection is one such change, attributed to whoever made it
(`mirrorfs.attribution`): a mirrorfs instance from the file's own signature,
`human` for an edit that left the signature as it was, `someone` for a
removal nobody signed.

What "since it looked" means is a cursor kept per device and per instance in
the state folder (`reflections/<instance>.json`): a fingerprint
(`mirrorfs.fingerprints`) of every note as the instance last saw it. Reading
reflections compares the vault with the cursor, reading only the files whose
stat (size, mtime, ctime, inode) changed; marking them read moves the cursor. Without a cursor
(the first look) the reflections are what others wrote in the last
`FIRST_LOOK_DAYS` days, judged by the files' own times.

The watcher feeds single changes through `Reflector` (or the pure
`reflect_change`) to print each reflection as it arrives, and `record`s events
that are not file edits (merged conflict copies, sealed blocks) in a small
per-device log that `vault_reflections` returns as well.

**The watcher's own writes are its own.** A merge or a seal rewrites a note,
and that rewrite comes back as a change. The watcher says beforehand what it
is about to write (`Reflector.expect`: the sha256 of the bytes it replaces and
of the bytes it writes) and records the event with those writes
(`record(..., writes=)`); a change from exactly those bytes to exactly those
bytes is then folded into the event, live and in later looks on this device,
instead of being reported as the note's signer or `human`.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Container, Iterable

from filelock import FileLock

from mirrorfs import ignore, storage, trash
from mirrorfs import note as notes
from mirrorfs.attribution import HUMAN as HUMAN
from mirrorfs.attribution import SOMEONE as SOMEONE
from mirrorfs.attribution import Reflection as Reflection
from mirrorfs.attribution import conflict_reflection as conflict_reflection
from mirrorfs.attribution import diff, moved, pair_moves, timed
from mirrorfs.attribution import merge_reflection as merge_reflection
from mirrorfs.attribution import seal_reflection as seal_reflection
from mirrorfs.clock import now as local_now
from mirrorfs.clock import parse_since as parse_cutoff
from mirrorfs.clock import time_or_none
from mirrorfs.conflict_names import is_conflict_copy
from mirrorfs.errors import InvalidValueError, MirrorfsError, UnreadableNoteError
from mirrorfs.fingerprints import fingerprint as fingerprint
from mirrorfs.fingerprints import stat_fingerprint
from mirrorfs.ignore import is_note_path
from mirrorfs.jsonlog import JsonLog

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
LOG_MAX_LINES = 2000
LOG_KEEP_LINES = 500
# Writes a running watcher announced and has not seen come back yet.
MAX_EXPECTED = 256

ScanChange = tuple  # (relpath, old fingerprint | None, new fingerprint | None, messages)

# The notes modified since a POSIX time, as a running watcher knows them (None: it does not know yet).
Candidates = Callable[[float], "list[str] | None"]


# --------------------------------------------------------------------------
# Scanning against a cursor: stat first, hash only what changed.


@dataclass
class _Scan:
    current: dict[str, dict]
    changes: list[ScanChange]
    refreshed: list[str]  # same bytes, new stat: only the cursor's stat needs updating
    unreadable: list[str]


def _stamp(fp: dict, st: os.stat_result | tuple) -> dict:
    """*fp* with the stat it was read with: m, s (mtime, size) and i, x (inode, ctime).

    *st* is a stat result or a watcher's signature (size, mtime_ns, ctime_ns, inode).
    """
    if isinstance(st, os.stat_result):
        return {**fp, "m": st.st_mtime_ns, "s": st.st_size, "i": st.st_ino, "x": st.st_ctime_ns}
    size, mtime, ctime, ino = st
    return {**fp, "m": mtime, "s": size, "i": ino, "x": ctime}


def _unchanged(fp: dict, st: os.stat_result) -> bool:
    """Whether a file with this stat still holds what *fp* was read from.

    All four must agree: a rewrite that restores size and mtime (`touch -d`)
    still moves the ctime, a rename-save gives a new inode. A fingerprint from
    before these were kept is read once again.
    """
    return (fp.get("m") == st.st_mtime_ns and fp.get("s") == st.st_size
            and fp.get("i") == st.st_ino and fp.get("x") == st.st_ctime_ns)


def _scan(vault: "Vault", known: dict[str, dict]) -> _Scan:
    root = os.fspath(vault.root)
    unreadable: list[str] = []
    current: dict[str, dict] = {}
    changes: list[ScanChange] = []
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
        if old is not None and _unchanged(old, st):
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
            fp, messages = stat_fingerprint(relpath, st), {}
        else:
            if old is not None and old.get("h") == storage.sha256(data):
                current[relpath] = _stamp(old, st)
                refreshed.append(relpath)
                continue
            fp, messages = fingerprint(relpath, data, st.st_mtime_ns, st.st_size)
        fp = _stamp(fp, st)
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


def _remover(vault: "Vault", relpath: str) -> str | None:
    """Who removed *relpath*, when a trash says so.

    `.mirrorfs/trash/<stamp>-<instance>/<path>` names the instance that forgot
    it; a plain `<stamp>` entry only says mirrorfs did; Obsidian's `.trash/`
    means a person did.
    """
    entry = trash.newest_entry(vault, relpath)
    if entry is not None:
        return trash.entry_instance(entry)
    return HUMAN if trash.in_obsidian_trash(vault, relpath) else None


# --------------------------------------------------------------------------
# The watcher's own writes.


@dataclass(frozen=True)
class OwnWrite:
    """A rewrite by this device's watcher (a merge, a seal): *before* -> *after* at *path* (sha256s)."""

    path: str
    before: str | None  # None: the file did not exist
    after: str

    @classmethod
    def of(cls, path: str, before: bytes | None, after: bytes) -> "OwnWrite":
        return cls(path, storage.sha256(before) if before is not None else None, storage.sha256(after))


def _own(change: ScanChange, writes: Container[OwnWrite]) -> bool:
    """True when *change* is exactly one of *writes* (from the bytes it replaced to the bytes it wrote)."""
    rel, old, new, _ = change
    if new is None:
        return False
    return OwnWrite(rel, old.get("h") if old else None, new.get("h")) in writes


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


def record(vault: "Vault", reflection: Reflection, writes: Iterable[OwnWrite] = ()) -> None:
    """Append an event (a merged conflict copy, a sealed block) to this device's reflection log.

    *writes* are the rewrites the event made: later looks on this device fold
    those changes into the event instead of reporting them again.
    """
    entry: dict[str, Any] = {"t": time.time(), "n": secrets.token_hex(4), "r": reflection.to_dict()}
    own = [[w.path, w.before, w.after] for w in writes]
    if own:
        entry["w"] = own
    _log(vault).append(entry)


def _logged(log: list[dict], after_t: float | None = None, since: dt.datetime | None = None) -> list[Reflection]:
    out = []
    for entry in log:
        t = float(entry.get("t") or 0)
        if after_t is not None and t <= after_t:
            continue
        r = Reflection.from_dict(entry["r"])
        if since is not None and (r.time or dt.datetime.fromtimestamp(t).astimezone()) < since:
            continue
        r._log_t = t
        out.append(r)
    return out


def _writes(log: list[dict]) -> set[OwnWrite]:
    """Every rewrite the logged events made."""
    found = set()
    for entry in log:
        for w in entry.get("w") or ():
            if isinstance(w, list) and len(w) == 3 and all(x is None or isinstance(x, str) for x in w):
                found.add(OwnWrite(*w))
    return found


# --------------------------------------------------------------------------
# Public API.


def parse_since(value: Any) -> dt.datetime:
    """A cutoff from a datetime, a date or text: `2026-11-21` (local midnight), an ISO time, or an age (`7d`)."""
    try:
        return parse_cutoff(value)
    except InvalidValueError:
        raise InvalidValueError(
            f"cannot read {str(value).strip()!r} as a date: use YYYY-MM-DD or an ISO 8601 time") from None


def first_look_days(vault: "Vault") -> float:
    """Days a first look reaches back: `reflections: {first_look_days: N}` in the config."""
    settings = vault.config.get("reflections")
    value = settings.get("first_look_days") if isinstance(settings, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return float(FIRST_LOOK_DAYS)


def vault_reflections(vault: "Vault", since: Any = None, mark_read: bool = False,
                      now: dt.datetime | None = None, candidates: Candidates | None = None) -> list[Reflection]:
    """What others wrote since this instance last looked (or since *since*), oldest first.

    With *mark_read* the cursor moves past everything returned. Own writes
    never appear; recorded events (merges, seals) from this device's log do.
    *candidates(cutoff)*: the notes modified since a POSIX time, when a running
    watcher knows (None: stat every note).
    """
    now = now or local_now()
    cursor = load_cursor(vault)
    read: dict[str, dict] = {}
    if since is not None:
        found = _since(vault, parse_since(since), plain=True, candidates=candidates)
    elif cursor is None:
        # A first look shows a person's edits of the last days too, as --since does.
        found = _since(vault, now - dt.timedelta(days=first_look_days(vault)), plain=True, collect=read,
                       candidates=candidates)
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
    _mark(vault, list(reflections), now or local_now())


def _mtime_or_now(vault: "Vault", relpath: str) -> int:
    try:
        return os.stat(vault.root / relpath).st_mtime_ns
    except OSError:
        return time.time_ns()


def reflect_change(vault: "Vault", relpath: str, old_bytes: bytes | None, new_bytes: bytes | None) -> list[Reflection]:
    """The reflections of one note going from *old_bytes* to *new_bytes* (None: absent).

    Pure: reads nothing else and moves no cursor. Own writes give nothing.
    """
    relpath = str(relpath).replace(os.sep, "/")
    if not is_note_path(relpath) or is_conflict_copy(relpath):
        return []
    old = fingerprint(relpath, old_bytes)[0] if old_bytes is not None else None
    if new_bytes is None:
        return diff(vault.instance, relpath, old, None, None, _remover(vault, relpath))
    new, messages = fingerprint(relpath, new_bytes, _mtime_or_now(vault, relpath))
    return diff(vault.instance, relpath, old, new, messages)


class Reflector:
    """Live reflections for a running watcher: one call per settled change.

    Keeps a fingerprint of every note in memory (not its bytes), so each change
    is compared with the version the watcher saw last. `start` fingerprints the
    vault (reading only what changed since the cursor) and returns what is
    unread; the cursor itself moves only when someone marks reflections read.
    `expect` announces a write of the watcher's own, so that its change is not
    reported when it comes back.

    With a *store* (`mirrorfs.known_files.KnownFiles`) the fingerprints are
    kept across restarts: `resume` takes them as the baseline instead of
    reading the vault, and `flush` stores what changed since.
    """

    def __init__(self, vault: "Vault", store: Any = None):
        self.vault = vault
        self.known: dict[str, dict] = {}
        self.started = False
        self.store = store
        self._unstored: dict[str, dict | None] = {}
        self._expected: collections.OrderedDict[OwnWrite, None] = collections.OrderedDict()

    def start(self, now: dt.datetime | None = None) -> list[Reflection]:
        """Take the vault's current state as the baseline; return what is still unread."""
        now = now or local_now()
        cursor = load_cursor(self.vault)
        if cursor is None:
            read: dict[str, dict] = {}
            found = _since(self.vault, now - dt.timedelta(days=first_look_days(self.vault)), plain=False,
                           collect=read)
            self.known = _scan(self.vault, read).current
        else:
            scan = _scan(self.vault, cursor["files"])
            log = _log(self.vault).read()
            found = _news(self.vault, scan.changes, _writes(log), now) + _logged(log, after_t=cursor.get("log_until"))
            self.known = scan.current
        self.started = True
        if self.store is not None:
            self._unstored = dict(self.known)
            self.flush()
        _sort(found)
        return found

    def resume(self, seen: dict[str, tuple]) -> None:
        """Take the stored fingerprints of the notes the watcher knew (*seen*: path -> (sha256, ...)) as the baseline.

        Only a fingerprint of the very bytes the watcher knew is trusted; the
        few others are read now. What changed while no watcher ran comes in
        as the watcher's changes and is reflected then, against this baseline.
        """
        known, unknown = self.store.baseline(seen) if self.store is not None else ({}, list(seen))
        for relpath in unknown:
            if not is_note_path(relpath) or is_conflict_copy(relpath):
                continue
            full = os.path.join(os.fspath(self.vault.root), relpath)
            try:
                st = os.stat(full)
            except OSError:
                continue
            try:
                data = notes.read_bytes(full)
            except FileNotFoundError:
                continue
            except (OSError, UnreadableNoteError):
                fp = stat_fingerprint(relpath, st)  # unreadable: known by its stat alone
            else:
                fp = _stamp(fingerprint(relpath, data, st.st_mtime_ns, st.st_size)[0], st)
            known[relpath] = self._unstored[relpath] = fp
        self.known = known
        self.started = True

    def flush(self) -> None:
        """Store the fingerprints changed since the last flush (with a store; one transaction)."""
        if self.store is None or not self._unstored:
            return
        rows, self._unstored = self._unstored, {}
        self.store.update_reflected(rows)

    def expect(self, relpath: str, before: bytes | None, after: bytes) -> OwnWrite:
        """This instance is about to write *after* over *before* at *relpath*: that change is its own.

        Call it before the write (it may come back before the writer returns);
        pass the result to `record` with the event, so later looks fold it too.
        """
        write = OwnWrite.of(str(relpath).replace(os.sep, "/"), before, after)
        self._expected[write] = None
        while len(self._expected) > MAX_EXPECTED:  # writes that never came back (a lost race)
            self._expected.popitem(last=False)
        return write

    def record(self, reflection: Reflection, writes: Iterable[OwnWrite] = ()) -> None:
        """Log an event of this instance's watcher with the rewrites it made (see `record`)."""
        record(self.vault, reflection, writes)

    def apply(self, change: Any, sig: tuple | None = None) -> list[Reflection]:
        """Reflect one `mirrorfs.watcher.Change` (added / modified / deleted / moved).

        *sig*: the watcher's stat signature of the bytes it read (see `change`).
        """
        if change.kind == "deleted":
            return self.change(change.path, None)
        data = change.content
        if data is None:
            try:
                data = notes.read_bytes(self.vault.root / change.path)
            except (OSError, UnreadableNoteError):
                return []
        return self.change(change.path, data, old_path=change.old_path if change.kind == "moved" else None,
                           sig=sig if change.content is not None else None)

    def change(self, relpath: str, new_bytes: bytes | None, old_path: str | None = None,
               sig: tuple | None = None) -> list[Reflection]:
        """Reflect one settled change: *new_bytes* None for a removal, *old_path* for a move.

        *sig* (size, mtime_ns, ctime_ns, inode) is the stat the bytes were read
        with; without it the file is stat'ed now, which a later write may
        already have moved on.
        """
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
            self._unstored[relpath] = None
            return diff(me, relpath, old, None, None, _remover(self.vault, relpath))
        try:
            stamp = _stamp({}, sig or os.stat(self.vault.root / relpath))
        except OSError:
            stamp = None
        if stamp is None:
            new, messages = fingerprint(relpath, new_bytes, time.time_ns(), len(new_bytes))
        else:
            new, messages = fingerprint(relpath, new_bytes, stamp["m"], stamp["s"])
            new = {**new, **stamp}
        self._unstored[relpath] = new
        if old_path is not None and old_path != relpath:
            old = self.known.pop(old_path, None)
            self._unstored[old_path] = None
            self.known[relpath] = new
            if old is None:
                return diff(me, relpath, None, new, messages)
            return moved(me, relpath, new, old_path) + diff(me, relpath, old, new, messages)
        old = self.known.get(relpath)
        self.known[relpath] = new
        if _own((relpath, old, new, messages), self._expected):
            del self._expected[OwnWrite(relpath, old.get("h") if old else None, new["h"])]
            return []  # the watcher's own merge or seal: its event says what happened
        return diff(me, relpath, old, new, messages)


# --------------------------------------------------------------------------
# The two ways to look: against the cursor, or by the files' own times.


def _news(vault: "Vault", changes: list[ScanChange], writes: Container[OwnWrite], now: dt.datetime) -> list[Reflection]:
    """The reflections of scanned changes: moves paired, the watcher's own rewrites folded away."""
    me = vault.instance
    changes, found = pair_moves(me, [c for c in changes if not _own(c, writes)])
    for rel, old, new, messages in changes:
        remover = _remover(vault, rel) if new is None else None
        found.extend(diff(me, rel, old, new, messages, remover, now))
    return found


def _since_cursor(vault: "Vault", cursor: dict, now: dt.datetime) -> list[Reflection]:
    scan = _scan(vault, cursor["files"])
    log = _log(vault).read()
    found = _news(vault, scan.changes, _writes(log), now)
    reflected = {r.path for r in found} | {str(r.details["from"]) for r in found if r.action == "moved"}
    silent = [c for c in scan.changes if c[0] not in reflected]
    if silent or scan.refreshed:
        # Changes that are nobody's news (own writes, presence) go straight into
        # the cursor, so the next look need not hash those files again.
        _fold(vault, cursor, scan, silent)
    return found + _logged(log, after_t=cursor.get("log_until"))


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


def _since(vault: "Vault", cutoff: dt.datetime, plain: bool, collect: dict | None = None,
           candidates: Candidates | None = None) -> list[Reflection]:
    """What others wrote at or after *cutoff*, judged by the files' own times.

    With *plain*, files without mirrorfs attribution whose mtime is past the
    cutoff count as human edits; a first look leaves them out, as it has no
    earlier version to compare with. *collect* receives the fingerprints read.
    *candidates*: see `vault_reflections` (each one is still stat'ed here).
    """
    me = vault.instance
    root = os.fspath(vault.root)
    cut = cutoff.timestamp()
    found: list[Reflection] = []
    known = candidates(cut - MTIME_SLACK) if candidates is not None else None
    try:
        listed = known if known is not None else [rel for rel, _ in ignore.walk(root, on_error=lambda rel, exc: None)]
        paths = [rel for rel in listed if not is_conflict_copy(rel)]
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
        fp = _stamp(fp, st)
        if collect is not None:
            collect[relpath] = fp
        found.extend(timed(me, relpath, fp, messages, cutoff, plain))
    return found + _logged(_log(vault).read(), since=cutoff)


def _mark(vault: "Vault", reflections: list[Reflection], now: dt.datetime, first: dict | None = None) -> None:
    """Store the cursor: reflected files as reflected, silent changes as they are now.

    *first*: fingerprints a first look already read (their stat tells whether
    they need reading again).
    """
    me = vault.instance
    log = _log(vault).read()
    writes = _writes(log)
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
            log_until = max([log_until] + [float(e.get("t") or 0) for e in log])
        files = dict(scan.current)
        if cursor is not None:
            for change in scan.changes:
                rel, old, new, messages = change
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
                if not _own(change, writes) and diff(me, rel, old, new, messages, None, now):
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
