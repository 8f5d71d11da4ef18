"""Reflections: two instances on one folder notice each other through the files."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
from click.testing import CliRunner

import mirrorfs.cli_mirror  # noqa: F401  (registers the commands until cli.py imports it)
from mirrorfs import reflections as refl
from mirrorfs.bridge import answer, write_bridge_note
from mirrorfs.cli import cli
from mirrorfs.reflections import (
    Reflector,
    mark_read,
    record,
    reflect_change,
    vault_reflections,
)
from mirrorfs.vault import Vault


@pytest.fixture
def pair(vault):
    """laptop and phone on the same folder, each having looked once already."""
    phone = Vault.open(vault.root, instance="phone")
    phone.instances.ensure_card()
    for v in (vault, phone):
        vault_reflections(v, mark_read=True)
    return vault, phone


def lines(v: Vault, **kwargs) -> list[str]:
    return [r.line() for r in vault_reflections(v, **kwargs)]


def session_path(session) -> str:
    return session.relpath


def test_memory_written_on_laptop_shows_on_phone(pair):
    laptop, phone = pair
    laptop.remember("Sam prefers tea in the morning", title="Prefers tea", kind="preference")
    assert lines(phone) == ['laptop added memory "Prefers tea" (memory/prefers-tea.md)']
    # The writer does not reflect its own writes.
    assert lines(laptop) == []
    [r] = vault_reflections(phone)
    data = r.to_dict()
    assert (data["instance"], data["action"], data["kind"], data["path"], data["title"]) == (
        "laptop", "added", "memory", "memory/prefers-tea.md", "Prefers tea")
    assert data["summary"] == 'added memory "Prefers tea"'
    assert data["line"] == r.line()
    assert dt.datetime.fromisoformat(data["time"]).tzinfo is not None


def test_changed_memory_is_attributed_to_the_instance_that_signed_it(pair):
    laptop, phone = pair
    m = laptop.remember("Sam prefers tea", title="Prefers tea")
    for v in pair:
        vault_reflections(v, mark_read=True)
    phone.memory.update(m.path, text="Sam prefers green tea", tags=["drinks"])
    assert lines(laptop) == ['phone changed memory "Prefers tea" (memory/prefers-tea.md)']
    [r] = vault_reflections(laptop)
    assert r.details == {"properties": True, "text": True}


def test_messages_from_phone_are_grouped_per_session_for_laptop(pair):
    laptop, phone = pair
    s = phone.sessions.create("Trip planning")
    for text in ("Where in March?", "Lisbon?", "Or Sevilla?"):
        s.add_message("user", text)
    path = session_path(s)
    assert lines(laptop) == [f'phone added session "Trip planning" with 3 messages ({path})']
    vault_reflections(laptop, mark_read=True)
    s.add_message("assistant", "Sevilla in March is lovely.")
    s.add_message("user", "Book it.")
    other = laptop.sessions.create("Atelier tokens")
    other.add_message("user", "Blue glaze")
    assert lines(laptop) == [f'phone added 2 messages to session "Trip planning" ({path})']
    [r] = vault_reflections(laptop)
    assert r.kind == "message" and r.details["count"] == 2
    assert [m["role"] for m in r.details["messages"]] == ["assistant", "user"]
    assert lines(phone) == [f'laptop added session "Atelier tokens" with a message ({session_path(other)})']


def test_human_edits_with_plain_file_writes_are_attributed_to_human(pair):
    laptop, phone = pair
    laptop.remember("Sam prefers tea", title="Prefers tea")
    for v in pair:
        vault_reflections(v, mark_read=True)
    note = laptop.root / "memory" / "prefers-tea.md"
    with open(note, "a", encoding="utf-8") as f:  # an editor appending a line
        f.write("Green, not black.\n")
    # The person saves a minute after mirrorfs wrote the note (a save within the
    # same couple of seconds counts as the signer's own second write).
    later = note.stat().st_mtime + 60
    os.utime(note, (later, later))
    (laptop.root / "Daily routine.md").write_text("# Daily routine\n\nTea at 8.\n", encoding="utf-8")
    soul = laptop.root / "SOUL.md"
    soul.write_text(soul.read_text(encoding="utf-8") + "\nBe brief.\n", encoding="utf-8")
    expected = [
        'human changed memory "Prefers tea" (memory/prefers-tea.md)',
        'human added note "Daily routine" (Daily routine.md)',
        "human changed SOUL.md (SOUL.md)",
    ]
    for v in pair:
        assert sorted(lines(v)) == sorted(expected)
    [r] = [r for r in vault_reflections(phone) if r.kind == "memory"]
    assert r.details == {"text": True}


def test_mark_read_empties_the_list_and_later_changes_show_again(pair):
    laptop, phone = pair
    laptop.remember("One", title="One")
    found = vault_reflections(phone, mark_read=True)
    assert [r.line() for r in found] == ['laptop added memory "One" (memory/one.md)']
    assert lines(phone) == []
    laptop.remember("Two", title="Two")
    laptop.memory.update("memory/one.md", text="One, revised")
    assert sorted(lines(phone)) == [
        'laptop added memory "Two" (memory/two.md)',
        'laptop changed memory "One" (memory/one.md)',
    ]
    mark_read(phone, vault_reflections(phone))
    assert lines(phone) == []


def test_mark_read_of_some_reflections_leaves_the_others_unread(pair):
    laptop, phone = pair
    laptop.remember("One", title="One")
    laptop.remember("Two", title="Two")
    found = vault_reflections(phone)
    mark_read(phone, [r for r in found if r.path == "memory/one.md"])
    assert lines(phone) == ['laptop added memory "Two" (memory/two.md)']


def test_a_change_after_it_was_reflected_is_not_lost_by_marking(pair):
    laptop, phone = pair
    laptop.remember("One", title="One")
    found = vault_reflections(phone)
    laptop.memory.update("memory/one.md", text="One, changed before phone marked it read")
    mark_read(phone, found)
    assert lines(phone) == ['laptop changed memory "One" (memory/one.md)']


def test_removal_and_rename(pair):
    laptop, phone = pair
    laptop.remember("One", title="One")
    laptop.remember("Two", title="Two")
    vault_reflections(phone, mark_read=True)
    os.remove(laptop.root / "memory" / "one.md")
    os.rename(laptop.root / "memory" / "two.md", laptop.root / "memory" / "deux.md")
    assert sorted(lines(phone)) == [
        'human moved memory "Two" from memory/two.md (memory/deux.md)',
        'someone removed memory "One" (memory/one.md)',
    ]
    vault_reflections(phone, mark_read=True)
    assert lines(phone) == []


def test_intentions_reflect_but_presence_does_not(pair):
    laptop, phone = pair
    t = dt.datetime(2026, 11, 21, 10, 4, tzinfo=dt.timezone.utc)
    phone.instances.intend("Book the ryokan", now=t)
    phone.instances.touch(status="trip planning", force=True)
    assert lines(laptop) == ['phone added intention "Book the ryokan" (instances/phone.md)']
    [r] = vault_reflections(laptop)
    assert r.kind == "intention" and r.details["since"] == "2026-11-21"
    vault_reflections(laptop, mark_read=True)
    phone.instances.touch(force=True)
    assert lines(laptop) == []
    phone.instances.done(1)
    assert lines(laptop) == ['phone removed intention "Book the ryokan" (instances/phone.md)']


def test_bridge_note_to_phone_reaches_phone_only(pair):
    laptop, phone = pair
    note = write_bridge_note(laptop, "Book the ryokan before Friday.", to="phone", title="Ryokan", sender="human")
    assert note.path == "bridge/ryokan.md"
    assert lines(phone) == ['human added bridge note "Ryokan" for phone (bridge/ryokan.md)']
    assert lines(laptop) == []
    vault_reflections(phone, mark_read=True)
    answer(phone, "ryokan", "Booked for 31 March.")
    assert lines(phone) == []
    everyone = write_bridge_note(laptop, "Flights are booked.", to="all", title="Trip dates", sender="human")
    assert lines(laptop) == [f'human added bridge note "Trip dates" for all ({everyone.path})']
    assert lines(phone) == [f'human added bridge note "Trip dates" for all ({everyone.path})']
    # Without a sender the note is from the instance that writes it.
    mine = write_bridge_note(laptop, "Buffer week before 22 March.", to="all", title="Buffer")
    assert mine.to_dict()["from"] == "laptop"
    assert f'laptop added bridge note "Buffer" for all ({mine.path})' in lines(phone)
    assert lines(laptop) == [f'human added bridge note "Trip dates" for all ({everyone.path})']


def test_answer_to_an_instance_question_reaches_the_asker(pair):
    laptop, phone = pair
    q = write_bridge_note(laptop, "Blue or green glaze?", to="human", title="Glaze", sender="laptop")
    assert lines(laptop) == [] and lines(phone) == []
    vault_reflections(laptop, mark_read=True)
    answer(laptop, q.path, "Blue.", sender="human")
    assert lines(laptop) == ['human answered bridge note "Glaze" (bridge/glaze.md)']


def test_first_look_reports_the_last_days_with_a_persons_edits(vault):
    # Issue 10: the first plain look shows what `--since` shows, a person's edits
    # included; the files init wrote are mirrorfs's own until someone changes them.
    vault.remember("Sam prefers tea", title="Prefers tea")
    (vault.root / "Daily.md").write_text("# Daily\n", encoding="utf-8")
    phone = Vault.open(vault.root, instance="phone")
    assert refl.load_cursor(phone) is None
    assert sorted(lines(phone)) == sorted([
        "laptop joined the vault (instances/laptop.md)",
        'laptop added memory "Prefers tea" (memory/prefers-tea.md)',
        'human changed note "Daily" (Daily.md)',
    ])
    later = dt.datetime.now().astimezone() + dt.timedelta(days=refl.FIRST_LOOK_DAYS + 1)
    assert lines(phone, now=later) == []
    vault_reflections(phone, mark_read=True)
    assert lines(phone) == []


def test_since_reports_by_the_files_own_times(pair):
    laptop, phone = pair
    laptop.remember("Sam prefers tea", title="Prefers tea")
    (laptop.root / "Daily.md").write_text("# Daily\n", encoding="utf-8")
    vault_reflections(phone, mark_read=True)
    # By the files' own times, everything of today, the vault's creation included.
    today = dt.date.today()
    assert sorted(lines(phone, since=today)) == sorted([
        "laptop joined the vault (instances/laptop.md)",
        'laptop added memory "Prefers tea" (memory/prefers-tea.md)',
        'human changed note "Daily" (Daily.md)',
        # SOUL.md and README-mirrorfs.md as init wrote them are nobody's news (issue 10).
    ])
    assert lines(phone, since=today + dt.timedelta(days=2)) == []


def test_recorded_merge_events_are_returned_until_read(pair):
    laptop, phone = pair
    record(laptop, refl.conflict_reflection(
        laptop, "memory/prefers-tea.md", "memory/prefers-tea.sync-conflict-20261121-100412-ABCDEFG.md",
        title="Prefers tea"))
    expected = ("laptop merged conflict copy memory/prefers-tea.sync-conflict-20261121-100412-ABCDEFG.md "
                'into "Prefers tea" (memory/prefers-tea.md)')
    assert lines(laptop) == [expected]
    assert lines(phone) == [expected]  # the log is this device's: phone runs here too
    vault_reflections(laptop, mark_read=True)
    assert lines(laptop) == []
    assert lines(phone) == [expected]


def test_conflict_copies_are_not_reflected_as_notes(pair):
    laptop, phone = pair
    (laptop.root / "memory" / "x.sync-conflict-20261121-100412-ABCDEFG.md").write_text("x\n", encoding="utf-8")
    assert lines(phone) == []


def test_reflect_change_on_bytes(vault):
    phone = Vault.open(vault.root, instance="phone")
    s = phone.sessions.create("Trip planning")
    s.add_message("user", "Where in March?")
    before = (vault.root / s.relpath).read_bytes()
    s.add_message("assistant", "Sevilla.")
    s.add_message("user", "Book it.")
    after = (vault.root / s.relpath).read_bytes()
    assert [r.line() for r in reflect_change(vault, s.relpath, before, after)] == [
        f'phone added 2 messages to session "Trip planning" ({s.relpath})']
    assert [r.line() for r in reflect_change(vault, s.relpath, None, after)] == [
        f'phone added session "Trip planning" with 3 messages ({s.relpath})']
    assert reflect_change(phone, s.relpath, before, after) == []  # own messages
    assert reflect_change(vault, s.relpath, after, after) == []
    assert [r.line() for r in reflect_change(vault, s.relpath, after, None)] == [
        f'someone removed session "Trip planning" ({s.relpath})']


def test_reflector_reports_each_change_once(pair):
    laptop, phone = pair
    laptop.remember("Before the watcher", title="Before")
    watcher = Reflector(phone)
    assert [r.line() for r in watcher.start()] == ['laptop added memory "Before" (memory/before.md)']
    m = laptop.remember("Sam prefers tea", title="Prefers tea")
    data = (laptop.root / m.path).read_bytes()
    assert [r.line() for r in watcher.change(m.path, data)] == [
        'laptop added memory "Prefers tea" (memory/prefers-tea.md)']
    assert watcher.change(m.path, data) == []  # the same bytes settle twice: nothing new
    s = laptop.sessions.create("Tokens")
    s.add_message("user", "Blue glaze")
    assert [r.line() for r in watcher.change(s.relpath, (laptop.root / s.relpath).read_bytes())] == [
        f'laptop added session "Tokens" with a message ({s.relpath})']
    s.add_message("assistant", "Noted")
    assert [r.line() for r in watcher.change(s.relpath, (laptop.root / s.relpath).read_bytes())] == [
        f'laptop added a message to session "Tokens" ({s.relpath})']
    os.rename(laptop.root / m.path, laptop.root / "memory" / "tea.md")
    assert [r.line() for r in watcher.change("memory/tea.md", data, old_path=m.path)] == [
        'human moved memory "Prefers tea" from memory/prefers-tea.md (memory/tea.md)']
    os.remove(laptop.root / "memory" / "tea.md")
    assert [r.line() for r in watcher.change("memory/tea.md", None)] == [
        'someone removed memory "Prefers tea" (memory/tea.md)']
    # The watcher's feed moves no cursor: the instance has not looked yet.
    assert lines(phone) == [
        'laptop added memory "Before" (memory/before.md)',
        f'laptop added session "Tokens" with 2 messages ({s.relpath})',
    ]


def test_cursor_is_per_instance_and_outside_the_vault(pair):
    laptop, phone = pair
    assert refl.cursor_path(laptop) != refl.cursor_path(phone)
    for v in pair:
        path = refl.cursor_path(v)
        assert path.is_file() and laptop.root not in path.parents
        data = json.loads(path.read_text())
        assert data["instance"] == v.instance and "memory" not in data["files"]


def test_own_and_presence_writes_are_folded_into_the_cursor(pair):
    laptop, phone = pair
    m = laptop.remember("Own note", title="Own")
    assert lines(laptop) == []
    cursor = refl.load_cursor(laptop)
    assert cursor["files"][m.path]["h"] == refl.storage.sha256((laptop.root / m.path).read_bytes())


def test_cli_reflections(pair):
    laptop, phone = pair
    runner = CliRunner()

    def run(*args, instance="phone"):
        result = runner.invoke(cli, ["--vault", str(laptop.root), "--instance", instance, *args],
                               catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    looked = refl.last_looked(phone).astimezone()
    assert run("reflections") == f"nothing new since you last looked ({looked:%Y-%m-%d %H:%M})\n"
    laptop.remember("Sam prefers tea", title="Prefers tea")
    assert run("reflections") == 'laptop added memory "Prefers tea" (memory/prefers-tea.md)\n'
    data = json.loads(run("reflections", "--json"))
    assert [(d["instance"], d["action"], d["kind"], d["path"]) for d in data] == [
        ("laptop", "added", "memory", "memory/prefers-tea.md")]
    assert run("reflections", "--mark-read") == 'laptop added memory "Prefers tea" (memory/prefers-tea.md)\n'
    assert run("reflections").startswith("nothing new since you last looked (")
    day = dt.date.today().isoformat()
    assert 'laptop added memory "Prefers tea" (memory/prefers-tea.md)\n' in run("reflections", "--since", day)
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert run("reflections", "--since", tomorrow) == f"nothing new since {tomorrow} 00:00\n"
    result = runner.invoke(cli, ["--vault", str(laptop.root), "reflections", "--since", "last week"])
    assert result.exit_code == 1
    assert result.output == ("Error: cannot read 'last week' as a date: use YYYY-MM-DD or an ISO 8601 time\n")


def test_a_real_merge_result_becomes_a_recorded_reflection(pair):
    from mirrorfs import conflicts

    laptop, phone = pair
    s = laptop.sessions.create("Tokens")
    s.add_message("user", "Blue glaze")
    base = (laptop.root / s.relpath).read_bytes()
    s.add_message("assistant", "Noted")
    # The losing side of a sync conflict: the base plus a message of its own.
    other = Vault.open(laptop.root, instance="laptop")
    copy_rel = s.relpath.replace(".md", ".sync-conflict-20261121-100412-ABCDEFG.md")
    (laptop.root / s.relpath).rename(laptop.root / "keep.tmp")
    (laptop.root / s.relpath).write_bytes(base)
    other.sessions.load(s.id).add_message("user", "Green glaze too")
    (laptop.root / s.relpath).rename(laptop.root / copy_rel)
    (laptop.root / "keep.tmp").rename(laptop.root / s.relpath)
    for v in pair:
        vault_reflections(v, mark_read=True)
    result = conflicts.merge_conflict(laptop, copy_rel)
    assert result.status == "merged"
    record(laptop, refl.merge_reflection(laptop, result))
    assert lines(laptop) == [f"laptop {result.summary()} ({s.relpath})"]
    assert "merged conflict copy of" in lines(laptop)[0]


def test_reflection_env_for_hook_commands(pair):
    laptop, phone = pair
    laptop.remember("Sam prefers tea", title="Prefers tea")
    [r] = vault_reflections(phone)
    env = r.env()
    assert env["MIRRORFS_INSTANCE"] == "laptop" and env["MIRRORFS_ACTION"] == "added"
    assert env["MIRRORFS_KIND"] == "memory" and env["MIRRORFS_PATH"] == "memory/prefers-tea.md"
    assert env["MIRRORFS_LINE"] == r.line()
    assert json.loads(env["MIRRORFS_REFLECTION"])["title"] == "Prefers tea"


def test_reflector_applies_watcher_changes(pair):
    from mirrorfs.watcher import Change

    laptop, phone = pair
    feed = Reflector(phone)
    assert feed.start() == []
    m = laptop.remember("Sam prefers tea", title="Prefers tea")
    data = (laptop.root / m.path).read_bytes()
    assert [r.line() for r in feed.apply(Change("added", m.path, sha256=None, content=data))] == [
        'laptop added memory "Prefers tea" (memory/prefers-tea.md)']
    os.rename(laptop.root / m.path, laptop.root / "memory" / "tea.md")
    assert [r.line() for r in feed.apply(Change("moved", "memory/tea.md", old_path=m.path, content=data))] == [
        'human moved memory "Prefers tea" from memory/prefers-tea.md (memory/tea.md)']
    os.remove(laptop.root / "memory" / "tea.md")
    assert [r.line() for r in feed.apply(Change("deleted", "memory/tea.md"))] == [
        'someone removed memory "Prefers tea" (memory/tea.md)']
