"""Git conflict markers in a note (mirrorfs.conflict_markers) and how the index reads such a note."""

from __future__ import annotations

import datetime as dt

import pytest

from mirrorfs import conflict_markers as cm
from mirrorfs import index, note
from mirrorfs import messages as msgs

MARKED = (
    "---\ntitle: Colour\n---\n\n"
    "Intro line.\n"
    "<<<<<<< HEAD\n"
    "Favourite colour: blue\n"
    "=======\n"
    "Favourite colour: red\n"
    ">>>>>>> origin/main\n"
    "Outro line.\n"
)


def test_both_versions_come_apart():
    m = cm.split(MARKED)
    assert m.ours == "---\ntitle: Colour\n---\n\nIntro line.\nFavourite colour: blue\nOutro line.\n"
    assert m.theirs == "---\ntitle: Colour\n---\n\nIntro line.\nFavourite colour: red\nOutro line.\n"
    assert (m.base, m.regions, m.ours_label, m.theirs_label) == (None, 1, "HEAD", "origin/main")
    assert cm.has_markers(MARKED) and cm.has_markers(MARKED.encode())


def test_diff3_style_keeps_the_base_and_several_regions_all_count():
    text = ("a\n<<<<<<< ours\nb1\n||||||| base\nb0\n=======\nb2\n>>>>>>> theirs\nc\n"
            "<<<<<<< ours\nd1\n||||||| base\nd0\n=======\nd2\n>>>>>>> theirs\n")
    m = cm.split(text)
    assert (m.ours, m.theirs, m.base, m.regions) == ("a\nb1\nc\nd1\n", "a\nb2\nc\nd2\n", "a\nb0\nc\nd0\n", 2)
    # A base is given only when every region has one.
    mixed = text.replace("||||||| base\nd0\n", "")
    assert cm.split(mixed).base is None and cm.split(mixed).theirs == "a\nb2\nc\nd2\n"


def test_longer_markers_crlf_and_a_bom_survive():
    text = "\ufeffx\r\n<<<<<<<<<< HEAD\r\n1\r\n==========\r\n2\r\n>>>>>>>>>> b\r\ny\r\n"
    ours, theirs, base, marked = cm.sides(text.encode("utf-8"))
    assert ours == "\ufeffx\r\n1\r\ny\r\n".encode() and theirs == "\ufeffx\r\n2\r\ny\r\n".encode()
    assert base is None and marked.regions == 1
    # Markers of another length inside a region are text.
    assert cm.split("<<<<<<<<<< a\n=======\n==========\nz\n>>>>>>>>>> b\n").ours == "=======\n"


@pytest.mark.parametrize("text", [
    "no markers at all\n",
    "<<<<<<< HEAD\nopened but never closed\n=======\nstill open\n",
    "<<<<<<< HEAD\nno separator\n>>>>>>> b\n",
    "```\n<<<<<<< HEAD\nan example in a fence\n=======\nx\n>>>>>>> b\n```\n",
    "~~~~ text\n<<<<<<< HEAD\n~~~\n=======\nx\n>>>>>>> b\n~~~~\n",
    " <<<<<<< HEAD\nindented\n =======\nx\n >>>>>>> b\n",
    "<<<<<<<HEAD\nglued label\n=======\nx\n>>>>>>> b\n",
    "<<<<<<< a\n<<<<<<< nested\n=======\n>>>>>>> b\n",
])
def test_what_is_not_a_conflict_region(text):
    assert cm.split(text) is None and not cm.has_markers(text.encode())
    assert cm.indexable(text.encode()) == text.encode()


def test_a_fence_closed_before_the_region_does_not_hide_it():
    text = "```\ncode\n```\n<<<<<<< HEAD\nx\n=======\ny\n>>>>>>> b\n"
    assert cm.split(text).ours == "```\ncode\n```\nx\n"


def test_a_marked_note_is_indexed_once_without_markers():
    entry = index.file_documents("memory/colour.md", MARKED.encode())
    [doc] = entry.docs
    body = " ".join(text for text, _ in doc["body"])
    assert "Favourite colour: blue" in body and "Favourite colour: red" in body
    assert "<<<<<<<" not in body and "=======" not in body and "origin/main" not in body
    assert body.count("Intro line.") == 1 and body.count("Outro line.") == 1
    assert doc["title"] == "Colour" and entry.info["status"] == "ok"


def _session(*contents: tuple[str, str]) -> str:
    meta = {"id": "2026-11-21-chat-a1b2", "type": "session", "title": "Chat", "instance": "laptop",
            "updated": "2026-11-21T10:05:00+00:00"}
    body = ""
    for n, (mid, text) in enumerate(contents):
        t = dt.datetime(2026, 11, 21, 10, n, tzinfo=dt.timezone.utc)
        body += msgs.render(msgs.Message(id=mid, role="user", time=t, instance="laptop", content=text, meta={}))
    return note.new(meta).with_body(body).render().decode()


def test_a_marked_session_indexes_each_message_once():
    ours = _session(("m1", "hello"), ("m2", "laptop says"))
    theirs = _session(("m1", "hello"), ("m3", "phone says"))
    common = _session(("m1", "hello"))
    # What git writes: the common part, then both additions in one region.
    marked = common + "<<<<<<< HEAD\n" + ours[len(common):] + "=======\n" + theirs[len(common):] + ">>>>>>> b\n"
    assert cm.has_markers(marked)
    entry = index.file_documents("sessions/laptop/2026-11-21-chat-a1b2.md", marked.encode())
    ids = [d["msg"] for d in entry.docs if d["type"] == "message"]
    assert sorted(ids) == ["m1", "m2", "m3"] and entry.info["messages"] == 3


def test_source_names_the_other_branch():
    assert cm.source(cm.split(MARKED)) == "the other side of a git merge (`origin/main`)"
