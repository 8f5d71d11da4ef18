"""The watcher's settle scheduler on its own: a fake clock, no files, no threads, no sleeps.

Times are binary fractions so that sums of them are exact.
"""

from __future__ import annotations

import pytest

from mirrorfs.settle import (
    MAX_RETRY_BACKOFF,
    Backoff,
    Burst,
    Pending,
    Rescans,
    Scheduler,
    SettleTimes,
    add_folder,
)

TIMES = SettleTimes(settle=0.25, write_hold=1.0, delete_grace=0.5, empty_grace=0.5, max_latency=4.0,
                    batch_window=0.5, max_batch=1000, max_attempts=3)


@pytest.fixture
def sched(clock) -> Scheduler:
    return Scheduler(TIMES, clock)


def taken(sched: Scheduler) -> list[str]:
    return [rel for rel, _ in sched.take_due()]


# ------------------------------------------------------------ when a path is due

def test_a_path_becomes_due_after_the_settle_time(sched, clock):
    sched.mark("a.md")
    assert sched.plan() == (False, 1000.25)
    clock.advance(0.125)
    assert taken(sched) == []
    clock.advance(0.125)
    assert taken(sched) == ["a.md"]
    assert len(sched) == 0
    assert taken(sched) == []


def test_a_new_event_postpones_it(sched, clock):
    sched.mark("a.md")
    clock.advance(0.125)
    sched.mark("a.md")
    clock.advance(0.125)
    assert taken(sched) == []
    assert sched.plan() == (False, 1000.375)
    clock.advance(0.125)
    assert taken(sched) == ["a.md"]


def test_a_path_that_never_goes_quiet_is_read_after_max_latency(sched, clock):
    sched.mark("log.md")
    for _ in range(31):  # an event every 1/8 s for 3 7/8 s
        clock.advance(0.125)
        sched.mark("log.md")
        assert taken(sched) == []
    clock.advance(0.125)
    assert clock() == 1004.0
    assert taken(sched) == ["log.md"]


def test_a_file_held_open_for_writing_waits_for_its_close_up_to_write_hold(sched, clock):
    sched.mark("a.md")
    sched.opened("a.md")
    clock.advance(0.5)
    assert taken(sched) == []
    assert sched.plan() == (False, 1001.0)
    sched.closed("a.md")
    assert taken(sched) == ["a.md"]

    sched.mark("b.md")
    sched.opened("b.md")  # the writer never closes it
    clock.advance(1.0)
    assert taken(sched) == ["b.md"]


def test_a_scan_finding_a_pending_path_does_not_postpone_it(sched, clock):
    sched.mark("a.md")
    clock.advance(0.125)
    sched.mark("a.md", found=True)
    clock.advance(0.125)
    assert taken(sched) == ["a.md"]


def test_the_start_up_scan_makes_paths_due_at_once(sched, clock):
    sched.mark("a.md", immediate=True, found=True, silent=True)
    [(rel, p)] = sched.take_due()
    assert rel == "a.md" and p.silent


# ------------------------------------------------------------ bursts

def test_a_burst_is_coalesced_into_one_batch(sched, clock):
    sched.mark("a.md")
    clock.advance(0.125)
    sched.mark("b.md")
    clock.advance(0.125)
    # a.md is due, but b.md is still settling: a.md waits for it (up to batch_window).
    assert sched.plan() == (False, 1000.375)
    assert taken(sched) == []
    clock.advance(0.125)
    assert taken(sched) == ["a.md", "b.md"]


def test_a_due_path_waits_at_most_batch_window_for_others(sched, clock):
    sched.mark("a.md")
    clock.advance(0.25)  # a.md due at 1000.25
    for _ in range(4):  # another path keeps being written
        sched.mark("busy.md")
        assert taken(sched) == []
        clock.advance(0.125)
    assert clock() == 1000.75  # a.md has waited batch_window
    assert taken(sched) == ["a.md"]
    assert list(sched.pending) == ["busy.md"]


