"""Conflicts every device sees: records in the vault, the conflict strategy, one merger per copy,
notes with git conflict markers, probable copies, instance cards."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time

import pytest
from click.testing import CliRunner

from mirrorfs import (
    bridge,
    conflict_owner,
    conflict_records,
    conflict_strategy,
    conflicts,
    merge,
    note,
    trash,
)
from mirrorfs.conflicts import KEPT_BOTH, KEPT_LATEST, MERGED, NEEDS_PERSON, RESOLVED
from mirrorfs.errors import InvalidValueError
from mirrorfs.layout import CONFLICTS_DIR, TRASH_DIR
from mirrorfs.vault import Vault

ST = ".sync-conflict-20261121-100412-ABCDEF7"
NOTE = """---
id: 3f9a1c2b7d4e
type: memory
title: Colour
updated: {updated}
updated_by: {who}
---

Favourite colour: {colour}
"""


def write(vault, rel: str, text: str | bytes) -> None:
    path = vault.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)


def read(vault, rel: str) -> bytes:
    return (vault.root / rel).read_bytes()


def trash_files(vault) -> dict[str, bytes]:
    root = vault.root / TRASH_DIR
    return {p.relative_to(vault.root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()} \
        if root.is_dir() else {}


def clash(vault, mine_time="2026-11-21T10:00:00+00:00", theirs_time="2026-11-21T11:00:00+00:00"):
    """A note and a conflict copy that changed the same line (no earlier version known)."""
    rel, copy = "memory/colour.md", f"memory/colour{ST}.md"
    mine = NOTE.format(updated=mine_time, who="laptop", colour="blue")
    theirs = NOTE.format(updated=theirs_time, who="phone", colour="red")
    write(vault, rel, mine)
    write(vault, copy, theirs)
    return rel, copy, mine.encode(), theirs.encode()


def other_device(vault, tmp_path, monkeypatch, instance="phone") -> Vault:
    """The same vault folder as another device opens it: its own state folder."""
    monkeypatch.setenv("MIRRORFS_STATE_DIR", str(tmp_path / f"state-{instance}"))
    return Vault.open(vault.root, instance=instance)


# -- open conflicts are recorded in the vault -----------------------------------------------------


def test_a_conflict_kept_for_a_person_is_recorded_in_the_vault(vault, tmp_path, monkeypatch):
    rel, copy, mine, theirs = clash(vault)
    result = conflicts.merge_conflict(vault, copy)
    assert result.status == KEPT_BOTH
    [path] = (vault.root / CONFLICTS_DIR).iterdir()
    assert path.name == conflict_records.key(copy) + ".json"
    record = json.loads(path.read_text())
    assert (record["copy"], record["original"], record["status"], record["detected_by"]) == \
        (copy, rel, "kept_both", "laptop")
    assert record["copy_sha256"] == conflict_records.storage.sha256(theirs)
    # Looking again writes nothing new.
    before = path.read_bytes()
    conflicts.merge_conflict(vault, copy)
    assert path.read_bytes() == before

    phone = other_device(vault, tmp_path, monkeypatch)
    [seen] = conflicts.list_open(phone, scan=False)
    assert (seen.copy, seen.status, seen.reason, seen.detected_by) == (copy, "kept_both", result.reason, "laptop")
    assert "no earlier version" in conflicts.show(phone, rel).reason
    # Settled on the phone: gone on every device, the record with it.
    assert conflicts.resolve(phone, rel, "mine").status == RESOLVED
    assert list((vault.root / CONFLICTS_DIR).iterdir()) == []
    assert conflicts.list_open(vault) == []


def test_records_of_copies_not_here_are_hidden_then_pruned(vault):
    rel, copy, *_ = clash(vault)
    conflicts.merge_conflict(vault, copy)
    (vault.root / copy).unlink()  # e.g. a person deleted it in a file manager
    assert conflicts.list_open(vault) == []  # hidden at once (the copy may be on its way)...
    assert len(conflict_records.load(vault.root)) == 1  # ...kept for a while...
    later = time.time() + conflict_records.STALE_SECONDS + 1
    assert conflict_records.prune(vault.store, vault.root, lambda c: False, now=later) == {}
    assert conflict_records.load(vault.root) == {}  # ...then removed


def test_two_devices_recording_one_copy_at_once_are_read_and_cleared_together(vault):
    rel, copy, *_ = clash(vault)
    conflicts.merge_conflict(vault, copy)
    [path] = (vault.root / CONFLICTS_DIR).iterdir()
    twin = json.loads(path.read_text())
    twin.update(detected="2099-11-21T12:00:00+00:00", detected_by="phone")
    # What Syncthing leaves when both devices wrote the record with different bytes.
    (path.parent / f"{path.stem}.sync-conflict-20261121-120000-ABCDEF7.json").write_text(json.dumps(twin))
    [(entry, paths)] = conflict_records.load(vault.root).values()
    assert entry.detected_by == "phone" and len(paths) == 2
    [listed] = conflicts.list_open(vault)
    assert listed.copy == copy
    conflicts.resolve(vault, copy, "both")
    assert list((vault.root / CONFLICTS_DIR).iterdir()) == []


def test_broken_records_are_skipped_and_the_copy_still_listed(vault):
    rel, copy, *_ = clash(vault)
    (vault.root / CONFLICTS_DIR).mkdir(parents=True)
    (vault.root / CONFLICTS_DIR / "0123456789abcdef.json").write_text("{half a record")
    [item] = conflicts.list_open(vault)
    assert (item.copy, item.status) == (copy, "pending")


# -- the conflict strategy --------------------------------------------------------------------------


def test_strategy_is_a_vault_setting_set_without_touching_other_lines(vault):
    config = vault.root / ".mirrorfs" / "config.yaml"
    config.write_bytes(config.read_bytes() + b"# my comment\npresence: {active: 60}\n")
    before = config.read_bytes()
    assert conflict_strategy.current(vault.root) == "merge"
    conflict_strategy.set_strategy(vault.store, vault.root, "latest")
    assert config.read_bytes() == before + b"conflict_strategy: latest\n"
    assert conflict_strategy.current(vault.root) == "latest"
    with pytest.raises(InvalidValueError, match="one of latest, merge, manual"):
        conflict_strategy.set_strategy(vault.store, vault.root, "newest")
    config.write_bytes(before + b"conflict_strategy: newest\n")
    with pytest.raises(InvalidValueError, match="newest"):
        conflict_strategy.current(vault.root)


def test_latest_keeps_the_newer_copy_and_trashes_the_note(vault):
    rel, copy, mine, theirs = clash(vault)
    result = conflicts.merge_conflict(vault, copy, strategy="latest")
    assert (result.status, result.keep, result.written) == (KEPT_LATEST, "theirs", True)
    assert read(vault, rel) == theirs and not (vault.root / copy).exists()
    assert list(trash_files(vault).values()) == [mine]
    assert "kept the newer version of memory/colour.md (the conflict copy" in result.summary()


def test_latest_keeps_the_newer_note_and_trashes_the_copy(vault):
    rel, copy, mine, theirs = clash(vault, mine_time="2026-11-21T12:00:00+00:00")
    conflict_strategy.set_strategy(vault.store, vault.root, "latest")
    result = conflicts.merge_conflict(vault, copy)
    assert (result.status, result.keep, result.written) == (KEPT_LATEST, "mine", False)
    assert read(vault, rel) == mine and not (vault.root / copy).exists()
    [(path, data)] = trash_files(vault).items()
    assert data == theirs and path.endswith(copy)
    assert conflicts.list_open(vault) == []


def test_manual_merges_nothing_and_lists_every_copy(vault):
    conflict_strategy.set_strategy(vault.store, vault.root, "manual")
    write(vault, "memory/a.md", "a\n")
    write(vault, f"memory/a{ST}.md", "a\nb\n")  # would merge cleanly
    rel, copy, mine, theirs = clash(vault)
    results = conflicts.merge_all(vault)
    assert {(r.copy, r.status, r.conflict) for r in results} == {
        (f"memory/a{ST}.md", NEEDS_PERSON, "manual"), (copy, NEEDS_PERSON, "manual")}
    assert read(vault, "memory/a.md") == b"a\n" and read(vault, rel) == mine
    listed = conflicts.list_open(vault)
    assert [(c.copy, c.status, c.reason) for c in listed] == [
        (f"memory/a{ST}.md", "needs_person", "the conflict strategy is manual: a person settles every copy"),
        (copy, "needs_person", "the conflict strategy is manual: a person settles every copy")]
    # A person asking for a merge now can still have one.
    [merged, kept] = conflicts.merge_all(vault, strategy="merge")
    assert (merged.status, kept.status) == (MERGED, KEPT_BOTH)


# -- one merge per copy, on whichever device ---------------------------------------------------


def test_merge_trash_entries_are_named_after_the_copy(vault, tmp_path):
    other = Vault.init(tmp_path / "other", name="Mira", instance="phone")
    for v in (vault, other):
        write(v, "memory/colour.md", NOTE.format(updated="2026-11-21T12:00:00+00:00", who="laptop", colour="blue"))
        write(v, f"memory/colour{ST}.md", NOTE.format(updated="2026-11-21T11:00:00+00:00", who="phone",
                                                       colour="red"))
        conflicts.merge_conflict(v, f"memory/colour{ST}.md", strategy="latest")
    assert trash_files(vault) == trash_files(other) and len(trash_files(vault)) == 1
    [path] = trash_files(vault)
    assert path.startswith(f"{TRASH_DIR}/20261121T100412.")  # the copy's own time, then its hash
    assert trash.entry_instance(path.split("/")[2]) is None  # nobody removed anything


def test_a_merge_entry_already_filled_by_another_device_is_the_one(vault):
    entry = trash.merge_entry(f"memory/x{ST}.md", "ab" * 32)
    first = trash.put(vault, "memory/x.md", b"old\n", entry=entry)
    assert trash.put(vault, "memory/x.md", b"old\n", entry=entry) == first
    with pytest.raises(Exception):
        trash.put(vault, "memory/x.md", b"other bytes\n", entry=entry)
    write(vault, f"memory/x{ST}.md", "copy\n")
    (vault.root / first).parent.joinpath(f"x{ST}.md").write_bytes(b"copy\n")  # the other device's move arrived
    sha = conflict_records.storage.sha256(b"copy\n")
    trash.move(vault, f"memory/x{ST}.md", sha, entry=entry)
    assert not (vault.root / f"memory/x{ST}.md").exists()
    assert len(trash_files(vault)) == 2


def _card(vault, name: str, status: str, seen: dt.datetime) -> None:
    meta = {"id": name * 2, "type": "instance", "title": name, "instance": name, "status": status,
            "last_seen": seen.isoformat(), "updated": seen.isoformat(), "updated_by": name, "intentions": []}
    write(vault, f"instances/{name}.md", note.new(meta, f"Card of {name}.\n").render())


def test_every_device_picks_the_same_watcher_for_a_copy(vault, tmp_path, monkeypatch):
    now = dt.datetime.now(dt.timezone.utc)
    _card(vault, "laptop", "watching", now)
    _card(vault, "phone", "watching", now)
    _card(vault, "tablet", "idle", now)  # no watcher: never picked
    _card(vault, "desk", "watching", now - dt.timedelta(days=1))  # a stale card: never picked
    phone = other_device(vault, tmp_path, monkeypatch)
    assert conflict_owner.watchers(vault) == conflict_owner.watchers(phone) == ["laptop", "phone"]
    picks = set()
    for n in range(40):
        copy, sha = f"memory/n{n}{ST}.md", f"{n:064x}"
        chosen = conflict_owner.merger(vault, copy, sha)
        assert conflict_owner.merger(phone, copy, sha) == chosen
        picks.add(chosen)
    assert picks == {"laptop", "phone"}  # the work is spread, and each copy has exactly one merger


# -- notes holding git conflict markers -------------------------------------------------------


MARKED = ("---\nid: 3f9a1c2b7d4e\ntype: memory\ntitle: Colour\n---\n\nIntro.\n"
          "<<<<<<< HEAD\nFavourite colour: blue\n=======\nFavourite colour: red\n>>>>>>> origin/main\n")


def test_a_note_with_markers_is_listed_shown_and_settled(vault, tmp_path, monkeypatch):
    write(vault, "memory/colour.md", MARKED)
    write(vault, "memory/fine.md", "no markers\n")
    [item] = conflicts.list_open(vault)
    assert (item.copy, item.original, item.tool, item.status) == ("memory/colour.md", "memory/colour.md", "git",
                                                                   "markers")
    assert conflicts.list_open(vault, scan=False) == []
    view = conflicts.show(vault, "memory/colour.md")
    assert "-Favourite colour: blue" in view.diff and "+Favourite colour: red" in view.diff
    assert "(HEAD)" in view.diff and "(origin/main)" in view.diff
    overview = bridge.format_overview(bridge.bridge_overview(vault))
    assert "Open conflicts\n  memory/colour.md  (git conflict markers): the note holds git conflict markers" in overview
    # Seen from another device too (the note itself is what syncs).
    phone = other_device(vault, tmp_path, monkeypatch)
    assert [c.copy for c in conflicts.list_open(phone)] == ["memory/colour.md"]
    result = conflicts.resolve(phone, "memory/colour.md", "both")
    text = read(vault, "memory/colour.md").decode()
    assert "<<<<<<<" not in text and text.startswith(MARKED.split("<<<<<<<")[0] + "Favourite colour: blue\n")
    assert "## Other version, from the other side of a git merge (`origin/main`)" in text
    assert "Favourite colour: red" in text and result.status == RESOLVED and result.trashed == []
    assert conflicts.list_open(phone) == [] and conflicts.list_open(vault) == []


@pytest.mark.parametrize("keep,kept,dropped", [("mine", "blue", "red"), ("theirs", "red", "blue")])
def test_keeping_one_side_of_markers_trashes_the_marked_note(vault, keep, kept, dropped):
    write(vault, "memory/colour.md", MARKED)
    conflicts.resolve(vault, "memory/colour.md", keep)
    text = read(vault, "memory/colour.md").decode()
    assert f"Favourite colour: {kept}" in text and dropped not in text and "<<<<<<<" not in text
    assert list(trash_files(vault).values()) == [MARKED.encode()]


def git_markers(tmp_path, base: bytes, ours: bytes, theirs: bytes) -> bytes:
    """What a pull without the mirrorfs driver leaves: git's own three-way merge, markers and all."""
    paths = []
    for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    done = subprocess.run(["git", "merge-file", "-p", "-L", "HEAD", "-L", "base", "-L", "origin/main", *paths],
                          capture_output=True, check=False)
    assert done.returncode > 0, "git merged without a conflict"
    return done.stdout


