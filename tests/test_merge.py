"""The pure merges of mirrorfs.merge on their own: bytes and strings in, bytes and strings out."""

from __future__ import annotations

import datetime as dt

import pytest

from mirrorfs import merge, note
from mirrorfs import messages as msgs
from mirrorfs.errors import InvalidValueError
from mirrorfs.merge import KEPT_BOTH, MERGED, NEEDS_PERSON, RESOLVED

BASE = "one\ntwo\nthree\nfour\nfive\n"


def text(*lines: str, nl: str = "\n") -> str:
    return "".join(line + nl for line in lines)


# -- three-way text (diff3) ------------------------------------------------------------


def test_changes_to_different_lines_merge_cleanly():
    mine = text("one", "TWO", "three", "four", "five")
    theirs = text("one", "two", "three", "FOUR", "five")
    assert merge.merge_text(BASE, mine, theirs) == (text("one", "TWO", "three", "FOUR", "five"), 0)


def test_the_same_change_on_both_sides_is_taken_once():
    mine = theirs = text("one", "TWO", "three", "four", "five")
    assert merge.merge_text(BASE, mine, theirs) == (mine, 0)
    mine2 = text("one", "TWO", "three", "four", "five", "six")
    assert merge.merge_text(BASE, mine2, theirs) == (mine2, 0)


def test_a_same_line_clash_is_one_conflict_and_keeps_mine_there():
    mine = text("one", "two", "THREE (mine)", "four", "five")
    theirs = text("one", "two", "THREE (theirs)", "four", "FIVE")
    result, conflicts = merge.merge_text(BASE, mine, theirs)
    assert conflicts == 1
    assert result == text("one", "two", "THREE (mine)", "four", "FIVE")


def test_insertions_at_the_same_place_keep_both_mine_first():
    mine = text("one", "two", "mine a", "mine b", "three", "four", "five")
    theirs = text("one", "two", "theirs a", "three", "four", "five")
    result, conflicts = merge.merge_text(BASE, mine, theirs)
    assert conflicts == 0
    assert result == text("one", "two", "mine a", "mine b", "theirs a", "three", "four", "five")
    # Shared lines inside both insertions appear once.
    mine = text("one", "two", "x", "shared", "three", "four", "five")
    theirs = text("one", "two", "shared", "y", "three", "four", "five")
    assert merge.merge_text(BASE, mine, theirs)[0] == text("one", "two", "x", "shared", "y", "three", "four", "five")


def test_deletions():
    # A deletion on one side and an edit elsewhere on the other: both happen.
    mine = text("one", "three", "four", "five")
    theirs = text("one", "two", "three", "four", "FIVE")
    assert merge.merge_text(BASE, mine, theirs) == (text("one", "three", "four", "FIVE"), 0)
    # Both delete the same line: gone once, no conflict.
    both = text("one", "two", "four", "five")
    assert merge.merge_text(BASE, both, both) == (both, 0)
    assert merge.merge_text(BASE, both, text("one", "two", "four", "five", "six")) == (
        text("one", "two", "four", "five", "six"), 0)
    # One deletes a line the other changed: a clash, not a silent loss.
    result, conflicts = merge.merge_text(BASE, text("one", "three", "four", "five"), text("one", "TWO", "three", "four", "five"))
    assert conflicts == 1 and result == text("one", "three", "four", "five")
    # Everything deleted on one side, nothing changed on the other.
    assert merge.merge_text(BASE, "", BASE) == ("", 0)


def test_crlf_lines_merge_with_the_newline_asked_for():
    crlf_base = text("one", "two", "three", nl="\r\n")
    mine = text("ONE", "two", "three", nl="\r\n")
    theirs = text("one", "two", "THREE", nl="\r\n")
    assert merge.merge_text(crlf_base, mine, theirs, "\r\n") == (text("ONE", "two", "THREE", nl="\r\n"), 0)
    assert merge.same_newlines("a\nb\r\nc", "\r\n") == "a\r\nb\r\nc"
    assert merge.same_newlines("a\r\nb\nc", "\n") == "a\nb\nc"