def test_a_full_batch_goes_out_at_once_and_the_rest_follows(clock):
    sched = Scheduler(SettleTimes(settle=0.25, max_batch=3), clock)
    for i in range(5):
        sched.mark(f"n{i}.md")
    clock.advance(0.25)
    assert taken(sched) == ["n0.md", "n1.md", "n2.md"]
    assert taken(sched) == ["n3.md", "n4.md"]


def test_take_all_ignores_settling_but_not_the_batch_size(clock):
    sched = Scheduler(SettleTimes(max_batch=2), clock)
    for i in range(3):
        sched.mark(f"n{i}.md")
    assert [rel for rel, _ in sched.take_all()] == ["n0.md", "n1.md"]
    assert [rel for rel, _ in sched.take_all()] == ["n2.md"]
    assert sched.take_all() == []


# ------------------------------------------------------------ requeues and graces

def test_a_requeued_path_waits_until_not_before(sched, clock):
    p = Pending(clock())
    sched.requeue("a.md", p, 1002.0)
    clock.advance(1.5)
    assert taken(sched) == []
    clock.advance(0.5)
    assert taken(sched) == ["a.md"]


def test_a_requeue_keeps_the_timing_of_an_event_that_came_meanwhile(sched, clock):
    old = Pending(clock())
    old.attempts = 2
    old.waited_delete = True
    clock.advance(1.0)
    sched.mark("a.md")  # a new event while a.md was being read
    sched.requeue("a.md", old, 1001.125)
    current = sched.pending["a.md"]
    assert current is not old
    assert (current.first, current.attempts, current.waited_delete, current.not_before) == (1001.0, 2, True, 1001.125)
    clock.advance(0.25)  # quiet since the new event, and past not_before
    assert taken(sched) == ["a.md"]


def test_a_requeue_without_pending_state_starts_afresh(sched, clock):
    sched.requeue("a.md", None, 1000.5)
    p = sched.pending["a.md"]
    assert (p.first, p.attempts, p.not_before) == (1000.0, 0, 1000.5)


def test_an_unstable_read_is_retried_until_max_attempts(sched, clock):
    p = Pending(clock())
    assert sched.retry_unstable(p, flushing=False) == 1000.25
    clock.advance(0.25)
    assert sched.retry_unstable(p, flushing=False) == 1000.5
    assert sched.retry_unstable(p, flushing=False) is None  # the third look is taken as is
    assert sched.retry_unstable(Pending(clock()), flushing=True) is None


def test_a_delete_gets_one_grace_then_waits_only_for_pending_destinations(sched, clock):
    p = Pending(clock())
    assert sched.hold_delete(p, flushing=False, destinations_pending=False) == 1000.5
    assert p.waited_delete
    assert sched.hold_delete(p, flushing=False, destinations_pending=False) is None
    assert sched.hold_delete(p, flushing=False, destinations_pending=True) == 1000.25
    clock.advance(4.0)  # max_latency since the delete was first seen
    assert sched.hold_delete(p, flushing=False, destinations_pending=True) is None


def test_no_delete_grace_when_flushing_or_learning_silently(sched, clock):
    assert sched.hold_delete(Pending(clock()), flushing=True, destinations_pending=True) is None
    assert sched.hold_delete(Pending(clock(), silent=True), flushing=False, destinations_pending=False) is None


def test_an_empty_read_gets_one_grace_unless_the_note_was_empty(sched, clock):
    p = Pending(clock())
    assert sched.hold_empty(p, flushing=False, was_empty=False) == 1000.5
    assert sched.hold_empty(p, flushing=False, was_empty=False) is None
    assert sched.hold_empty(Pending(clock()), flushing=False, was_empty=True) is None
    assert sched.hold_empty(Pending(clock()), flushing=True, was_empty=False) is None


def test_waiting_for_new_paths(sched):
    sched.mark("known.md")
    assert not sched.waiting_for_new({"known.md"})
    sched.mark("new.md")
    assert sched.waiting_for_new({"known.md"})