def test_merging_markers_of_a_session_is_the_union_of_messages(vault, tmp_path):
    s = vault.sessions.create("Chat")
    s.add_message("user", "hello")
    common = s.path.read_bytes()
    s.add_message("user", "laptop says")
    ours = s.path.read_bytes()
    s.path.write_bytes(common)
    s = vault.sessions.load(s.id)
    s.add_message("user", "phone says")
    theirs = s.path.read_bytes()
    s.path.write_bytes(git_markers(tmp_path, common, ours, theirs))
    rel = s.relpath
    assert [c.copy for c in conflicts.list_open(vault)] == [rel]
    [result] = conflicts.merge_all(vault)
    assert (result.status, result.added_messages) == (MERGED, 1)
    assert "merged git conflict markers in" in result.summary()
    got = [m.content for m in vault.sessions.load(s.id).get_messages()]
    assert sorted(got) == ["hello", "laptop says", "phone says"] and "<<<<<<<" not in s.path.read_text()
    assert conflicts.list_open(vault) == []


def test_merging_markers_of_a_same_line_clash_changes_nothing(vault):
    write(vault, "memory/colour.md", MARKED)
    [result] = conflicts.merge_all(vault)
    assert result.status == "markers" and read(vault, "memory/colour.md") == MARKED.encode()