def test_a_crlf_note_merges_with_an_lf_copy_and_stays_crlf():
    base = note.parse(b"---\ntitle: T\n---\none\ntwo\nthree\n")
    mine = note.parse(b"---\r\ntitle: T\r\n---\r\nONE\r\ntwo\r\nthree\r\n")
    theirs = note.parse(b"---\ntitle: T\n---\none\ntwo\nTHREE\n")
    merged, conflict, reason = merge.merge_note(base, mine, theirs)
    assert conflict is None and reason == ""
    assert merged.render() == b"---\r\ntitle: T\r\n---\r\nONE\r\ntwo\r\nTHREE\r\n"


def test_a_last_line_without_newline_matches_the_same_line_with_one():
    base = "one\nsep\ntwo"
    assert merge.merge_text(base, "ONE\nsep\ntwo", "one\nsep\ntwo\nthree\n") == ("ONE\nsep\ntwo\nthree\n", 0)
    assert merge.merge_text(base, "ONE\nsep\ntwo", "one\nsep\nTWO") == ("ONE\nsep\nTWO", 0)
    # Adjacent lines changed on the two sides have no unchanged line between them: one clash (as in git).
    assert merge.merge_text("one\ntwo", "ONE\ntwo", "one\nTWO") == ("ONE\ntwo", 1)


def test_without_a_base_only_a_pure_addition_merges():
    assert merge.merge_text(None, BASE, BASE + "six\n") == (BASE + "six\n", 0)
    assert merge.merge_text(None, BASE + "six\n", BASE) == (BASE + "six\n", 0)
    assert merge.merge_text(None, text("zero", "one"), text("one", "two")) == (text("zero", "one"), 1)


def test_diff3_chunks_align_on_lines_both_sides_kept():
    base, a, b = ["1\n", "2\n", "3\n"], ["1\n", "2a\n", "3\n"], ["1\n", "2\n", "3\n", "4\n"]
    assert list(merge.diff3(base, a, b)) == [
        (["1\n"], ["1\n"], ["1\n"]),
        (["2\n"], ["2a\n"], ["2\n"]),
        (["3\n"], ["3\n"], ["3\n"]),
        ([], [], ["4\n"]),
    ]


# -- front matter ------------------------------------------------------------------------


def test_a_key_changed_on_one_side_takes_that_change():
    base = {"title": "Tea", "kind": "fact"}
    merged, conflicts = merge.merge_meta(base, {"title": "Tea", "kind": "preference"}, {"title": "Chai", "kind": "fact"})
    assert (merged, conflicts) == ({"title": "Chai", "kind": "preference"}, [])
    # Removed on one side, untouched on the other: removed.
    assert merge.merge_meta(base, {"title": "Tea"}, base) == ({"title": "Tea"}, [])


def test_a_key_changed_differently_on_both_sides_is_a_conflict_unless_newer_wins():
    base = {"title": "Tea", "updated": "2026-11-21T10:00:00+00:00"}
    mine = {"title": "Rooibos", "updated": "2026-11-21T11:00:00+00:00"}
    theirs = {"title": "Chai", "updated": "2026-11-21T12:00:00+00:00"}
    merged, conflicts = merge.merge_meta(base, mine, theirs)
    assert conflicts == ["title"] and merged["title"] == "Rooibos"
    merged, conflicts = merge.merge_meta(base, mine, theirs, newer_wins=True)
    assert conflicts == [] and merged == theirs


