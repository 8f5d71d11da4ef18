"""The table of conflict-copy names (mirrorfs.conflict_names) on its own, one real name per way of naming."""

from __future__ import annotations

import datetime as dt

import pytest

from mirrorfs.conflict_names import (
    SCHEMES,
    TOOLS,
    conflict_original,
    git_copy_name,
    is_conflict_copy,
    parse_conflict_name,
    probable_copy,
)

# (copy, original, tool, device, time, number), as each tool writes them.
REAL_NAMES = [
    # Syncthing >= 0.14: the short id of the device whose version won.
    ("notes/plan.sync-conflict-20261121-100412-ABCDEF7.md", "notes/plan.md", "syncthing", "ABCDEF7",
     dt.datetime(2026, 11, 21, 10, 4, 12), None),
    ("plan.sync-conflict-20240102-030405-Q2W3E4R.md", "plan.md", "syncthing", "Q2W3E4R",
     dt.datetime(2024, 1, 2, 3, 4, 5), None),
    # Syncthing before 0.14: no device id.
    ("plan.sync-conflict-20261121-100412.md", "plan.md", "syncthing", None, dt.datetime(2026, 11, 21, 10, 4, 12), None),
    # ... and a file without an extension.
    ("Makefile.sync-conflict-20261121-100412-ABCDEF7", "Makefile", "syncthing", "ABCDEF7",
     dt.datetime(2026, 11, 21, 10, 4, 12), None),
    # Dropbox: owner, curly apostrophe, numbered copies of one day, old clients without the owner.
    ("plan (Sam's conflicted copy 2026-11-21).md", "plan.md", "dropbox", "Sam", dt.datetime(2026, 11, 21), None),
    ("plan (Sam\u2019s conflicted copy 2026-11-21).md", "plan.md", "dropbox", "Sam", dt.datetime(2026, 11, 21), None),
    ("plan (Sam's conflicted copy 2026-11-21 (1)).md", "plan.md", "dropbox", "Sam", dt.datetime(2026, 11, 21), 1),
    ("plan (Sam Jones's conflicted copy 2026-11-21 (12)).md", "plan.md", "dropbox", "Sam Jones",
     dt.datetime(2026, 11, 21), 12),
    ("plan (conflicted copy 2026-11-21).md", "plan.md", "dropbox", None, dt.datetime(2026, 11, 21), None),
    # Nextcloud desktop: with and without the user name.
    ("plan (conflicted copy 2026-11-21 101512).md", "plan.md", "nextcloud", None,
     dt.datetime(2026, 11, 21, 10, 15, 12), None),
    ("plan (conflicted copy alice 2026-11-21 101512).md", "plan.md", "nextcloud", "alice",
     dt.datetime(2026, 11, 21, 10, 15, 12), None),
    # ownCloud and old Nextcloud clients.
    ("plan_conflict-20261121-101512.md", "plan.md", "nextcloud", None, dt.datetime(2026, 11, 21, 10, 15, 12), None),
    # Obsidian Sync: the device name may hold spaces and apostrophes.
    ("plan (Conflicted copy MyMacBook2 202611211004).md", "plan.md", "obsidian", "MyMacBook2",
     dt.datetime(2026, 11, 21, 10, 4), None),
    ("plan (Conflicted copy Sam's iPhone 15 Pro 202611211004).md", "plan.md", "obsidian", "Sam's iPhone 15 Pro",
     dt.datetime(2026, 11, 21, 10, 4), None),
    # Names that are themselves unusual.
    ("日本語 のノート.sync-conflict-20261121-100412-ABCDEF7.md", "日本語 のノート.md", "syncthing", "ABCDEF7",
     dt.datetime(2026, 11, 21, 10, 4, 12), None),
    ("v2.1 notes (Sam's conflicted copy 2026-11-21).md", "v2.1 notes.md", "dropbox", "Sam", dt.datetime(2026, 11, 21), None),
    # mirrorfs's own git merge driver: the other side of a same-line clash.
    ("memory/colour.git-conflict-20261121-100412-3302770.md", "memory/colour.md", "git", "3302770",
     dt.datetime(2026, 11, 21, 10, 4, 12), None),
    # OneDrive for Linux (abraunegg/onedrive >= 2.5.3): host name, then a 4-digit counter.
    ("file5-devbox-safeBackup-0001.md", "file5.md", "onedrive", "devbox", None, 1),
    ("memory/tea-laptop-safeBackup-0012.md", "memory/tea.md", "onedrive", "laptop", None, 12),
    # Resilio Sync: the version that was there before, numbered when it happens again.
    ("plan.Conflict.md", "plan.md", "resilio", None, None, None),
    ("plan.Conflict1.md", "plan.md", "resilio", None, None, 1),
    ("plan.Conflict 3.md", "plan.md", "resilio", None, None, 3),
    ("plan.Conflict.Conflict.md", "plan.md", "resilio", None, None, None),
]

