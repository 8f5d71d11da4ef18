"""When a path's pending change is due: the watcher's settle scheduler.

A path that had an event waits until it has been quiet for *settle* seconds
(longer while a writer still holds it open), but never longer than
*max_latency*; paths due together wait a little for others still settling so a
burst goes out in few batches; a read that keeps failing, a delete that may be
the first half of delete + create, an empty read that may be a truncate before
the write, each wait their own grace. Folder rescans are queued here too, kept
to the outermost folders and capped.

Pure bookkeeping: no watchdog, no threads, no file I/O. Time comes from an
injected clock (``time.monotonic`` in the watcher, a fake one in tests), so
every rule can be driven step by step. The caller serialises access.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Container

from mirrorfs.signatures import below

INF = float("inf")
# Above this many folders to rescan, one full rescan is cheaper and simpler.
MAX_SCAN_REQUESTS = 256
MAX_DIR_MOVES = 256
FIRST_RETRY_BACKOFF = 0.5
MAX_RETRY_BACKOFF = 30.0


@dataclass(frozen=True)
class SettleTimes:
    """The scheduler's knobs, in seconds (see `mirrorfs.watcher.Watcher`)."""

    settle: float = 0.1
    write_hold: float = 1.0
    delete_grace: float = 0.25
    empty_grace: float = 0.3
    max_latency: float = 5.0
    batch_window: float = 0.25
    max_batch: int = 1000
    max_attempts: int = 20

    def polled(self, interval: float) -> SettleTimes:
        """The same times behind a polling observer.

        A write spanning two snapshots shows up as two events one poll apart,
        so every quiet wait grows by one *interval*.
        """
        return replace(self, settle=self.settle + interval, delete_grace=self.delete_grace + interval,
                       empty_grace=self.empty_grace + interval)


class Pending:
    """One path waiting to be read: when it was first and last touched, and what it already waited for."""

    __slots__ = ("first", "last", "not_before", "attempts", "waited_delete", "waited_empty", "silent")

    def __init__(self, now: float, silent: bool = False):
        self.first = now
        self.last = now
        self.not_before = 0.0
        self.attempts = 0
        self.waited_delete = False
        self.waited_empty = False
        # Learned without reporting (the start-up scan of an unseeded watcher).
        self.silent = silent


