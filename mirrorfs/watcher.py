"""Turn raw filesystem events in a vault into settled, content-verified changes.

Editors and sync tools save a note in many ways (truncate + write in place, temp
file renamed onto the note, rename the note away then create it anew, delete then
create, slow chunked writes), and inotify queues overflow on bulk copies. The
event sequence is therefore only a hint of *which* paths to look at: the truth is
what the file holds once it has been quiet for a moment, compared by sha256 with
what was last known. This module knows nothing of the index or the vault model;
it hands batches of :class:`Change` to a callback.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Callable, Iterable, Mapping, NamedTuple

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from mirrorfs.errors import EventsLostError, VaultNotFoundError, VaultUnavailableError, WatchError
from mirrorfs.ignore import IGNORED_DIRS, is_note_path, iter_note_paths

try:  # watchdog >= 6 reports chmod/touch as its own event type
    from watchdog.events import FileAttribEvent
except ImportError:  # pragma: no cover - older watchdog folds it into "modified"
    FileAttribEvent = None

log = logging.getLogger(__name__)

# watchdog re-registers the inotify watch of a folder created twice in a row
# (Syncthing does that for nested folders) and warns about it; the watch it
# keeps is the right one, so the warning is only noise on `mirrorfs watch`.
warnings.filterwarnings("ignore", message=r"Callback with id .* already exists for watch", category=RuntimeWarning)

ADDED = "added"
MODIFIED = "modified"
DELETED = "deleted"
MOVED = "moved"

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# Events worth waking up for; opened/closed-without-write events are noise (our
# own reads produce them) and are kept out of the inotify mask altogether.
_EVENT_FILTER = [
    FileCreatedEvent, FileModifiedEvent, FileDeletedEvent, FileMovedEvent,
    FileClosedEvent, DirCreatedEvent, DirDeletedEvent, DirMovedEvent,
]
if FileAttribEvent is not None:
    _EVENT_FILTER.append(FileAttribEvent)

# Above this many folders to rescan, one full rescan is cheaper and simpler.
_MAX_SCAN_REQUESTS = 256
_MAX_DIR_MOVES = 256
_ROOT_CHECK_INTERVAL = 1.0
_MAX_RETRY_BACKOFF = 30.0


@dataclass(frozen=True)
class Change:
    """One settled change of a note.

    *kind* is ``added``, ``modified``, ``deleted`` or ``moved``; *path* and
    *old_path* (moves only) are vault-relative POSIX strings; *sha256* and
    *content* are those of the bytes now on disk (None for deletions). A move
    whose content also changed is still one ``moved`` change carrying the new
    content.
    """

    kind: str
    path: str
    old_path: str | None = None
    sha256: str | None = None
    content: bytes | None = field(default=None, repr=False)  # a note's body has no place in logs


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


class _Known(NamedTuple):
    sha256: str
    # (size, mtime_ns, ctime_ns, ino) when we read it; None for seeded hashes.
    sig: tuple | None


class _Pending:
    __slots__ = ("first", "last", "not_before", "attempts", "waited_delete",
                 "waited_empty", "silent")

    def __init__(self, now: float, silent: bool = False):
        self.first = now
        self.last = now
        self.not_before = 0.0
        self.attempts = 0
        self.waited_delete = False
        self.waited_empty = False
        self.silent = silent


class _Read(NamedTuple):
    state: str  # "present" | "missing" | "error"
    content: bytes | None = None
    sha256: str | None = None
    sig: tuple | None = None
    consistent: bool = False
    error: OSError | None = None


def _sig(st: os.stat_result) -> tuple:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _watched_dir(rel: str) -> bool:
    # Same rule as iter_note_paths applies to folders.
    return not any(part in IGNORED_DIRS for part in rel.split("/")) if rel else True


def _under(rel: str, folder: str) -> bool:
    return not folder or rel.startswith(folder + "/")


def _add_folder(requests: dict[str, bool], folder: str, recursive: bool) -> bool:
    """Add *folder* to a set of rescan requests, keeping only outermost recursive ones.

    Returns False when the set grew too large (the caller falls back to a full scan).
    """
    parts = folder.split("/") if folder else []
    for i in range(len(parts)):
        if requests.get("/".join(parts[:i])):
            return True
    if requests.get(folder):
        return True
    if recursive:
        for other in [o for o in requests if o != folder and _under(o, folder)]:
            del requests[other]
    requests[folder] = requests.get(folder, False) or recursive
    return len(requests) <= _MAX_SCAN_REQUESTS


class _OverflowLogHandler(logging.Handler):
    # watchdog rebuilds its watches on IN_Q_OVERFLOW but tells event handlers
    # nothing; its warning in the log is the only public trace of lost events.
    def __init__(self, callback: Callable[[], None]):
        super().__init__(logging.WARNING)
        self._callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if "overflow" in record.getMessage().lower():
                self._callback()
        except Exception:  # a logging handler must never raise
            pass


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher):
        self._watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        self._watcher._on_event(event)


class Watcher:
    """Watch a vault and deliver settled note changes in batches.

    ``on_changes(list[Change])`` is called from the watcher's own thread, one
    call per batch of up to *max_batch* changes, never concurrently. The known
    hashes already include a batch while its callback runs; if the callback
    raises, that is undone, the exception goes to *on_error* and the same
    changes are offered again later (backing off up to 30 s). ``on_error(exc)``
    receives :class:`WatchError` subclasses or the callback's exception, also
    from the watcher's thread; without it they are logged.

    *known* seeds the hashes the caller already has (e.g. from its index): the
    start-up scan then reports every difference as changes, so a restart
    reports what changed while no watcher ran. Without it the start-up scan
    learns the vault silently. Either way :meth:`wait_ready` tells when it is
    done. A Watcher is started once; stop it with :meth:`stop` or a ``with``.

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
        known: Mapping[str, str] | None = None,
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
        # A write spanning two snapshots shows up as two events one poll apart.
        self._settle = settle + (poll_interval if polling else 0.0)
        self._write_hold = write_hold
        self._delete_grace = delete_grace + (poll_interval if polling else 0.0)
        self._empty_grace = empty_grace + (poll_interval if polling else 0.0)
        self._max_latency = max_latency
        self._batch_window = batch_window
        self._max_batch = max_batch
        self._max_attempts = max_attempts
        self._burst_threshold = burst_threshold
        self._recheck_gap = min(0.05, max(0.01, settle / 4))

        self._cond = threading.Condition()
        self._known: dict[str, _Known] = {}
        # sha256 -> paths, to recognise a move whose events could not be paired.
        self._by_sha: dict[str, set[str]] = {}
        self._seeded = known is not None
        for path, sha in (known or {}).items():
            self._set_known(PurePosixPath(path).as_posix(), _Known(sha, None))
        self._pending: dict[str, _Pending] = {}
        self._open_for_write: set[str] = set()
        self._hints: dict[str, str] = {}  # move destination -> source
        self._hint_src: dict[str, str] = {}  # move source -> destination
        self._scan_requests: dict[str, bool] = {}  # folder -> recursive
        self._scan_due = 0.0
        self._dir_moves: list[tuple[str, str]] = []
        self._burst_events = 0
        self._burst_folders: dict[str, bool] = {}
        self._burst_full = False
        self._initial: set[str] | None = None
        self._root_suspect = False
        self._root_down = False
        self._root_id: tuple | None = None
        self._last_root_check = 0.0
        self._retry_backoff = 0.0
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
        self._log_handler = _OverflowLogHandler(self._on_overflow)

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
        logging.getLogger("watchdog.observers.inotify_c").addHandler(self._log_handler)
        # Observe before scanning, so that nothing written during the scan is missed.
        self._start_observer()
        with self._cond:
            self._request_scan("", recursive=True, initial=True)
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
        logging.getLogger("watchdog.observers.inotify_c").removeHandler(self._log_handler)

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
            return {path: k.sha256 for path, k in self._known.items()}

    def status(self) -> WatcherStatus:
        """Counters and lag for status displays."""
        now = time.monotonic()
        with self._cond:
            oldest = min((p.first for p in self._pending.values()), default=now)
            return WatcherStatus(
                running=self._worker is not None and self._worker.is_alive(),
                ready=self._ready.is_set(),
                known=len(self._known),
                pending=len(self._pending),
                oldest_pending_age=now - oldest,
                errors=self._errors,
                overflows=self._overflows,
                batches=self._batches,
                last_batch_at=self._last_batch_at,
            )

    # ------------------------------------------------------------ observer side

    def _start_observer(self) -> None:
        observer = PollingObserver(timeout=self._poll_interval) if self._polling else Observer()
        observer.schedule(_Handler(self), self.root, recursive=True, event_filter=_EVENT_FILTER)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join()

    def _rel(self, path: str | bytes) -> str | None:
        path = os.fsdecode(path)
        if path == self.root:
            return ""
        if not path.startswith(self.root + os.sep):
            return None
        rel = path[len(self.root) + 1:]
        return rel.replace(os.sep, "/") if os.sep != "/" else rel

    def _on_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        src = self._rel(event.src_path)
        if src is None:
            return
        dest = self._rel(event.dest_path) if kind == "moved" and event.dest_path else None
        now = time.monotonic()
        with self._cond:
            if self._stopping:
                return
            if event.is_directory:
                self._on_dir_event(kind, src, dest, now)
            else:
                self._on_file_event(kind, src, dest, now)
            # Wake the worker only when this event is due before its planned wake-up.
            if now + self._settle < self._wake_at:
                self._wake_at = now
                self._cond.notify_all()

    def _on_dir_event(self, kind: str, src: str, dest: str | None, now: float) -> None:
        if kind == "deleted":
            if src == "":
                self._root_suspect = True
            elif _watched_dir(src):
                self._request_scan(src, recursive=True)
        elif kind == "created":
            if _watched_dir(src):
                # cp -r / mv in: files may be inside before any watch on the folder.
                self._request_scan(src, recursive=True)
        elif kind == "moved":
            if dest is None:
                return
            if len(self._dir_moves) < _MAX_DIR_MOVES:
                self._dir_moves.append((src, dest))
            else:
                self._request_scan("", recursive=True)
            if _watched_dir(src):
                self._request_scan(src, recursive=True)
            if _watched_dir(dest):
                self._request_scan(dest, recursive=True)
        else:
            return
        self._scan_due = now + self._settle
        self._note_burst(src, recursive=True)

    def _on_file_event(self, kind: str, src: str, dest: str | None, now: float) -> None:
        if kind == "moved" and dest is not None:
            src_note, dest_note = is_note_path(src), is_note_path(dest)
            if src_note and dest_note:
                self._set_hint(dest, src, now)
            if src_note:
                self._mark(src, now)
                self._open_for_write.discard(src)
            if dest_note:
                self._mark(dest, now)
                self._note_burst(dest)
            return
        if not is_note_path(src):
            return
        self._mark(src, now)
        self._note_burst(src)
        if not self._polling:
            if kind == "modified":
                self._open_for_write.add(src)
            elif kind in ("closed", "deleted"):
                self._open_for_write.discard(src)

    def _on_overflow(self) -> None:
        with self._cond:
            self._overflows += 1
            self._request_scan("", recursive=True)
            self._scan_due = time.monotonic() + self._settle
            self._deferred_errors.append(EventsLostError(
                f"{self.root}: the kernel dropped file events (inotify queue overflow); rescanning the vault",
                path=""))
            self._cond.notify_all()

    # ------------------------------------------------ bookkeeping (under _cond)

    def _mark(self, rel: str, now: float, *, silent: bool = False, immediate: bool = False,
              found: bool = False) -> None:
        p = self._pending.get(rel)
        if p is None:
            p = self._pending[rel] = _Pending(now, silent)
        elif not found:  # a scan finding a pending path is no news about it
            p.last = now
        if immediate:
            p.last = float("-inf")

    def _set_known(self, rel: str, entry: _Known) -> None:
        old = self._known.get(rel)
        if old is not None and old.sha256 != entry.sha256:
            self._forget(rel)
        self._known[rel] = entry
        self._by_sha.setdefault(entry.sha256, set()).add(rel)

    def _forget(self, rel: str) -> None:
        old = self._known.pop(rel, None)
        if old is not None:
            paths = self._by_sha.get(old.sha256)
            if paths is not None:
                paths.discard(rel)
                if not paths:
                    del self._by_sha[old.sha256]

    def _vanished_twin(self, sha: str, taken: set[str]) -> str | None:
        """A known note with this content that is no longer on disk: the source of a move."""
        if sha == EMPTY_SHA256:
            return None  # empty notes are all alike; pairing them would be a guess
        for rel in sorted(self._by_sha.get(sha, ()))[:8]:
            if rel not in taken and not os.path.lexists(os.path.join(self.root, rel)):
                return rel
        return None

    def _set_hint(self, dest: str, src: str, now: float) -> None:
        origin = self._hints.pop(src, None)
        if origin is not None:  # a move of a move: keep the first source
            self._hint_src.pop(origin, None)
            src = origin
        if src == dest:
            return
        previous = self._hints.get(dest)
        if previous is not None and previous != src:
            self._hint_src.pop(previous, None)
            self._mark(previous, now)
        stale_dest = self._hint_src.get(src)
        if stale_dest is not None and stale_dest != dest:
            self._hints.pop(stale_dest, None)
        self._hints[dest] = src
        self._hint_src[src] = dest

    def _drop_hint(self, dest: str, *, remark: bool = False, now: float = 0.0) -> str | None:
        src = self._hints.pop(dest, None)
        if src is not None and self._hint_src.get(src) == dest:
            del self._hint_src[src]
        if src is not None and remark:
            self._mark(src, now)
        return src

    def _request_scan(self, folder: str, *, recursive: bool, initial: bool = False) -> None:
        if initial:
            self._scan_requests.clear()
            self._scan_requests[""] = True
            self._initial = set()
            return
        if not _add_folder(self._scan_requests, folder, recursive):
            self._scan_requests.clear()
            self._scan_requests[""] = True

    def _note_burst(self, rel: str, recursive: bool = False) -> None:
        self._burst_events += 1
        if self._burst_full:
            return
        folder = rel if recursive else rel.rpartition("/")[0]
        if not _add_folder(self._burst_folders, folder, recursive):
            self._burst_full = True
            self._burst_folders.clear()

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
        with self._cond:
            while True:
                now = time.monotonic()
                if self._stopping:
                    break
                if self._root_suspect or now - self._last_root_check >= _ROOT_CHECK_INTERVAL:
                    break
                if (self._scan_requests or self._dir_moves) and now >= self._scan_due:
                    break
                if self._deferred_errors:
                    break
                ready_now, next_at = self._schedule(now)
                if ready_now:
                    break
                if (self._burst_events >= self._burst_threshold and not self._pending
                        and not self._scan_requests and not self._dir_moves):
                    break
                wake = min(next_at, self._last_root_check + _ROOT_CHECK_INTERVAL)
                if self._scan_requests or self._dir_moves:
                    wake = min(wake, self._scan_due)
                self._wake_at = wake
                self._cond.wait(max(0.0, wake - now))
            self._wake_at = 0.0  # busy: events need not wake us
            stopping = self._stopping
            deferred = list(self._deferred_errors)
            self._deferred_errors.clear()
            self._errors += len(deferred)
        for err in deferred:
            self._call_on_error(err)

        if stopping:
            if self._flush_on_stop and not self._root_down:
                self._flush()
            return False

        now = time.monotonic()
        if self._root_suspect or now - self._last_root_check >= _ROOT_CHECK_INTERVAL:
            self._check_root_and_recover()
            if self._root_down:
                return True

        with self._cond:
            burst_done = (not self._pending and not self._scan_requests and not self._dir_moves
                          and self._burst_events >= self._burst_threshold)
            if burst_done:
                # After a burst, re-verify the folders it touched: events may have
                # been lost without the kernel telling (or before a watch existed).
                if self._burst_full:
                    self._scan_requests[""] = True
                else:
                    for folder, recursive in self._burst_folders.items():
                        self._request_scan(folder, recursive=recursive)
                self._burst_events = 0
                self._burst_folders = {}
                self._burst_full = False
                self._scan_due = 0.0

        if self._scan_requests or self._dir_moves:
            if time.monotonic() >= self._scan_due:
                self._run_scans()

        with self._cond:
            ready_now, _ = self._schedule(time.monotonic())
            due = self._due_paths(time.monotonic(), limit=self._max_batch) if ready_now else []
            batch = [(rel, self._pending.pop(rel)) for rel in due]
            for rel, _ in batch:
                self._open_for_write.discard(rel)
        if batch:
            self._process(batch)
        self._check_initial_done()
        return True

    def _due_at(self, rel: str, p: _Pending) -> float:
        at = max(p.last + self._settle, p.not_before)
        if rel in self._open_for_write:
            at = max(at, p.last + self._write_hold)
        return min(at, max(p.first + self._max_latency, p.not_before))

    def _schedule(self, now: float) -> tuple[bool, float]:
        """Whether to process now, else when to look again.

        While other paths are still settling (a bulk copy), due paths wait up to
        *batch_window* so that they go out together: one index commit, not fifty.
        """
        due = 0
        first_due = next_at = float("inf")
        for rel, p in self._pending.items():
            at = self._due_at(rel, p)
            if at <= now:
                due += 1
                first_due = min(first_due, at)
            else:
                next_at = min(next_at, at)
        if not due:
            return False, next_at
        if due >= self._max_batch or next_at == float("inf") or now - first_due >= self._batch_window:
            return True, now
        return False, min(next_at, first_due + self._batch_window)

    def _due_paths(self, now: float, limit: int) -> list[str]:
        due: list[str] = []
        for rel, p in self._pending.items():
            if self._due_at(rel, p) <= now:
                due.append(rel)
                if len(due) >= limit:
                    break
        return due

    def _check_initial_done(self) -> None:
        with self._cond:
            if self._initial is None or self._ready.is_set():
                return
            if "" in self._scan_requests and self._scan_requests.get(""):
                return
            if any(rel in self._pending for rel in self._initial):
                return
            self._initial = None
        self._ready.set()

    # ------------------------------------------------------------------ scanning

    def _run_scans(self) -> None:
        with self._cond:
            requests, self._scan_requests = self._scan_requests, {}
            moves, self._dir_moves = self._dir_moves, []
            initial = self._initial is not None and not self._ready.is_set() and "" in requests
            now = time.monotonic()
            for src, dest in moves:
                prefix = src + "/"
                for rel in [r for r in self._known if r.startswith(prefix)]:
                    new = dest + rel[len(src):]
                    if is_note_path(new):
                        self._set_hint(new, rel, now)
                        self._mark(new, now)
                    self._mark(rel, now)
        for folder, recursive in requests.items():
            self._scan(folder, recursive, initial=initial and folder == "")

    def _scan(self, folder: str, recursive: bool, *, initial: bool = False) -> None:
        """Compare a folder on disk with what is known and mark what differs."""
        top = os.path.join(self.root, folder) if folder else self.root
        failed: list[str] = []

        def on_error(exc: OSError) -> None:
            where = self._rel(exc.filename) if exc.filename else None
            if isinstance(exc, (FileNotFoundError, NotADirectoryError)) and where:
                return  # removed while we looked: its notes are simply not found
            failed.append(folder if where is None else where)
            self._report(WatchError(f"{exc.filename or top}: cannot list folder: {exc.strerror or exc}",
                                    path=where, cause=exc))

        found: dict[str, tuple | None] = {}
        if recursive:
            base = folder + "/" if folder else ""
            for p in iter_note_paths(top, on_error=on_error):
                found[base + p.as_posix()] = None
        else:
            try:
                with os.scandir(top) as entries:
                    for entry in entries:
                        rel = f"{folder}/{entry.name}" if folder else entry.name
                        if is_note_path(rel):
                            found[rel] = None
            except OSError as exc:
                on_error(exc)
        for rel in found:
            try:
                found[rel] = _sig(os.stat(os.path.join(self.root, rel)))
            except OSError:
                pass  # vanished since listing; marking it lets the reader decide

        now = time.monotonic()
        with self._cond:
            if initial:
                self._initial = set()
            for rel, sig in found.items():
                k = self._known.get(rel)
                if k is None or k.sig is None or k.sig != sig:
                    self._mark(rel, now, silent=initial and not self._seeded, immediate=initial, found=True)
                    if initial:
                        self._initial.add(rel)
            for rel in list(self._known):
                if rel in found or not _under(rel, folder):
                    continue
                if not recursive and "/" in rel[len(folder) + 1 if folder else 0:]:
                    continue
                if any(_under(rel, f) for f in failed):
                    continue
                self._mark(rel, now, immediate=initial, found=True)
                if initial:
                    self._initial.add(rel)

    # ---------------------------------------------------------------- processing

    def _read(self, rel: str) -> _Read:
        if not is_note_path(rel):  # e.g. a seeded path that the ignore rules now exclude
            return _Read("missing")
        path = os.path.join(self.root, rel)
        try:
            before = os.stat(path)
            if not stat.S_ISREG(before.st_mode):
                return _Read("missing")
            with open(path, "rb") as f:
                content = f.read()
                after = os.fstat(f.fileno())
        except (FileNotFoundError, NotADirectoryError):
            return _Read("missing")
        except OSError as exc:
            return _Read("error", error=exc)
        sig = _sig(after)
        consistent = _sig(before) == sig and len(content) == after.st_size
        return _Read("present", content, hashlib.sha256(content).hexdigest(), sig, consistent)

    def _read_settled(self, rels: Iterable[str]) -> dict[str, _Read]:
        """Read each path twice, a short gap apart; unstable reads become "unstable"."""
        first = {rel: self._read(rel) for rel in rels}
        if any(r.state == "present" for r in first.values()):
            time.sleep(self._recheck_gap)
        out: dict[str, _Read] = {}
        for rel, r1 in first.items():
            if r1.state != "present":
                # A path that vanished between two looks is re-read once more so that
                # a delete racing a create (Syncthing) is judged on the later look.
                out[rel] = r1 if r1.state == "error" else self._read(rel)
                if out[rel].state == "present":
                    out[rel] = _Read("unstable")
                continue
            r2 = self._read(rel)
            if r2.state == "present" and r1.consistent and r2.consistent and \
                    r1.sig == r2.sig and r1.sha256 == r2.sha256:
                out[rel] = r2
            else:
                out[rel] = _Read("unstable", r2.content, r2.sha256, r2.sig, r2.consistent, r2.error)
        return out

    def _process(self, batch: list[tuple[str, _Pending]], *, flushing: bool = False) -> None:
        reads: dict[str, _Read | None] = dict(self._read_settled(rel for rel, _ in batch))
        now = time.monotonic()
        entries = dict(batch)
        changes: list[Change] = []
        moved_dests: set[str] = set()
        consumed: set[str] = set()
        requeue: list[tuple[str, _Pending, float]] = []
        errors: list[WatchError] = []

        with self._cond:
            known = self._known
            # New paths still waiting to be read may be where a deleted note went
            # (a polling snapshot taken mid-rename sees it one poll later).
            destinations_pending = any(rel not in known for rel in self._pending)
            for rel, p in batch:
                r = reads[rel]
                if r.state == "unstable":
                    p.attempts += 1
                    if p.attempts < self._max_attempts and not flushing:
                        requeue.append((rel, p, now + self._settle))
                        reads[rel] = None  # judged on a later round
                    elif r.content is None:  # came and went at every look: last seen gone
                        reads[rel] = _Read("missing")
                    else:  # still changing after many looks: report what we saw last
                        reads[rel] = _Read("present", r.content, r.sha256, r.sig, True)
                elif r.state == "error":
                    errors.append(WatchError(f"{rel}: cannot read: {r.error.strerror or r.error}",
                                             path=rel, cause=r.error))
                    reads[rel] = None
                    self._drop_hint(rel, remark=rel not in entries, now=now)

            # Moves first, so that a source is consumed before it can look deleted.
            for rel, p in batch:
                r = reads[rel]
                if r is None or rel not in self._hints:
                    continue
                src = self._hints[rel]
                if r.state == "present" and src in known:
                    src_read = reads[src] if src in entries else self._read(src)
                    if src_read is not None and src_read.state == "missing":
                        self._drop_hint(rel)
                        consumed.add(src)
                        self._pending.pop(src, None)
                        moved_dests.add(rel)
                        changes.append(Change(MOVED, rel, src, r.sha256, r.content))
                        continue
                self._drop_hint(rel)
                if src not in entries:
                    self._mark(src, now)  # judge the source on its own

            for rel, p in batch:
                r = reads[rel]
                if r is None or rel in consumed or rel in moved_dests:
                    continue
                k = known.get(rel)
                if r.state == "missing":
                    if k is None:
                        continue
                    dest = self._hint_src.get(rel)
                    if dest is not None and not flushing:
                        continue  # the destination's read will consume or release it
                    if not (p.waited_delete or flushing or p.silent):
                        # A delete is often the first half of delete + create (Syncthing).
                        p.waited_delete = True
                        requeue.append((rel, p, now + self._delete_grace))
                    elif destinations_pending and not flushing and now - p.first < self._max_latency:
                        requeue.append((rel, p, now + self._settle))
                    elif p.silent:
                        self._forget(rel)
                    else:
                        changes.append(Change(DELETED, rel))
                    continue
                if (r.sha256 == EMPTY_SHA256 and not (p.waited_empty or flushing or p.silent)
                        and (k is None or k.sha256 != EMPTY_SHA256)):
                    # An empty read is usually a truncate caught before the write.
                    p.waited_empty = True
                    requeue.append((rel, p, now + self._empty_grace))
                elif (k is not None and k.sha256 == r.sha256) or p.silent:
                    self._set_known(rel, _Known(r.sha256, r.sig))
                elif k is None and (twin := self._vanished_twin(r.sha256, consumed)) is not None:
                    # A move whose two halves inotify could not pair (e.g. into a
                    # folder created a moment before, not yet watched).
                    consumed.add(twin)
                    self._pending.pop(twin, None)
                    changes.append(Change(MOVED, rel, twin, r.sha256, r.content))
                else:
                    changes.append(Change(ADDED if k is None else MODIFIED, rel, None, r.sha256, r.content))

            if consumed:  # a source paired late must not also be reported or retried
                changes = [c for c in changes if not (c.kind == DELETED and c.path in consumed)]
                requeue = [item for item in requeue if item[0] not in consumed]
            for rel, p, not_before in requeue:
                self._requeue(rel, p, not_before)
            self._errors += len(errors)

        for err in errors:
            self._call_on_error(err)
        if changes:
            changes.sort(key=lambda c: c.path)
            sigs = {rel: r.sig for rel, r in reads.items() if r is not None}
            self._deliver(changes, sigs, entries)

    def _requeue(self, rel: str, p: _Pending, not_before: float) -> None:
        current = self._pending.get(rel)
        if current is not None:  # a new event arrived meanwhile: keep its timing
            current.attempts = p.attempts
            current.waited_delete = current.waited_delete or p.waited_delete
            current.waited_empty = current.waited_empty or p.waited_empty
            current.not_before = max(current.not_before, not_before)
            return
        p.not_before = not_before
        self._pending[rel] = p

    def _deliver(self, changes: list[Change], sigs: dict[str, tuple | None], entries: dict[str, _Pending]) -> None:
        if any(c.kind == DELETED for c in changes) and not self._root_intact():
            # Never turn a vanished vault into mass deletions: hold them.
            self._root_went_down()
            held = [c for c in changes if c.kind == DELETED]
            changes = [c for c in changes if c.kind != DELETED]
            with self._cond:
                for c in held:
                    self._requeue(c.path, entries.get(c.path) or _Pending(time.monotonic()),
                                  time.monotonic() + _ROOT_CHECK_INTERVAL)
            if not changes:
                return
        for start in range(0, len(changes), self._max_batch):
            chunk = changes[start:start + self._max_batch]
            # Known state moves first, so that known_hashes() agrees with what the
            # callback is being told; it is undone if the callback fails.
            with self._cond:
                undo = {}
                for c in chunk:
                    for rel in (c.path, c.old_path):
                        if rel is not None and rel not in undo:
                            undo[rel] = self._known.get(rel)
                    if c.kind in (DELETED, MOVED):
                        self._forget(c.old_path or c.path)
                    if c.kind != DELETED:
                        self._set_known(c.path, _Known(c.sha256, sigs.get(c.path)))
            try:
                self._on_changes(chunk)
            except Exception as exc:
                self._retry_backoff = min(max(0.5, self._retry_backoff * 2), _MAX_RETRY_BACKOFF)
                retry_at = time.monotonic() + self._retry_backoff
                now = time.monotonic()
                with self._cond:
                    for rel, entry in undo.items():
                        self._forget(rel)
                        if entry is not None:
                            self._set_known(rel, entry)
                    for c in changes[start:]:
                        if c.kind == MOVED:
                            self._set_hint(c.path, c.old_path, now)
                            self._requeue(c.old_path, _Pending(now), retry_at)
                        self._requeue(c.path, _Pending(now), retry_at)
                self._report(exc)
                return
            self._retry_backoff = 0.0
            with self._cond:
                self._batches += 1
                self._last_batch_at = time.time()

    def _flush(self) -> None:
        """Deliver everything that changed before stop, without waiting for quiet or graces."""
        # Events still in the kernel's queue are lost with the observer: a stat
        # rescan finds what they were about.
        with self._cond:
            self._request_scan("", recursive=True)
        self._run_scans()
        for _ in range(3):  # bounded: a file rewritten during the flush is left for the next start
            with self._cond:
                batch = list(self._pending.items())[: self._max_batch]
                for rel, _ in batch:
                    del self._pending[rel]
            if not batch:
                return
            self._process(batch, flushing=True)

    # ------------------------------------------------------------------- root

    def _root_intact(self) -> bool:
        try:
            st = os.stat(self.root)
            if not stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) != self._root_id:
                return False
            with os.scandir(self.root) as it:
                next(it, None)
            return True
        except OSError:
            return False

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
        try:
            st = os.stat(self.root)
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(self.root)
            with os.scandir(self.root) as it:
                next(it, None)
        except OSError:
            self._root_went_down()
            return
        observer = self._observer
        emitters_alive = observer is not None and all(e.is_alive() for e in observer.emitters)
        same = (st.st_dev, st.st_ino) == self._root_id
        if same and not self._root_down and emitters_alive:
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
        self._root_id = (st.st_dev, st.st_ino)
        self._stop_observer()
        try:
            self._start_observer()
        except OSError as exc:
            self._report(VaultUnavailableError(f"{self.root}: cannot watch: {exc}", path="", cause=exc))
            return
        self._root_down = False
        with self._cond:
            self._scan_requests = {"": True}
            self._scan_due = 0.0

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