# Names a note could also have: copies only when the note they name is the same note.
PROBABLE_NAMES = [
    # (copy, original, tool, device, number)
    ("memory/tea 2.md", "memory/tea.md", "icloud", None, 2),
    ("Meeting notes 12.md", "Meeting notes.md", "icloud", None, 12),
    ("memory/tea (1).md", "memory/tea.md", "google_drive", None, 1),
    ("memory/tea-DESKTOP-AB12CDE.md", "memory/tea.md", "onedrive", "DESKTOP-AB12CDE", None),
    ("Les caractères-MacBook Pro de Charlyne-10.md", "Les caractères.md", "onedrive", "MacBook Pro de Charlyne", 10),
    ("sessions/a/2026-11-21-trip-a1b2-MyPC.md", "sessions/a/2026-11-21-trip-a1b2.md", "onedrive", "MyPC", None),
]


@pytest.mark.parametrize("copy,original,tool,device,time,number", REAL_NAMES)
def test_real_names_of_each_tool(copy, original, tool, device, time, number):
    name = parse_conflict_name(copy)
    assert name is not None, copy
    assert (name.relpath, name.original, name.tool, name.device, name.time, name.number) == (
        copy, original, tool, device, time, number)
    assert conflict_original(copy) == original and is_conflict_copy(copy)


def test_every_scheme_of_the_table_is_exercised():
    names = [copy for copy, *_ in REAL_NAMES] + [copy for copy, *_ in PROBABLE_NAMES]
    used = {i for copy in names for i, s in enumerate(SCHEMES) if s.pattern.match(copy.rsplit("/", 1)[-1])}
    assert used == set(range(len(SCHEMES)))
    assert set(TOOLS) == {"syncthing", "dropbox", "nextcloud", "obsidian", "git", "onedrive", "resilio", "icloud",
                          "google_drive"}


@pytest.mark.parametrize("copy,original,tool,device,number", PROBABLE_NAMES)
def test_probable_names_are_copies_only_of_the_same_note(copy, original, tool, device, number):
    assert parse_conflict_name(copy) is None and not is_conflict_copy(copy)
    asked = []

    def same(c, o):
        asked.append(o)
        return o == original

    name = probable_copy(copy, same)
    assert (name.original, name.tool, name.device, name.number) == (original, tool, device, number)
    assert probable_copy(copy, lambda c, o: False) is None
    assert asked[-1] == original


def test_a_host_name_with_hyphens_is_read_by_what_the_folder_holds():
    copy = "file5-onedrive-client-dev-safeBackup-0002.data"
    assert parse_conflict_name(copy).original == "file5-onedrive-client.data"  # no folder to look at
    name = parse_conflict_name(copy, exists=lambda rel: rel == "file5.data")
    assert (name.original, name.device, name.number) == ("file5.data", "onedrive-client-dev", 2)
    slug = "sessions/a/2026-11-21-trip-a1b2-sam-laptop-safeBackup-0001.md"
    assert parse_conflict_name(slug, exists=lambda rel: rel == "sessions/a/2026-11-21-trip-a1b2.md").device == \
        "sam-laptop"


