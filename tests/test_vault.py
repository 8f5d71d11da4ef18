"""The library API: init/adopt, discovery, memory, sessions, exports, errors."""

from __future__ import annotations

import json
import os

import pytest
from conftest import mtimes, snapshot_tree

from mirrorfs import Vault, note
from mirrorfs.errors import (
    InvalidValueError,
    NotFoundError,
    PathOutsideVaultError,
    UnparseableNoteError,
    VaultNotFoundError,
)
from mirrorfs.export import verify_mirrordna


def test_init_creates_layout_and_card(vault):
    root = vault.root
    for folder in ("memory", "sessions", "instances", "bridge", "patterns"):
        assert (root / folder).is_dir()
    assert note.read_note(root / "SOUL.md").meta["type"] == "soul"
    assert note.read_note(root / "SOUL.md").meta["name"] == "Mira"
    card = note.read_note(root / "instances" / "laptop.md").meta
    assert card["type"] == "instance" and card["instance"] == "laptop"


def test_init_adopts_an_obsidian_vault_without_changing_a_byte(corpora, state_dir):
    root = corpora / "obsidian-help" / "en"
    before, times = snapshot_tree(root), mtimes(root)
    Vault.init(root, name="Helper", instance="laptop")
    after = snapshot_tree(root)
    assert {k: v for k, v in after.items() if k in before} == before
    assert {k: v for k, v in mtimes(root).items() if k in times} == times
    new = sorted(set(after) - set(before))
    assert new == [".mirrorfs/config.yaml", "README-mirrorfs.md", "SOUL.md", "instances/laptop.md"]


def test_state_lives_outside_the_vault(vault, state_dir):
    assert vault.state_dir.is_relative_to(state_dir)
    assert vault.id in str(vault.state_dir)


def test_discovery_walks_up_and_env(vault, monkeypatch):
    sub = vault.root / "memory"
    monkeypatch.chdir(sub)
    assert Vault.open().root == vault.root
    monkeypatch.chdir(vault.root.parent)
    monkeypatch.setenv("MIRRORFS_VAULT", str(vault.root))
    assert Vault.open().root == vault.root


def test_missing_and_non_vault_folders_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(VaultNotFoundError, match="does not exist"):
        Vault.open(tmp_path / "nope")
    with pytest.raises(VaultNotFoundError, match="not a mirrorfs vault"):
        Vault.open(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VaultNotFoundError, match="mirrorfs init"):
        Vault.open()


def test_instance_resolution(vault, monkeypatch):
    assert Vault.open(vault.root).instance == "laptop"  # this device's default
    monkeypatch.setenv("MIRRORFS_INSTANCE", "phone")
    assert Vault.open(vault.root).instance == "phone"
    assert Vault.open(vault.root, instance="tablet").instance == "tablet"
    with pytest.raises(InvalidValueError):
        Vault.open(vault.root, instance="../evil")


def test_remember_get_list_update_forget_restore(vault):
    m = vault.remember("Sam prefers tea in the morning", kind="preference", tags=["drinks", "#morning"])
    assert m.path == "memory/sam-prefers-tea-in-the-morning.md"
    assert m.meta["instance"] == m.meta["updated_by"] == "laptop"
    assert m.tags == ["drinks", "morning"]
    assert vault.memory.get(m.id).path == m.path
    assert vault.memory.get("Sam prefers tea in the morning").path == m.path
    assert vault.memory.get("sam-prefers-tea-in-the-morning").path == m.path
    second = vault.remember("Sam prefers tea in the morning")
    assert second.path == "memory/sam-prefers-tea-in-the-morning-2.md"
    assert [x.path for x in vault.memory.list(kind="preference")] == [m.path]
    assert [x.path for x in vault.memory.list(tag="drinks")] == [m.path]
    phone = Vault.open(vault.root, instance="phone")
    updated = phone.memory.update(m.id, text="Sam prefers green tea", tier="working")
    assert updated.meta["updated_by"] == "phone" and updated.meta["instance"] == "laptop"
    assert updated.body == "Sam prefers green tea"
    trashed = vault.memory.forget(m.id)
    assert not (vault.root / m.path).exists() and trashed.exists()
    vault.restore(trashed)
    assert vault.memory.get(m.id).body == "Sam prefers green tea"
    assert vault.memory.forget(m.id, purge=True) is None
    with pytest.raises(NotFoundError):
        vault.memory.get(m.id)


def test_remember_rejects_bad_input(vault):
    with pytest.raises(InvalidValueError):
        vault.remember("   ")
    with pytest.raises(InvalidValueError):
        vault.remember("x", tier="forever")


