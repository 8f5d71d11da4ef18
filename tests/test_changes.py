"""What a batch of reads means, judged on its own: given reads, a fake clock, no files or threads."""

from __future__ import annotations

import hashlib

import pytest

from mirrorfs.changes import ADDED, DELETED, MODIFIED, MOVED, Change, Judge
from mirrorfs.moves import MoveHints
from mirrorfs.noteread import ERROR, MISSING, PRESENT, UNSTABLE, Read
from mirrorfs.settle import Scheduler, SettleTimes
from mirrorfs.signatures import Fingerprint, Fingerprints

TIMES = SettleTimes(settle=0.25, delete_grace=0.5, empty_grace=0.5, max_latency=4.0, max_attempts=3)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def present(content: bytes, sig: tuple = (1, 2, 3, 4)) -> Read:
    return Read(PRESENT, content, sha(content), sig, True)


class World:
    """A judge over fake disk state: *on_disk* is what `gone` and `read_source` see."""

    def __init__(self, clock, notes: dict[str, bytes]):
        self.clock = clock
        self.on_disk: dict[str, bytes] = dict(notes)
        self.sched = Scheduler(TIMES, clock)
        self.known = Fingerprints()
        for rel, content in notes.items():
            self.known.set(rel, Fingerprint(sha(content), None))
        self.hints = MoveHints()
        self.judge = Judge(self.sched, self.known, self.hints, self.read_source, lambda rel: rel not in self.on_disk)

    def read_source(self, rel: str) -> Read:
        return present(self.on_disk[rel]) if rel in self.on_disk else Read(MISSING)

    def round(self, reads: dict[str, Read], *, flushing: bool = False) -> list[tuple]:
        """Mark the paths, let them settle, judge the batch; the changes as tuples."""
        for rel in reads:
            self.sched.mark(rel)
        self.clock.advance(1.0)
        batch = self.sched.take_due()
        assert sorted(rel for rel, _ in batch) == sorted(reads)
        verdict = self.judge.judge(batch, reads, flushing=flushing)
        return [(c.kind, c.path, c.old_path) for c in verdict.changes]

    def again(self) -> list[tuple]:
        """Judge the paths that were given more time, once they are due, on what is on disk now."""
        self.clock.advance(5.0)
        batch = self.sched.take_due()
        reads = {rel: present(self.on_disk[rel]) if rel in self.on_disk else Read(MISSING) for rel, _ in batch}
        verdict = self.judge.judge(batch, reads)
        return [(c.kind, c.path, c.old_path) for c in verdict.changes]


@pytest.fixture
def world(clock):
    return lambda notes=None: World(clock, notes or {})


def test_a_new_note_is_added_and_an_edit_is_modified(world):
    w = world({"a.md": b"old\n"})
    w.on_disk.update({"a.md": b"new\n", "b.md": b"b\n"})
    assert w.round({"a.md": present(b"new\n"), "b.md": present(b"b\n")}) == [
        (MODIFIED, "a.md", None), (ADDED, "b.md", None)]


def test_the_same_bytes_are_no_change_but_are_remembered_with_their_signature(world):
    w = world({"a.md": b"same\n"})
    assert w.round({"a.md": present(b"same\n", sig=(6, 7, 8, 9))}) == []
    assert w.known.get("a.md") == Fingerprint(sha(b"same\n"), (6, 7, 8, 9))


def test_a_delete_is_held_for_its_grace_then_reported(world):
    w = world({"a.md": b"a\n"})
    del w.on_disk["a.md"]
    assert w.round({"a.md": Read(MISSING)}) == []
    assert w.sched.pending["a.md"].waited_delete
    assert w.again() == [(DELETED, "a.md", None)]


def test_delete_then_create_of_the_same_path_is_one_modification(world):
    w = world({"a.md": b"v1\n"})
    del w.on_disk["a.md"]
    assert w.round({"a.md": Read(MISSING)}) == []  # Syncthing deleted it...
    w.on_disk["a.md"] = b"v2\n"  # ...and renamed its temp file onto it
    assert w.again() == [(MODIFIED, "a.md", None)]


def test_a_delete_and_a_create_with_the_same_hash_are_one_move(world):
    w = world({"a.md": b"alpha\n"})
    w.on_disk = {"new/a.md": b"alpha\n"}
    assert w.round({"a.md": Read(MISSING), "new/a.md": present(b"alpha\n")}) == [(MOVED, "new/a.md", "a.md")]
    assert len(w.sched) == 0  # the source is consumed, not retried as a delete


def test_no_move_across_different_content(world):
    w = world({"a.md": b"alpha\n"})
    w.on_disk = {"b.md": b"beta\n"}
    assert w.round({"a.md": Read(MISSING), "b.md": present(b"beta\n")}) == [(ADDED, "b.md", None)]
    assert w.again() == [(DELETED, "a.md", None)]


def test_a_rename_hint_is_a_move_even_when_the_content_changed(world):
    w = world({"a.md": b"alpha\n"})
    w.on_disk = {"b.md": b"alpha, edited\n"}
    w.hints.add("b.md", "a.md")
    assert w.round({"b.md": present(b"alpha, edited\n")}) == [(MOVED, "b.md", "a.md")]


def test_a_hint_whose_source_is_still_there_leaves_the_source_to_be_judged(world):
    w = world({"a.md": b"alpha\n"})
    w.on_disk["b.md"] = b"alpha\n"
    w.hints.add("b.md", "a.md")
    assert w.round({"b.md": present(b"alpha\n")}) == [(ADDED, "b.md", None)]
    assert list(w.sched.pending) == ["a.md"]


def test_a_read_that_never_holds_still_is_retried_then_taken_as_last_seen(world):
    w = world()
    w.on_disk["a.md"] = b"growing"
    shaky = Read(UNSTABLE, b"growing", sha(b"growing"), (1, 1, 1, 1), False)
    assert w.round({"a.md": shaky}) == []
    for _ in range(TIMES.max_attempts - 2):
        w.clock.advance(1.0)
        assert w.judge.judge(w.sched.take_due(), {"a.md": shaky}).changes == []
    w.clock.advance(1.0)
    verdict = w.judge.judge(w.sched.take_due(), {"a.md": shaky})
    assert verdict.changes == [Change(ADDED, "a.md", None, sha(b"growing"), b"growing")]


def test_an_empty_read_gets_a_grace_before_it_counts(world):
    w = world({"a.md": b"text\n"})
    w.on_disk["a.md"] = b""
    assert w.round({"a.md": present(b"")}) == []
    assert w.again() == [(MODIFIED, "a.md", None)]


def test_a_read_error_is_reported_and_the_note_kept(world):
    w = world({"a.md": b"a\n"})
    batch_reads = {"a.md": Read(ERROR, error=PermissionError(13, "Permission denied"))}
    w.sched.mark("a.md")
    w.clock.advance(1.0)
    verdict = w.judge.judge(w.sched.take_due(), batch_reads)
    assert verdict.changes == []
    assert [(str(e), e.path) for e in verdict.errors] == [("a.md: cannot read: Permission denied", "a.md")]
    assert "a.md" in w.known


def test_a_flush_judges_everything_on_this_look(world):
    w = world({"a.md": b"a\n", "b.md": b"b\n"})
    w.on_disk = {"b.md": b""}
    assert w.round({"a.md": Read(MISSING), "b.md": present(b"")}, flushing=True) == [
        (DELETED, "a.md", None), (MODIFIED, "b.md", None)]
    assert len(w.sched) == 0