class Scheduler:
    """The paths waiting to settle, and which of them are due."""

    def __init__(self, times: SettleTimes, clock: Callable[[], float]):
        self.times = times
        self.clock = clock
        self.pending: dict[str, Pending] = {}
        self._open_for_write: set[str] = set()

    def __len__(self) -> int:
        return len(self.pending)

    def __contains__(self, rel: object) -> bool:
        return rel in self.pending

    def mark(self, rel: str, *, silent: bool = False, immediate: bool = False, found: bool = False) -> None:
        """Note an event on *rel*: it is read once quiet.

        *found* is a scan seeing the path (no news about an already pending
        one); *immediate* makes it due at once (the start-up scan).
        """
        now = self.clock()
        p = self.pending.get(rel)
        if p is None:
            p = self.pending[rel] = Pending(now, silent)
        elif not found:
            p.last = now
        if immediate:
            p.last = -INF

    def opened(self, rel: str) -> None:
        """A writer holds *rel* open (inotify only): wait for its close, up to *write_hold*."""
        self._open_for_write.add(rel)

    def closed(self, rel: str) -> None:
        self._open_for_write.discard(rel)

    def due_at(self, rel: str, p: Pending) -> float:
        """When *p* may be read: quiet for *settle*, held open at most *write_hold*, late at most *max_latency*."""
        t = self.times
        at = max(p.last + t.settle, p.not_before)
        if rel in self._open_for_write:
            at = max(at, p.last + t.write_hold)
        return min(at, max(p.first + t.max_latency, p.not_before))

    def plan(self) -> tuple[bool, float]:
        """Whether to take the due paths now, else when to look again.

        While other paths are still settling (a bulk copy), due paths wait up to
        *batch_window* so that they go out together: one index commit, not fifty.
        """
        now = self.clock()
        due = 0
        first_due = next_at = INF
        for rel, p in self.pending.items():
            at = self.due_at(rel, p)
            if at <= now:
                due += 1
                first_due = min(first_due, at)
            else:
                next_at = min(next_at, at)
        if not due:
            return False, next_at
        if due >= self.times.max_batch or next_at == INF or now - first_due >= self.times.batch_window:
            return True, now
        return False, min(next_at, first_due + self.times.batch_window)

    def take_due(self) -> list[tuple[str, Pending]]:
        """Remove and return up to *max_batch* due paths, in the order they were marked, when `plan` says go."""
        ready, _ = self.plan()
        if not ready:
            return []
        now = self.clock()
        due: list[str] = []
        for rel, p in self.pending.items():
            if self.due_at(rel, p) <= now:
                due.append(rel)
                if len(due) >= self.times.max_batch:
                    break
        return self._take(due)

    def take_all(self) -> list[tuple[str, Pending]]:
        """Remove and return up to *max_batch* pending paths, due or not (a flush at stop)."""
        return self._take(list(self.pending)[: self.times.max_batch])

    def _take(self, rels: list[str]) -> list[tuple[str, Pending]]:
        out = [(rel, self.pending.pop(rel)) for rel in rels]
        for rel in rels:
            self._open_for_write.discard(rel)
        return out

    def drop(self, rel: str) -> None:
        """Forget *rel*'s pending change (it was consumed as the source of a move)."""
        self.pending.pop(rel, None)

    def requeue(self, rel: str, p: Pending | None, not_before: float) -> None:
        """Put *rel* back, to be read no earlier than *not_before*; *p* keeps what it already waited for."""
        if p is None:
            p = Pending(self.clock())
        current = self.pending.get(rel)
        if current is not None:  # a new event arrived meanwhile: keep its timing
            current.attempts = p.attempts
            current.waited_delete = current.waited_delete or p.waited_delete
            current.waited_empty = current.waited_empty or p.waited_empty
            current.not_before = max(current.not_before, not_before)
            return
        p.not_before = not_before
        self.pending[rel] = p

    def waiting_for_new(self, known: Container[str]) -> bool:
        """Whether a path not in *known* is still waiting: maybe where a deleted note went."""
        return any(rel not in known for rel in self.pending)

    def oldest_age(self) -> float:
        now = self.clock()
        return now - min((p.first for p in self.pending.values()), default=now)

    # ------------------------------------------------- graces of a read path

    def retry_unstable(self, p: Pending, *, flushing: bool) -> float | None:
        """A read that differed between two looks: when to look again, or None to judge the last look."""
        p.attempts += 1
        if p.attempts < self.times.max_attempts and not flushing:
            return self.clock() + self.times.settle
        return None

    def hold_delete(self, p: Pending, *, flushing: bool, destinations_pending: bool) -> float | None:
        """A known note is gone: when to look again, or None to report it deleted now.

        A delete is often the first half of delete + create (Syncthing), and a
        new path still settling may turn out to be where the note went.
        """
        now = self.clock()
        if not (p.waited_delete or flushing or p.silent):
            p.waited_delete = True
            return now + self.times.delete_grace
        if destinations_pending and not flushing and now - p.first < self.times.max_latency:
            return now + self.times.settle
        return None

    def hold_empty(self, p: Pending, *, flushing: bool, was_empty: bool) -> float | None:
        """A note read empty: when to look again (a truncate caught before the write), or None to accept it."""
        if p.waited_empty or flushing or p.silent or was_empty:
            return None
        p.waited_empty = True
        return self.clock() + self.times.empty_grace


