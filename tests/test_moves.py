"""Move pairing on its own: rename hints, folder renames and content twins, no files or threads.

Whether a path is gone from disk is a set the test controls.
"""

from __future__ import annotations

import hashlib

from mirrorfs.moves import EMPTY_SHA256, MoveHints, folder_moved, pair_hinted, twin
from mirrorfs.signatures import Fingerprint, Fingerprints


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def known(notes: dict[str, bytes]) -> Fingerprints:
    """Fingerprints of notes given as path -> content."""
    out = Fingerprints()
    for rel, content in notes.items():
        out.set(rel, Fingerprint(sha(content), None))
    return out


# ------------------------------------------------------------ content twins

def test_a_delete_and_a_create_with_the_same_hash_are_a_move():
    k = known({"a.md": b"alpha\n"})
    gone = {"a.md"}
    assert twin(sha(b"alpha\n"), k.with_hash(sha(b"alpha\n")), set(), gone.__contains__) == "a.md"


def test_no_pairing_across_different_content():
    k = known({"a.md": b"alpha\n"})
    assert twin(sha(b"beta\n"), k.with_hash(sha(b"beta\n")), set(), {"a.md"}.__contains__) is None


def test_a_known_note_still_on_disk_is_no_move_source():
    k = known({"a.md": b"alpha\n"})  # a copy, not a move: the original is still there
    assert twin(sha(b"alpha\n"), k.with_hash(sha(b"alpha\n")), set(), set().__contains__) is None


def test_two_candidates_with_the_same_hash_pair_deterministically():
    same = b"the same note\n"
    one = Fingerprints()
    for rel in ("b.md", "a.md", "c.md"):
        one.set(rel, Fingerprint(sha(same), None))
    other = Fingerprints()
    for rel in ("c.md", "a.md", "b.md"):
        other.set(rel, Fingerprint(sha(same), None))
    gone = {"a.md", "b.md", "c.md"}.__contains__
    assert twin(sha(same), one.with_hash(sha(same)), set(), gone) == "a.md"
    assert twin(sha(same), other.with_hash(sha(same)), set(), gone) == "a.md"
    # The next new copy pairs with the next source, never the one already taken.
    assert twin(sha(same), one.with_hash(sha(same)), {"a.md"}, gone) == "b.md"


def test_empty_notes_never_pair():
    k = known({"a.md": b""})
    assert twin(EMPTY_SHA256, k.with_hash(EMPTY_SHA256), set(), {"a.md"}.__contains__) is None


def test_fingerprints_find_notes_by_hash_and_forget_them():
    k = known({"a.md": b"x\n", "b.md": b"x\n", "c.md": b"y\n"})
    assert k.with_hash(sha(b"x\n")) == {"a.md", "b.md"}
    k.set("a.md", Fingerprint(sha(b"y\n"), (1, 2, 3, 4)))  # edited: no longer a twin of b.md
    assert k.with_hash(sha(b"x\n")) == {"b.md"}
    assert k.with_hash(sha(b"y\n")) == {"a.md", "c.md"}
    k.forget("b.md")
    assert k.with_hash(sha(b"x\n")) == frozenset()
    assert k.hashes() == {"a.md": sha(b"y\n"), "c.md": sha(b"y\n")}


# ------------------------------------------------------------ folder renames

def test_a_folder_rename_moves_every_known_note_below_it():
    k = known({"projects/a.md": b"a", "projects/deep/c.md": b"c", "projects-old/x.md": b"x", "other.md": b"o"})
    assert sorted(folder_moved("projects", "work", k)) == [
        ("projects/a.md", "work/a.md"),
        ("projects/deep/c.md", "work/deep/c.md"),
    ]


def test_a_folder_renamed_into_a_tool_folder_takes_its_notes_out_of_the_vault():
    k = known({"notes/a.md": b"a"})
    assert folder_moved("notes", ".trash/notes", k) == [("notes/a.md", None)]


# ------------------------------------------------------------ rename hints

def test_a_rename_hint_is_confirmed_when_the_source_is_gone():
    hints = MoveHints()
    hints.add("archive/a.md", "a.md")
    moves, released = pair_hinted([("archive/a.md", True)], hints, known({"a.md": b"a"}), {"a.md"}.__contains__)
    assert (moves, released) == ([("archive/a.md", "a.md")], [])
    assert len(hints) == 0


def test_an_unconfirmed_hint_releases_its_source():
    k = known({"a.md": b"a"})
    for arrival, gone, known_paths in [
        (("b.md", True), set(), k),  # the source is still there: a copy
        (("b.md", False), {"a.md"}, k),  # the destination vanished again
        (("b.md", True), {"a.md"}, Fingerprints()),  # the source was never a known note
    ]:
        hints = MoveHints()
        hints.add("b.md", "a.md")
        assert pair_hinted([arrival], hints, known_paths, gone.__contains__) == ([], ["a.md"])
        assert hints.destination("a.md") is None


def test_paths_without_a_hint_are_left_to_content_pairing():
    hints = MoveHints()
    assert pair_hinted([("new.md", True)], hints, known({"a.md": b"a"}), {"a.md"}.__contains__) == ([], [])


def test_a_hint_from_a_rename_event_wins_over_content():
    same = b"identical text\n"
    k = known({"a.md": same, "b.md": same})
    gone = {"a.md", "b.md"}.__contains__
    # By content alone, c.md would pair with a.md (first in path order)...
    assert twin(sha(same), k.with_hash(sha(same)), set(), gone) == "a.md"
    # ...but the kernel said b.md was renamed to c.md.
    hints = MoveHints()
    hints.add("c.md", "b.md")
    moves, _ = pair_hinted([("c.md", True)], hints, k, gone)
    assert moves == [("c.md", "b.md")]
    # A second copy arriving without a hint pairs with what is left.
    assert twin(sha(same), k.with_hash(sha(same)), {"b.md"}, gone) == "a.md"


def test_a_move_of_a_move_keeps_the_first_source():
    hints = MoveHints()
    assert hints.add("b.md", "a.md") is None
    assert hints.add("c.md", "b.md") is None
    assert (hints.source("c.md"), hints.destination("a.md")) == ("a.md", "c.md")
    assert "b.md" not in hints and hints.destination("b.md") is None


def test_renaming_back_is_no_move():
    hints = MoveHints()
    hints.add("b.md", "a.md")
    hints.add("a.md", "b.md")
    assert len(hints) == 0 and hints.destination("a.md") is None


def test_a_second_rename_onto_the_same_name_displaces_the_first_source():
    hints = MoveHints()
    hints.add("c.md", "a.md")
    assert hints.add("c.md", "b.md") == "a.md"  # a.md must now be judged on its own
    assert hints.source("c.md") == "b.md" and hints.destination("a.md") is None


def test_a_source_renamed_again_forgets_its_first_destination():
    hints = MoveHints()
    hints.add("b.md", "a.md")
    hints.add("c.md", "a.md")  # a.md was renamed twice, e.g. events of a retried rename
    assert hints.source("b.md") is None and hints.source("c.md") == "a.md"
    assert hints.drop("c.md") == "a.md"
    assert hints.drop("c.md") is None
