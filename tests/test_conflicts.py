"""Sync-conflict copies: names, session and three-way merges, nothing lost, settling."""

from __future__ import annotations

import collections
import datetime as dt
import json
import random
import threading

import pytest
from click.testing import CliRunner

from mirrorfs import conflicts, note, snapshots
from mirrorfs import messages as msgs
from mirrorfs.conflicts import (
    GONE,
    KEPT_BOTH,
    MERGED,
    NEEDS_PERSON,
    RESOLVED,
    conflict_original,
    parse_conflict_name,
)
from mirrorfs.snapshots import Seen, SnapshotStoreError
from mirrorfs.vault import TRASH_DIR

ST = ".sync-conflict-20261121-100412-ABCDEF7"

# -- names ----------------------------------------------------------------------

RECOGNISED = [
    # (copy, original, tool, device)
    (f"memory/tea{ST}.md", "memory/tea.md", "syncthing", "ABCDEF7"),
    ("memory/tea.v2.sync-conflict-20261121-100412-Q2W3E4R.md", "memory/tea.v2.md", "syncthing", "Q2W3E4R"),
    ("memory/tea.sync-conflict-20261121-100412.md", "memory/tea.md", "syncthing", None),
    (f"sessions/laptop/2026-11-21-trip-a1b2{ST}.md", "sessions/laptop/2026-11-21-trip-a1b2.md", "syncthing", "ABCDEF7"),
    (f"memory/日本語 のノート{ST}.md", "memory/日本語 のノート.md", "syncthing", "ABCDEF7"),
    (f"a{ST}.sync-conflict-20261122-090000-BBBBBBB.md", "a.md", "syncthing", "BBBBBBB"),
    ("memory/tea (Sam's conflicted copy 2026-11-21).md", "memory/tea.md", "dropbox", "Sam"),
    ("memory/tea (Sam\u2019s conflicted copy 2026-11-21).md", "memory/tea.md", "dropbox", "Sam"),
    ("memory/tea (Sam's conflicted copy 2026-11-21 (1)).md", "memory/tea.md", "dropbox", "Sam"),
    ("memory/Ünïcode café (MacBook-Pro's conflicted copy 2026-11-21).md", "memory/Ünïcode café.md", "dropbox", "MacBook-Pro"),
    ("memory/tea (conflicted copy 2026-11-21).md", "memory/tea.md", "dropbox", None),
    ("memory/tea (conflicted copy 2026-11-21 101512).md", "memory/tea.md", "nextcloud", None),
    ("memory/tea (conflicted copy sam 2026-11-21 101512).md", "memory/tea.md", "nextcloud", "sam"),
    ("memory/tea_conflict-20261121-101512.md", "memory/tea.md", "nextcloud", None),
    ("Meeting notes (Conflicted copy MyMacBook2 202411281430).md", "Meeting notes.md", "obsidian", "MyMacBook2"),
    ("bridge/plan (Conflicted copy Sam's iPhone 202611211004).md", "bridge/plan.md", "obsidian", "Sam's iPhone"),
]

NOT_CONFLICTS = [
    "memory/tea.md",
    "memory/conflicted copy 2026-11-21.md",
    "memory/why we had a conflicted copy (2026-11-21).md",
    "memory/tea (conflicted copy draft).md",
    "memory/sync-conflict-notes.md",
    "memory/tea.sync-conflict-2026-11-21.md",
    "memory/tea.sync-conflict-20261121-1004-ABCDEF7.md",
    "memory/tea.sync-conflict-20261121-100412-abcdef7.md",
    "memory/tea (Conflicted copy 2026).md",
    "memory/tea (conflicted copy 2026-13-45).md",
    "memory/tea (Sam's conflicted copy).md",
    "memory/resolving a conflict-20261121.md",
    "memory/.sync-conflict-20261121-100412-ABCDEF7.md",
]


@pytest.mark.parametrize("copy,original,tool,device", RECOGNISED)
def test_every_naming_scheme_is_recognised(copy, original, tool, device):
    name = parse_conflict_name(copy)
    assert name is not None, copy
    assert (name.original, name.tool, name.device) == (original, tool, device)
    assert conflict_original(copy) == original
    assert name.time is not None and name.time.year in (2024, 2026)


@pytest.mark.parametrize("path", NOT_CONFLICTS)
def test_similar_names_are_not_conflict_copies(path):
    assert parse_conflict_name(path) is None
    assert conflict_original(path) is None