# -- copies whose name a note could have -----------------------------------------------------------


def test_icloud_style_copy_with_the_same_id_merges(vault):
    mine = NOTE.format(updated="2026-11-21T10:00:00+00:00", who="laptop", colour="blue")
    write(vault, "memory/colour.md", mine)
    write(vault, "memory/colour 2.md", mine + "\nAlso likes teal.\n")
    write(vault, "memory/Chapter.md", "plain\n")
    write(vault, "memory/Chapter 2.md", "plain too\n")  # no id: an ordinary note
    assert [c.relpath for c in conflicts.find_conflicts(vault)] == ["memory/colour 2.md"]
    [result] = conflicts.merge_all(vault)
    assert result.status == MERGED and not (vault.root / "memory/colour 2.md").exists()
    assert b"Also likes teal." in read(vault, "memory/colour.md")
    assert (vault.root / "memory/Chapter 2.md").exists()


# -- instance cards ---------------------------------------------------------------------------------


def test_instance_cards_take_each_instances_latest():
    def card(status: str, updated: str, intentions: list[str], body: str = "Card.\n") -> bytes:
        meta = {"id": "0c1d2e3f4a5b", "type": "instance", "title": "phone", "instance": "phone", "status": status,
                "updated": updated, "last_seen": updated, "updated_by": "phone", "intentions": intentions}
        return note.new(meta, body).render()

    base = card("idle", "2026-11-21T10:00:00+00:00", ["Book flights (since 2026-11-20)"])
    mine = card("watching", "2026-11-21T11:00:00+00:00", ["Book flights (since 2026-11-20)", "Pack (since 2026-11-21)"])
    theirs = card("away", "2026-11-21T12:00:00+00:00", [])  # flights done, a later status
    plan = merge.plan_merge(mine, theirs, [base])
    assert (plan.status, plan.kind) == (MERGED, "card")
    meta = note.parse(plan.data).meta
    assert meta["status"] == "away" and meta["last_seen"] == "2026-11-21T12:00:00+00:00"
    assert meta["intentions"] == ["Pack (since 2026-11-21)"]
    clash_plan = merge.plan_merge(card("a", "2026-11-21T11:00:00+00:00", [], "Mine.\n"),
                                  card("b", "2026-11-21T12:00:00+00:00", [], "Theirs.\n"), [base])
    assert clash_plan.status == KEPT_BOTH


