"""Flat appends: a message goes to the end of its session file without rewriting it, so an
append costs the same at 10 and at 10,000 messages; every guarantee of the write path holds."""

from __future__ import annotations

import datetime as dt
import os

from mirrorfs import messages, note, storage
from mirrorfs.session import FLAT_WINDOW


def test_an_append_only_adds_bytes_at_the_end(vault):
    s = vault.sessions.create("Flat")
    s.add_message("user", "first")
    before = s.path.read_bytes()
    ino = os.stat(s.path).st_ino
    msg = s.add_message("assistant", "second")
    after = s.path.read_bytes()
    assert after.startswith(before) and os.stat(s.path).st_ino == ino  # appended in place, not swapped
    assert after[len(before):].decode("utf-8") == messages.render(msg)
    assert [m.content for m in s.get_messages()] == ["first", "second"]


def test_a_stale_stamp_takes_the_whole_file_path_and_catches_up(vault):
    s = vault.sessions.create("Old")
    old = (dt.datetime.now().astimezone() - dt.timedelta(seconds=FLAT_WINDOW + 30)).replace(microsecond=0)
    vault.edit(s.path, lambda n: n.set("updated", old))
    ino = os.stat(s.path).st_ino
    s.add_message("user", "after a while")
    assert os.stat(s.path).st_ino != ino  # rewritten through the swap
    assert note.parse(s.path.read_bytes()).meta["updated"] > old


def test_token_counts_always_update_the_front_matter(vault):
    s = vault.sessions.create("Counted")
    s.add_message("user", "hello", tokens=3)
    s.add_message("assistant", "hi", tokens=4)
    assert note.parse(s.path.read_bytes()).meta["tokens"] == 7


def test_a_block_a_crash_cut_short_is_repaired_by_the_next_append(vault):
    s = vault.sessions.create("Torn")
    s.add_message("user", "kept whole")
    with open(s.path, "ab") as f:  # what a crash in the middle of a flat append can leave
        f.write(b'\n### user \xc2\xb7 2026-11-21 10:04\n<!-- mirrorfs:message {"id": "2026112')
    assert [m.content for m in s.get_messages()][0].startswith("kept whole")
    s.add_message("assistant", "after the crash")
    text = s.path.read_text(encoding="utf-8")
    assert '{"id": "2026112\n' not in text and not text.rstrip("\n").endswith("2026112")
    assert [m.content for m in s.get_messages()] == ["kept whole", "after the crash"]


def test_a_person_s_last_line_without_a_newline_is_kept(vault):
    s = vault.sessions.create("Typed")
    s.add_message("user", "hello")
    with open(s.path, "ab") as f:
        f.write(b"\nA note a person typed at the end, no newline")
    s.add_message("assistant", "still here")
    text = s.path.read_text(encoding="utf-8")
    assert "A note a person typed at the end, no newline\n" in text
    assert [m.content for m in s.get_messages()][-1] == "still here"


def test_an_editor_save_between_the_look_and_the_append_is_kept(vault):
    s = vault.sessions.create("Raced")
    s.add_message("user", "hello")
    fired = []

    def editor(stage, path):
        if stage == "looked" and not fired:
            fired.append(stage)
            text = path.read_text(encoding="utf-8").replace("hello", "hello (edited by a person)")
            tmp = path.with_name(".editor.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)

    vault.store = storage.Store(vault.store.lock_dir, root=vault.root, before_swap=editor)
    s.add_message("assistant", "answer")
    assert fired
    assert [m.content for m in s.get_messages()] == ["hello (edited by a person)", "answer"]