class Backoff:
    """The delay before offering a batch again whose callback failed: doubling, capped."""

    def __init__(self, clock: Callable[[], float], first: float = FIRST_RETRY_BACKOFF,
                 cap: float = MAX_RETRY_BACKOFF):
        self.clock = clock
        self.first = first
        self.cap = cap
        self.delay = 0.0

    def failed(self) -> float:
        """One more failure: the time to retry at."""
        self.delay = min(max(self.first, self.delay * 2), self.cap)
        return self.clock() + self.delay

    def succeeded(self) -> None:
        self.delay = 0.0


def add_folder(requests: dict[str, bool], folder: str, recursive: bool, limit: int = MAX_SCAN_REQUESTS) -> bool:
    """Add *folder* to a set of rescan requests, keeping only outermost recursive ones.

    Returns False when the set grew beyond *limit* (the caller falls back to a full scan).
    """
    parts = folder.split("/") if folder else []
    for i in range(len(parts)):
        if requests.get("/".join(parts[:i])):
            return True
    if requests.get(folder):
        return True
    if recursive:
        for other in [o for o in requests if o != folder and below(o, folder)]:
            del requests[other]
    requests[folder] = requests.get(folder, False) or recursive
    return len(requests) <= limit


class Rescans:
    """Folders to compare with what is known, and folder renames to turn into move hints.

    A folder event tells only that something below changed; its rescan waits
    *settle* after the last such event, so a tree being copied is listed once.
    """

    def __init__(self, clock: Callable[[], float], settle: float, limit: int = MAX_SCAN_REQUESTS,
                 max_moves: int = MAX_DIR_MOVES):
        self.clock = clock
        self.settle = settle
        self.limit = limit
        self.max_moves = max_moves
        self.folders: dict[str, bool] = {}  # folder -> recursive
        self.moves: list[tuple[str, str]] = []
        self.due = 0.0

    @property
    def pending(self) -> bool:
        return bool(self.folders or self.moves)

    @property
    def full_pending(self) -> bool:
        """Whether a scan of the whole vault is still to come."""
        return bool(self.folders.get(""))

    def request(self, folder: str, recursive: bool) -> None:
        if not add_folder(self.folders, folder, recursive, self.limit):
            self.request_all()

    def request_all(self) -> None:
        self.folders.clear()
        self.folders[""] = True

    def moved(self, src: str, dest: str) -> None:
        """A folder was renamed: its known notes get move hints; too many renames become a full scan."""
        if len(self.moves) < self.max_moves:
            self.moves.append((src, dest))
        else:
            self.request_all()

    def postpone(self) -> None:
        """Wait until folder events have been quiet for *settle*."""
        self.due = self.clock() + self.settle

    def is_due(self) -> bool:
        return self.pending and self.clock() >= self.due

    def take(self) -> tuple[dict[str, bool], list[tuple[str, str]]]:
        """Remove and return the folder requests and the folder renames."""
        folders, self.folders = self.folders, {}
        moves, self.moves = self.moves, []
        return folders, moves


class Burst:
    """Events since the last quiet moment and the folders they touched.

    After *threshold* events the touched folders are rescanned once things are
    quiet: events may have been lost without the kernel telling (or arrived
    before a watch on a new folder existed).
    """

    def __init__(self, threshold: int, limit: int = MAX_SCAN_REQUESTS):
        self.threshold = threshold
        self.limit = limit
        self.events = 0
        self.folders: dict[str, bool] = {}
        self.full = False

    def note(self, rel: str, recursive: bool = False) -> None:
        """Count an event on the file *rel*, or on the folder *rel* when *recursive*."""
        self.events += 1
        if self.full:
            return
        folder = rel if recursive else rel.rpartition("/")[0]
        if not add_folder(self.folders, folder, recursive, self.limit):
            self.full = True
            self.folders.clear()

    @property
    def over(self) -> bool:
        return self.events >= self.threshold

    def take(self) -> dict[str, bool] | None:
        """The folders to re-verify (None: the whole vault), and start counting anew."""
        folders = None if self.full else self.folders
        self.events = 0
        self.folders = {}
        self.full = False
        return folders
