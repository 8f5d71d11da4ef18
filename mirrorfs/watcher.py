"""Turn raw filesystem events in a vault into settled, content-verified changes.

Editors and sync tools save a note in many ways (truncate + write in place, temp
file renamed onto the note, rename the note away then create it anew, delete then
create, slow chunked writes), and inotify queues overflow on bulk copies. The
event sequence is therefore only a hint of *which* paths to look at: the truth is
what the file holds once it has been quiet for a moment, compared by sha256 with
what was last known. This module knows nothing of the index or the vault model;
it hands batches of :class:`Change` to a callback.

The rules live in pure modules (no watchdog, no threads, no file I/O):
`mirrorfs.settle` says when a path is due, `mirrorfs.moves` pairs the halves of
a move, `mirrorfs.fingerprints` holds what is known and `mirrorfs.changes`
turns a batch of reads into changes. `mirrorfs.observe` and `mirrorfs.noteread`
do the watchdog and file work. The :class:`Watcher` owns the threads, and the
lock that serialises all of them, and ties them together.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Callable, Mapping

from mirrorfs.changes import ADDED, DELETED, MODIFIED, MOVED, Change, Judge
from mirrorfs.errors import (
    EventsLostError,
    VaultNotFoundError,
    VaultUnavailableError,
    WatchError,
)
from mirrorfs.ignore import IGNORED_DIRS, is_note_path, iter_note_paths
from mirrorfs.moves import EMPTY_SHA256, MoveHints, folder_moved
from mirrorfs.noteread import list_notes, read_note, read_settled
from mirrorfs.observe import (
    OverflowAlarm,
    emitters_alive,
    root_identity,
    start_observer,
    stop_observer,
)
from mirrorfs.settle import Backoff, Burst, Pending, Rescans, Scheduler, SettleTimes
from mirrorfs.signatures import Fingerprint, Fingerprints, Signature

__all__ = [
    "ADDED", "MODIFIED", "DELETED", "MOVED", "EMPTY_SHA256", "Change", "Watcher", "WatcherStatus",
    "WatchError", "VaultUnavailableError", "EventsLostError",
]

log = logging.getLogger(__name__)

_ROOT_CHECK_INTERVAL = 1.0


@dataclass(frozen=True)
class WatcherStatus:
    """A snapshot of the watcher's health, for status displays."""

    running: bool
    ready: bool
    known: int
    pending: int
    oldest_pending_age: float
    errors: int
    overflows: int
    batches: int
    last_batch_at: float | None
    vault_missing: bool = False  # the folder vanished or was unmounted: paused until it is back


def _watched_dir(rel: str) -> bool:
    # Same rule as the vault walker applies to folders.
    return not any(part in IGNORED_DIRS for part in rel.split("/")) if rel else True