def test_names_carry_time_and_number():
    name = parse_conflict_name("x (Sam's conflicted copy 2026-11-21 (2)).md")
    assert name.time == dt.datetime(2026, 11, 21) and name.number == 2
    name = parse_conflict_name(f"x{ST}.md")
    assert name.time == dt.datetime(2026, 11, 21, 10, 4, 12)
    assert parse_conflict_name("x (Conflicted copy Phone 202611211004).md").time == dt.datetime(2026, 11, 21, 10, 4)


def test_find_conflicts_scans_notes_only(vault):
    root = vault.root
    for rel in ("memory/tea.md", f"memory/tea{ST}.md", "memory/sub/x (conflicted copy 2026-11-21 101512).md",
                f".obsidian/workspace{ST}.md", f".mirrorfs/trash/1/memory/tea{ST}.md", f"memory/img{ST}.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x\n")
    found = [c.relpath for c in conflicts.find_conflicts(vault)]
    assert found == [f"memory/tea{ST}.md", "memory/sub/x (conflicted copy 2026-11-21 101512).md"]


# -- helpers --------------------------------------------------------------------------


def write(vault, rel: str, data: bytes | str) -> None:
    path = vault.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def read(vault, rel: str) -> bytes:
    return (vault.root / rel).read_bytes()


