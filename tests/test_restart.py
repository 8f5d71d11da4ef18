"""Restarting `mirrorfs watch`: what it knew is trusted only while each file's stat signature still holds.

Real daemons, real files, real observers; changes made while no watcher runs
are reported on the next start, whichever way the file was changed.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import time

import pytest

from mirrorfs import reflections as refl
from mirrorfs.daemon import WatchDaemon
from mirrorfs.errors import KnownFilesError
from mirrorfs.known_files import DB_NAME, KnownFiles
from mirrorfs.vault import Vault

TIMEOUT = 20


class Run:
    """One watcher run: its reflections and batches as they came."""

    def __init__(self, vault: Vault):
        self.reflections: queue.Queue = queue.Queue()
        self.batches: queue.Queue = queue.Queue()
        self.lines: queue.Queue = queue.Queue()
        self.daemon = WatchDaemon(vault, echo=self.lines.put, warn=lambda w: self.lines.put(f"warning: {w}"),
                                  on_reflection=self.reflections.put, serve=False)
        self.daemon.on_batch = self.batches.put
        self.daemon.start()
        assert self.daemon.wait_ready(TIMEOUT)

    def stop(self) -> None:
        self.daemon.stop()

    def lines_until(self, predicate, timeout: float = TIMEOUT) -> list[str]:
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = self.reflections.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"timed out; saw {seen}")
            seen.append(r.line())
            if predicate(r.line()):
                return seen

    def changed_paths(self) -> set[str]:
        """Every path delivered in a batch so far, but this instance's card (each start marks it watching)."""
        found = set()
        while True:
            try:
                found |= {c.path for c in self.batches.get_nowait()} - {"instances/laptop.md"}
            except queue.Empty:
                return found


def restarted(vault: Vault, change) -> Run:
    """Run a watcher once, stop it, apply *change* while none runs, start it again."""
    Run(vault).stop()
    change()
    return Run(vault)


@pytest.fixture
def tea(vault):
    phone = Vault.open(vault.root, instance="phone")
    note = phone.remember("Sam prefers oolong tea", title="Tea")
    return vault.root / note.path


