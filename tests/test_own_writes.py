"""The watcher's own writes are its own: a merge or a seal it makes is reflected as its instance's action.

A real `WatchDaemon` on a real folder: the rewrite it makes comes back through
the observer like any other change, and must not be reported again as the
note's signer's or a person's ("human changed memory ...").
"""

from __future__ import annotations

import queue
import time

import pytest

from mirrorfs import storage
from mirrorfs.daemon import WatchDaemon
from mirrorfs.reflections import Reflector, record, seal_reflection, vault_reflections
from mirrorfs.vault import Vault

TIMEOUT = 20
PASSPHRASE = "correct horse battery staple"
ST = ".sync-conflict-20261121-100412-ABCDEF7"

# Signed by laptop long ago: a later rewrite that keeps this signature reads as a person's edit.
MEMORY = """---
id: 3f9a1c2b7d4e
type: memory
title: Tea
kind: preference
created: 2026-11-21T10:04:12+00:00
updated: 2026-11-21T10:04:12+00:00
instance: laptop
updated_by: laptop
---

Prefers tea over coffee before noon.
Green tea in spring.
"""


def _next(q: queue.Queue, deadline: float, failure) -> object:
    """The next item of *q*, or a test failure saying *failure()* once *deadline* passed."""
    try:
        return q.get(timeout=max(0.01, deadline - time.monotonic()))
    except queue.Empty:
        pytest.fail(failure())