def trash_files(vault) -> dict[str, bytes]:
    root = vault.root / TRASH_DIR
    return {p.relative_to(vault.root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()} if root.is_dir() else {}


BOOKKEEPING = ("updated:", "updated_by:", "tokens:", "last_seen:")


def lines_of(data: bytes) -> collections.Counter:
    """Non-blank lines, without front matter values that change on every write."""
    return collections.Counter(
        ln for ln in data.decode("utf-8-sig").splitlines() if ln.strip() and not ln.startswith(BOOKKEEPING)
    )


def assert_nothing_lost(vault, sides: list[bytes], copy_rel: str, original_rel: str) -> None:
    """Every line of every side is in the original, the copy (if kept) or the trash."""
    kept = lines_of(read(vault, original_rel))
    if (vault.root / copy_rel).exists():
        kept += lines_of(read(vault, copy_rel))
    for data in trash_files(vault).values():
        kept += lines_of(data)
    for side in sides:
        missing = {ln for ln in lines_of(side) if ln not in kept}
        assert not missing, missing


MEMORY = """---
id: 3f9a1c2b7d4e
type: memory
title: Tea
kind: preference
tier: long_term
tags:
  - drinks
created: 2026-11-21T10:04:12+00:00
updated: 2026-11-21T10:04:12+00:00
instance: laptop
updated_by: laptop
---

Prefers tea over coffee before noon.
Green tea in spring.
Black tea in winter.

## Notes

- Never sugar.
- Milk only with black tea.
"""


def edited(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


# -- sessions -------------------------------------------------------------------------

T0 = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.timezone.utc)


def message(n: int, instance: str, minutes: int, content: str | None = None) -> msgs.Message:
    t = T0 + dt.timedelta(minutes=minutes)
    return msgs.Message(
        id=f"20261121T{10 + minutes // 60:02d}{minutes % 60:02d}00000-{n:06x}", role="user" if n % 2 else "assistant",
        time=t, instance=instance, content=content or f"message {n} from {instance}", meta={"tokens": n},
    )


def session_bytes(messages: list[msgs.Message], updated: str, tags: list[str], preamble: str = "", status="open") -> bytes:
    meta = {
        "id": "2026-11-21-trip-a1b2", "type": "session", "title": "Trip", "instance": "laptop", "status": status,
        "persistence": "persistent", "tags": tags, "created": "2026-11-21T10:00:00+00:00", "updated": updated,
        "updated_by": "laptop", "tokens": sum(m.meta["tokens"] for m in messages),
    }
    n = note.new(meta)
    body = preamble + "".join(msgs.render(m) for m in messages)
    return n.with_body(body).render()


SESSION = "sessions/laptop/2026-11-21-trip-a1b2.md"
SESSION_COPY = f"sessions/laptop/2026-11-21-trip-a1b2{ST}.md"


def test_session_merge_interleaves_messages_from_both_sides(vault):
    shared = [message(1, "laptop", 0), message(2, "laptop", 1)]
    mine = shared + [message(3, "laptop", 10), message(5, "laptop", 30)]
    theirs = shared + [message(4, "phone", 20), message(6, "phone", 40)]
    pre = "\nPlanning the March trip. Written by Sam.\n\n"
    write(vault, SESSION, session_bytes(mine, "2026-11-21T10:30:00+00:00", ["travel"], pre))
    write(vault, SESSION_COPY, session_bytes(theirs, "2026-11-21T10:40:00+00:00", ["travel", "spain"], pre, status="closed"))
    result = conflicts.merge_conflict(vault, SESSION_COPY)
    assert result.status == MERGED and result.kind == "session" and result.added_messages == 2
    assert result.summary().startswith(f"merged conflict copy of {SESSION}: +2 messages")
    # The newer side's `status: closed` replaced the original's `status: open`:
    # the original's old bytes wait in the trash.
    assert list(trash_files(vault).values()) == [session_bytes(mine, "2026-11-21T10:30:00+00:00", ["travel"], pre)]
    merged = note.parse(read(vault, SESSION))
    pre_out, found = msgs.parse(merged.body)
    by_n = {m.id: m for m in mine + theirs}
    assert [m.id for m in found] == [m.id for m in sorted(by_n.values(), key=lambda m: m.time)]
    assert [m.content for m in found] == [
        "message 1 from laptop", "message 2 from laptop", "message 3 from laptop",
        "message 4 from phone", "message 5 from laptop", "message 6 from phone",
    ]
    assert "Planning the March trip. Written by Sam." in pre_out
    # Front matter from the newer side (the copy), tags unioned, tokens summed.
    assert merged.meta["status"] == "closed" and merged.meta["tags"] == ["travel", "spain"]
    assert merged.meta["tokens"] == 1 + 2 + 3 + 4 + 5 + 6
    assert not (vault.root / SESSION_COPY).exists()
    assert conflicts.list_open(vault) == []
    # Merging again is a no-op: the file already holds everything.
    again = session_bytes(theirs, "2026-11-21T10:40:00+00:00", ["travel", "spain"], pre, status="closed")
    write(vault, SESSION_COPY, again)
    before = read(vault, SESSION)
    result = conflicts.merge_conflict(vault, SESSION_COPY)
    assert result.status == MERGED and result.added_messages == 0 and not result.written
    assert read(vault, SESSION) == before


def test_session_written_by_mirrorfs_merges_byte_for_byte(vault):
    session = vault.sessions.create("Trip planning", tags=["travel"])
    session.add_message("user", "Where should we go in March?")
    rel = session.relpath
    base = read(vault, rel)
    session.add_message("assistant", "Somewhere warm: Lisbon or Sevilla.")
    mine = read(vault, rel)
    copy = rel.replace(".md", f"{ST}.md")
    write(vault, copy, base)  # the copy only lacks the last message
    result = conflicts.merge_conflict(vault, copy)
    assert result.status == MERGED and result.added_messages == 0 and not result.written
    assert read(vault, rel) == mine and not (vault.root / copy).exists()
    assert trash_files(vault) == {}
    # The other way round: the original lacks the last message. The merge keeps
    # the original's bytes, appends the message and takes the newer front matter.
    write(vault, rel, base)
    write(vault, copy, mine)
    result = conflicts.merge_conflict(vault, copy)
    assert result.status == MERGED and result.added_messages == 1 and result.written
    assert read(vault, rel) == mine and trash_files(vault) == {}


def test_session_message_edited_on_both_sides_keeps_both(vault):
    shared = [message(1, "laptop", 0)]
    mine = [message(1, "laptop", 0, "Lisbon, said Sam."), message(3, "laptop", 10)]
    theirs = [message(1, "laptop", 0, "Sevilla, said Sam."), message(4, "phone", 20)]
    base = session_bytes(shared, "2026-11-21T10:00:00+00:00", ["travel"])
    snapshots.remember(vault, SESSION, base)
    mine_b = session_bytes(mine, "2026-11-21T10:10:00+00:00", ["travel"])
    theirs_b = session_bytes(theirs, "2026-11-21T10:20:00+00:00", ["travel"])
    write(vault, SESSION, mine_b)
    write(vault, SESSION_COPY, theirs_b)
    result = conflicts.merge_conflict(vault, SESSION_COPY)
    assert result.status == KEPT_BOTH and result.conflict == "messages"
    # The original gained the copy's new message; the copy is untouched.
    _, found = msgs.parse(note.parse(read(vault, SESSION)).body)
    assert [m.content for m in found] == ["Lisbon, said Sam.", "message 3 from laptop", "message 4 from phone"]
    assert read(vault, SESSION_COPY) == theirs_b
    [open_] = conflicts.list_open(vault)
    assert (open_.copy, open_.status, open_.conflict) == (SESSION_COPY, KEPT_BOTH, "messages")
    assert_nothing_lost(vault, [mine_b, theirs_b], SESSION_COPY, SESSION)
    done = conflicts.resolve(vault, SESSION, "both")
    assert done.status == RESOLVED and not (vault.root / SESSION_COPY).exists()
    _, found = msgs.parse(note.parse(read(vault, SESSION)).body)
    assert "Lisbon, said Sam." in found[0].content and "Sevilla, said Sam." in found[0].content
    assert len(found) == 3 and conflicts.list_open(vault) == []


def test_session_merge_while_another_writer_appends(vault):
    session = vault.sessions.create("Busy")
    for i in range(3):
        session.add_message("user", f"shared {i}")
    rel = session.relpath
    copy = rel.replace(".md", f"{ST}.md")
    theirs = note.parse(read(vault, rel))
    extra = [msgs.make("assistant", f"from phone {i}", "phone") for i in range(5)]
    write(vault, copy, theirs.with_body(theirs.body + "".join(msgs.render(m) for m in extra)).render())
    stop = threading.Event()
    appended: list[str] = []

    def appender():
        i = 0
        while not stop.is_set() and i < 40:
            appended.append(session.add_message("user", f"live {i}").id)
            i += 1

    thread = threading.Thread(target=appender)
    thread.start()
    try:
        result = conflicts.merge_conflict(vault, copy)
    finally:
        stop.set()
        thread.join()
    assert result.status == MERGED
    ids = {m.id for m in session.get_messages()}
    assert {m.id for m in extra} <= ids and set(appended) <= ids
    assert not (vault.root / copy).exists()


# -- other notes ------------------------------------------------------------------------


def test_memory_note_clean_three_way_merge(vault):
    rel, copy = "memory/tea.md", f"memory/tea{ST}.md"
    snapshots.remember(vault, rel, MEMORY.encode())
    mine = edited(MEMORY, "Green tea in spring.", "Green tea in spring, jasmine on Sundays.")
    mine = edited(mine, "updated: 2026-11-21T10:04:12+00:00", "updated: 2026-11-22T08:00:00+00:00")
    theirs = edited(MEMORY, "- Milk only with black tea.", "- Milk only with black tea.\n- Honey when ill.")
    theirs = edited(theirs, "  - drinks\n", "  - drinks\n  - health\n")
    theirs = edited(theirs, "updated: 2026-11-21T10:04:12+00:00", "updated: 2026-11-23T09:00:00+00:00")
    theirs = edited(theirs, "updated_by: laptop", "updated_by: phone")
    write(vault, rel, mine)
    write(vault, copy, theirs)
    written: list[tuple[str, bool]] = []
    result = conflicts.merge_conflict(
        vault, copy, on_written=lambda path, data: written.append((path, (vault.root / copy).exists()))
    )
    assert result.status == MERGED and result.written
    # The merged original was durably written while the copy was still there.
    assert written == [(rel, True)]
    merged = read(vault, rel).decode()
    expected = edited(mine, "- Milk only with black tea.", "- Milk only with black tea.\n- Honey when ill.")
    expected = edited(expected, "  - drinks\n", "  - drinks\n  - health\n")
    expected = edited(expected, "updated: 2026-11-22T08:00:00+00:00", "updated: 2026-11-23T09:00:00+00:00")
    expected = edited(expected, "updated_by: laptop", "updated_by: phone")
    assert merged == expected
    assert not (vault.root / copy).exists()
    assert "merged conflict copy of memory/tea.md: +" in result.summary()
    # The merge is now the version this device last saw.
    assert snapshots.last_seen(vault, rel) == expected.encode()
    assert_nothing_lost(vault, [mine.encode(), theirs.encode()], copy, rel)


def test_same_line_changed_on_both_sides_keeps_both(vault):
    rel, copy = "memory/tea.md", "memory/tea (Sam's conflicted copy 2026-11-21).md"
    snapshots.remember(vault, rel, MEMORY.encode())
    mine = edited(MEMORY, "Black tea in winter.", "Rooibos in winter.")
    theirs = edited(MEMORY, "Black tea in winter.", "Chai in winter.")
    write(vault, rel, mine)
    write(vault, copy, theirs)
    result = conflicts.merge_conflict(vault, copy)
    assert result.status == KEPT_BOTH and result.conflict == "lines"
    assert read(vault, rel) == mine.encode() and read(vault, copy) == theirs.encode()
    [open_] = conflicts.list_open(vault)
    assert (open_.copy, open_.original, open_.tool) == (copy, rel, "dropbox")
    view = conflicts.show(vault, rel)
    assert "-Rooibos in winter." in view.diff and "+Chai in winter." in view.diff
    assert "same lines" in result.summary()


def test_no_base_keeps_both_unless_one_side_only_added(vault):
    rel, copy = "memory/tea.md", f"memory/tea{ST}.md"
    write(vault, rel, MEMORY)
    write(vault, copy, edited(MEMORY, "Green tea", "Sencha"))
    result = conflicts.merge_conflict(vault, copy)
    assert result.status == KEPT_BOTH and result.conflict == "no_base"
    write(vault, copy, MEMORY + "- Oolong in autumn.\n")
    result = conflicts.merge_conflict(vault, copy)
    assert result.status == MERGED
    assert read(vault, rel).decode() == MEMORY + "- Oolong in autumn.\n"
    assert not (vault.root / copy).exists() and trash_files(vault) == {}


def test_both_sides_appending_keeps_both_additions(vault):
    rel, copy = "memory/tea.md", f"memory/tea{ST}.md"
    snapshots.remember(vault, rel, MEMORY.encode())
    write(vault, rel, MEMORY + "- Matcha for guests.\n")
    write(vault, copy, MEMORY + "- Oolong in autumn.\n")
    result = conflicts.merge_conflict(vault, copy)
    assert result.status == MERGED
    assert read(vault, rel).decode() == MEMORY + "- Matcha for guests.\n- Oolong in autumn.\n"
    assert trash_files(vault) == {}  # nothing was dropped, nothing needed keeping


def test_uncertain_base_keeps_both_and_a_wrong_base_loses_nothing(vault):
    # laptop: B -> L1 (adds a line) -> L2 (edits another); phone: B -> P.
    # P won the sync; the copy holds L2. The true common base is B.
    base = MEMORY
    l1 = edited(base, "Green tea in spring.", "Green tea in spring.\nWhite tea on holidays.")
    l2 = edited(l1, "- Never sugar.", "- Never sugar, ever.")
    p = edited(base, "Prefers tea over coffee before noon.", "Prefers tea over coffee all day.")
    rel, copy = "memory/tea.md", f"memory/tea{ST}.md"
    for version in (base, l1, l2, p):  # all that this device saw
        snapshots.remember(vault, rel, version.encode())
    write(vault, rel, p)
    write(vault, copy, l2)
    result = conflicts.merge_conflict(vault, copy)
    # Against L1 the merge would drop "White tea on holidays."; against B it
    # keeps it: the base is uncertain, so a person decides.
    assert result.status == KEPT_BOTH and result.conflict == "base_uncertain"
    assert read(vault, rel) == p.encode() and read(vault, copy) == l2.encode()
    # A device that only ever saw L1 merges against it, and the line the merge
    # drops is in the trash.
    rel2, copy2 = "memory/tea2.md", f"memory/tea2{ST}.md"
    snapshots.remember(vault, rel2, l1.encode())
    write(vault, rel2, p)
    write(vault, copy2, l2)
    result = conflicts.merge_conflict(vault, copy2)
    assert result.status == MERGED and result.trashed
    assert "White tea on holidays." not in read(vault, rel2).decode()
    assert_nothing_lost(vault, [p.encode(), l2.encode()], copy2, rel2)


def test_list_open_shows_copies_not_merged_yet(vault):
    write(vault, "memory/tea.md", MEMORY)
    write(vault, f"memory/tea{ST}.md", MEMORY + "more\n")
    [item] = conflicts.list_open(vault)
    assert (item.status, item.copy, item.to_dict()["path"]) == ("pending", f"memory/tea{ST}.md", f"memory/tea{ST}.md")
    assert conflicts.list_open(vault, scan=False) == []
    (vault.root / f"memory/tea{ST}.md").unlink()
    assert conflicts.list_open(vault) == []


def test_crlf_bom_note_merges_byte_faithfully(vault):
    rel, copy = "notes/Plain note.md", "notes/Plain note (conflicted copy 2026-11-21 101512).md"
    base = "\ufeff# Plain note\r\nfirst line\r\nsecond line\r\nthird line\r\n"
    mine = base.replace("first line", "first line, edited here")
    theirs = base + "fourth line\r\n"
    snapshots.remember(vault, rel, base.encode())
    write(vault, rel, mine)
    write(vault, copy, theirs)
    result = conflicts.merge_conflict(vault, copy)
    assert result.status == MERGED
    assert read(vault, rel) == (mine + "fourth line\r\n").encode()


def test_front_matter_conflict_and_key_merge(vault):
    rel, copy = "memory/tea.md", f"memory/tea{ST}.md"
    snapshots.remember(vault, rel, MEMORY.encode())
    write(vault, rel, edited(MEMORY, "title: Tea", "title: Tea habits"))
    write(vault, copy, edited(MEMORY, "title: Tea", "title: Tea, mostly"))
    result = conflicts.merge_conflict(vault, copy)
    assert result.status == KEPT_BOTH and result.conflict == "front_matter" and "title" in result.reason
    # A key changed on one side only, a key added on the other: merged.
    write(vault, rel, edited(MEMORY, "tier: long_term", "tier: semantic"))
    write(vault, copy, MEMORY.replace("---\n\nPrefers", "source: \"[[chat]]\"\n---\n\nPrefers"))
    result = conflicts.merge_conflict(vault, copy)
    assert result.status == MERGED
    meta = note.parse(read(vault, rel)).meta
    assert meta["tier"] == "semantic" and meta["source"] == "[[chat]]"


def test_invalid_notes_are_never_merged(vault):
    rel, copy = "memory/tea.md", f"memory/tea{ST}.md"
    write(vault, rel, MEMORY)
    broken = "---\ntitle: [unclosed\n---\nbody\n"
    write(vault, copy, broken)
    result = conflicts.merge_conflict(vault, copy)
    assert result.status == NEEDS_PERSON and result.conflict == "unparseable"
    assert read(vault, rel) == MEMORY.encode() and read(vault, copy) == broken.encode()
    write(vault, copy, b"\x89PNG\r\n\x1a\n\x00\x00binary")
    result = conflicts.merge_conflict(vault, copy)
    assert result.status == NEEDS_PERSON and result.conflict == "binary"
    assert {c.conflict for c in conflicts.list_open(vault)} == {"binary"}
    with pytest.raises(Exception, match="keep mine or theirs"):
        conflicts.resolve(vault, copy, "both")
    assert conflicts.resolve(vault, copy, "mine").trashed
    assert read(vault, rel) == MEMORY.encode() and not (vault.root / copy).exists()


def test_missing_original_and_vanished_copy(vault):
    copy = f"memory/gone{ST}.md"
    write(vault, copy, MEMORY)
    result = conflicts.merge_conflict(vault, copy)
    assert result.status == NEEDS_PERSON and result.conflict == "missing_original"
    conflicts.resolve(vault, copy, "theirs")
    assert read(vault, "memory/gone.md") == MEMORY.encode() and not (vault.root / copy).exists()
    assert conflicts.merge_conflict(vault, copy).status == GONE


def test_identical_copy_is_just_removed(vault):
    rel, copy = "SOUL.md", f"SOUL{ST}.md"
    write(vault, copy, read(vault, rel))
    result = conflicts.merge_conflict(vault, copy)
    assert result.status == MERGED and not result.written and not (vault.root / copy).exists()


# -- settling by hand -----------------------------------------------------------------


@pytest.fixture
def open_conflict(vault):
    rel, copy = "memory/tea.md", f"memory/tea{ST}.md"
    mine = edited(MEMORY, "Black tea in winter.", "Rooibos in winter.")
    theirs = edited(edited(MEMORY, "Black tea in winter.", "Chai in winter."), "title: Tea", "title: Chai")
    write(vault, rel, mine)
    write(vault, copy, theirs)
    assert conflicts.merge_conflict(vault, copy).status == KEPT_BOTH
    return vault, rel, copy, mine.encode(), theirs.encode()


def test_resolve_mine(open_conflict):
    vault, rel, copy, mine, theirs = open_conflict
    result = conflicts.resolve(vault, copy, "mine")
    assert result.status == RESOLVED and read(vault, rel) == mine and not (vault.root / copy).exists()
    assert list(trash_files(vault).values()) == [theirs]
    assert conflicts.list_open(vault) == []


def test_resolve_theirs(open_conflict):
    vault, rel, copy, mine, theirs = open_conflict
    conflicts.resolve(vault, rel, "theirs")
    assert read(vault, rel) == theirs and not (vault.root / copy).exists()
    assert list(trash_files(vault).values()) == [mine]


def test_resolve_both(open_conflict):
    vault, rel, copy, mine, theirs = open_conflict
    conflicts.resolve(vault, copy, "both")
    text = read(vault, rel).decode()
    assert text.startswith(mine.decode())
    assert "## Other version, from the conflict copy" in text and "<<<<<<<" not in text
    assert "Chai in winter." in text and "title: Chai" in text
    assert note.parse(read(vault, rel)).meta["title"] == "Tea"
    assert not (vault.root / copy).exists() and trash_files(vault) == {}
    assert_nothing_lost(vault, [mine, theirs], copy, rel)


def test_resolve_rejects_bad_input(open_conflict):
    vault, rel, copy, *_ = open_conflict
    with pytest.raises(Exception, match="--keep"):
        conflicts.resolve(vault, copy, "newest")
    with pytest.raises(Exception, match="no conflict copy"):
        conflicts.resolve(vault, "memory/other.md", "mine")


# -- nothing is lost, over many random edits ----------------------------------------------

WORDS = ["tea", "coffee", "milk", "honey", "- item", "", "## Heading", "sugar", "lemon", "water"]


def random_edit(rng: random.Random, lines: list[str], n: int) -> list[str]:
    lines = list(lines)
    for _ in range(n):
        op = rng.choice(("insert", "delete", "replace", "append"))
        new = f"{rng.choice(WORDS)} {rng.randrange(1000)}"
        i = rng.randrange(len(lines) + 1)
        if op == "insert":
            lines.insert(i, new)
        elif op == "append":
            lines.append(new)
        elif lines and i < len(lines):
            if op == "delete":
                del lines[i]
            else:
                lines[i] = new
    return lines


def test_random_merges_lose_nothing(vault):
    rng = random.Random(20261121)
    outcomes = collections.Counter()
    for case in range(60):
        base_lines = [f"{rng.choice(WORDS)} {i}" for i in range(rng.randrange(0, 12))]
        mine_lines = random_edit(rng, base_lines, rng.randrange(0, 4))
        theirs_lines = random_edit(rng, base_lines, rng.randrange(0, 4))
        fm = f"---\ntype: memory\ntitle: Case {case}\ntags:\n  - t\n---\n"
        base, mine, theirs = (
            (fm + "\n".join(x) + ("\n" if x else "")).encode() for x in (base_lines, mine_lines, theirs_lines)
        )
        rel, copy = f"memory/case-{case}.md", f"memory/case-{case}{ST}.md"
        if case % 4:
            snapshots.remember(vault, rel, base)
        write(vault, rel, mine)
        write(vault, copy, theirs)
        before_trash = set(trash_files(vault))
        result = conflicts.merge_conflict(vault, copy)
        outcomes[result.status] += 1
        if result.status == MERGED:
            assert not (vault.root / copy).exists()
            merged = lines_of(read(vault, rel))
            # Lines a side added are in the merge; the merge invents nothing.
            for side in (mine, theirs):
                for ln in lines_of(side) - lines_of(base if case % 4 else b""):
                    assert ln in merged
            assert not merged - lines_of(mine) - lines_of(theirs)
            # Whatever was dropped is in the trash this merge wrote.
            added = set(trash_files(vault)) - before_trash
            assert bool(added) == bool((lines_of(mine) - merged) or (lines_of(theirs) - merged))
        else:
            assert result.status == KEPT_BOTH
            assert read(vault, rel) == mine and read(vault, copy) == theirs
        assert_nothing_lost(vault, [mine, theirs], copy, rel)
    assert outcomes[MERGED] >= 20 and outcomes[KEPT_BOTH] >= 5, outcomes


def test_random_session_merges_keep_every_message(vault):
    rng = random.Random(7)
    for case in range(15):
        shared = [message(n, "laptop", n) for n in range(rng.randrange(0, 4))]
        mine = shared + [message(100 + n, "laptop", rng.randrange(0, 300)) for n in range(rng.randrange(0, 5))]
        theirs = shared + [message(200 + n, "phone", rng.randrange(0, 300)) for n in range(rng.randrange(0, 5))]
        rel = f"sessions/laptop/s-{case}.md"
        copy = f"sessions/laptop/s-{case} (conflicted copy 2026-11-21 101512).md"
        write(vault, rel, session_bytes(mine, "2026-11-21T10:00:00+00:00", ["a"]))
        write(vault, copy, session_bytes(theirs, "2026-11-21T11:00:00+00:00", ["b"]))
        assert conflicts.merge_conflict(vault, copy).status == MERGED
        _, found = msgs.parse(note.parse(read(vault, rel)).body)
        assert [m.id for m in found] == [m.id for m in msgs.merge(mine, theirs)]
        assert [m.content for m in found] == [m.content for m in msgs.merge(mine, theirs)]


# -- the store of last-seen versions ------------------------------------------------------


def test_seen_store_is_bounded_and_content_addressed(tmp_path):
    store = Seen(tmp_path / "seen", max_entries=10, max_bytes=10**9, max_versions=3)
    for i in range(5):
        store.remember("a.md", f"version {i}".encode())
    assert store.history("a.md") == [b"version 4", b"version 3", b"version 2"]
    store.remember("a.md", b"version 2")  # seen again: newest again
    assert store.last_seen("a.md") == b"version 2"
    store.remember("b.md", b"version 2")  # same bytes, another note: stored once
    assert store.stats()["blobs"] == 3 and store.stats()["entries"] == 4
    for i in range(20):
        store.remember(f"n{i}.md", f"note {i}".encode())
    assert store.stats()["entries"] == 10
    assert store.last_seen("a.md") is None and store.last_seen("n19.md") == b"note 19"
    small = Seen(tmp_path / "small", max_bytes=2000)
    for i in range(50):
        small.remember(f"n{i}.md", random.Random(i).randbytes(200))
    stats = small.stats()
    assert stats["bytes"] <= 2000 and stats["entries"] >= 5
    assert small.last_seen("n49.md") == random.Random(49).randbytes(200)
    assert not Seen(tmp_path / "x", max_file_bytes=10).remember("big.md", b"x" * 11)


def test_seen_store_lives_outside_the_vault(vault, monkeypatch):
    store = snapshots.for_vault(vault)
    assert vault.root not in store.path.parents and store.path.parent == vault.state_dir / "seen"
    with pytest.raises(SnapshotStoreError, match="inside the vault"):
        Seen(vault.root / ".mirrorfs" / "seen", vault_root=vault.root)


# -- the command line -------------------------------------------------------------------------


def test_cli_list_show_resolve_merge(open_conflict):
    import mirrorfs.cli_conflicts  # noqa: F401  (registers the commands)
    from mirrorfs.cli import cli

    vault, rel, copy, mine, theirs = open_conflict
    run = CliRunner().invoke
    args = ["--vault", str(vault.root), "--instance", "laptop", "conflicts"]
    out = run(cli, args + ["list", "--json"])
    assert out.exit_code == 0, out.output
    [item] = json.loads(out.output)
    assert item["copy"] == copy and item["conflict"] == "front_matter"
    out = run(cli, args + ["show", copy])
    assert out.exit_code == 0 and "+Chai in winter." in out.output
    out = run(cli, args + ["resolve", copy, "--keep", "sideways"])
    assert out.exit_code == 2
    write(vault, "memory/x.md", "a\n")
    write(vault, f"memory/x{ST}.md", "a\nb\n")
    out = run(cli, args + ["merge"])
    assert out.exit_code == 0 and "merged conflict copy of memory/x.md: +1 -0 lines" in out.output
    out = run(cli, args + ["resolve", copy, "--keep", "theirs"])
    assert out.exit_code == 0 and "kept theirs" in out.output
    assert read(vault, rel) == theirs
    out = run(cli, args + ["list"])
    assert out.exit_code == 0 and "no open conflicts" in out.output
    out = run(cli, args + ["show", "memory/x.md"])
    assert out.exit_code == 1 and "has no conflict copy" in out.output