def test_git_copy_names_read_back():
    made = git_copy_name("memory/colour.md", "3302770cb6ee1c4f", dt.datetime(2026, 11, 21, 10, 4, 12))
    assert made == "memory/colour.git-conflict-20261121-100412-3302770.md"
    assert parse_conflict_name(made).original == "memory/colour.md"
    assert git_copy_name("Makefile", "abcdef0", dt.datetime(2026, 1, 2, 3, 4, 5)) == \
        "Makefile.git-conflict-20260102-030405-abcdef0"


def test_a_copy_of_a_copy_names_the_note_at_the_end_of_the_chain():
    # Syncthing synced a Dropbox copy, which then conflicted again: tool and time are the outer name's.
    nested = "memory/plan (Sam's conflicted copy 2026-11-20).sync-conflict-20261121-100412-ABCDEF7.md"
    name = parse_conflict_name(nested)
    assert (name.original, name.tool, name.device, name.time) == (
        "memory/plan.md", "syncthing", "ABCDEF7", dt.datetime(2026, 11, 21, 10, 4, 12))
    twice = "a.sync-conflict-20261121-100412-AAAAAAA.sync-conflict-20261122-090000-BBBBBBB.md"
    assert (parse_conflict_name(twice).original, parse_conflict_name(twice).device) == ("a.md", "BBBBBBB")
    assert conflict_original("x (conflicted copy 2026-11-21 101512) (Sam's conflicted copy 2026-11-22).md") == "x.md"


def test_paths_keep_their_folders_and_accept_os_paths():
    from pathlib import PurePosixPath

    name = parse_conflict_name(PurePosixPath("sessions/phone/2026-11-21-trip.sync-conflict-20261121-100412-ABCDEF7.md"))
    assert name.original == "sessions/phone/2026-11-21-trip.md"
    assert name.to_dict() == {
        "relpath": "sessions/phone/2026-11-21-trip.sync-conflict-20261121-100412-ABCDEF7.md",
        "original": "sessions/phone/2026-11-21-trip.md", "tool": "syncthing", "device": "ABCDEF7",
        "time": "2026-11-21T10:04:12", "number": None,
    }


@pytest.mark.parametrize("path", [
    "plan.md",
    "notes on a conflicted copy.md",
    "conflicted copy 2026-11-21.md",
    "why we had a conflicted copy (2026-11-21).md",
    "plan (conflicted copy draft).md",
    "plan (Sam's conflicted copy).md",
    "plan (conflicted copy 2026-13-45).md",  # no such date
    "plan (conflicted copy 2026-11-21 256100).md",  # no such time
    "plan (Conflicted copy 2026).md",
    "plan (Conflicted copy Phone 2026112110).md",  # Obsidian's stamp has 12 digits
    "plan.sync-conflict-2026-11-21.md",
    "plan.sync-conflict-20261121-1004-ABCDEF7.md",
    "plan.sync-conflict-20261121-100412-abcdef7.md",  # device ids are upper case
    "plan.sync-conflict-20261121-100412-ABCDEF78.md",  # ... and seven characters
    "plan_conflict-2026-11-21.md",
    "resolving a conflict-20261121.md",
    "sync-conflict-notes.md",
    ".sync-conflict-20261121-100412-ABCDEF7.md",  # no original name
    "(Sam's conflicted copy 2026-11-21).md",  # no original name
    "plan.Conflicts.md",
    "Conflict.md",
    "my-safeBackup-notes.md",
    "plan-laptop-safeBackup-1.md",  # the counter has four digits
    "plan.git-conflict-20261121-100412-ABCDEF1.md",  # lower-case hex only
    "Chapter 2.md",  # iCloud's form: a copy only when it is the same note (probable_copy)
    "plan (1).md",
    "trip-planning.md",
])
def test_names_that_only_look_like_copies(path):
    assert parse_conflict_name(path) is None
    assert conflict_original(path) is None and not is_conflict_copy(path)
