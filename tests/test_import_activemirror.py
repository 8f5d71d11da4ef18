"""ActiveMirrorOS: the SDK's own SQLite store, session JSON, Markdown/txt exports and VaultMemory folder
(tests/fixtures/activemirror, produced by the SDK; see its README)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import time

import pytest
from importing import FIXTURES, imported, vault_bytes

from mirrorfs.errors import ImportPasswordError, LockedError
from mirrorfs.import_sources import import_path
from mirrorfs.session import link_target

AM = FIXTURES / "activemirror"
PASSWORD = "tide-pool-lantern"
SECRETS = ("correct horse battery staple", "Camino de Santiago", "stop reading the news", "Birchwood")
TRIP = "bfda8fa1-f6c4-4bf0-bb07-f789a0fcaa11"
PART2 = "b79b6b80-4cb2-4ada-b114-e01af2da10ef"
PACKING = "fd6b3ab1-bb4a-4a8c-b250-349bfc4b7639"


@pytest.fixture
def am(tmp_path):
    """A writable copy of the SDK fixtures."""
    target = tmp_path / "am"
    shutil.copytree(AM, target)
    return target


def store_rows(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    sessions = {r[0]: r for r in con.execute("SELECT id, title, parent_session_id, status FROM sessions")}
    messages = con.execute("SELECT id, session_id, role, content FROM messages").fetchall()
    con.close()
    return sessions, messages


def test_store_counts_in_equal_counts_out(vault, am):
    sessions, rows = store_rows(am / "memories.db")
    report = import_path(vault, "activemirror", am / "memories.db")
    found = imported(vault.root)
    assert set(found) == set(sessions)
    assert (report.sessions_new, report.messages_new, report.skipped) == (len(sessions), len(rows), [])
    for sid, (meta, messages, preamble) in found.items():
        assert meta["title"] == sessions[sid][1]
        assert meta["origin"] == "activemirror" and meta["instance"] == "import"
        assert meta["status"] == ("closed" if sessions[sid][3] == "completed" else "open")
        expected = sorted((r[0], r[2], r[3]) for r in rows if r[1] == sid)
        assert sorted((m.meta["origin_id"], m.role, m.content) for m in messages) == expected
        assert f"session `{sid}`" in preamble
    # System context messages stay system messages, with their context type.
    system = [m for m in found[TRIP][1] if m.role == "system"]
    assert [(m.content, m.meta["origin_meta"]) for m in system] == [
        ("The user prefers trains over planes.", {"context_type": "preference"})]
    # parent_session_id became previous/next on both sides.
    trip, part2 = found[TRIP][0], found[PART2][0]
    assert link_target(part2["previous"]) == (vault.root / "sessions/import").glob(f"*{trip['id']}.md").__next__().stem
    assert link_target(trip["next"]) == part2["id"] and part2["origin_parent"] == TRIP


def test_a_second_import_changes_no_byte(vault, am):
    vault.unlock("vault passphrase")
    for path in (am / "memories.db", am / "session.json", am / "session.md", am / "session.txt"):
        import_path(vault, "activemirror", path)
    import_path(vault, "activemirror", am, password=PASSWORD)  # the whole folder, the newer store too
    before = vault_bytes(vault.root)
    for path in (am, am / "memories-newer.db", am / "session.md"):
        again = import_path(vault, "activemirror", path, password=PASSWORD)
        assert vault_bytes(vault.root) == before
        assert (again.sessions_new, again.sessions_updated, again.messages_new, again.memories_new) == (0, 0, 0, 0)
        assert again.written == []
    assert again.sessions_unchanged == 1
    folder = import_path(vault, "activemirror", am, password=PASSWORD)
    assert (folder.memories_unchanged, folder.messages_left_out, folder.skipped) == (3, 0, [])


def test_exports_without_message_ids_add_nothing_twice(vault, am):
    # Markdown and txt exports carry no message ids: their messages are matched by role, time and text.
    first = import_path(vault, "activemirror", am / "session.md")
    assert (first.sessions_new, first.messages_new) == (1, 5)
    for path in (am / "session.txt", am / "session.json", am / "memories.db"):
        import_path(vault, "activemirror", path)
    meta, messages, _ = imported(vault.root)[TRIP]
    assert len(messages) == 5
    assert [m.role for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert messages[3].content == "Somewhere warm, reachable by train & cheap <please>."


def test_a_newer_store_adds_only_what_is_new(vault, am):
    import_path(vault, "activemirror", am / "memories.db")
    before = {p: (vault.root / p).read_bytes() for p in vault_bytes(vault.root)}
    old = imported(vault.root)
    report = import_path(vault, "activemirror", am / "memories-newer.db")
    now = imported(vault.root)
    assert (report.sessions_new, report.sessions_updated, report.sessions_unchanged) == (1, 1, 2)
    assert report.messages_new == 2 + 2
    assert set(now) == set(old) | {PACKING}
    # Part 2 gained its two new messages at the end; every earlier message is byte for byte the same.
    assert [m.content for m in now[PART2][1][:3]] == [m.content for m in old[PART2][1]]
    assert [m.id for m in now[PART2][1][:3]] == [m.id for m in old[PART2][1]]
    assert now[PART2][1][3].content == "Make it a sleeper cabin."
    # The new session links back to part 2, and part 2 forward to it.
    assert link_target(now[PACKING][0]["previous"]) == now[PART2][0]["id"]
    assert link_target(now[PART2][0]["next"]) == now[PACKING][0]["id"]
    changed = {p for p, data in before.items() if (vault.root / p).read_bytes() != data}
    assert changed == {f"sessions/import/{now[PART2][0]['id']}.md"}
    again = vault_bytes(vault.root)
    import_path(vault, "activemirror", am / "memories-newer.db")
    assert vault_bytes(vault.root) == again


def test_vault_entries_become_sealed_memories_without_plaintext_on_disk(vault, am, state_dir):
    vault.unlock("vault passphrase")
    report = import_path(vault, "activemirror", am / "vault", password=PASSWORD)
    assert (report.memories_new, report.skipped) == (3, [])
    vault.search("Birchwood")  # the index sees the vault too: it must not hold the text either
    on_disk = b"".join(p.read_bytes() for root in (vault.root, state_dir) for p in root.rglob("*") if p.is_file())
    for secret in SECRETS:
        assert secret.encode() not in on_disk and secret.lower().encode() not in on_disk
    paths = sorted(p.name for p in (vault.root / "memory").glob("*.md"))
    assert paths == ["goal-2026.md", "reflection-march.md", "wifi-cabin.md"]
    m = vault.memory.get("wifi_cabin")
    assert m.meta["origin"] == "activemirror" and m.meta["origin_id"] == "wifi_cabin"
    assert m.body.startswith("network Birchwood, password correct horse battery staple")
    assert '"category": "private"' in m.body  # the entry's metadata stays inside the sealed text
    assert "%%🔐β " in m.note.body and "Birchwood" not in m.note.body
    goal = vault.memory.get("goal_2026").body
    assert json.loads(goal.split("```json\n", 1)[1].split("\n```", 1)[0]) == {
        "goal": "Walk the Camino de Santiago", "by": "September"}


def test_a_raw_fernet_key_opens_the_vault_too(vault, am):
    vault.unlock("vault passphrase")
    key = (am / "vault.key").read_text(encoding="utf-8").strip()
    report = import_path(vault, "activemirror", am / "vault", password=key)
    assert report.memories_new == 3


def test_a_wrong_password_is_one_error_and_nothing_is_written(vault, am):
    before = vault_bytes(vault.root)
    with pytest.raises(ImportPasswordError) as err:
        import_path(vault, "activemirror", am, password="not the password", unlock=lambda: vault.unlock("x"))
    assert str(err.value) == (
        f"the password does not open the ActiveMirrorOS vault {am / 'vault'}: none of its 3 entries decrypts "
        "with it (as a password or as a raw Fernet key); nothing was imported")
    assert PASSWORD not in str(err.value)
    assert vault_bytes(vault.root) == before  # not even the vault's own key was set up
    with pytest.raises(ImportPasswordError, match="give --password-file FILE"):
        import_path(vault, "activemirror", am / "vault")
    assert vault_bytes(vault.root) == before


def test_a_locked_vault_gets_no_memory_and_no_session(vault, am):
    before = vault_bytes(vault.root)
    with pytest.raises(LockedError):
        import_path(vault, "activemirror", am, password=PASSWORD)
    assert vault_bytes(vault.root) == before


def test_damaged_files_are_one_line_each(vault, am, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    data = (am / "memories.db").read_bytes()
    (bad / "cut.db").write_bytes(data[:5000])
    (bad / "broken.json").write_text('{"id": "x", "messages": [', encoding="utf-8")
    (bad / "other.json").write_text('{"hello": 1}', encoding="utf-8")
    (bad / "notes.md").write_text("# Just notes\n", encoding="utf-8")
    (bad / "session.md").write_text((am / "session.md").read_text(encoding="utf-8").rsplit("*2026", 1)[0])
    report = import_path(vault, "activemirror", bad)
    lines = sorted(s.line() for s in report.skipped)
    assert lines == [
        "skipped broken.json: not valid JSON (Expecting value: line 1 column 26 (char 25))",
        "skipped cut.db: the SQLite store cannot be read (database disk image is malformed)",
        "skipped notes.md: not an ActiveMirrorOS Markdown export (no **Session ID** and ## Messages)",
        "skipped other.json: not an ActiveMirrorOS session (Session.to_dict() with messages)",
        "skipped session.md: message 5 has no *time* line; the file was changed or cut",
    ]
    assert report.sessions_new == 0 and not (vault.root / "sessions/import").exists()


@pytest.fixture
def india(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_naive_times_are_read_in_the_local_zone(vault, am, india):
    import_path(vault, "activemirror", am / "session.json")
    meta, messages, _ = imported(vault.root)[TRIP]
    assert messages[0].time.isoformat() == "2026-12-01T20:13:40.690000+05:30"
    assert meta["created"] == dt.datetime(2026, 12, 1, 20, 13, 40, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))


def test_another_zone_can_be_named(vault, am, india):
    import_path(vault, "activemirror", am / "session.json", naive_tz=dt.timezone.utc)
    _, messages, _ = imported(vault.root)[TRIP]
    assert messages[0].time.astimezone(dt.timezone.utc).isoformat() == "2026-12-01T20:13:40.690000+00:00"