def test_set_keys_are_unioned_and_removals_honoured_against_a_base():
    base = {"tags": ["a", "b"], "aliases": ["x"]}
    mine = {"tags": ["a", "b", "c"], "aliases": ["x"]}
    theirs = {"tags": ["b", "d"], "aliases": ["x", "y"]}
    merged, conflicts = merge.merge_meta(base, mine, theirs)
    # "a" was removed on their side and kept unchanged on mine: removed.
    assert conflicts == [] and merged == {"tags": ["b", "c", "d"], "aliases": ["x", "y"]}
    # Without a base (or with union_tags, as sessions merge) nothing is removed.
    assert merge.merge_meta(None, mine, theirs)[0]["tags"] == ["a", "b", "c", "d"]
    assert merge.merge_meta(base, mine, theirs, union_tags=True)[0]["tags"] == ["a", "b", "c", "d"]
    # A set key present on one side only.
    assert merge.merge_meta(None, {"tags": ["a"]}, {})[0] == {"tags": ["a"]}


def test_the_newer_updated_wins_and_updated_by_follows_it():
    mine = {"updated": dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.timezone.utc), "updated_by": "laptop"}
    theirs = {"updated": "2026-11-23T09:00:00+00:00", "updated_by": "phone", "last_seen": "2026-11-23T09:00:00+00:00"}
    merged, conflicts = merge.merge_meta(None, mine, theirs)
    assert conflicts == []
    assert merged == {"updated": "2026-11-23T09:00:00+00:00", "updated_by": "phone",
                      "last_seen": "2026-11-23T09:00:00+00:00"}
    assert merge.newer(mine, theirs) == "theirs" and merge.newer(theirs, mine) == "mine"
    # An unreadable time loses to a readable one.
    assert merge.merge_meta(None, {"updated": "soon"}, {"updated": "2026-11-23T09:00:00+00:00"})[0] == {
        "updated": "2026-11-23T09:00:00+00:00"}


def test_apply_meta_changes_only_the_keys_that_differ():
    n = note.parse(b"---\n# kept comment\ntitle: Tea   # inline\nkind: fact\ntags: [a]\n---\nbody\n")
    merged = merge.apply_meta(n, {"title": "Tea", "tags": ["a", "b"]})
    assert merged.render() == b"---\n# kept comment\ntitle: Tea   # inline\ntags: [a, b]\n---\nbody\n"


# -- sessions -----------------------------------------------------------------------------

T0 = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.timezone.utc)


def message(n: int, instance: str, minutes: int, content: str | None = None, tokens: int | None = None) -> msgs.Message:
    return msgs.Message(
        id=f"20261121T1000{minutes:02d}000-{n:06x}", role="user", time=T0 + dt.timedelta(minutes=minutes),
        instance=instance, content=content or f"message {n}", meta={"tokens": tokens} if tokens else {},
    )


def session(messages: list[msgs.Message], updated: str = "2026-11-21T10:00:00+00:00", **meta) -> note.Note:
    data = {"type": "session", "title": "Trip", "updated": updated, "updated_by": "laptop", **meta}
    return note.new(data).with_body("".join(msgs.render(m) for m in messages))


def ids(n: note.Note) -> list[str]:
    return [m.id for m in msgs.parse(n.body)[1]]


def test_session_union_by_id_ordered_by_time_each_message_once():
    shared = [message(1, "laptop", 0), message(2, "laptop", 1)]
    mine = session(shared + [message(3, "laptop", 10), message(5, "laptop", 30)])
    theirs = session(shared + [message(4, "phone", 20), message(6, "phone", 40)])
    result = merge.merge_sessions(mine, theirs, None)
    assert ids(result.note) == [message(n, "", m).id for n, m in ((1, 0), (2, 1), (3, 10), (4, 20), (5, 30), (6, 40))]
    assert (result.added, result.edited, result.preamble_conflict) == (2, [], None)
    # The same messages on both sides (a duplicate delivery): nothing added, bytes kept.
    again = merge.merge_sessions(result.note, result.note, None)
    assert again.added == 0 and again.note.render() == result.note.render()