def test_a_restart_with_nothing_changed_delivers_nothing_and_trusts_the_store(vault, tea):
    Run(vault).stop()
    stored = KnownFiles(vault.state_dir).watched()
    assert stored is not None and "memory/tea.md" in stored
    sha, sig = stored["memory/tea.md"]
    st = os.stat(tea)
    assert sig == (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    run = Run(vault)
    try:
        assert run.changed_paths() == set()
        assert run.reflections.empty()
    finally:
        run.stop()


def test_a_note_edited_while_down_is_reflected_on_the_next_start(vault, tea):
    phone = Vault.open(vault.root, instance="phone")
    run = restarted(vault, lambda: phone.memory.update("memory/tea.md", body="Sam prefers green tea now"))
    try:
        assert run.lines_until(lambda line: "Tea" in line) == ['phone changed memory "Tea" (memory/tea.md)']
        assert "memory/tea.md" in run.changed_paths()
    finally:
        run.stop()


def test_the_same_bytes_rewritten_while_down_are_no_change_but_the_new_stat_is_stored(vault, tea):
    data = tea.read_bytes()
    run = restarted(vault, lambda: tea.write_bytes(data))
    try:
        assert run.changed_paths() == set()
        assert run.reflections.empty()
    finally:
        run.stop()
    st = os.stat(tea)
    assert KnownFiles(vault.state_dir).watched()["memory/tea.md"][1] == (
        st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _same_size_edit(path) -> bytes:
    data = path.read_bytes()
    new = data.replace(b"oolong", b"sencha")
    assert len(new) == len(data) and new != data
    return new


def test_an_edit_with_size_and_mtime_restored_is_still_seen(vault, tea):
    def edit():
        st = os.stat(tea)
        tea.write_bytes(_same_size_edit(tea))
        os.utime(tea, ns=(st.st_atime_ns, st.st_mtime_ns))  # `touch -d` back: only the ctime tells
        assert os.stat(tea).st_mtime_ns == st.st_mtime_ns

    run = restarted(vault, edit)
    try:
        # The restored mtime is the signer's write time, so attribution names the signer: the point is it is seen.
        [line] = run.lines_until(lambda line: "Tea" in line)
        assert line.endswith(' changed memory "Tea" (memory/tea.md)')
    finally:
        run.stop()


def test_a_file_replaced_by_rename_is_seen(vault, tea):
    def rename_save():
        st = os.stat(tea)
        temp = tea.with_name(".tea.md.tmp")
        temp.write_bytes(_same_size_edit(tea))
        os.utime(temp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(temp, tea)  # an editor's save: a new inode under the old name

    run = restarted(vault, rename_save)
    try:
        [line] = run.lines_until(lambda line: "Tea" in line)
        assert line.endswith(' changed memory "Tea" (memory/tea.md)')
    finally:
        run.stop()


def test_a_note_removed_while_down_is_reflected_and_forgotten(vault, tea):
    run = restarted(vault, tea.unlink)
    try:
        assert run.lines_until(lambda line: "Tea" in line) == ['someone removed memory "Tea" (memory/tea.md)']
    finally:
        run.stop()
    assert "memory/tea.md" not in KnownFiles(vault.state_dir).watched()
    assert "memory/tea.md" not in KnownFiles(vault.state_dir).reflected()


def test_a_cursor_look_sees_an_edit_that_restored_size_and_mtime(vault, tea):
    refl.vault_reflections(vault, mark_read=True)
    assert refl.vault_reflections(vault) == []
    st = os.stat(tea)
    tea.write_bytes(_same_size_edit(tea))
    os.utime(tea, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert [r.line()[r.line().index(" ") + 1:] for r in refl.vault_reflections(vault)] == [
        'changed memory "Tea" (memory/tea.md)']


def test_a_damaged_store_is_one_line_and_the_watcher_still_starts(vault, tea):
    (vault.state_dir / DB_NAME).write_bytes(b"not a database" * 100)
    with pytest.raises(KnownFilesError, match="derived data"):
        KnownFiles(vault.state_dir).watched()
    run = Run(vault)
    try:
        warnings = []
        while not run.lines.empty():
            warnings.append(run.lines.get_nowait())
        assert any(w.startswith("warning: cannot use") and "\n" not in w for w in warnings)
    finally:
        run.stop()


def test_the_store_is_updated_row_by_row(vault, tmp_path):
    store = KnownFiles(tmp_path)
    store.update_watched({f"n{i}.md": ("a" * 64, (i, i, i, i)) for i in range(100)})
    store.update_watched({"n1.md": ("b" * 64, (1, 2, 3, 4)), "n2.md": None})
    rows = store.watched()
    assert rows["n1.md"] == ("b" * 64, (1, 2, 3, 4)) and "n2.md" not in rows and len(rows) == 99
    store.close()
    with sqlite3.connect(tmp_path / DB_NAME) as con:
        assert con.execute("SELECT COUNT(*) FROM watched").fetchone() == (99,)


def test_a_live_change_is_stored_with_its_batch(vault, tea):
    run = Run(vault)
    try:
        phone = Vault.open(vault.root, instance="phone")
        phone.memory.update("memory/tea.md", body="Sam prefers genmaicha")
        assert run.lines_until(lambda line: "Tea" in line) == ['phone changed memory "Tea" (memory/tea.md)']
        st = os.stat(tea)
        deadline = time.monotonic() + TIMEOUT
        store = KnownFiles(vault.state_dir)
        while True:  # stored right after the batch's callback returns, on the watcher's thread
            row = store.watched()["memory/tea.md"]
            if row[1] == (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert row == (refl.storage.sha256(tea.read_bytes()), (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
        assert store.fingerprint("memory/tea.md")["h"] == row[0]
        store.close()
    finally:
        run.stop()