class Watcher:
    """Watch a vault and deliver settled note changes in batches.

    ``on_changes(list[Change])`` is called from the watcher's own thread, one
    call per batch of up to *max_batch* changes, never concurrently. The known
    hashes already include a batch while its callback runs; if the callback
    raises, that is undone, the exception goes to *on_error* and the same
    changes are offered again later (backing off up to 30 s). ``on_error(exc)``
    receives :class:`WatchError` subclasses or the callback's exception, also
    from the watcher's thread; without it they are logged.

    *known* seeds the hashes the caller already has (e.g. from its index),
    path -> sha256 or -> (sha256, stat signature) as *on_known* was given
    them: the start-up scan then reports every difference as changes, so a
    restart reports what changed while no watcher ran, and reads only the
    files whose signature (size, mtime, ctime, inode) is not the one given.
    Without it the start-up scan learns the vault silently. Either way
    :meth:`wait_ready` tells when it is done. ``on_known({path: (sha256,
    signature) | None})`` receives, from the watcher's thread after each
    round, what changed in what the watcher knows (None: forgotten), once the
    batch that changed it was delivered: a caller that stores it can seed the
    next start. A Watcher is started once; stop it with :meth:`stop` or a ``with``.

    Timing knobs (seconds): *settle*, how long a path must be quiet before it
    is read; *write_hold*, how long a file still open for writing (inotify
    only) is waited for; *delete_grace* and *empty_grace*, how long a missing
    or empty note is given to come back (delete + create, truncate + write);
    *max_latency*, the longest a constantly changing path is put off;
    *batch_window*, how long due paths wait for others still settling, so that
    a burst is delivered in few batches. With
    *polling*, watchdog's PollingObserver takes a snapshot every
    *poll_interval* and each delay grows by one interval. A path whose reads
    keep differing is reported as last read after *max_attempts* looks. After
    *burst_threshold* events the folders they touched are rescanned (stat,
    then hash where stat differs) to catch events the kernel lost.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        on_changes: Callable[[list[Change]], None],
        *,
        on_error: Callable[[BaseException], None] | None = None,
        known: Mapping[str, str | tuple] | None = None,
        on_known: Callable[[dict[str, tuple | None]], None] | None = None,
        polling: bool = False,
        poll_interval: float = 1.0,
        settle: float = 0.1,
        write_hold: float = 1.0,
        delete_grace: float = 0.25,
        empty_grace: float = 0.3,
        max_latency: float = 5.0,
        batch_window: float = 0.25,
        max_batch: int = 1000,
        max_attempts: int = 20,
        burst_threshold: int = 100,
    ):
        self.root = os.path.abspath(os.fspath(root))
        self._on_changes = on_changes
        self._on_error_cb = on_error
        self._polling = polling
        self._poll_interval = poll_interval
        times = SettleTimes(settle=settle, write_hold=write_hold, delete_grace=delete_grace,
                            empty_grace=empty_grace, max_latency=max_latency, batch_window=batch_window,
                            max_batch=max_batch, max_attempts=max_attempts)
        self._times = times.polled(poll_interval) if polling else times
        self._max_batch = max_batch
        self._recheck_gap = min(0.05, max(0.01, settle / 4))

        # Everything below is shared with the observer's thread and guarded by _cond.
        self._cond = threading.Condition()
        self._known = Fingerprints()
        self._seeded = known is not None
        for path, entry in (known or {}).items():
            sha, sig = (entry, None) if isinstance(entry, str) else entry
            # A stored entry is already a POSIX path; a caller's hash may not be.
            rel = path if sig else PurePosixPath(path).as_posix()
            self._known.set(rel, Fingerprint(sha, tuple(sig) if sig else None))
        self._known.take_changed()  # what the caller gave is what it has
        self._on_known = on_known
        self._sched = Scheduler(self._times, time.monotonic)
        self._hints = MoveHints()
        self._rescans = Rescans(time.monotonic, self._times.settle)
        self._burst = Burst(burst_threshold)
        self._backoff = Backoff(time.monotonic)
        self._judge = Judge(self._sched, self._known, self._hints,
                            lambda rel: read_note(self.root, rel), self._gone)
        self._initial: set[str] | None = None
        self._root_suspect = False
        self._root_down = False
        self._root_id: tuple | None = None
        self._last_root_check = 0.0
        self._wake_at = 0.0
        # Errors seen on other threads wait here for the worker to report them.
        self._deferred_errors: deque[BaseException] = deque(maxlen=100)

        self._errors = 0
        self._overflows = 0
        self._batches = 0
        self._last_batch_at: float | None = None

        self._stopping = False
        self._flush_on_stop = True
        self._ready = threading.Event()
        self._observer = None
        self._worker: threading.Thread | None = None
        self._overflow_alarm = OverflowAlarm(self._on_overflow)

    # ------------------------------------------------------------------ control

    def start(self) -> Watcher:
        """Start observing, then scan the vault in the background (see wait_ready)."""
        if self._worker is not None:
            raise RuntimeError("watcher already started")
        try:
            st = os.stat(self.root)
        except OSError as exc:
            raise VaultNotFoundError(f"{self.root}: cannot watch: {exc.strerror}") from exc
        if not stat.S_ISDIR(st.st_mode):
            raise VaultNotFoundError(f"{self.root}: not a folder")
        self._root_id = (st.st_dev, st.st_ino)
        self._overflow_alarm.attach()
        # Observe before scanning, so that nothing written during the scan is missed.
        self._start_observer()
        with self._cond:
            self._rescans.request_all()
            self._initial = set()
        self._worker = threading.Thread(target=self._run, name=f"mirrorfs-watch:{self.root}", daemon=True)
        self._worker.start()
        return self

    def stop(self, *, flush: bool = True, timeout: float | None = None) -> None:
        """Stop observing and join the threads; *flush* first delivers what is pending."""
        if self._worker is None:
            return
        with self._cond:
            self._stopping = True
            self._flush_on_stop = flush
            self._cond.notify_all()
        self._worker.join(timeout)
        self._stop_observer()
        self._overflow_alarm.detach()

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the start-up scan has been delivered; False on timeout."""
        return self._ready.wait(timeout)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def known_hashes(self) -> dict[str, str]:
        """A copy of the last known sha256 of every note (vault-relative path -> hex)."""
        with self._cond:
            return self._known.hashes()

    def modified_since(self, cutoff: float) -> list[str] | None:
        """Notes whose known mtime is at or after *cutoff* (POSIX seconds), or whose mtime is unknown;
        None until the start-up scan knows the vault. Saves a `stat` of every note."""
        if not self._ready.is_set():
            return None
        cut = int(cutoff * 1e9)
        with self._cond:
            return [rel for rel in self._known
                    if (entry := self._known.get(rel)).sig is None or entry.sig[1] >= cut]

    def signature_of(self, rel: str) -> Signature | None:
        """The stat signature the known content of *rel* was read with (None: unknown or seeded)."""
        with self._cond:
            entry = self._known.get(rel)
            return entry.sig if entry is not None else None

    def status(self) -> WatcherStatus:
        """Counters and lag for status displays."""
        with self._cond:
            return WatcherStatus(
                running=self._worker is not None and self._worker.is_alive(),
                ready=self._ready.is_set(),
                known=len(self._known),
                pending=len(self._sched),
                oldest_pending_age=self._sched.oldest_age(),
                errors=self._errors,
                overflows=self._overflows,
                batches=self._batches,
                last_batch_at=self._last_batch_at,
                vault_missing=self._root_down,
            )

    # ------------------------------------------------------------ observer side

    def _start_observer(self) -> None:
        self._observer = start_observer(self.root, self._on_event, polling=self._polling,
                                        poll_interval=self._poll_interval)

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        stop_observer(observer)

    def _on_event(self, kind: str, is_directory: bool, src: str, dest: str | None) -> None:
        now = time.monotonic()
        with self._cond:
            if self._stopping:
                return
            if is_directory:
                self._on_dir_event(kind, src, dest)
            else:
                self._on_file_event(kind, src, dest)
            # Wake the worker only when this event is due before its planned wake-up.
            if now + self._times.settle < self._wake_at:
                self._wake_at = now
                self._cond.notify_all()

    def _on_dir_event(self, kind: str, src: str, dest: str | None) -> None:
        if kind == "deleted":
            if src == "":
                self._root_suspect = True
            elif _watched_dir(src):
                self._rescans.request(src, recursive=True)
        elif kind == "created":
            if _watched_dir(src):
                # cp -r / mv in: files may be inside before any watch on the folder.
                self._rescans.request(src, recursive=True)
        elif kind == "moved":
            if dest is None:
                return
            self._rescans.moved(src, dest)
            if _watched_dir(src):
                self._rescans.request(src, recursive=True)
            if _watched_dir(dest):
                self._rescans.request(dest, recursive=True)
        else:
            return
        self._rescans.postpone()
        self._burst.note(src, recursive=True)

    def _on_file_event(self, kind: str, src: str, dest: str | None) -> None:
        if kind == "moved" and dest is not None:
            src_note, dest_note = is_note_path(src), is_note_path(dest)
            if src_note and dest_note:
                self._hint(dest, src)
            if src_note:
                self._sched.mark(src)
                self._sched.closed(src)
            if dest_note:
                self._sched.mark(dest)
                self._burst.note(dest)
            return
        if not is_note_path(src):
            return
        self._sched.mark(src)
        self._burst.note(src)
        if not self._polling:
            if kind == "modified":
                self._sched.opened(src)
            elif kind in ("closed", "deleted"):
                self._sched.closed(src)

    def _on_overflow(self) -> None:
        with self._cond:
            self._overflows += 1
            self._rescans.request_all()
            self._rescans.postpone()
            self._deferred_errors.append(EventsLostError(
                f"{self.root}: the kernel dropped file events (inotify queue overflow); rescanning the vault",
                path=""))
            self._cond.notify_all()

    def _hint(self, dest: str, src: str) -> None:
        """Record a rename (under _cond); a hint it displaces leaves its source to be judged alone."""
        displaced = self._hints.add(dest, src)
        if displaced is not None:
            self._sched.mark(displaced)

    # -------------------------------------------------------------- worker side

    def _run(self) -> None:
        while True:
            try:
                if not self._step():
                    return
            except Exception as exc:  # the worker must outlive any surprise
                log.exception("watcher loop failed")
                self._report(WatchError(f"{self.root}: watcher error: {exc}", cause=exc))
                with self._cond:
                    self._cond.wait(0.5)

    def _step(self) -> bool:
        """One round of the worker loop; False when the watcher is done."""
        stopping, deferred = self._wait_for_work()
        for err in deferred:
            self._call_on_error(err)
        if stopping:
            if self._flush_on_stop and not self._root_down:
                self._flush()
            self._tell_known()
            return False

        if self._root_suspect or time.monotonic() - self._last_root_check >= _ROOT_CHECK_INTERVAL:
            self._check_root_and_recover()
            if self._root_down:
                return True

        with self._cond:
            if not len(self._sched) and not self._rescans.pending and self._burst.over:
                # After a burst, re-verify the folders it touched: events may have
                # been lost without the kernel telling (or before a watch existed).
                folders = self._burst.take()
                if folders is None:
                    self._rescans.request_all()
                for folder, recursive in (folders or {}).items():
                    self._rescans.request(folder, recursive=recursive)
                self._rescans.due = 0.0

        if self._rescans.is_due():
            self._run_scans()

        with self._cond:
            batch = self._sched.take_due()
        if batch:
            self._process(batch)
        self._tell_known()
        self._check_initial_done()
        return True

    def _tell_known(self) -> None:
        """Hand what changed in the known fingerprints to *on_known* (after its batch was delivered)."""
        if self._on_known is None:
            return
        with self._cond:
            changed = self._known.take_changed()
        if not changed:
            return
        try:
            self._on_known({rel: None if f is None else (f.sha256, f.sig) for rel, f in changed.items()})
        except Exception as exc:
            self._report(exc)

    def _wait_for_work(self) -> tuple[bool, list[BaseException]]:
        """Sleep until something is due; returns whether to stop, and the errors other threads left."""
        with self._cond:
            while True:
                now = time.monotonic()
                if self._stopping or self._deferred_errors:
                    break
                if self._root_suspect or now - self._last_root_check >= _ROOT_CHECK_INTERVAL:
                    break
                if self._rescans.is_due():
                    break
                ready_now, next_at = self._sched.plan()
                if ready_now:
                    break
                if self._burst.over and not len(self._sched) and not self._rescans.pending:
                    break
                wake = min(next_at, self._last_root_check + _ROOT_CHECK_INTERVAL)
                if self._rescans.pending:
                    wake = min(wake, self._rescans.due)
                self._wake_at = wake
                self._cond.wait(max(0.0, wake - now))
            self._wake_at = 0.0  # busy: events need not wake us
            deferred = list(self._deferred_errors)
            self._deferred_errors.clear()
            self._errors += len(deferred)
            return self._stopping, deferred

    def _check_initial_done(self) -> None:
        with self._cond:
            if self._initial is None or self._ready.is_set():
                return
            if self._rescans.full_pending:
                return
            if any(rel in self._sched for rel in self._initial):
                return
            self._initial = None
        self._ready.set()

    # ------------------------------------------------------------------ scanning

    def _run_scans(self) -> None:
        with self._cond:
            folders, moves = self._rescans.take()
            initial = self._initial is not None and not self._ready.is_set() and "" in folders
            for src, dest in moves:
                for old, new in folder_moved(src, dest, self._known):
                    if new is not None:
                        self._hint(new, old)
                        self._sched.mark(new)
                    self._sched.mark(old)
        for folder, recursive in folders.items():
            self._scan(folder, recursive, initial=initial and folder == "")

    def _scan(self, folder: str, recursive: bool, *, initial: bool = False) -> None:
        """Compare a folder on disk with what is known and mark what differs."""
        found, errors = list_notes(self.root, folder, recursive)
        for where, exc in errors:
            top = os.path.join(self.root, where) if where else self.root
            self._report(WatchError(f"{exc.filename or top}: cannot list folder: {exc.strerror or exc}",
                                    path=where, cause=exc))
        with self._cond:
            changed, missing = self._known.differences(found, folder, recursive, [w for w, _ in errors])
            for rel in changed:
                self._sched.mark(rel, silent=initial and not self._seeded, immediate=initial, found=True)
            for rel in missing:
                self._sched.mark(rel, immediate=initial, found=True)
            if initial:
                self._initial = set(changed) | set(missing)

    # ---------------------------------------------------------------- processing

    def _process(self, batch: list[tuple[str, Pending]], *, flushing: bool = False) -> None:
        """Read a batch of due paths, judge them and deliver what changed."""
        reads = read_settled(self.root, (rel for rel, _ in batch), self._recheck_gap)
        with self._cond:
            verdict = self._judge.judge(batch, reads, flushing=flushing)
            self._errors += len(verdict.errors)
        for err in verdict.errors:
            self._call_on_error(err)
        if verdict.changes:
            self._deliver(verdict.changes, verdict.sigs, dict(batch))

    def _gone(self, rel: str) -> bool:
        return not os.path.lexists(os.path.join(self.root, rel))

    # ------------------------------------------------------------------ delivery

    def _deliver(self, changes: list[Change], sigs: dict[str, Signature | None], entries: dict[str, Pending]) -> None:
        if any(c.kind == DELETED for c in changes) and not self._root_intact():
            # Never turn a vanished vault into mass deletions: hold them.
            self._root_went_down()
            held = [c for c in changes if c.kind == DELETED]
            changes = [c for c in changes if c.kind != DELETED]
            with self._cond:
                for c in held:
                    self._sched.requeue(c.path, entries.get(c.path), time.monotonic() + _ROOT_CHECK_INTERVAL)
            if not changes:
                return
        for start in range(0, len(changes), self._max_batch):
            if not self._deliver_chunk(changes[start:start + self._max_batch], changes[start:], sigs):
                return

    def _deliver_chunk(self, chunk: list[Change], rest: list[Change], sigs: dict[str, Signature | None]) -> bool:
        """Hand one chunk to the callback; on failure undo it, put back *rest* and return False."""
        # Known state moves first, so that known_hashes() agrees with what the
        # callback is being told; it is undone if the callback fails.
        with self._cond:
            undo: dict[str, Fingerprint | None] = {}
            for c in chunk:
                for rel in (c.path, c.old_path):
                    if rel is not None and rel not in undo:
                        undo[rel] = self._known.get(rel)
                if c.kind in (DELETED, MOVED):
                    self._known.forget(c.old_path or c.path)
                if c.kind != DELETED:
                    self._known.set(c.path, Fingerprint(c.sha256, sigs.get(c.path)))
        try:
            self._on_changes(chunk)
        except Exception as exc:
            retry_at = self._backoff.failed()
            with self._cond:
                for rel, entry in undo.items():
                    self._known.forget(rel)
                    if entry is not None:
                        self._known.set(rel, entry)
                for c in rest:
                    if c.kind == MOVED:
                        self._hint(c.path, c.old_path)
                        self._sched.requeue(c.old_path, None, retry_at)
                    self._sched.requeue(c.path, None, retry_at)
            self._report(exc)
            return False
        self._backoff.succeeded()
        with self._cond:
            self._batches += 1
            self._last_batch_at = time.time()
        return True

    def _flush(self) -> None:
        """Deliver everything that changed before stop, without waiting for quiet or graces."""
        # Events still in the kernel's queue are lost with the observer: a stat
        # rescan finds what they were about.
        with self._cond:
            self._rescans.request_all()
        self._run_scans()
        for _ in range(3):  # bounded: a file rewritten during the flush is left for the next start
            with self._cond:
                batch = self._sched.take_all()
            if not batch:
                return
            self._process(batch, flushing=True)

    # ------------------------------------------------------------------- root

    def _root_intact(self) -> bool:
        identity = root_identity(self.root)
        return identity is not None and identity == self._root_id

    def _root_went_down(self) -> None:
        if not self._root_down:
            self._root_down = True
            self._report(VaultUnavailableError(
                f"{self.root}: the vault folder vanished or cannot be read; "
                "no deletions are reported until it is back", path=""))

    def _check_root_and_recover(self) -> None:
        with self._cond:
            self._root_suspect = False
        self._last_root_check = time.monotonic()
        identity = root_identity(self.root)
        if identity is None:
            self._root_went_down()
            return
        same = identity == self._root_id
        if same and not self._root_down and emitters_alive(self._observer):
            return
        if not same and next(iter_note_paths(self.root, on_error=lambda exc: None), None) is None:
            # An empty folder in the vault's place is what an unmounted drive leaves
            # behind: adopting it would delete every note. Wait for the real one.
            self._root_went_down()
            return
        # The folder is back, was replaced, or its watch died: watch it anew and reconcile.
        with self._cond:
            if self._stopping:
                return
        self._root_id = identity
        self._stop_observer()
        try:
            self._start_observer()
        except OSError as exc:
            self._report(VaultUnavailableError(f"{self.root}: cannot watch: {exc}", path="", cause=exc))
            return
        self._root_down = False
        with self._cond:
            self._rescans.request_all()
            self._rescans.due = 0.0

    # ---------------------------------------------------------------- errors

    def _report(self, exc: BaseException) -> None:
        with self._cond:
            self._errors += 1
        self._call_on_error(exc)

    def _call_on_error(self, exc: BaseException) -> None:
        if self._on_error_cb is None:
            log.warning("%s", exc)
            return
        try:
            self._on_error_cb(exc)
        except Exception:
            log.exception("on_error callback failed")