# -- the command line ---------------------------------------------------------------------------------


def test_cli_strategy_and_lists_with_who_noticed(vault):
    from mirrorfs.cli import cli

    run = CliRunner().invoke
    args = ["--vault", str(vault.root), "--instance", "laptop", "conflicts"]
    assert run(cli, args + ["strategy"]).output == "conflict strategy: merge\n"
    assert run(cli, args + ["strategy", "manual"]).output == "conflict strategy: manual\n"
    out = run(cli, args + ["strategy", "newest"])
    assert out.exit_code == 2 and "'newest' is not one of 'latest', 'merge', 'manual'" in out.output
    assert json.loads(run(cli, args + ["strategy", "--json"]).output) == {"strategy": "manual"}
    rel, copy, *_ = clash(vault)
    out = run(cli, args + ["merge"])
    assert out.exit_code == 0 and "kept for a person: the conflict strategy is manual" in out.output
    out = run(cli, args + ["list"])
    assert out.output == (f"{rel}  <-  {copy}  [syncthing]\n"
                          "    the conflict strategy is manual: a person settles every copy (noticed by laptop)\n")
    write(vault, "memory/other.md", MARKED)
    out = run(cli, args + ["list"])
    assert "memory/other.md  <-  git conflict markers  [git]\n" in out.output
    out = run(cli, args + ["merge", "--strategy", "latest"])
    assert out.exit_code == 0 and "kept the newer version of memory/colour.md (the conflict copy" in out.output
