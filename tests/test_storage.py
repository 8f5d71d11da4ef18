"""The one write path: compare-and-swap, atomic replace, no churn, safe appends."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from mirrorfs import note, storage
from mirrorfs.errors import ConflictError
from mirrorfs.vault import Vault


def test_write_is_compare_and_swap(tmp_path):
    store = storage.Store(tmp_path / "locks")
    path = tmp_path / "n.md"
    path.write_bytes(b"v1")
    snap = storage.read(path)
    path.write_bytes(b"a person's edit")  # made between our read and our write
    with pytest.raises(ConflictError) as err:
        store.write(path, b"v2", snap.sha)
    assert str(path) in str(err.value)
    assert path.read_bytes() == b"a person's edit"


def test_unchanged_bytes_write_nothing(tmp_path):
    store = storage.Store(tmp_path / "locks")
    path = tmp_path / "n.md"
    path.write_bytes(b"same")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert store.write(path, b"same", storage.read(path).sha) is False
    assert os.stat(path).st_mtime_ns == 1_000_000_000


def test_atomic_write_keeps_mode_and_leaves_no_temp(tmp_path):
    store = storage.Store(tmp_path / "locks")
    path = tmp_path / "n.md"
    path.write_bytes(b"v1")
    os.chmod(path, 0o640)
    store.write(path, b"v2", storage.read(path).sha)
    assert path.read_bytes() == b"v2"
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locks", "n.md"]


def test_create_never_overwrites(tmp_path):
    store = storage.Store(tmp_path / "locks")
    path = tmp_path / "n.md"
    store.create(path, b"first")
    with pytest.raises(ConflictError):
        store.create(path, b"second")
    assert path.read_bytes() == b"first"


def test_locks_live_in_the_state_dir_not_the_vault(vault, state_dir):
    vault.remember("something")
    assert not [p for p in vault.root.rglob("*.lock")]
    assert list(state_dir.rglob("*.lock"))


def _append_worker(root: str, state: str, session_id: str, worker: int, count: int) -> None:
    os.environ["MIRRORFS_STATE_DIR"] = state
    v = Vault.open(root, instance="laptop")
    s = v.sessions.load(session_id)
    for i in range(count):
        s.add_message("user", f"worker {worker} message {i}")


def test_eight_processes_append_400_messages(vault, state_dir):
    s = vault.sessions.create("Busy session")
    other = vault.remember("Unrelated memory")
    other_bytes = (vault.root / other.path).read_bytes()
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_append_worker, args=(str(vault.root), str(state_dir), s.id, w, 50))
        for w in range(8)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    parsed = note.read_note(s.path)
    assert parsed.error is None
    contents = [m.content for m in s.get_messages()]
    expected = {f"worker {w} message {i}" for w in range(8) for i in range(50)}
    assert len(contents) == 400 and set(contents) == expected
    assert len({m.id for m in s.get_messages()}) == 400
    # Each worker's messages are in its own order.
    for w in range(8):
        mine = [c for c in contents if c.startswith(f"worker {w} ")]
        assert mine == [f"worker {w} message {i}" for i in range(50)]
    assert (vault.root / other.path).read_bytes() == other_bytes


def test_a_persons_edit_between_read_and_write_is_never_clobbered(vault):
    m = vault.remember("Prefers tea")
    path = vault.root / m.path
    _, snap = vault.read(m.path)
    edited = path.read_bytes().replace(b"Prefers tea", b"Prefers coffee now")
    path.write_bytes(edited)
    changed = note.parse(snap.data).set("tier", "working")
    with pytest.raises(ConflictError):
        vault.write(changed, snap)
    assert path.read_bytes() == edited


def test_append_reapplies_after_an_outside_edit(vault):
    s = vault.sessions.create("Chat")
    s.add_message("user", "one")
    # A person adds a line to the preamble in an editor; the next append keeps it.
    text = s.path.read_text(encoding="utf-8").replace("---\n\n###", "---\nA note from Sam.\n\n###", 1)
    s.path.write_text(text, encoding="utf-8")
    s.add_message("assistant", "two")
    assert "A note from Sam." in s.path.read_text(encoding="utf-8")
    assert [m.content for m in s.get_messages()] == ["one", "two"]


def test_no_temp_files_left_in_vault_after_many_writes(vault):
    s = vault.sessions.create("Chat")
    for i in range(20):
        s.add_message("user", str(i))
    leftovers = [p for p in Path(vault.root).rglob(".mirrorfs-*.tmp")]
    assert leftovers == []