def test_sessions_messages_links_tags(vault):
    s = vault.sessions.create("Trip planning", category="travel", tags=["travel"])
    assert s.path.parent == vault.root / "sessions" / "laptop"
    s.add_message("user", "Where in March?")
    s.add_message("assistant", "Lisbon.", tokens=42, model="test-model")
    msgs = s.get_messages()
    assert [(m.role, m.content, m.instance) for m in msgs] == [("user", "Where in March?", "laptop"), ("assistant", "Lisbon.", "laptop")]
    assert msgs[1].meta == {"tokens": 42, "model": "test-model"}
    assert s.meta["tokens"] == 42
    assert [m.content for m in s.get_messages(limit=1, offset=1)] == ["Lisbon."]
    with pytest.raises(InvalidValueError, match="unknown role"):
        s.add_message("robot", "beep")
    before = s.path.read_bytes()
    with pytest.raises(ValueError):
        s.add_message("narrator", "x")
    assert s.path.read_bytes() == before

    nxt = vault.sessions.create("Trip planning 2", previous=s.id)
    assert nxt.previous.id == s.id and s.next.id == nxt.id
    s.add_tag("lisbon")
    s.remove_tag("travel")
    assert s.tags == ["lisbon"]
    s.category = "holidays"
    assert vault.sessions.load(s.id).category == "holidays"
    assert [x.id for x in vault.sessions.list(category="holidays")] == [s.id]
    assert [x.id for x in vault.sessions.list(tag="lisbon")] == [s.id]
    s.close()
    assert [x.id for x in vault.sessions.list(status="closed")] == [s.id]


def test_session_lookup_errors(vault):
    with pytest.raises(NotFoundError, match="no session"):
        vault.sessions.load("2026-01-01-nothing-0000")
    with pytest.raises(PathOutsideVaultError):
        vault.sessions.load("../../etc/passwd.md")


def test_ephemeral_sessions_stay_out_of_the_vault(vault, state_dir):
    before = snapshot_tree(vault.root)
    s = vault.sessions.create("Scratch", persistence="ephemeral")
    s.add_message("user", "private thought")
    assert s.path.is_relative_to(state_dir)
    assert snapshot_tree(vault.root) == before
    assert vault.sessions.load(s.id).ephemeral
    s.close()
    assert not s.path.exists()
    kept = vault.sessions.create("Keeper", persistence="ephemeral")
    kept.add_message("user", "worth keeping")
    saved = kept.close(keep=True)
    assert saved.path.is_relative_to(vault.root)
    assert [m.content for m in saved.get_messages()] == ["worth keeping"]
    assert saved.meta["persistence"] == "persistent" and saved.meta["status"] == "closed"


def test_session_delete_moves_to_trash(vault):
    s = vault.sessions.create("Gone soon")
    target = s.delete()
    assert target.exists() and not s.path.exists()


def test_exports(vault):
    s = vault.sessions.create("Export me", tags=["x"])
    s.add_message("user", "hello")
    s.add_message("assistant", "hi there")
    nxt = vault.sessions.create("Next", previous=s.id)
    data = json.loads(s.export("json"))
    assert [m["content"] for m in data["messages"]] == ["hello", "hi there"]
    assert "hello" in s.export("txt") and s.export("markdown").startswith("# Export me")
    dna = s.export("mirrordna")
    assert verify_mirrordna(dna)
    meta = note.parse(dna.encode()).meta
    assert meta["successor"] == f"[[{nxt.id}]]"
    assert not verify_mirrordna(dna.replace("hi there", "tampered"))
    with pytest.raises(InvalidValueError):
        s.export("pdf")


def test_meta_set_is_byte_preserving_and_idempotent(vault):
    path = vault.root / "Projects" / "Atlas.md"
    path.parent.mkdir()
    original = b"\xef\xbb\xbf---\r\ntitle: Atlas  # the client\r\ntags: [client]\r\n---\r\n\r\nNotes.\r\n"
    path.write_bytes(original)
    assert vault.meta_set("Projects/Atlas.md", "status", "active") is True
    assert path.read_bytes() == original.replace(b"tags: [client]\r\n", b"tags: [client]\r\nstatus: active\r\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert vault.meta_set(str(path), "status", "active") is False
    assert os.stat(path).st_mtime_ns == 1_000_000_000
    assert vault.meta_get("Projects/Atlas.md", "tags") == ["client"]
    assert vault.meta_unset("Projects/Atlas.md", "status") is True
    assert path.read_bytes() == original


def test_meta_on_unparseable_note_changes_nothing(vault):
    path = vault.root / "broken.md"
    data = b"---\ntitle: [oops\n---\nbody\n"
    path.write_bytes(data)
    with pytest.raises(UnparseableNoteError, match="broken.md"):
        vault.meta_set("broken.md", "x", 1)
    assert path.read_bytes() == data


def test_paths_outside_the_vault_are_refused(vault, tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text("---\na: 1\n---\n")
    for bad in (str(outside), "../outside.md", "memory/../../outside.md"):
        with pytest.raises(PathOutsideVaultError):
            vault.meta_set(bad, "a", 2)
    (vault.root / "link.md").symlink_to(outside)
    with pytest.raises(PathOutsideVaultError):
        vault.meta_set("link.md", "a", 2)
    assert outside.read_text() == "---\na: 1\n---\n"
