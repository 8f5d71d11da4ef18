"""The one front-matter splitter (note.split) on its own: where every reader cuts a note."""

from __future__ import annotations

import pytest

from mirrorfs import note


@pytest.mark.parametrize("text, expected", [
    ("---\ntitle: x\n---\nbody\n", ("---\n", "title: x\n", "---\n", "body\n", False)),
    ("---\r\ntitle: x\r\n---\r\nbody\r\n", ("---\r\n", "title: x\r\n", "---\r\n", "body\r\n", False)),
    ("---  \ntitle: x\n---\t\n", ("---  \n", "title: x\n", "---\t\n", "", False)),
    ("---\n---\nempty front matter\n", ("---\n", "", "---\n", "empty front matter\n", False)),
    ("---\ntitle: x\n---", ("---\n", "title: x\n", "---", "", False)),  # closing fence at the end of the file
    ("no front matter\n---\nlater: fence\n", ("", "", "", "no front matter\n---\nlater: fence\n", False)),
    ("---\ntitle: never closed\n", ("", "", "", "---\ntitle: never closed\n", True)),
    ("--- not a fence\nbody\n", ("", "", "", "--- not a fence\nbody\n", False)),
    ("---\na: 1\n----\nb: 2\n---\nbody", ("---\n", "a: 1\n----\nb: 2\n", "---\n", "body", False)),
    ("+++\ntitle = \"hugo\"\n+++\n", ("", "", "", "+++\ntitle = \"hugo\"\n+++\n", False)),
])
def test_split_cuts_at_the_fences_alone(text, expected):
    parts = note.split(text)
    assert tuple(parts) == expected
    assert "".join(parts[:4]) == text  # nothing is lost or added


def test_body_of_takes_a_bom_and_needs_no_yaml():
    assert note.body_of("\ufeff---\ntitle: [unclosed\n---\nthe body\n") == "the body\n"
    assert note.body_of("\ufeffplain\n") == "plain\n"