def test_a_merge_that_only_adds_keeps_the_original_bytes_and_appends():
    mine = session([message(1, "laptop", 0)])
    theirs = session([message(1, "laptop", 0), message(2, "phone", 5)], updated="2026-11-21T10:05:00+00:00")
    merged = merge.merge_sessions(mine, theirs, None).note
    assert merged.body.startswith(mine.body) and ids(merged) == ids(theirs)
    assert merged.meta["updated"] == "2026-11-21T10:05:00+00:00"


def test_the_other_version_of_a_message_changed_on_one_side_is_taken():
    base = session([message(1, "laptop", 0, "Lisbon")])
    mine = session([message(1, "laptop", 0, "Lisbon")])
    theirs = session([message(1, "laptop", 0, "Lisbon, said Sam")])
    result = merge.merge_sessions(mine, theirs, base)
    assert result.edited == [] and msgs.parse(result.note.body)[1][0].content == "Lisbon, said Sam"
    result = merge.merge_sessions(theirs, mine, base)  # the edit is on "mine" this time
    assert result.edited == [] and msgs.parse(result.note.body)[1][0].content == "Lisbon, said Sam"


def test_a_message_edited_on_both_sides_is_reported_and_can_hold_both_versions():
    mine = session([message(1, "laptop", 0, "Lisbon")])
    theirs = session([message(1, "laptop", 0, "Sevilla")])
    result = merge.merge_sessions(mine, theirs, None)
    assert result.edited == [message(1, "", 0).id]
    assert msgs.parse(result.note.body)[1][0].content == "Lisbon"
    assert msgs.parse(merge.merge_sessions(mine, theirs, None, prefer="theirs").note.body)[1][0].content == "Sevilla"
    both = merge.merge_sessions(mine, theirs, None,
                                both_from=merge.copy_source("x.sync-conflict-20261121-100412-ABCDEF7.md"))
    assert msgs.parse(both.note.body)[1][0].content == (
        "Lisbon\n\n_Other version of this message, from the conflict copy "
        "`x.sync-conflict-20261121-100412-ABCDEF7.md`:_\n\nSevilla")
    plan = merge.plan_merge(mine.render(), theirs.render())
    assert (plan.status, plan.kind, plan.conflict) == (KEPT_BOTH, "session", "messages")


def test_session_tokens_are_the_sum_over_the_merged_messages():
    mine = session([message(1, "laptop", 0, tokens=3)], tokens=3)
    theirs = session([message(1, "laptop", 0, tokens=3), message(2, "phone", 5, tokens=4)], tokens=7)
    assert merge.merge_sessions(mine, theirs, None).note.meta["tokens"] == 7


def test_a_preamble_changed_on_both_sides_is_in_doubt():
    mine = session([message(1, "laptop", 0)]).with_body("Mine first.\n" + msgs.render(message(1, "laptop", 0)))
    theirs = session([message(1, "laptop", 0)]).with_body("Theirs first.\n" + msgs.render(message(1, "laptop", 0)))
    result = merge.merge_sessions(mine, theirs, None)
    assert result.preamble_conflict == "both sides changed the text before the first message"
    both = merge.merge_sessions(mine, theirs, None, both_from="the branch `phone`")
    assert both.note.body.startswith("Mine first.\nTheirs first.\n")


# -- whole notes and keeping both ------------------------------------------------------------


MEMORY = b"---\ntitle: Tea\ntags: [drinks]\n---\nGreen tea in spring.\nBlack tea in winter.\n"


def test_plan_merge_refuses_what_it_cannot_read_and_mixes_of_types():
    assert merge.plan_merge(MEMORY, MEMORY).status == MERGED
    binary = merge.plan_merge(MEMORY, b"\x00\x01\x02")
    assert (binary.status, binary.conflict, binary.data) == (NEEDS_PERSON, "binary", None)
    broken = merge.plan_merge(MEMORY, b"---\ntitle: [unclosed\n---\nx\n")
    assert (broken.status, broken.conflict) == (NEEDS_PERSON, "unparseable")
    mixed = merge.plan_merge(MEMORY, session([message(1, "laptop", 0)]).render())
    assert (mixed.status, mixed.conflict) == (NEEDS_PERSON, "type")