def test_oldest_age(sched, clock):
    assert sched.oldest_age() == 0.0
    sched.mark("a.md")
    clock.advance(0.5)
    sched.mark("b.md")
    clock.advance(0.25)
    assert sched.oldest_age() == 0.75


def test_polling_lengthens_every_quiet_wait_by_one_interval():
    polled = TIMES.polled(1.0)
    assert (polled.settle, polled.delete_grace, polled.empty_grace) == (1.25, 1.5, 1.5)
    assert (polled.write_hold, polled.max_latency, polled.batch_window) == (1.0, 4.0, 0.5)


# ------------------------------------------------------------ a failing callback

def test_a_failing_callback_backs_off_up_to_the_cap(clock):
    backoff = Backoff(clock)
    delays = []
    for _ in range(9):
        delays.append(backoff.failed() - clock())
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, MAX_RETRY_BACKOFF, MAX_RETRY_BACKOFF, MAX_RETRY_BACKOFF]
    backoff.succeeded()
    assert backoff.failed() == clock() + 0.5


# ------------------------------------------------------------ pending scans

def test_rescans_keep_only_the_outermost_recursive_folder(clock):
    rescans = Rescans(clock, settle=0.25)
    rescans.request("a/b", recursive=True)
    rescans.request("a/c", recursive=False)
    rescans.request("a", recursive=True)
    assert rescans.folders == {"a": True}
    rescans.request("a/b/deep", recursive=True)  # already covered
    rescans.request("x", recursive=False)
    rescans.request("x", recursive=True)
    assert rescans.folders == {"a": True, "x": True}


def test_too_many_pending_scans_become_one_full_scan(clock):
    rescans = Rescans(clock, settle=0.25, limit=4)
    for i in range(4):
        rescans.request(f"f{i}", recursive=False)
    assert len(rescans.folders) == 4 and not rescans.full_pending
    rescans.request("f4", recursive=False)
    assert rescans.folders == {"": True} and rescans.full_pending
    rescans.request("more", recursive=True)
    assert rescans.folders == {"": True}


def test_too_many_folder_renames_become_one_full_scan(clock):
    rescans = Rescans(clock, settle=0.25, max_moves=2)
    rescans.moved("a", "b")
    rescans.moved("c", "d")
    assert rescans.moves == [("a", "b"), ("c", "d")] and not rescans.full_pending
    rescans.moved("e", "f")
    assert rescans.full_pending
    assert rescans.take() == ({"": True}, [("a", "b"), ("c", "d")])
    assert not rescans.pending


def test_a_rescan_waits_until_folder_events_are_quiet(clock):
    rescans = Rescans(clock, settle=0.25)
    assert not rescans.is_due()  # nothing requested
    rescans.request("imported", recursive=True)
    rescans.postpone()
    clock.advance(0.125)
    rescans.request("imported/sub", recursive=True)
    rescans.postpone()
    clock.advance(0.125)
    assert not rescans.is_due()
    clock.advance(0.125)
    assert rescans.is_due()
    assert rescans.take() == ({"imported": True}, [])


def test_add_folder_reports_when_the_limit_is_passed():
    requests: dict[str, bool] = {}
    assert add_folder(requests, "a", False, limit=1)
    assert add_folder(requests, "a", True, limit=1)  # the same folder, now recursive
    assert requests == {"a": True}
    assert not add_folder(requests, "b", False, limit=1)


def test_a_burst_remembers_the_folders_it_touched(clock):
    burst = Burst(threshold=3)
    burst.note("inbox/a.md")
    burst.note("inbox/b.md")
    assert not burst.over
    burst.note("projects", recursive=True)
    assert burst.over
    assert burst.take() == {"inbox": False, "projects": True}
    assert burst.events == 0 and not burst.over


def test_a_burst_over_too_many_folders_rescans_everything():
    burst = Burst(threshold=1, limit=2)
    for i in range(3):
        burst.note(f"d{i}/n.md")
    assert burst.take() is None
    burst.note("d0/n.md")
    assert burst.take() == {"d0": False}