class Watch:
    """A running WatchDaemon whose printed lines and processed batches tests wait on."""

    def __init__(self, vault: Vault):
        self.lines: queue.Queue = queue.Queue()
        self.batches: queue.Queue = queue.Queue()
        self.daemon = WatchDaemon(vault, echo=self.lines.put, warn=lambda w: self.lines.put(f"warning: {w}"))
        self.daemon.on_batch = self.batches.put
        self.seen: list[str] = []

    def __enter__(self) -> "Watch":
        self.daemon.start()
        assert self.daemon.wait_ready(TIMEOUT)
        return self

    def __exit__(self, *exc) -> None:
        self.daemon.stop()

    def line(self, predicate) -> str:
        """The next printed line satisfying *predicate* (every line is kept in `seen`)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            item = _next(self.lines, deadline, lambda: f"timed out; saw {self.seen}")
            self.seen.append(item)
            if predicate(item):
                return item

    def processed(self, rel: str, data: bytes) -> None:
        """Wait until a batch delivered *rel* holding exactly *data*."""
        sha = storage.sha256(data)
        deadline = time.monotonic() + TIMEOUT
        while not any(c.path == rel and c.sha256 == sha for c in
                      _next(self.batches, deadline, lambda: f"the watcher never delivered {rel} as {sha[:12]}")):
            pass

    def drain(self) -> list[str]:
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return self.seen


def test_a_merge_by_the_watcher_is_its_instance_action_never_human(vault):
    phone = Vault.open(vault.root, instance="phone")
    rel, copy = "memory/tea.md", f"memory/tea{ST}.md"
    with Watch(vault) as watch:
        (vault.root / rel).write_text(MEMORY, encoding="utf-8")
        watch.processed(rel, MEMORY.encode())
        for v in (vault, phone):
            vault_reflections(v, mark_read=True)
        # A person added a line on the other device; Syncthing kept this side's bytes.
        (vault.root / copy).write_text(MEMORY + "Oolong in autumn.\n", encoding="utf-8")
        merged_line = watch.line(lambda line: "conflict copy" in line)
        merged = (vault.root / rel).read_bytes()
        assert merged == (MEMORY + "Oolong in autumn.\n").encode()
        watch.processed(rel, merged)  # the merge's own rewrite came back through the watcher
    assert merged_line == f"laptop merged conflict copy of {rel}: +1 -0 lines ({rel})"
    assert [line for line in watch.drain() if not line.startswith("warning:")] == [merged_line]
    # Later looks on this device, by the watcher's instance and by another one:
    # the merge once, as laptop's, and the rewrite not again.
    for v in (vault, phone):
        assert [r.line() for r in vault_reflections(v)] == [merged_line]


def test_a_seal_by_the_watcher_is_its_instance_action_never_human(vault):
    path = vault.root / "memory" / "typed.md"
    path.write_text("---\ntitle: Typed\n---\nBefore\n", encoding="utf-8")
    phone = Vault.open(vault.root, instance="phone")
    for v in (vault, phone):
        vault_reflections(v, mark_read=True)
    vault.unlock(PASSPHRASE)
    with Watch(vault) as watch:
        path.write_text("---\ntitle: Typed\n---\nBefore\n\n```secret\nthe alarm code is 2468\n```\n", encoding="utf-8")
        sealed_line = watch.line(lambda line: "sealed" in line)
        sealed = path.read_bytes()
        assert b"2468" not in sealed and b"```secret" not in sealed
        watch.processed("memory/typed.md", sealed)
    person = 'human changed memory "Typed" (memory/typed.md)'
    assert sealed_line == 'laptop sealed a secret block in memory "Typed" (memory/typed.md)'
    # The person's save is theirs; the watcher's rewrite of it is laptop's, and only that.
    assert [line for line in watch.drain() if not line.startswith("warning:")] == [person, sealed_line]
    assert not any("2468" in line for line in watch.seen)
    # phone last looked before the person's edit: it sees the edit and the seal.
    assert sorted(r.line() for r in vault_reflections(phone)) == sorted([person, sealed_line])


def test_an_announced_write_is_folded_only_from_the_bytes_it_replaced(vault):
    """Reflector.expect names both ends: the same bytes reached from another version are still news."""
    rel = "memory/tea.md"
    (vault.root / rel).write_text(MEMORY, encoding="utf-8")
    feed = Reflector(vault)
    feed.start()
    before, after = MEMORY.encode(), (MEMORY + "Oolong in autumn.\n").encode()
    write = feed.expect(rel, before, after)
    (vault.root / rel).write_bytes(after)
    assert feed.change(rel, after) == []
    # Expected once: the same rewrite again (after a person put the old text back) is reported.
    (vault.root / rel).write_bytes(before)
    assert [r.line() for r in feed.change(rel, before)] == ['human changed memory "Tea" (memory/tea.md)']
    (vault.root / rel).write_bytes(after)
    assert [r.line() for r in feed.change(rel, after)] == ['human changed memory "Tea" (memory/tea.md)']
    # A logged write folds a look's change only when the cursor held the replaced bytes.
    phone = Vault.open(vault.root, instance="phone")
    (vault.root / rel).write_bytes(before)
    vault_reflections(phone, mark_read=True)
    (vault.root / rel).write_bytes(after)
    record(vault, seal_reflection(vault, rel, after, 1), [write])
    assert [r.line() for r in vault_reflections(phone)] == ['laptop sealed a secret block in memory "Tea" (memory/tea.md)']


def test_a_heading_inside_a_secret_block_never_titles_a_reflection(vault):
    """The line a person's save gets (and the cursor on disk) must not carry the block's plaintext."""
    from mirrorfs.fingerprints import fingerprint

    rel = "memory/pin.md"
    typed = b"```secret\n# PIN is 4711\n```\n\n# Bank\n"
    assert fingerprint(rel, typed)[0]["t"] == "Bank"
    assert fingerprint(rel, b"```secret\n# PIN is 4711\n```\n")[0]["t"] == "pin"
    feed = Reflector(vault)
    feed.start()
    (vault.root / rel).write_bytes(typed)
    assert [r.line() for r in feed.change(rel, typed)] == ['human added memory "Bank" (memory/pin.md)']
    vault_reflections(vault, mark_read=True)
    from mirrorfs.reflections import cursor_path

    assert b"4711" not in cursor_path(vault).read_bytes()
