"""Notes are bytes in, the same bytes out; edits touch only their own lines."""

from __future__ import annotations

import datetime as dt
import difflib

import pytest

from mirrorfs import note
from mirrorfs.errors import UnparseableNoteError, UnreadableNoteError, UnsafeEditError

EDGE_CASES = {
    "empty": b"",
    "no front matter": b"# Title\n\nJust text.\n",
    "front matter only": b"---\ntitle: x\n---\n",
    "front matter only, no final newline": b"---\ntitle: x\n---",
    "bom": b"\xef\xbb\xbf---\ntitle: x\n---\nbody\n",
    "crlf": b"---\r\ntitle: x\r\ntags: [a, b]\r\n---\r\n\r\nbody\r\n",
    "bom and crlf": b"\xef\xbb\xbf---\r\ntitle: x\r\n---\r\nbody\r\n",
    "dashes not on first line": b"\n---\ntitle: x\n---\nbody\n",
    "text before dashes": b"intro\n---\ntitle: x\n---\n",
    "unterminated": b"---\ntitle: x\nbody without end\n",
    "comments": b"---\n# leading comment\ntitle: x  # trailing\n# between\ntags: [a]\n---\nbody\n",
    "flow list": b"---\ntags: [a, 'b c', \"d\"]\naliases: []\n---\n",
    "block list indented": b"---\ntags:\n  - a\n  - b\n---\n",
    "block list indentless": b"---\ntags:\n- a\n- b\n---\n",
    "quoted": b"---\ntitle: 'It''s'\nother: \"say \\\"hi\\\"\"\n---\n",
    "multi-line": b"---\nsummary: |\n  line one\n  line two\nfolded: >\n  a\n  b\n---\n",
    "tabs in values": b"---\ntitle: a\tb\n---\n\tindented body\n",
    "duplicate keys": b"---\ntitle: one\ntitle: two\n---\n",
    "non-string keys": b"---\n1: one\nnull: nothing\n2026-01-01: date key\n---\n",
    "dates": b"---\ncreated: 2026-11-21\nupdated: 2026-11-21T10:04:12+00:00\n---\n",
    "invalid yaml": b"---\ntitle: [unclosed\n---\nbody\n",
    "yaml list not mapping": b"---\n- a\n- b\n---\nbody\n",
    "json-looking body": b'{"not": "front matter"}\n',
    "dashes with trailing spaces": b"---  \ntitle: x\n---  \nbody\n",
    "horizontal rule in body": b"---\ntitle: x\n---\nabove\n\n---\n\nbelow\n",
    "unicode": "---\ntitle: 東京 café\n---\n日本語の本文\n".encode(),
    "empty front matter": b"---\n---\nbody\n",
    "no newline at end": b"---\na: 1\n---\nbody",
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_round_trip_edge_cases(name):
    data = EDGE_CASES[name]
    assert note.parse(data).render() == data


def test_round_trip_every_corpus_file(corpora):
    files = sorted(p for p in corpora.rglob("*.md"))
    assert len(files) > 300
    unparseable = []
    for path in files:
        data = path.read_bytes()
        parsed = note.parse(data, path)
        assert parsed.render() == data, path
        if parsed.error:
            unparseable.append(path)
    assert unparseable == []


def test_corpus_meta_edit_changes_only_that_line(corpora):
    edited = 0
    for path in sorted(corpora.rglob("*.md")):
        data = path.read_bytes()
        parsed = note.parse(data, path)
        if not parsed.has_front_matter:
            continue
        new = parsed.set("mirrorfs_probe", "yes").render()
        old_lines, new_lines = data.decode().splitlines(), new.decode().splitlines()
        added = [l for l in difflib.ndiff(old_lines, new_lines) if l.startswith(("+ ", "- "))]
        assert added == ["+ mirrorfs_probe: 'yes'"], path
        assert note.parse(new).unset("mirrorfs_probe").render() == data
        edited += 1
    assert edited > 100


def test_parse_flags():
    n = note.parse(EDGE_CASES["crlf"])
    assert n.newline == "\r\n" and n.meta == {"title": "x", "tags": ["a", "b"]}
    assert note.parse(EDGE_CASES["bom"]).bom == "\ufeff"
    assert note.parse(EDGE_CASES["dashes not on first line"]).meta == {}
    assert note.parse(EDGE_CASES["duplicate keys"]).meta == {"title": "two"}
    assert note.parse(EDGE_CASES["non-string keys"]).meta[1] == "one"
    assert note.parse(EDGE_CASES["dates"]).meta["created"] == dt.date(2026, 11, 21)


@pytest.mark.parametrize("name", ["invalid yaml", "yaml list not mapping", "unterminated"])
def test_unparseable_is_reported_body_readable_never_edited(name):
    n = note.parse(EDGE_CASES[name], "x.md")
    assert n.error
    assert n.body  # still readable
    with pytest.raises(UnparseableNoteError) as err:
        n.set("title", "y")
    assert "x.md" in str(err.value)


def test_undecodable_bytes_raise_clear_errors():
    with pytest.raises(UnreadableNoteError, match="NUL"):
        note.parse(b"abc\x00def", "bin.md")
    with pytest.raises(UnreadableNoteError, match="not UTF-8"):
        note.parse(b"caf\xe9", "latin1.md")


def diff(a: bytes, b: bytes) -> list[str]:
    return [
        l for l in difflib.ndiff(a.decode().splitlines(), b.decode().splitlines()) if l.startswith(("+ ", "- "))
    ]


def test_set_existing_key_changes_only_its_line_keeping_crlf_and_comments():
    data = EDGE_CASES["comments"].replace(b"\n", b"\r\n")
    new = note.parse(data).set("tags", ["a", "b"]).render()
    assert diff(data, new) == ["- tags: [a]", "+ tags: [a, b]"]
    assert new.count(b"\r\n") == data.count(b"\r\n")
    assert b"# trailing" in new and b"# between" in new


def test_set_block_lists_keep_their_style():
    indented = note.parse(EDGE_CASES["block list indented"]).set("tags", ["x"]).render()
    assert indented == b"---\ntags:\n  - x\n---\n"
    indentless = note.parse(EDGE_CASES["block list indentless"]).set("tags", ["x", "y"]).render()
    assert indentless == b"---\ntags:\n- x\n- y\n---\n"


def test_new_key_goes_at_the_end_and_unset_removes_lines():
    data = b"---\n# c\nb: 1\na: 2\n---\nbody\n"
    assert note.parse(data).set("new", "v").render() == b"---\n# c\nb: 1\na: 2\nnew: v\n---\nbody\n"
    assert note.parse(data).unset("b").render() == b"---\n# c\na: 2\n---\nbody\n"


def test_set_same_value_returns_same_note():
    n = note.parse(EDGE_CASES["flow list"])
    assert n.set("tags", ["a", "b c", "d"]) is n


def test_duplicate_key_edits_the_last_copy_and_unset_removes_all():
    n = note.parse(EDGE_CASES["duplicate keys"])
    assert n.set("title", "three").render() == b"---\ntitle: one\ntitle: three\n---\n"
    assert n.unset("title").render() == b"---\n---\n"


def test_non_string_keys_are_found_from_text():
    n = note.parse(EDGE_CASES["non-string keys"])
    assert n.set("1", "uno").render() == b"---\n1: uno\nnull: nothing\n2026-01-01: date key\n---\n"


def test_values_that_need_quoting_are_quoted_and_round_trip():
    n = note.parse(b"---\na: 1\n---\n")
    for value in ["yes", "3", "a: b", "#hash", "[[Link]]", "multi\nline", "", None, True, 4.5, ["x", "y z"], {"k": "v"}]:
        edited = n.set("v", value)
        assert note.parse(edited.render()).meta["v"] == value


def test_front_matter_added_to_a_note_without_any():
    n = note.parse(b"# Just a note\n")
    assert n.set("tags", ["a"]).render() == b"---\ntags:\n  - a\n---\n# Just a note\n"


def test_body_edit_never_touches_front_matter():
    data = EDGE_CASES["crlf"]
    n = note.parse(data).with_body("\r\nnew body\r\n")
    assert n.render() == b"---\r\ntitle: x\r\ntags: [a, b]\r\n---\r\n\r\nnew body\r\n"
    assert note.parse(b"---\na: 1\n---").with_body("x\n").render() == b"---\na: 1\n---\nx\n"


def test_an_edit_that_would_change_other_keys_is_refused():
    # An orphan list item under a comment: replacing `tags` would re-home it.
    data = b"---\ntags:\n# c\n  - a\nother: 1\n---\n"
    n = note.parse(data)
    with pytest.raises((UnsafeEditError, UnparseableNoteError)):
        n.set("tags", ["b"])