def test_plan_merge_says_what_each_side_would_lose():
    base = MEMORY
    mine = MEMORY.replace(b"Green tea", b"Sencha")
    theirs = MEMORY + b"Oolong in autumn.\n"
    plan = merge.plan_merge(mine, theirs, [base])
    assert plan.status == MERGED and plan.data == mine + b"Oolong in autumn.\n"
    assert (plan.added_lines, plan.removed_lines) == (1, 0)
    # "Green tea in spring." of the copy is not in the merge: the copy goes to the trash, not away.
    assert plan.lost_from_copy and not plan.lost_from_original
    clash = merge.plan_merge(MEMORY.replace(b"Black", b"Rooibos"), MEMORY.replace(b"Black", b"Chai"), [base])
    assert (clash.status, clash.conflict, clash.data) == (KEPT_BOTH, "lines", None)


def test_keep_both_renders_the_other_version_below_without_markers():
    mine = note.parse(MEMORY.replace(b"Black", b"Rooibos"))
    theirs = note.parse(MEMORY.replace(b"Black", b"Chai").replace(b"title: Tea", b"title: Chai"))
    both = merge.keep_both(mine, theirs, merge.copy_source("tea (Sam's conflicted copy 2026-11-21).md"),
                           dt.date(2026, 11, 21))
    assert both.render().decode() == (
        "---\ntitle: Tea\ntags: [drinks]\n---\nGreen tea in spring.\nRooibos tea in winter.\n"
        "\n## Other version, from the conflict copy `tea (Sam's conflicted copy 2026-11-21).md`\n\n"
        "_Both versions kept by `mirrorfs conflicts resolve --keep both` on 2026-11-21: "
        "edit this note and delete what you do not need._\n\n"
        "Front matter of the other version:\n\n```yaml\ntitle: Chai\ntags: [drinks]\n```\n\n"
        "Green tea in spring.\nChai tea in winter.\n"
    )
    assert "<<<<<<<" not in both.render().decode()


def test_keep_both_of_crlf_notes_stays_crlf_and_skips_equal_front_matter():
    mine = note.parse(b"---\r\ntitle: T\r\n---\r\nmine\r\n")
    theirs = note.parse(b"---\ntitle: T\n---\ntheirs\n")
    rendered = merge.keep_both(mine, theirs, "the branch `phone`", dt.date(2026, 11, 21),
                               kept_by="the mirrorfs git merge driver").render()
    assert b"Front matter" in rendered  # the fences' text differs (CRLF vs LF)
    assert b"## Other version, from the branch `phone`\r\n" in rendered
    assert b"_Both versions kept by the mirrorfs git merge driver on 2026-11-21: " in rendered
    same = merge.keep_both(mine, note.parse(b"---\r\ntitle: T\r\n---\r\ntheirs\r\n"), "t").render()
    assert b"Front matter" not in same and b"\n" not in same.replace(b"\r\n", b"")
    assert same.endswith(b"\r\ntheirs\r\n")


def test_settle_keeps_what_the_person_chose():
    mine, theirs = MEMORY.replace(b"Black", b"Rooibos"), MEMORY.replace(b"Black", b"Chai")
    kept = merge.settle(mine, theirs, "theirs")
    assert (kept.status, kept.data, kept.lost_from_original, kept.lost_from_copy) == (RESOLVED, theirs, True, False)
    both = merge.settle(mine, theirs, "both", copy="tea.sync-conflict-20261121-100412-ABCDEF7.md")
    assert both.data.startswith(mine) and b"Chai tea in winter." in both.data
    assert not both.lost_from_original and not both.lost_from_copy
    with pytest.raises(InvalidValueError, match="cannot keep both"):
        merge.settle(mine, b"\x00binary", "both")
    with pytest.raises(InvalidValueError, match="--keep must be one of mine, theirs, both"):
        merge.settle(mine, theirs, "newest")
