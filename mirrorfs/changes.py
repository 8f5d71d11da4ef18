"""What a batch of settled reads means: the watcher's changes.

Given the reads of the paths that came due, what is known of each, and the
rename hints, decide per path: report it (added, modified, deleted, moved),
confirm it silently (same bytes, a touch), or give it more time (a read that
never held still, a delete that may be the first half of delete + create, an
empty read that may be a truncate before the write).

Pure: no watchdog, no threads, no file I/O. The scheduler's clock, and the two
looks at the disk a move needs, are injected. The caller holds its lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from mirrorfs.errors import WatchError
from mirrorfs.moves import EMPTY_SHA256, MoveHints, pair_hinted, twin
from mirrorfs.noteread import ERROR, MISSING, PRESENT, UNSTABLE, Read
from mirrorfs.settle import Pending, Scheduler
from mirrorfs.signatures import Fingerprint, Fingerprints, Signature

ADDED = "added"
MODIFIED = "modified"
DELETED = "deleted"
MOVED = "moved"


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


@dataclass
class Verdict:
    """What one batch came to: changes to deliver (by path) and read errors to report."""

    changes: list[Change] = field(default_factory=list)
    errors: list[WatchError] = field(default_factory=list)
    requeue: list[tuple[str, Pending, float]] = field(default_factory=list)
    consumed: set[str] = field(default_factory=set)  # sources paired into moves
    moved_dests: set[str] = field(default_factory=set)
    # The stat signature each path was read with, to remember with its hash.
    sigs: dict[str, Signature | None] = field(default_factory=dict)


class Judge:
    """Turns reads into a Verdict, updating the scheduler, the known fingerprints and the hints.

    *read_source(path)* looks at the source of a rename hint that is not in
    the batch; *gone(path)* says whether a known path is no longer on disk.
    """

    def __init__(self, sched: Scheduler, known: Fingerprints, hints: MoveHints,
                 read_source: Callable[[str], Read], gone: Callable[[str], bool]):
        self.sched = sched
        self.known = known
        self.hints = hints
        self.read_source = read_source
        self.gone = gone

    def judge(self, batch: list[tuple[str, Pending]], reads: dict[str, Read], *, flushing: bool = False) -> Verdict:
        """Judge the reads of *batch* (all of its paths); paths given more time are requeued.

        *flushing* (at stop) judges every path on this look: no graces, no retries.
        """
        looked: dict[str, Read | None] = dict(reads)
        entries = dict(batch)
        v = Verdict()
        # New paths still waiting to be read may be where a deleted note went
        # (a polling snapshot taken mid-rename sees it one poll later).
        destinations_pending = self.sched.waiting_for_new(self.known)
        self._settle_reads(batch, looked, v, flushing)
        # Moves first, so that a source is consumed before it can look deleted.
        self._pair_hinted(batch, looked, entries, v)
        for rel, p in batch:
            r = looked[rel]
            if r is None or rel in v.consumed or rel in v.moved_dests:
                continue
            if r.state == MISSING:
                self._judge_missing(rel, p, v, flushing, destinations_pending)
            else:
                self._judge_present(rel, p, r, v, flushing)
        if v.consumed:  # a source paired late must not also be reported or retried
            v.changes = [c for c in v.changes if not (c.kind == DELETED and c.path in v.consumed)]
            v.requeue = [item for item in v.requeue if item[0] not in v.consumed]
        for rel, p, not_before in v.requeue:
            self.sched.requeue(rel, p, not_before)
        v.changes.sort(key=lambda c: c.path)
        v.sigs = {rel: r.sig for rel, r in looked.items() if r is not None}
        return v

    def _settle_reads(self, batch: list[tuple[str, Pending]], looked: dict[str, Read | None], v: Verdict,
                      flushing: bool) -> None:
        """Put back reads that never held still, report failed ones; both leave *looked* as None."""
        for rel, p in batch:
            r = looked[rel]
            if r.state == UNSTABLE:
                retry_at = self.sched.retry_unstable(p, flushing=flushing)
                if retry_at is not None:
                    v.requeue.append((rel, p, retry_at))
                    looked[rel] = None  # judged on a later round
                elif r.content is None:  # came and went at every look: last seen gone
                    looked[rel] = Read(MISSING)
                else:  # still changing after many looks: report what we saw last
                    looked[rel] = r.accepted()
            elif r.state == ERROR:
                v.errors.append(WatchError(f"{rel}: cannot read: {r.error.strerror or r.error}",
                                           path=rel, cause=r.error))
                looked[rel] = None
                self.hints.drop(rel)

    def _pair_hinted(self, batch: list[tuple[str, Pending]], looked: dict[str, Read | None],
                     entries: dict[str, Pending], v: Verdict) -> None:
        def source_gone(src: str) -> bool:
            r = looked[src] if src in entries else self.read_source(src)
            return r is not None and r.state == MISSING

        arrivals = [(rel, looked[rel].state == PRESENT) for rel, _ in batch if looked[rel] is not None]
        moves, released = pair_hinted(arrivals, self.hints, self.known, source_gone)
        for dest, src in moves:
            r = looked[dest]
            v.consumed.add(src)
            self.sched.drop(src)
            v.moved_dests.add(dest)
            v.changes.append(Change(MOVED, dest, src, r.sha256, r.content))
        for src in released:
            if src not in entries:
                self.sched.mark(src)  # judge the source on its own

    def _judge_missing(self, rel: str, p: Pending, v: Verdict, flushing: bool, destinations_pending: bool) -> None:
        if rel not in self.known:
            return
        if self.hints.destination(rel) is not None and not flushing:
            return  # the destination's read will consume or release it
        retry_at = self.sched.hold_delete(p, flushing=flushing, destinations_pending=destinations_pending)
        if retry_at is not None:
            v.requeue.append((rel, p, retry_at))
        elif p.silent:
            self.known.forget(rel)
        else:
            v.changes.append(Change(DELETED, rel))

    def _judge_present(self, rel: str, p: Pending, r: Read, v: Verdict, flushing: bool) -> None:
        k = self.known.get(rel)
        if r.sha256 == EMPTY_SHA256:
            was_empty = k is not None and k.sha256 == EMPTY_SHA256
            retry_at = self.sched.hold_empty(p, flushing=flushing, was_empty=was_empty)
            if retry_at is not None:
                v.requeue.append((rel, p, retry_at))
                return
        if (k is not None and k.sha256 == r.sha256) or p.silent:
            self.known.set(rel, Fingerprint(r.sha256, r.sig))
            return
        if k is None:
            # A move whose two halves inotify could not pair (e.g. into a folder
            # created a moment before, not yet watched).
            src = twin(r.sha256, self.known.with_hash(r.sha256), v.consumed, self.gone)
            if src is not None:
                v.consumed.add(src)
                self.sched.drop(src)
                v.changes.append(Change(MOVED, rel, src, r.sha256, r.content))
                return
        v.changes.append(Change(ADDED if k is None else MODIFIED, rel, None, r.sha256, r.content))
